import Testing
@testable import MQLog

@Suite struct RecordBatchTests {
    struct Sample: Equatable {
        var key: [UInt8]?
        var value: [UInt8]?
        var headers: [Header]
        var timestamp: Int64
    }

    static func samples() -> [Sample] {
        var rng = SystemRandomNumberGenerator()
        return [
            Sample(key: nil, value: nil, headers: [], timestamp: 1_000),
            Sample(key: [], value: [], headers: [Header(name: "h", value: nil)], timestamp: 999),
            Sample(key: Array("k".utf8), value: Array(0...255), headers: [Header(name: "a", value: [1]), Header(name: "a", value: [2])], timestamp: 5_000),
            Sample(key: nil, value: Array("héllo wörld ✓".utf8), headers: [], timestamp: -1),
            Sample(key: (0..<300).map { _ in UInt8.random(in: 0...255, using: &rng) }, value: [UInt8](repeating: 7, count: 100_000), headers: [], timestamp: 1_700_000_000_000),
        ]
    }

    func build(_ samples: [Sample], codec: CompressionCodec) throws -> [UInt8] {
        let builder = RecordBatchBuilder(codec: codec)
        for s in samples {
            let h = RecordBatchBuilder.encodeHeaders(s.headers)
            try withOptionalBytes(s.key) { k in try withOptionalBytes(s.value) { v in
                h.withUnsafeBytes { builder.append(timestamp: s.timestamp, key: k, value: v, headers: $0) }
            } }
        }
        return Array(try builder.finish())
    }

    func decode(_ bytes: [UInt8]) throws -> (BatchHeader, [Sample]) {
        try bytes.withUnsafeBytes { raw in
            let header = try validateBatch(raw).get()
            var out: [Sample] = []
            let decoder = BatchDecoder()
            defer { withExtendedLifetime(decoder) {} }  // records point into its buffer
            defer { withExtendedLifetime(decoder) {} }
            var it = RecordIterator(records: try decoder.records(of: raw, header: header), header: header)
            while let r = try it.next() {
                let headers = try r.headers().map { Header(name: String(decoding: $0.name, as: UTF8.self), value: $0.value.map(Array.init)) }
                out.append(Sample(key: r.key.map(Array.init), value: r.value.map(Array.init), headers: headers, timestamp: r.timestamp))
                #expect(r.offset == Int64(out.count - 1))
            }
            return (header, out)
        }
    }

    @Test(arguments: CompressionCodec.allCases)
    func roundTripEveryCodec(codec: CompressionCodec) throws {
        let samples = Self.samples()
        let (header, decoded) = try decode(try build(samples, codec: codec))
        #expect(decoded == samples)
        #expect(header.compression == codec)
        #expect(header.recordsCount == Int32(samples.count))
        #expect(header.lastOffsetDelta == Int32(samples.count - 1))
        #expect(header.baseTimestamp == 1_000)
        #expect(header.maxTimestamp == 1_700_000_000_000)
        #expect(header.producerId == -1 && header.producerEpoch == -1 && header.baseSequence == -1)
    }

    @Test func headerFieldsSitWhereKafkaPutsThem() throws {
        let bytes = try build([Sample(key: nil, value: [42], headers: [], timestamp: 7)], codec: .none)
        #expect(bytes.count == 61 + 8)  // header + one 8-byte record
        #expect(bytes[16] == 2)  // magic
        // batchLength counts everything after itself.
        #expect(Int(bytes[8]) << 24 | Int(bytes[9]) << 16 | Int(bytes[10]) << 8 | Int(bytes[11]) == bytes.count - 12)
        // The record: length 7, attributes 0, ts delta 0, offset delta 0, key -1 (zig-zag 1), value length 1 (2), 42, 0 headers.
        #expect(Array(bytes[61...]) == [14, 0, 0, 0, 1, 2, 42, 0])
    }

    @Test func baseOffsetIsOutsideTheCRC() throws {
        var bytes = try build([Sample(key: nil, value: [1, 2, 3], headers: [], timestamp: 7)], codec: .none)
        for i in 0..<8 { bytes[i] = 0x55 }
        #expect(throws: Never.self) { try bytes.withUnsafeBytes { try validateBatch($0).get() } }
        bytes[40] ^= 1  // inside the CRC range
        bytes.withUnsafeBytes { raw in
            guard case .failure(.badCRC) = validateBatch(raw) else { Issue.record("expected a CRC failure"); return }
        }
    }

