/// Builds one record batch (format v2) in memory.
///
/// Records are appended in order; `finish` writes the header, compresses the
/// records when a codec is set and computes the CRC. The base offset is left 0:
/// the log assigns it under its lock by patching the first 8 bytes, which lie
/// outside the CRC. Not thread-safe.
public final class RecordBatchBuilder {
    public let codec: CompressionCodec
    /// The batch being built: header space, then records (uncompressed codec),
    /// or, after `finish`, the whole batch.
    public let output: GrowableBytes
    /// Records before compression, when a codec is set.
    private let staging: GrowableBytes?
    /// `staging ?? output`, unretained (both are constants of this builder):
    /// a producer over many partitions appends each record to a builder
    /// whose lines have left the cache, and a reference count changed there
    /// is a locked instruction that waits for them.
    private let recordBuffer: Unmanaged<GrowableBytes>
    public private(set) var count: Int32 = 0
    public private(set) var baseTimestamp: Int64 = 0
    public private(set) var maxTimestamp: Int64 = -1
    /// Offset delta (within the batch) of the record with `maxTimestamp`.
    public private(set) var offsetDeltaOfMaxTimestamp: Int32 = 0

    public var producerId: Int64 = -1
    public var producerEpoch: Int16 = -1
    public var baseSequence: Int32 = -1
    public var partitionLeaderEpoch: Int32 = 0
    public var extraAttributes: Int16 = 0
    /// When set, `finish` writes this `lastOffsetDelta` instead of
    /// `count - 1` (compaction keeps a batch's last offset when it drops its
    /// last records). Cleared by `reset`.
    public var lastOffsetDeltaOverride: Int32?
    /// Offset delta of the last record appended.
    private var lastOffsetDelta: Int32 = -1

    public init(codec: CompressionCodec, capacity: Int = 1 << 20) {
        self.codec = codec
        self.output = GrowableBytes(capacity: capacity + BatchLayout.headerSize)
        self.staging = codec == .none ? nil : GrowableBytes(capacity: capacity)
        self.recordBuffer = Unmanaged.passUnretained(staging ?? output)
        reset()
    }

    /// Empties the builder for the next batch; keeps storage (up to `keepCapacity`).
    public func reset(keepCapacity: Int = 8 << 20) {
        output.clear(shrinkingTo: keepCapacity)
        output.count = BatchLayout.headerSize
        staging?.clear(shrinkingTo: keepCapacity)
        count = 0
        lastOffsetDelta = -1
        lastOffsetDeltaOverride = nil
        maxTimestamp = -1
        offsetDeltaOfMaxTimestamp = 0
    }

    /// Uncompressed bytes of the records appended so far.
    public var recordBytes: Int {
        staging?.count ?? (output.count - BatchLayout.headerSize)
    }

    public var isEmpty: Bool { count == 0 }

    /// Encodes headers once as the record section expects them (count, then
    /// each header), so a producer that adds the same headers to every
    /// message encodes them a single time.
    public static func encodeHeaders(_ headers: [Header]) -> [UInt8] {
        let buffer = GrowableBytes(capacity: 64)
        buffer.appendVarint(Int32(headers.count))
        for h in headers {
            var name = h.name
            name.withUTF8 { utf8 in
                buffer.appendVarint(Int32(utf8.count))
                buffer.append(UnsafeRawBufferPointer(utf8))
            }
            if let v = h.value {
                buffer.appendVarint(Int32(v.count))
                buffer.append(v)
            } else {
                buffer.appendVarint(-1)
            }
        }
        return buffer.array
    }

    /// The headers `encodeHeaders` encoded, nil when `bytes` is not such an
    /// encoding (a count or length that runs past the end, a negative count,
    /// a null name, bytes left over). Checks every length before using it.
    public static func decodeHeaders(_ bytes: [UInt8]) -> [Header]? {
        bytes.withUnsafeBytes { raw -> [Header]? in
            var cursor = ByteCursor(raw)
            var headers: [Header] = []
            do {
                let count = try cursor.varlong()
                guard count >= 0, count <= Int64(raw.count) else { return nil }
                headers.reserveCapacity(Int(count))
                for _ in 0..<count {
                    guard let name = try cursor.bytes(allowNull: false) else { return nil }
                    let value = try cursor.bytes(allowNull: true)
                    headers.append(Header(name: String(decoding: name, as: UTF8.self), value: value.map { Array($0) }))
                }
            } catch {
                return nil
            }
            return cursor.p == cursor.end ? headers : nil
        }
    }

    /// Bytes one record takes in the batch, length prefix included, with the
    /// largest deltas it could get. Used to check a message against
    /// `max.message.bytes` before accepting it.
    public static func maxRecordSize(keyCount: Int?, valueCount: Int?, encodedHeadersCount: Int) -> Int {
        let body = 1 + 10 + 5 + varlongSize(Int64(keyCount ?? -1)) + (keyCount ?? 0)
            + varlongSize(Int64(valueCount ?? -1)) + (valueCount ?? 0) + encodedHeadersCount
        return body + varlongSize(Int64(body))
    }

