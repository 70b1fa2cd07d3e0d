// Kafka message format v2: the record batch.
//
// A batch is laid out as follows (all integers big-endian):
//
//   offset  size  field
//   0       8     baseOffset              offset of the first record
//   8       4     batchLength             bytes after this field (total size - 12)
//   12      4     partitionLeaderEpoch
//   16      1     magic                   2
//   17      4     crc                     CRC-32C of bytes 21..<end (attributes to the end)
//   21      2     attributes              see below
//   23      4     lastOffsetDelta         offset of the last record - baseOffset
//   27      8     baseTimestamp           timestamp of the first record
//   35      8     maxTimestamp            largest timestamp in the batch
//   43      8     producerId              -1 when not idempotent
//   51      2     producerEpoch           -1 when not idempotent
//   53      4     baseSequence            -1 when not idempotent
//   57      4     recordsCount
//   61      ...   records                 compressed as one block when the codec is not none
//
// Attributes: bits 0-2 compression codec (0 none, 1 gzip, 2 snappy, 3 lz4,
// 4 zstd), bit 3 timestamp type (0 CreateTime, 1 LogAppendTime), bit 4
// transactional, bit 5 control batch, bit 6 delete horizon set; the rest 0.
//
// Each record:
//   length varint (bytes after this field), attributes int8 (unused, 0),
//   timestampDelta varlong, offsetDelta varint, keyLength varint (-1 = null),
//   key, valueLength varint (-1 = null), value, headerCount varint, then per
//   header: nameLength varint, name (UTF-8), valueLength varint (-1 = null), value.
// Varints are zig-zag encoded base-128, least significant group first.
//
// baseOffset, batchLength, partitionLeaderEpoch and magic lie outside the CRC,
// so a writer can assign the base offset after computing the checksum.

/// Byte positions of the batch header fields, chained as in Kafka's DefaultRecordBatch.
public enum BatchLayout {
    public static let baseOffset = 0
    public static let batchLength = baseOffset + 8
    public static let partitionLeaderEpoch = batchLength + 4
    public static let magic = partitionLeaderEpoch + 4
    public static let crc = magic + 1
    public static let attributes = crc + 4
    public static let lastOffsetDelta = attributes + 2
    public static let baseTimestamp = lastOffsetDelta + 4
    public static let maxTimestamp = baseTimestamp + 8
    public static let producerId = maxTimestamp + 8
    public static let producerEpoch = producerId + 8
    public static let baseSequence = producerEpoch + 2
    public static let recordsCount = baseSequence + 4
    public static let records = recordsCount + 4
    /// Size of the header, 61.
    public static let headerSize = records
    /// Bytes before batchLength counts: baseOffset and batchLength, 12.
    public static let logOverhead = batchLength + 4
    public static let currentMagic: UInt8 = 2
    /// The smallest batchLength a batch can have: the header after batchLength, 49.
    public static let minimumBatchLength = headerSize - logOverhead
    /// The largest base offset a batch may have: its last offset (base plus a
    /// non-negative Int32 delta) and the offset after it stay within Int64.
    public static let maximumBaseOffset = Int64.max - Int64(Int32.max) - 1
}

/// Attribute bits.
public enum BatchAttributes {
    public static let compressionMask: Int16 = 0x07
    public static let timestampTypeLogAppend: Int16 = 0x08
    public static let transactional: Int16 = 0x10
    public static let control: Int16 = 0x20
    public static let deleteHorizon: Int16 = 0x40
}

@inline(__always)
func loadBE<T: FixedWidthInteger>(_ p: UnsafeRawPointer, _ offset: Int, as: T.Type) -> T {
    T(bigEndian: p.loadUnaligned(fromByteOffset: offset, as: T.self))
}

/// The fixed header of one batch, read from bytes that hold at least the
/// header. Validating the whole batch is `RecordBatchView.validate`.
public struct BatchHeader: Sendable, Equatable {
    public var baseOffset: Int64
    public var batchLength: Int32
    public var partitionLeaderEpoch: Int32
    public var magic: UInt8
    public var crc: UInt32
    public var attributes: Int16
    public var lastOffsetDelta: Int32
    public var baseTimestamp: Int64
    public var maxTimestamp: Int64
    public var producerId: Int64
    public var producerEpoch: Int16
    public var baseSequence: Int32
    public var recordsCount: Int32

    /// Parses the first 61 bytes at `p`. Does not check anything.
    public init(_ p: UnsafeRawPointer) {
        baseOffset = loadBE(p, BatchLayout.baseOffset, as: Int64.self)
        batchLength = loadBE(p, BatchLayout.batchLength, as: Int32.self)
        partitionLeaderEpoch = loadBE(p, BatchLayout.partitionLeaderEpoch, as: Int32.self)
        magic = p.load(fromByteOffset: BatchLayout.magic, as: UInt8.self)
        crc = loadBE(p, BatchLayout.crc, as: UInt32.self)
        attributes = loadBE(p, BatchLayout.attributes, as: Int16.self)
        lastOffsetDelta = loadBE(p, BatchLayout.lastOffsetDelta, as: Int32.self)
        baseTimestamp = loadBE(p, BatchLayout.baseTimestamp, as: Int64.self)
        maxTimestamp = loadBE(p, BatchLayout.maxTimestamp, as: Int64.self)
        producerId = loadBE(p, BatchLayout.producerId, as: Int64.self)
        producerEpoch = loadBE(p, BatchLayout.producerEpoch, as: Int16.self)
        baseSequence = loadBE(p, BatchLayout.baseSequence, as: Int32.self)
        recordsCount = loadBE(p, BatchLayout.recordsCount, as: Int32.self)
    }

