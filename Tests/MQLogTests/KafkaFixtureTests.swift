import Foundation
import Testing
@testable import MQLog

/// Segments written by a real Kafka broker (see Fixtures/kafka-go/README.md)
/// and by an independent writer: our reader must decode them exactly.
@Suite struct KafkaFixtureTests {
    static let keys = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]

    func fixtureDirectory(_ path: String) throws -> String {
        let url = try #require(Bundle.module.url(forResource: "Fixtures", withExtension: nil))
        return url.path + "/" + path
    }

    func readAll(_ dir: String) throws -> [(offset: Int64, key: String?, value: String?)] {
        let cursor = try PartitionCursor(partition: 0, directory: dir, startOffset: 0)
        var out: [(Int64, String?, String?)] = []
        while let r = try cursor.peek() {
            out.append((r.offset, r.key.map { String(decoding: $0, as: UTF8.self) }, r.value.map { String(decoding: $0, as: UTF8.self) }))
            cursor.advance()
        }
        return out
    }

    @Test(arguments: [("kafka-go/v2-v2/test-lucid-0", 4), ("kafka-go/v2c-v2c/test-oneiric-0", 4), ("kafka-go/v2c-v2-v2c/test-natty-0", 6)])
    func brokerWrittenSegments(path: String, count: Int) throws {
        let records = try readAll(try fixtureDirectory(path))
        #expect(records.count == count)
        for (i, r) in records.enumerated() {
            #expect(r.offset == Int64(i))
            #expect(r.key == Self.keys[i])
            let letter = String(Array("abcdef")[i])
            #expect(r.value == "{\"count\":0,\"filler\":\"\(String(repeating: letter, count: 10))\"}")
        }
    }

    @Test func oldMessageFormatIsReportedNotCrashed() throws {
        let dir = try fixtureDirectory("kafka-go/v1-v1c-v2-v2c-v2b-v2b-v2b-v2bc-v1b-v1bc/test-88-0")
        do {
            _ = try readAll(dir)
            Issue.record("expected an error for magic 0/1 message sets")
        } catch let e as MQError {
            #expect(e.status == .dataError)
            #expect(e.message.contains("magic"))
        }
    }

    @Test func independentNonKafkaWriter() throws {
        let dir = try fixtureDirectory("not-kafka-written/__cluster_metadata-0")
        let cursor = try PartitionCursor(partition: 0, directory: dir, startOffset: 0)
        var count = 0
        while try cursor.peek() != nil { count += 1; cursor.advance() }
        #expect(count == 4)
    }
}