    /// Appends one record.
    /// - Parameters:
    ///   - timestamp: milliseconds since the epoch (CreateTime).
    ///   - key, value: nil for null.
    ///   - headers: the header section as `encodeHeaders` makes it.
    @inline(__always)
    public func append(timestamp: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer) {
        append(timestamp: timestamp, offsetDelta: count, key: key, value: value, headers: headers)
    }

    /// Appends one record with an explicit offset delta (compaction keeps
    /// the offsets of the records it keeps). Deltas must increase.
    @inline(__always)
    public func append(timestamp: Int64, offsetDelta: Int32, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer) {
        if count == 0 { baseTimestamp = timestamp }
        // Not retained (see `recordBuffer`).
        let timestampDelta = timestamp &- baseTimestamp
        recordBuffer._withUnsafeGuaranteedRef {
            Self.encodeRecord(into: $0, timestampDelta: timestampDelta, offsetDelta: offsetDelta, key: key, value: value, headers: headers)
        }
        if timestamp > maxTimestamp {
            maxTimestamp = timestamp
            offsetDeltaOfMaxTimestamp = offsetDelta
        }
        lastOffsetDelta = offsetDelta
        count &+= 1
    }

    /// Appends one record's bytes (length, attributes, deltas, key, value, headers) to `buffer`.
    @inline(__always)
    private static func encodeRecord(into buffer: GrowableBytes, timestampDelta: Int64, offsetDelta: Int32,
                                     key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer) {
        let keyLength = key.map { Int64($0.count) } ?? -1
        let valueLength = value.map { Int64($0.count) } ?? -1
        let body = 1 &+ varlongSize(timestampDelta) &+ varlongSize(Int64(offsetDelta))
            &+ varlongSize(keyLength) &+ Int(max(keyLength, 0))
            &+ varlongSize(valueLength) &+ Int(max(valueLength, 0)) &+ headers.count
        // One reservation for the whole record (its length prefix is at most
        // 10 bytes), then plain stores.
        buffer.reserve(body &+ 10)
        var p = storeVarlong(Int64(body), at: buffer.base + buffer.count)
        p.storeBytes(of: 0, as: UInt8.self)
        p = storeVarlong(timestampDelta, at: p + 1)
        p = storeVarlong(Int64(offsetDelta), at: p)
        p = storeVarlong(keyLength, at: p)
        if let key, let k = key.baseAddress, key.count > 0 { p.copyMemory(from: k, byteCount: key.count); p += key.count }
        p = storeVarlong(valueLength, at: p)
        if let value, let v = value.baseAddress, value.count > 0 { p.copyMemory(from: v, byteCount: value.count); p += value.count }
        if let h = headers.baseAddress, headers.count > 0 { p.copyMemory(from: h, byteCount: headers.count); p += headers.count }
        buffer.count = p - buffer.base
    }

    /// Completes the batch: compresses, writes the header and the CRC.
    /// - Returns: the batch bytes (valid until the next `reset`), base offset 0.
    /// - Throws: `CompressionError` if the codec fails.
    public func finish() throws -> UnsafeRawBufferPointer {
        precondition(count > 0, "empty batch")
        if let staging {
            output.count = BatchLayout.headerSize
            try Compression.compress(codec, staging.bytes, into: output)
        }
        let b = output
        b.setBigEndian(Int64(0), at: BatchLayout.baseOffset)
        b.setBigEndian(Int32(b.count - BatchLayout.logOverhead), at: BatchLayout.batchLength)
        b.setBigEndian(partitionLeaderEpoch, at: BatchLayout.partitionLeaderEpoch)
        b.base.storeBytes(of: BatchLayout.currentMagic, toByteOffset: BatchLayout.magic, as: UInt8.self)
        b.setBigEndian(Int16(codec.rawValue) | extraAttributes, at: BatchLayout.attributes)
        b.setBigEndian(lastOffsetDeltaOverride ?? lastOffsetDelta, at: BatchLayout.lastOffsetDelta)
        b.setBigEndian(baseTimestamp, at: BatchLayout.baseTimestamp)
        b.setBigEndian(maxTimestamp, at: BatchLayout.maxTimestamp)
        b.setBigEndian(producerId, at: BatchLayout.producerId)
        b.setBigEndian(producerEpoch, at: BatchLayout.producerEpoch)
        b.setBigEndian(baseSequence, at: BatchLayout.baseSequence)
        b.setBigEndian(count, at: BatchLayout.recordsCount)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: b.base + BatchLayout.attributes, count: b.count - BatchLayout.attributes))
        b.setBigEndian(crc, at: BatchLayout.crc)
        return b.bytes
    }
}