    @Test func truncatedBatchIsIncomplete() throws {
        let bytes = try build(Self.samples(), codec: .lz4)
        for cut in [0, 10, 60, 61, bytes.count - 1] {
            Array(bytes[0..<cut]).withUnsafeBytes { raw in
                #expect(validateBatch(raw) == .failure(.incomplete), "cut at \(cut)")
            }
        }
    }

    @Test func malformedRecordsThrowInsteadOfCrashing() throws {
        var bytes = try build([Sample(key: Array("key".utf8), value: Array("value".utf8), headers: [], timestamp: 1)], codec: .none)
        bytes[61] = 0x7F  // record length far past the end
        let crc = CRC32C.checksum(Array(bytes[21...]))
        bytes[17] = UInt8(crc >> 24); bytes[18] = UInt8(crc >> 16 & 0xFF); bytes[19] = UInt8(crc >> 8 & 0xFF); bytes[20] = UInt8(crc & 0xFF)
        #expect(throws: BatchProblem.self) { _ = try decode(bytes) }
    }
}

@Suite struct HeadStateTests {
    @Test func roundTripAndRejectsDamage() {
        var s = HeadState.emptySegment(base: 42, createdMs: 123)
        s.endPosition = 4096; s.nextOffset = 99; s.indexBytes = 16; s.timeIndexBytes = 24
        var bytes = s.encode()
        #expect(bytes.count == 128)
        #expect(bytes.withUnsafeBytes { HeadState.decode($0) } == s)
        bytes[40] ^= 1
        #expect(bytes.withUnsafeBytes { HeadState.decode($0) } == nil)
        #expect([UInt8](repeating: 0, count: 128).withUnsafeBytes { HeadState.decode($0) } == nil)
    }
}

@Suite struct TopicTests {
    @Test(arguments: ["a", "orders", "a.b_c-D9", String(repeating: "x", count: 249), ".hidden"])
    func legalNames(name: String) throws { try LogDirectory.validateTopicName(name) }

    @Test(arguments: ["", ".", "..", "../x", "a/b", "a b", "ü", String(repeating: "x", count: 250), "a\0b", "~x"])
    func illegalNames(name: String) {
        #expect(throws: MQError.self) { try LogDirectory.validateTopicName(name) }
        do { try LogDirectory.validateTopicName(name) } catch let e as MQError { #expect(e.status == .usage) } catch {}
    }

    @Test func configRoundTripAndValidation() throws {
        var c = TopicConfig(partitions: 3, overrides: ["retention.ms": "1000", "cleanup.policy": "compact"])
        let parsed = try TopicConfig.parse(c.serialize(), path: "t")
        #expect(parsed == c)
        #expect(parsed.long("retention.ms") == 1000 && parsed.segmentBytes == 1 << 30 && parsed.maxMessageBytes == 1_048_588)
        #expect(throws: MQError.self) { try TopicConfig.validate(name: "retention.ms", value: "x") }
        #expect(throws: MQError.self) { try TopicConfig.validate(name: "no.such", value: "1") }
        #expect(throws: MQError.self) { try TopicConfig.parse("retention.ms=1\n", path: "t") }  // no partitions
        c.overrides["compression.type"] = "lz4"
        #expect(c.defaultCodec == .lz4)
    }

    @Test func createIsAtomicAndIdempotentAndDeleteRespectsUsers() throws {
        let root = makeTempDirectory()
        defer { try? FileSystem.removeTree(root) }
        let log = LogDirectory(root: root)
        #expect(try log.createTopic("t", config: TopicConfig(partitions: 2)))
        #expect(try !log.createTopic("t", config: TopicConfig(partitions: 5)))
        #expect(try log.readConfig("t").partitions == 2)
        #expect(try log.listTopics() == ["t"])
        var topic: Topic? = try log.openTopic("t")
        #expect(throws: MQError.self) { try log.deleteTopic("t", force: false) }
        _ = topic
        topic = nil
        try log.deleteTopic("t", force: false)
        #expect(try log.listTopics() == [])
        #expect(throws: MQError.self) { try log.deleteTopic("t", force: true) }
    }
}
