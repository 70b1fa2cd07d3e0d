import Glibc

/// A record key's identity for compaction, in 16 bytes whatever the key's
/// length, so the key map's memory is bounded by the number of distinct keys.
///
/// A key of at most 15 bytes is stored as itself (bytes, then its length in
/// the last byte), so short keys never collide. A longer key is reduced to a
/// 128-bit hash whose last byte has the high bit set (so it never equals a
/// short key's); two long keys collide with probability about 2^-120 for
/// keys that were not crafted to collide. A collision would make compaction
/// drop the older of the two keys' records as if they were one key.
public struct KeyDigest: Hashable, Sendable {
    public let high: UInt64
    public let low: UInt64

    public init(_ key: UnsafeRawBufferPointer) {
        let n = key.count
        if n <= 15 {
            var words: (UInt64, UInt64) = (0, 0)
            withUnsafeMutableBytes(of: &words) { raw in
                if n > 0 { raw.copyMemory(from: key) }
                raw[15] = UInt8(n)
            }
            high = words.0
            low = words.1
        } else {
            high = KeyDigest.hash(key, seed: 0x243F_6A88_85A3_08D3)
            let mark = (0x80 | (high >> 57)) << 56
            low = KeyDigest.hash(key, seed: 0x1319_8A2E_0370_7344) & ~(UInt64(0xFF) << 56) | mark
        }
    }

    /// A 64-bit hash: 8-byte words mixed by multiply and rotate, then a
    /// final avalanche (the finalizer of SplitMix64).
    static func hash(_ key: UnsafeRawBufferPointer, seed: UInt64) -> UInt64 {
        let p = key.baseAddress!
        let n = key.count
        var h = seed ^ (UInt64(n) &* 0x9E37_79B9_7F4A_7C15)
        var i = 0
        while i + 8 <= n {
            let w = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            h = (h ^ mix(w &+ seed)) &* 0xBF58_476D_1CE4_E5B9
            h = (h << 31) | (h >> 33)
            i += 8
        }
        var tail: UInt64 = 0
        var shift: UInt64 = 0
        while i < n {
            tail |= UInt64(p.load(fromByteOffset: i, as: UInt8.self)) << shift
            shift += 8
            i += 1
        }
        h ^= mix(tail ^ seed ^ shift)
        return mix(h)
    }

    @inline(__always)
    static func mix(_ x: UInt64) -> UInt64 {
        var z = x
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Rewrites one batch keeping some of its records, with Kafka's cleaner's
/// guarantees: the kept records keep their offsets and order; a batch whose
/// records are all kept is copied byte for byte; a batch with none kept
/// disappears; otherwise a new batch is built with the same codec, base
/// offset, last offset delta, attributes, leader epoch and producer id,
/// epoch and base sequence, each record's offset delta its offset minus
/// the base offset, the base timestamp the first kept record's and the
/// largest timestamp the largest kept. Not thread-safe.
public final class BatchRewriter {
    public enum Outcome {
        case verbatim
        case dropped
        /// The new batch, valid until the next call.
        case rewritten(UnsafeRawBufferPointer)
    }

    private let decoder = BatchDecoder()
    private var builders: [Int16: RecordBatchBuilder] = [:]
    private let headerScratch = GrowableBytes(capacity: 256)
    private var keepFlags: [Bool] = []

    public init() {}

    /// - Parameters:
    ///   - keep: decides for each record; called once per record, in order.
    /// - Returns: what became of the batch and how many records it lost.
    public func rewrite(header: BatchHeader, bytes: UnsafeRawBufferPointer, keep: (RecordView) -> Bool) throws -> (Outcome, removed: Int) {
        let records = try decoder.records(of: bytes, header: header)
        keepFlags.removeAll(keepingCapacity: true)
        var iterator = RecordIterator(records: records, header: header)
        var kept = 0
        while let r = try iterator.next() {
            let k = keep(r)
            keepFlags.append(k)
            if k { kept += 1 }
        }
        let total = keepFlags.count
        if kept == total { return (.verbatim, 0) }
        if kept == 0 { return (.dropped, total) }
        guard let codec = header.compression else { throw BatchProblem.badCodec(header.attributes) }
        let builder = builders[codec.rawValue] ?? RecordBatchBuilder(codec: codec, capacity: 1 << 16)
        builders[codec.rawValue] = builder
        builder.reset()
        builder.extraAttributes = header.attributes & ~BatchAttributes.compressionMask
        builder.partitionLeaderEpoch = header.partitionLeaderEpoch
        builder.producerId = header.producerId
        builder.producerEpoch = header.producerEpoch
        builder.baseSequence = header.baseSequence
        builder.lastOffsetDeltaOverride = header.lastOffsetDelta
        iterator = RecordIterator(records: records, header: header)
        var i = 0
        while let r = try iterator.next() {
            defer { i += 1 }
            guard keepFlags[i] else { continue }
            headerScratch.clear()
            headerScratch.reserve(5 + r.headerBytes.count)
            headerScratch.appendVarint(Int32(r.headerCount))
            headerScratch.append(r.headerBytes)
            builder.append(timestamp: r.timestamp, offsetDelta: Int32(r.offset - header.baseOffset),
                           key: r.key, value: r.value, headers: headerScratch.bytes)
        }
        _ = try builder.finish()
        if header.isLogAppendTime {
            // Record timestamps of a LogAppendTime batch are its maxTimestamp;
            // keep that rather than the deltas the builder computed from it.
            builder.output.setBigEndian(header.maxTimestamp, at: BatchLayout.maxTimestamp)
        }
        builder.output.setBigEndian(header.baseOffset, at: BatchLayout.baseOffset)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: builder.output.base + BatchLayout.attributes,
                                                         count: builder.output.count - BatchLayout.attributes))
        builder.output.setBigEndian(crc, at: BatchLayout.crc)
        return (.rewritten(builder.output.bytes), total - kept)
    }
}

