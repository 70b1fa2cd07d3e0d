import Glibc

/// One segment of a partition (Kafka's `LogSegment`): the records from its
/// base offset up to the next segment's, in four files named by that base
/// offset, zero-padded to 20 digits so that `ls` sorts them
/// (docs/FORMAT.md §3, §6, §18):
///
///   %020d.log        the record batches
///   %020d.index      the sparse offset index (`OffsetIndex`)
///   %020d.timeindex  the time index (`TimeIndex`)
///   %020d.txnindex   the aborted transactions (`AbortedTransaction`), only when there are some
///
/// This is the one place that builds these names. A value: it names the
/// files, it does not hold them open (`Segment.Files` does).
public struct Segment: Sendable, Hashable {
    public static let logSuffix = ".log"
    public static let indexSuffix = ".index"
    public static let timeIndexSuffix = ".timeindex"
    public static let txnIndexSuffix = ".txnindex"
    /// Suffixes of the files derived from the `.log` (rebuilt or merged, never the data itself).
    public static let indexSuffixes = [indexSuffix, timeIndexSuffix, txnIndexSuffix]

    /// The partition directory.
    public let directory: String
    /// The offset the segment's first record has, or would have.
    public let baseOffset: Int64

    public init(_ directory: String, _ baseOffset: Int64) {
        self.directory = directory
        self.baseOffset = baseOffset
    }

    /// `00000000000000000042` for 42.
    public static func name(_ baseOffset: Int64) -> String {
        guard baseOffset >= 0 else {
            let digits = String(baseOffset)
            return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
        }
        return String(unsafeUninitializedCapacity: 20) { storeName(baseOffset, at: $0.baseAddress!) }
    }

    /// Stores the 20 digits of `baseOffset` (not negative) at `p`; returns 20.
    @inline(__always)
    private static func storeName(_ baseOffset: Int64, at p: UnsafeMutablePointer<UInt8>) -> Int {
        var v = UInt64(baseOffset)
        for i in stride(from: 19, through: 0, by: -1) {
            p[i] = UInt8(truncatingIfNeeded: 48 &+ v % 10)
            v /= 10
        }
        return 20
    }

    /// The 20-digit stem shared by the segment's files.
    public var name: String { Segment.name(baseOffset) }
    public var logPath: String { path(Segment.logSuffix) }
    public var indexPath: String { path(Segment.indexSuffix) }
    public var timeIndexPath: String { path(Segment.timeIndexSuffix) }
    public var txnIndexPath: String { path(Segment.txnIndexSuffix) }

    /// The path of the segment's file with `suffix` (`.log`, or a state such as `.log.cleaned`).
    public func path(_ suffix: String) -> String {
        guard baseOffset >= 0 else { return directory + "/" + name + suffix }
        // One allocation: a path is built per partition opened, thousands at a time.
        var directory = directory, suffix = suffix
        return directory.withUTF8 { d in
            suffix.withUTF8 { s in
                String(unsafeUninitializedCapacity: d.count + 21 + s.count) { out in
                    let p = out.baseAddress!
                    if let base = d.baseAddress { p.update(from: base, count: d.count) }
                    p[d.count] = UInt8(ascii: "/")
                    let at = d.count + 1 + Self.storeName(baseOffset, at: p + d.count + 1)
                    if let base = s.baseAddress { (p + at).update(from: base, count: s.count) }
                    return at + s.count
                }
            }
        }
    }

    /// The base offset of a `.log` file name, or nil if the name is not one.
    public static func baseOffset(ofLogName name: String) -> Int64? {
        baseOffset(ofFileName: name, suffix: logSuffix)
    }

    /// The base offset of a segment file name `%020d` + `suffix`, or nil if
    /// the name is not one (not 20 digits, or past `BatchLayout.maximumBaseOffset`).
    public static func baseOffset(ofFileName name: String, suffix: String) -> Int64? {
        guard name.hasSuffix(suffix) else { return nil }
        let stem = name.utf8.prefix(name.utf8.count - suffix.utf8.count)
        guard stem.count == 20, stem.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let base = Int64(String(decoding: stem, as: UTF8.self)), base <= BatchLayout.maximumBaseOffset else { return nil }
        return base
    }
}

