/// One record, borrowing the bytes of the batch it was decoded from: valid
/// only until the batch's buffer is reused.
public struct RecordView {
    public var offset: Int64
    public var timestamp: Int64
    public var key: UnsafeRawBufferPointer?
    public var value: UnsafeRawBufferPointer?
    public var headerCount: Int
    /// The encoded headers (after the count).
    public var headerBytes: UnsafeRawBufferPointer

    /// Decodes the headers.
    public func headers() throws(BatchProblem) -> [HeaderView] {
        var result: [HeaderView] = []
        result.reserveCapacity(headerCount)
        var cursor = ByteCursor(headerBytes)
        for _ in 0..<headerCount {
            guard let name = try cursor.bytes(allowNull: false) else { throw .badRecords("null header name") }
            let value = try cursor.bytes(allowNull: true)
            result.append(HeaderView(name: name, value: value))
        }
        return result
    }
}

/// Reads varints and length-prefixed byte strings with bounds checks.
struct ByteCursor {
    var p: UnsafeRawPointer
    let end: UnsafeRawPointer

    init(_ bytes: UnsafeRawBufferPointer) {
        let base = bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!
        p = base
        end = base + bytes.count
    }

    @inline(__always)
    mutating func varlong() throws(BatchProblem) -> Int64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard p < end else { throw .badRecords("varint runs past the end") }
            let byte = p.load(as: UInt8.self)
            p += 1
            result |= UInt64(byte & 0x7F) << shift
            if byte < 0x80 { break }
            shift += 7
            if shift > 63 { throw .badRecords("varint too long") }
        }
        return Int64(bitPattern: result >> 1) ^ -Int64(bitPattern: result & 1)
    }

    @inline(__always)
    mutating func bytes(allowNull: Bool) throws(BatchProblem) -> UnsafeRawBufferPointer? {
        let length = try varlong()
        if length < 0 {
            if length == -1 && allowNull { return nil }
            throw .badRecords("negative length \(length)")
        }
        guard length <= end - p else { throw .badRecords("length \(length) runs past the end") }
        let result = UnsafeRawBufferPointer(start: p, count: Int(length))
        p += Int(length)
        return result
    }
}

/// Iterates the records of one batch.
public struct RecordIterator {
    private var cursor: ByteCursor
    private let header: BatchHeader
    private var index: Int32 = 0

    /// - Parameters:
    ///   - records: the record bytes, decompressed (see `BatchDecoder`).
    ///   - header: the batch header.
    public init(records: UnsafeRawBufferPointer, header: BatchHeader) {
        self.cursor = ByteCursor(records)
        self.header = header
    }

    /// True when every record has been returned.
    public var isAtEnd: Bool { index >= header.recordsCount }

    /// The next record, or nil after the last. Throws on malformed bytes.
    @inline(__always)
    public mutating func next() throws(BatchProblem) -> RecordView? {
        guard index < header.recordsCount else { return nil }
        index &+= 1
        let length = try cursor.varlong()
        guard length >= 0, length <= cursor.end - cursor.p else { throw .badRecords("record length \(length) runs past the batch") }
        let recordEnd = cursor.p + Int(length)
        var c = ByteCursor(UnsafeRawBufferPointer(start: cursor.p, count: Int(length)))
        c.p += 1  // attributes
        let timestampDelta = try c.varlong()
        let offsetDelta = try c.varlong()
        // Inside the batch's range, so base + delta (+ 1) cannot overflow for a
        // plausible header (`BatchHeader.problem`).
        guard offsetDelta >= 0, offsetDelta <= Int64(header.lastOffsetDelta) else {
            throw .badRecords("record offset delta \(offsetDelta) outside the batch's 0...\(header.lastOffsetDelta)")
        }
        let key = try c.bytes(allowNull: true)
        let value = try c.bytes(allowNull: true)
        let headerCount = try c.varlong()
        guard headerCount >= 0 && headerCount <= Int64(length) else { throw .badRecords("bad header count \(headerCount)") }
        // Walk the headers now, so that `headers()` of a returned record cannot
        // fail later, far from the batch; and, as Kafka does, require the record
        // to end exactly where its length says.
        var h = c
        for _ in 0..<headerCount {
            guard try h.bytes(allowNull: true) != nil else { throw .badRecords("null header name") }
            _ = try h.bytes(allowNull: true)
        }
        guard h.p == recordEnd else {
            throw .badRecords("record of \(length) bytes has \(recordEnd - h.p) bytes after its last field")
        }
        cursor.p = recordEnd
        let timestamp = header.isLogAppendTime ? header.maxTimestamp : header.baseTimestamp &+ timestampDelta
        return RecordView(offset: header.baseOffset &+ offsetDelta, timestamp: timestamp, key: key, value: value,
                          headerCount: Int(headerCount), headerBytes: UnsafeRawBufferPointer(start: c.p, count: recordEnd - c.p))
    }
}

/// Gives the record bytes of a batch, decompressing into a reusable buffer.
public final class BatchDecoder {
    /// Grows with the first compressed batch: a reader of uncompressed
    /// batches (or one of many partitions' readers) costs no buffer.
    private let scratch = GrowableBytes(capacity: 0)
    /// Largest decompressed size accepted for one batch.
    public var limit: Int

    public init(limit: Int = 256 << 20) { self.limit = limit }

    /// - Parameters:
    ///   - batch: a whole, validated batch.
    /// - Returns: the records region, valid until the next call.
    public func records(of batch: UnsafeRawBufferPointer, header: BatchHeader) throws -> UnsafeRawBufferPointer {
        let body = UnsafeRawBufferPointer(rebasing: batch[BatchLayout.headerSize..<header.totalSize])
        guard let codec = header.compression else { throw BatchProblem.badCodec(header.attributes) }
        if codec == .none { return body }
        scratch.clear(shrinkingTo: 16 << 20)
        try Compression.decompress(codec, body, into: scratch, limit: limit)
        return scratch.bytes
    }
}