/// Builds one new segment from whole batches, under names readers ignore
/// (`<base>.log.cleaned`, `.index.cleaned`, `.timeindex.cleaned`), with
/// fresh sparse indexes (`SparseIndexer`, as the writer makes them). With
/// `countOnly` it writes nothing and only counts (for --dry-run).
public final class SegmentBuilder {
    public static let suffix = ".cleaned"

    public let directory: String
    public let base: Int64
    private let files: Segment.Files?
    private let indexInterval: Int64
    /// Indexing state of the new segment (`activeBase` is its base).
    private var state: HeadState
    /// Bytes written so far.
    public private(set) var size: Int64 = 0
    /// The last offset written, or nil.
    public private(set) var lastOffset: Int64?

    public static func logPath(_ dir: String, _ base: Int64) -> String { Segment(dir, base).path(Segment.logSuffix + suffix) }
    public static func indexPath(_ dir: String, _ base: Int64) -> String { Segment(dir, base).path(Segment.indexSuffix + suffix) }
    public static func timeIndexPath(_ dir: String, _ base: Int64) -> String { Segment(dir, base).path(Segment.timeIndexSuffix + suffix) }

    public init(directory: String, base: Int64, indexInterval: Int64, countOnly: Bool = false) throws {
        self.directory = directory
        self.base = base
        self.indexInterval = indexInterval
        self.state = HeadState.emptySegment(base: base, createdMs: 0)
        if countOnly {
            files = nil
            return
        }
        let flags = O_RDWR | O_CREAT | O_TRUNC
        let log = try OpenFile.open(Self.logPath(directory, base), flags, creating: true)
        let index: OpenFile
        do { index = try OpenFile.open(Self.indexPath(directory, base), flags, creating: true) } catch { log.close(); throw error }
        let timeIndex: OpenFile
        do { timeIndex = try OpenFile.open(Self.timeIndexPath(directory, base), flags, creating: true) } catch {
            log.close(); index.close(); throw error
        }
        files = Segment.Files(base: base, log: log, index: OffsetIndex(file: index, baseOffset: base),
                              timeIndex: TimeIndex(file: timeIndex, baseOffset: base))
    }

    deinit { files?.close() }

    /// Appends one whole batch (its base offset already set).
    public func append(_ batch: UnsafeRawBufferPointer) throws {
        let header = BatchHeader(batch.baseAddress!)
        if let files {
            try files.log.write(batch, at: size)
            SparseIndexer.add(&state, index: files.index, timeIndex: files.timeIndex, interval: indexInterval,
                              position: size, size: Int64(batch.count), lastOffset: header.lastOffset,
                              maxTimestamp: header.maxTimestamp)
        }
        size += Int64(batch.count)
        lastOffset = header.lastOffset
    }

    /// A point `rollBack(to:)` can return to.
    public struct Mark { let size: Int64; let lastOffset: Int64?; let state: HeadState }
    public var mark: Mark { Mark(size: size, lastOffset: lastOffset, state: state) }

    /// Forgets everything appended after `mark`.
    public func rollBack(to mark: Mark) throws {
        if let files {
            try files.log.truncate(to: mark.size)
            try files.openedIndex().file.truncate(to: mark.state.indexBytes)
            try files.openedTimeIndex().file.truncate(to: mark.state.timeIndexBytes)
        }
        size = mark.size
        lastOffset = mark.lastOffset
        state = mark.state
    }

    /// Adds the final time-index entry and makes the three files durable.
    public func finish() throws {
        guard let files else { return }
        SparseIndexer.appendTimeEntry(&state, timeIndex: files.timeIndex)
        try files.sync()
    }

    /// Removes the files (a group that changed nothing, or an interrupted run).
    public func discard() {
        guard files != nil else { return }
        for path in [Self.logPath(directory, base), Self.indexPath(directory, base), Self.timeIndexPath(directory, base)] {
            try? FileSystem.remove(path)
        }
    }
}