// MARK: Open files

extension Segment {
    /// The open `.log`, `.index` and `.timeindex` of a segment, as a writer
    /// (or a rewrite) holds them. Close with `close()`. Not thread-safe.
    ///
    /// A writer's indexes are opened at their first use: most batches add no
    /// index entry (one per `index.interval.bytes`), and a producer over
    /// 10,000 partitions that writes each of them once would otherwise open
    /// and close two index files per batch for nothing.
    final class Files {
        let base: Int64
        let log: OpenFile
        private let indexPath: String
        private let timeIndexPath: String
        private var openIndex: OffsetIndex?
        private var openTimeIndex: TimeIndex?

        /// Files opened already (a segment being built).
        init(base: Int64, log: OpenFile, index: OffsetIndex, timeIndex: TimeIndex) {
            self.base = base
            self.log = log
            indexPath = index.file.path
            timeIndexPath = timeIndex.file.path
            openIndex = index
            openTimeIndex = timeIndex
        }

        /// `log` open, the indexes of `segment` opened (created when missing) when first used.
        init(_ segment: Segment, log: OpenFile) {
            self.base = segment.baseOffset
            self.log = log
            indexPath = segment.indexPath
            timeIndexPath = segment.timeIndexPath
        }

        /// The `.index`, opened at its first use.
        /// - Throws: `MQError` when it cannot be opened.
        func openedIndex() throws -> OffsetIndex {
            if let openIndex { return openIndex }
            let index = OffsetIndex(file: try OpenFile.open(indexPath, O_RDWR | O_CREAT, creating: true), baseOffset: base)
            openIndex = index
            return index
        }

        /// The `.timeindex`, opened at its first use.
        /// - Throws: `MQError` when it cannot be opened.
        func openedTimeIndex() throws -> TimeIndex {
            if let openTimeIndex { return openTimeIndex }
            let index = TimeIndex(file: try OpenFile.open(timeIndexPath, O_RDWR | O_CREAT, creating: true), baseOffset: base)
            openTimeIndex = index
            return index
        }

        /// The `.index` for an entry, nil when it cannot be opened (the entry
        /// is then left out, as when its write fails: indexes are derived data).
        var index: OffsetIndex? { try? openedIndex() }
        /// The `.timeindex` for an entry, nil when it cannot be opened.
        var timeIndex: TimeIndex? { try? openedTimeIndex() }

        func close() {
            log.close()
            openIndex?.file.close()
            openTimeIndex?.file.close()
        }

        /// `fdatasync` of the three files (the indexes are opened for it:
        /// another writer of the segment may have added entries to them).
        func sync() throws {
            try log.sync()
            try openedIndex().file.sync()
            try openedTimeIndex().file.sync()
        }
    }

    /// Opens the segment's `.log` read-write, and its indexes when first used
    /// (created when missing: they are derived data); the `.log` is created only with `createLog`.
    /// - Throws: `MQError`, with cause `.noSuchFileOrDirectory` when the `.log` is missing.
    func open(createLog: Bool) throws -> Files {
        let log = try OpenFile.open(logPath, O_RDWR | (createLog ? O_CREAT : 0), creating: createLog)
        return Files(self, log: log)
    }

    /// Creates the segment's `.log`, `.index` and `.timeindex` empty,
    /// truncating any file already there (debris of an interrupted roll).
    func createEmpty() throws {
        for path in [logPath, indexPath, timeIndexPath] {
            let f = try OpenFile.open(path, O_WRONLY | O_CREAT | O_TRUNC, creating: true)
            f.close()
        }
    }

    /// Removes the segment's `.log`, `.index` and `.timeindex` (not its `.txnindex`).
    func removeFiles() throws {
        try FileSystem.remove(logPath)
        try FileSystem.remove(indexPath)
        try FileSystem.remove(timeIndexPath)
    }
}

