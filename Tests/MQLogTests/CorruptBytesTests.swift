import Testing
import Glibc
@testable import MQLog

/// Bytes that once stopped a tool with a Swift runtime trap. Each must now be a
/// thrown error naming where the damage is (issue 11 §1).
@Suite struct CorruptBytesTests {
    /// One uncompressed or compressed batch of `count` records.
    func batch(_ count: Int, codec: CompressionCodec = .none) throws -> [UInt8] {
        let builder = RecordBatchBuilder(codec: codec)
        let headers = RecordBatchBuilder.encodeHeaders([Header(name: "h", value: Array("v".utf8))])
        for i in 0..<count {
            let key = Array("key-\(i)".utf8), value = Array(String(repeating: "value \(i) ", count: 20).utf8)
            key.withUnsafeBytes { k in value.withUnsafeBytes { v in headers.withUnsafeBytes { h in
                builder.append(timestamp: 1_700_000_000_000 + Int64(i), key: k, value: v, headers: h)
            } } }
        }
        return Array(try builder.finish())
    }

    func setBE<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T, at offset: Int) {
        withUnsafeBytes(of: value.bigEndian) { for (i, b) in $0.enumerated() { bytes[offset + i] = b } }
    }

    func fixCRC(_ bytes: inout [UInt8]) {
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[BatchLayout.attributes...])) }
        setBE(&bytes, crc, at: BatchLayout.crc)
    }

    /// Every record of `bytes` decoded, or the error that stopped it.
    func decodeAll(_ bytes: [UInt8]) -> Result<Int, any Error> {
        bytes.withUnsafeBytes { raw in
            Result {
                let header = try validateBatch(raw).get()
                let decoder = BatchDecoder()
                defer { withExtendedLifetime(decoder) {} }  // records point into its buffer
                return try withExtendedLifetime(decoder) {
                    var it = RecordIterator(records: try decoder.records(of: raw, header: header), header: header)
                    var n = 0
                    while let r = try it.next() { _ = try r.headers(); n += 1 }
                    return n
                }
            }
        }
    }

    @Test func baseOffsetNearInt64MaxIsRejected() throws {
        for base in [Int64.max, Int64.max - 1, BatchLayout.maximumBaseOffset + 1, -1, Int64.min] {
            var bytes = try batch(3)
            setBE(&bytes, base, at: BatchLayout.baseOffset)
            let problem = bytes.withUnsafeBytes { raw -> BatchProblem? in
                if case .failure(let p) = validateBatch(raw) { return p }
                return nil
            }
            #expect(problem == .badOffset(base))
            // Unvalidated headers never trap either.
            let header = bytes.withUnsafeBytes { BatchHeader($0.baseAddress!) }
            _ = header.nextOffset
        }
        var edge = try batch(3)
        setBE(&edge, BatchLayout.maximumBaseOffset - 2, at: BatchLayout.baseOffset)
        #expect((try? decodeAll(edge).get()) == 3)
    }

    /// Rewrites record `index`'s offset delta (uncompressed batch; every record's
    /// fields before it are one-byte varints here, so the layout is known).
    @Test func recordOffsetDeltaOutsideTheBatchIsMalformed() throws {
        for delta in [Int64(1), 1 << 31, Int64.max, -1] {
            var bytes = try emptyRecordBatch()
            var encoded: [UInt8] = []
            var z = UInt64(bitPattern: (delta << 1) ^ (delta >> 63))
            while z >= 0x80 { encoded.append(UInt8(z & 0x7F) | 0x80); z >>= 7 }
            encoded.append(UInt8(z))
            let body: [UInt8] = [0, 0] + encoded + [1, 1, 0]
            bytes.replaceSubrange(BatchLayout.records..., with: [UInt8(body.count << 1)] + body)
            setBE(&bytes, Int32(bytes.count - BatchLayout.logOverhead), at: BatchLayout.batchLength)
            fixCRC(&bytes)
            guard case .failure(let error) = decodeAll(bytes) else { Issue.record("delta \(delta) decoded"); continue }
            #expect("\(error)".contains("offset delta"))
        }
    }

    /// A batch of one empty record (null key and value, no headers): the
    /// record's bytes are [length 6] 0 0 0 1 1 0.
    func emptyRecordBatch() throws -> [UInt8] {
        let builder = RecordBatchBuilder(codec: .none)
        let noHeaders: [UInt8] = [0]
        noHeaders.withUnsafeBytes { builder.append(timestamp: 1, offsetDelta: 0, key: nil, value: nil, headers: $0) }
        let bytes = Array(try builder.finish())
        #expect(Array(bytes[BatchLayout.records...]) == [12, 0, 0, 0, 1, 1, 0])
        return bytes
    }

    @Test func trailingBytesInARecordAreMalformed() throws {
        var bytes = try emptyRecordBatch()
        bytes[BatchLayout.records] = 14  // length 7
        bytes.append(0x55)
        setBE(&bytes, Int32(bytes.count - BatchLayout.logOverhead), at: BatchLayout.batchLength)
        fixCRC(&bytes)
        guard case .failure(let error) = decodeAll(bytes) else { Issue.record("decoded"); return }
        #expect("\(error)".contains("after its last field"))
    }

    @Test func nullHeaderNameIsMalformed() throws {
        var bytes = try emptyRecordBatch()
        // One header whose name is null: count 1, name length -1, value length -1.
        bytes.replaceSubrange((BatchLayout.records + 6)..., with: [2, 1, 1])
        bytes[BatchLayout.records] = 16  // length 8
        setBE(&bytes, Int32(bytes.count - BatchLayout.logOverhead), at: BatchLayout.batchLength)
        fixCRC(&bytes)
        guard case .failure(let error) = decodeAll(bytes) else { Issue.record("decoded"); return }
        #expect("\(error)".contains("null header name"))
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func damagedPayloadsThrow(codec: CompressionCodec) throws {
        let original = try batch(50, codec: codec)
        var rng = SplitMix64(state: UInt64(codec.rawValue) * 7919)
        var failures = 0
        for trial in 0..<400 {
            var bytes = original
            let payload = BatchLayout.records..<bytes.count
            switch trial % 4 {
            case 0:  // flip bytes
                for _ in 0...Int.random(in: 0...3, using: &rng) {
                    bytes[Int.random(in: payload, using: &rng)] ^= UInt8.random(in: 1...255, using: &rng)
                }
            case 1:  // zero a run
                let at = Int.random(in: payload, using: &rng)
                for i in at..<min(bytes.count, at + 16) { bytes[i] = 0 }
            case 2:  // truncate
                bytes.removeLast(Int.random(in: 1...(bytes.count - BatchLayout.records), using: &rng))
                setBE(&bytes, Int32(bytes.count - BatchLayout.logOverhead), at: BatchLayout.batchLength)
            default:  // random garbage of the same length
                for i in payload where Bool.random(using: &rng) { bytes[i] = UInt8.random(in: 0...255, using: &rng) }
            }
            fixCRC(&bytes)
            if case .failure = decodeAll(bytes) { failures += 1 }
        }
        // Damage is almost always noticed; what matters is that none trapped.
        #expect(failures > 300)
    }

    @Test func undecodableBatchNamesFileAndByte() throws {
        let root = makeTempDirectory()
        defer { try? FileSystem.removeTree(root) }
        let writer = try PartitionWriter(directory: root, settings: .init())
        for _ in 0..<3 {
            let b = try batch(4, codec: .zstd)
            let buffer = GrowableBytes(capacity: b.count)
            b.withUnsafeBytes { buffer.append($0) }
            _ = try writer.append(buffer)
        }
        try writer.sync()
        // Damage the second batch's compressed records and fix its CRC.
        let path = Segment(root, 0).logPath
        var bytes = try FileSystem.readAll(path)
        let second = Int(Int32(bigEndian: bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: 8, as: Int32.self) })) + 12
        var one = Array(bytes[second..<second + (bytes.count / 3)])
        for i in BatchLayout.records + 4..<min(one.count, BatchLayout.records + 40) { one[i] = 0xA5 }
        fixCRC(&one)
        bytes.replaceSubrange(second..<second + one.count, with: one)
        let fd = open(path, O_WRONLY | O_TRUNC)
        #expect(fd >= 0)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)

        let cursor = try PartitionCursor(partition: 0, directory: root, startOffset: 0)
        var delivered = 0
        do {
            while let _ = try cursor.peek() { cursor.advance(); delivered += 1 }
            Issue.record("the damaged batch was read")
        } catch let error as MQError {
            #expect(error.status == .dataError)
            #expect(error.message.contains(path))
            #expect(error.message.contains("at byte \(second)"))
            #expect(error.message.contains("offsets 4-7"))
        }
        #expect(delivered == 4)
    }

    /// A head whose index sizes are far past what its segment's data can
    /// have indexed is not trusted: a writer appending at those sizes made a
    /// 2 GiB index file out of one damaged field (found by the mutation test).
    @Test func headWithImpossibleIndexSizesIsRejected() {
        var state = HeadState.emptySegment(base: 34, createdMs: 1)
        state.endPosition = 226
        state.nextOffset = 39
        state.indexBytes = 8
        state.timeIndexBytes = 12
        #expect(state.encode().withUnsafeBytes { HeadState.decode($0) } == state)
        for (index, time) in [(Int64(1) << 31, Int64(12)), (8, 12 * 1000), (8 * 1000, 12)] {
            var bad = state
            bad.indexBytes = index
            bad.timeIndexBytes = time
            #expect(bad.encode().withUnsafeBytes { HeadState.decode($0) } == nil)
        }
    }
}
