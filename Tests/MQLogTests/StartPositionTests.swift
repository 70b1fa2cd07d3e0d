import Testing
@testable import MQLog

/// mq-tail's `-n` and kcat's `-o`, and where each position starts in a partition.
@Suite struct StartPositionTests {
    @Test func linesCountAsTailDoes() throws {
        #expect(try StartPosition.parseLines("10") == .last(10))
        #expect(try StartPosition.parseLines("0") == .last(0))
        #expect(try StartPosition.parseLines("+1") == .nth(1))
        #expect(try StartPosition.parseLines("+0") == .nth(0))
        #expect(try StartPosition.parseLines("+25") == .nth(25))
        for bad in ["", "+", "++1", "+-1", "-1", "x", "+1x", "1.5"] {
            #expect(throws: MQError.self, "\(bad)") { try StartPosition.parseLines(bad) }
        }
    }

    @Test func kcatOffsets() throws {
        #expect(try StartPosition.parseKcatOffset("beginning") == .beginning)
        #expect(try StartPosition.parseKcatOffset("end") == .end)
        #expect(try StartPosition.parseKcatOffset("42") == .offset(42))
        #expect(try StartPosition.parseKcatOffset("-3") == .lastOfEach(3))
        #expect(try StartPosition.parseKcatOffset("s@1700000000000") == .time(1_700_000_000_000))
        for bad in ["stored", "e@5", "s@", "s@-1", "-", "+3", "-x", "1.5", "earliest", ""] {
            #expect(throws: MQError.self, "\(bad)") { try StartPosition.parseKcatOffset(bad) }
        }
    }

    @Test func nthCountsFromTheFirstKeptOffset() throws {
        let dir = makeTempDirectory()
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 1024))
        try appendMessages(writer, from: 0, count: 10, perBatch: 3)
        let reader = PartitionReader(directory: dir)
        #expect(try StartPosition.nth(0).offset(in: reader) == 0)
        #expect(try StartPosition.nth(1).offset(in: reader) == 0)
        #expect(try StartPosition.nth(4).offset(in: reader) == 3)
        #expect(try StartPosition.nth(Int64.max).offset(in: reader) == Int64.max - 1)  // past the end, no overflow
        #expect(try StartPosition.lastOfEach(2).offset(in: reader) == 8)
        #expect(try StartPosition.lastOfEach(20).offset(in: reader) == 0)
    }
}