/// The segments of one partition directory (Kafka's `LogSegments`), and its
/// `head`, the writers' lock and shared state (docs/FORMAT.md §7).
public enum LogSegments {
    public static let headName = "head"

    /// The path of the partition's `head` file.
    public static func headPath(_ directory: String) -> String { directory + "/" + headName }

    /// Base offsets of the segments in `directory`, ascending: every
    /// `%020d.log` there. The last one is the active segment.
    public static func baseOffsets(in directory: String) throws -> [Int64] {
        try FileSystem.list(directory).compactMap(Segment.baseOffset(ofLogName:)).sorted()
    }

    /// The segments in `directory`, by ascending base offset.
    public static func segments(in directory: String) throws -> [Segment] {
        try baseOffsets(in: directory).map { Segment(directory, $0) }
    }
}

// MARK: Indexing and recovery

extension Segment.Files {
    /// Kafka's sparse indexing (`SparseIndexer`) of one batch appended at
    /// `position`, with `state` the segment's indexing state.
    @inline(__always)
    func addIndexEntries(_ state: inout HeadState, interval: Int64, position: Int64, size: Int64, lastOffset: Int64, maxTimestamp: Int64) {
        SparseIndexer.add(&state, index: index, timeIndex: timeIndex, interval: interval,
                          position: position, size: size, lastOffset: lastOffset, maxTimestamp: maxTimestamp)
    }

    /// Kafka's `LogSegment.recover`, from what `state` records (docs/FORMAT.md
    /// §8, full and tail recovery): cuts the indexes to `state.indexBytes`
    /// and `state.timeIndexBytes` (entries past them belong to unrecorded
    /// appends), then walks the `.log` from `state.endPosition`, accepting each
    /// batch that is whole, valid (§4) and has exactly the base offset
    /// `state.nextOffset` (the active segment is never compacted, so its
    /// batches run on without gaps; `baseOffset` lies outside the CRC, so
    /// this is what catches a damaged one), indexing it as an append would,
    /// and cuts the `.log` after the last one accepted.
    /// - Parameters:
    ///   - state: the segment's state; its end, next offset and indexing
    ///     fields are advanced past the batches accepted.
    ///   - scratch: a buffer for reading batches.
    /// - Returns: the bytes cut from the `.log`.
    func recover(_ state: inout HeadState, interval: Int64, scratch: GrowableBytes) throws -> Int64 {
        let index = try openedIndex(), timeIndex = try openedTimeIndex()
        if try index.file.size() != state.indexBytes { try index.file.truncate(to: state.indexBytes) }
        if try timeIndex.file.size() != state.timeIndexBytes { try timeIndex.file.truncate(to: state.timeIndexBytes) }
        let fileSize = try log.size()
        var position = state.endPosition
        while position < fileSize {
            let available = Int(min(fileSize - position, Int64(Int32.max)))
            let headerBytes = min(available, BatchLayout.headerSize)
            scratch.clear(shrinkingTo: 4 << 20)
            scratch.reserve(headerBytes)
            guard try log.read(into: scratch.base, count: headerBytes, at: position) == headerBytes,
                  headerBytes == BatchLayout.headerSize else { break }
            let peek = BatchHeader(scratch.base)
            guard peek.problem == nil, Int64(peek.totalSize) <= fileSize - position else { break }
            scratch.reserve(peek.totalSize)
            guard try log.read(into: scratch.base, count: peek.totalSize, at: position) == peek.totalSize else { break }
            guard case .success(let header) = validateBatch(UnsafeRawBufferPointer(start: scratch.base, count: peek.totalSize)) else { break }
            if header.baseOffset != state.nextOffset { break }
            addIndexEntries(&state, interval: interval, position: position, size: Int64(header.totalSize),
                            lastOffset: header.lastOffset, maxTimestamp: header.maxTimestamp)
            position += Int64(header.totalSize)
            state.endPosition = position
            state.nextOffset = header.nextOffset
        }
        if position < fileSize { try log.truncate(to: position) }
        return fileSize - position
    }
}