    /// Total bytes of the batch on disk, header included.
    public var totalSize: Int { Int(batchLength) + BatchLayout.logOverhead }
    /// The offset of the last record. Wraps instead of trapping on a header
    /// that was not checked: `problem` is nil (`validateBatch` checks it) for
    /// every header a reader acts on, and then nothing wraps.
    public var lastOffset: Int64 { baseOffset &+ Int64(lastOffsetDelta) }
    public var nextOffset: Int64 { lastOffset &+ 1 }

    /// The checks a header must pass before its fields are used for
    /// positions or arithmetic: magic 2, a length that covers the header,
    /// non-negative counts and offset delta, a base offset from 0 to
    /// `BatchLayout.maximumBaseOffset`. The same test wherever a header is
    /// read: the reader, the writer's recovery, the scanner, the rewriter.
    public var problem: BatchProblem? {
        if magic != BatchLayout.currentMagic { return .badMagic(magic) }
        if batchLength < Int32(BatchLayout.minimumBatchLength) { return .badLength(batchLength) }
        if recordsCount < 0 || lastOffsetDelta < 0 { return .badRecords("negative count or offset delta") }
        if baseOffset < 0 || baseOffset > BatchLayout.maximumBaseOffset { return .badOffset(baseOffset) }
        return nil
    }
    public var compression: CompressionCodec? { CompressionCodec(rawValue: attributes & BatchAttributes.compressionMask) }
    public var isTransactional: Bool { attributes & BatchAttributes.transactional != 0 }
    public var isControl: Bool { attributes & BatchAttributes.control != 0 }
    public var isLogAppendTime: Bool { attributes & BatchAttributes.timestampTypeLogAppend != 0 }
}

/// Why bytes are not a valid batch.
public enum BatchProblem: Error, Equatable, Sendable, CustomStringConvertible {
    /// Fewer bytes than the header or the declared length: the batch may still be being written.
    case incomplete
    case badMagic(UInt8)
    case badLength(Int32)
    case badCRC(stored: UInt32, computed: UInt32)
    case badCodec(Int16)
    case badOffset(Int64)
    case badRecords(String)

    public var description: String {
        switch self {
        case .incomplete: "incomplete batch"
        case .badMagic(let m): "unsupported magic \(m) (only record format v2, magic 2, is supported; v0/v1 message sets predate Kafka 0.11)"
        case .badLength(let l): "impossible batch length \(l)"
        case .badCRC(let s, let c): "CRC-32C mismatch (stored \(hex(s)), computed \(hex(c)))"
        case .badCodec(let a): "unknown compression codec in attributes \(a)"
        case .badOffset(let o): "impossible base offset \(o) (offsets run from 0 to \(BatchLayout.maximumBaseOffset))"
        case .badRecords(let why): "malformed records: \(why)"
        }
    }
}

func hex(_ v: UInt32) -> String {
    let s = String(v, radix: 16)
    return "0x" + String(repeating: "0", count: max(0, 8 - s.count)) + s
}

/// Checks the batch framing at the start of `bytes` without decoding records.
/// - Returns: the header, or the problem. `.incomplete` means `bytes` ends
///   before the batch does (a batch still being written, or a torn tail).
public func validateBatch(_ bytes: UnsafeRawBufferPointer, checkCRC: Bool = true) -> Result<BatchHeader, BatchProblem> {
    guard bytes.count >= BatchLayout.headerSize, let p = bytes.baseAddress else {
        // Enough to see the magic? Reject old formats early instead of waiting forever.
        if bytes.count > BatchLayout.magic, let p = bytes.baseAddress {
            let magic = p.load(fromByteOffset: BatchLayout.magic, as: UInt8.self)
            if magic != BatchLayout.currentMagic && magic > 2 { return .failure(.badMagic(magic)) }
        }
        return .failure(.incomplete)
    }
    let header = BatchHeader(p)
    if header.magic != BatchLayout.currentMagic { return .failure(.badMagic(header.magic)) }
    if header.batchLength < Int32(BatchLayout.minimumBatchLength) { return .failure(.badLength(header.batchLength)) }
    if header.totalSize > bytes.count { return .failure(.incomplete) }
    if let problem = header.problem { return .failure(problem) }
    if header.compression == nil { return .failure(.badCodec(header.attributes)) }
    if checkCRC {
        let computed = CRC32C.checksum(UnsafeRawBufferPointer(start: p + BatchLayout.attributes, count: header.totalSize - BatchLayout.attributes))
        if computed != header.crc { return .failure(.badCRC(stored: header.crc, computed: computed)) }
    }
    return .success(header)
}
