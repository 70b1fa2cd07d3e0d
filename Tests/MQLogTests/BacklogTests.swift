import Glibc
import Testing
@testable import MQLog

/// The backlog bound's arithmetic (`PartitionExtent`, `BacklogBound`), its
/// configs, and `BacklogMeter` over a real log with group state.
@Suite struct BacklogTests {
    typealias S = PartitionExtent.SegmentExtent

    @Test func countsFromThePositionToTheEndAcrossSegments() {
        let extent = PartitionExtent(segments: [S(base: 0, size: 1000), S(base: 100, size: 500), S(base: 150, size: 300)], end: 180)
        var asked: [(Int64, Int64)] = []
        func at(_ position: Int64) -> (Int64, Int64) -> Int64 { { base, offset in asked.append((base, offset)); return position } }
        // From the log start: every segment whole, no index lookup.
        #expect(extent.backlog(from: nil, position: at(999)) == Backlog(messages: 180, bytes: 1800))
        #expect(asked.isEmpty)
        // Inside the second segment: the rest of it from the position, and the third.
        #expect(extent.backlog(from: 120, position: at(200)) == Backlog(messages: 60, bytes: 300 + 300))
        #expect(asked.count == 1 && asked[0] == (100, 120))
        // At a segment's base: the whole segment.
        #expect(extent.backlog(from: 150, position: at(77)) == Backlog(messages: 30, bytes: 300))
        // Caught up, or reset past the end: nothing, and no lookup.
        asked = []
        #expect(extent.backlog(from: 180, position: at(0)) == .zero)
        #expect(extent.backlog(from: 5000, position: at(0)) == .zero)
        #expect(asked.isEmpty)
    }

    @Test func positionsBelowTheStartOrOutsideTheSegmentAreClamped() {
        // Retention removed offsets below 50: an older commit counts from 50.
        let extent = PartitionExtent(segments: [S(base: 50, size: 400), S(base: 90, size: 100)], end: 100)
        #expect(extent.backlog(from: 3, position: { _, _ in 0 }) == Backlog(messages: 50, bytes: 500))
        // A damaged index may answer anything: never more than the segment, never less than none of it.
        #expect(extent.backlog(from: 60, position: { _, _ in 1 << 40 }) == Backlog(messages: 40, bytes: 100))
        #expect(extent.backlog(from: 60, position: { _, _ in -7 }) == Backlog(messages: 40, bytes: 500))
        // Sizes from disk near the limit saturate instead of trapping.
        let huge = PartitionExtent(segments: [S(base: 0, size: .max), S(base: 1, size: .max)], end: 2)
        #expect(huge.backlog(from: nil, position: { _, _ in 0 }).bytes == .max)
        #expect(PartitionExtent(segments: [], end: 0).backlog(from: nil, position: { _, _ in 0 }) == .zero)
    }

    @Test func boundAdmitsUpToItsMaximums() {
        let messages = BacklogBound(maxMessages: 10, maxBytes: nil)
        #expect(messages.admits(messages: 9, bytes: 1 << 40, size: 1 << 20))
        #expect(!messages.admits(messages: 10, bytes: 0, size: 1))
        let bytes = BacklogBound(maxMessages: nil, maxBytes: 100)
        #expect(bytes.admits(messages: 3, bytes: 50, size: 50))
        #expect(!bytes.admits(messages: 3, bytes: 50, size: 51))
        // An empty backlog takes any one message, however large.
        #expect(bytes.admits(messages: 0, bytes: 0, size: 1000))
        #expect(BacklogBound(maxMessages: 4, maxBytes: 100).used(messages: 2, bytes: 80) == 0.8)
        #expect(bytes.reachedLimit(messages: 3) == "mq.max.backlog.bytes (100)")
        #expect(BacklogBound(maxMessages: 10, maxBytes: 100).reachedLimit(messages: 10) == "mq.max.backlog.messages (10)")
    }

    @Test func configsSetTheBoundAndBadValuesAreRefused() throws {
        #expect(TopicConfig(partitions: 1).backlogBound == nil)
        let text = "partitions=2\nmq.max.backlog.messages=1000\nmq.backlog.policy=reject\nmq.backlog.group=billing\n"
        let config = try TopicConfig.parse(text, path: "topic.properties")
        #expect(config.backlogBound == BacklogBound(maxMessages: 1000, maxBytes: nil, group: "billing", policy: .reject))
        let bytesOnly = try TopicConfig.parse("partitions=1\nmq.max.backlog.bytes=4096\n", path: "p")
        #expect(bytesOnly.backlogBound == BacklogBound(maxMessages: nil, maxBytes: 4096, group: nil, policy: .block))
        for bad in ["mq.max.backlog.messages=0", "mq.max.backlog.messages=-2", "mq.max.backlog.bytes=lots",
                    "mq.backlog.policy=wait", "mq.backlog.group=a/b", "mq.backlog.group=.."] {
            #expect(throws: MQError.self) { try TopicConfig.parseAssignment(bad) }
        }
        for good in ["mq.max.backlog.messages=-1", "mq.max.backlog.bytes=1", "mq.backlog.policy=none", "mq.backlog.group="] {
            _ = try TopicConfig.parseAssignment(good)
        }
    }

    /// Topic `t`: partition 0 holds 300 messages in batches of 5 over
    /// segments of about 1 KiB, each batch indexed; partition 1 holds 20.
    func makeLog() throws -> LogDirectory {
        let log = LogDirectory(root: makeTempDirectory())
        try log.createTopic("t", config: TopicConfig(partitions: 2))
        let p0 = try PartitionWriter(directory: log.topicPath("t") + "/0", settings: .init(segmentBytes: 1024, indexIntervalBytes: 0))
        try appendMessages(p0, from: 0, count: 300, perBatch: 5)
        let p1 = try PartitionWriter(directory: log.topicPath("t") + "/1", settings: .init(indexIntervalBytes: 0))
        try appendMessages(p1, from: 0, count: 20, perBatch: 5)
        return log
    }

    func commit(_ log: LogDirectory, _ group: String, _ partition: Int32, _ offset: Int64) throws {
        let lease = try #require(try PartitionLease.tryAcquire(try GroupDirectory(log: log, group: group), topic: "t", partition: partition))
        try lease.commit(offset)
    }

    /// Bytes of partition `p`'s segments from the batch holding `offset`, read batch by batch.
    func exactBytes(_ log: LogDirectory, _ p: Int32, from offset: Int64) throws -> Int64 {
        let dir = log.topicPath("t") + "/\(p)"
        var total: Int64 = 0
        for segment in try LogSegments.segments(in: dir) {
            let bytes = try FileSystem.readAll(segment.logPath)
            var at = 0
            while at + BatchLayout.headerSize <= bytes.count {
                let header = bytes.withUnsafeBytes { BatchHeader($0.baseAddress! + at) }
                if header.lastOffset >= offset { total += Int64(header.totalSize) }
                at += header.totalSize
            }
        }
        return total
    }

    @Test func meterCountsTheSlowestGroupOrTheNamedOneOrTheWholeLog() throws {
        let log = try makeLog()
        defer { try? FileSystem.removeTree(log.root) }
        let whole = try exactBytes(log, 0, from: 0) + exactBytes(log, 1, from: 0)
        // No group reads the topic: the whole log is backlog.
        #expect(try BacklogMeter(log: log, topic: "t", partitions: 2).measure()
                == BacklogMeter.Reading(messages: 320, messagesGroup: nil, bytes: whole, bytesGroup: nil))
        try commit(log, "fast", 0, 290)
        try commit(log, "fast", 1, 20)
        try commit(log, "slow", 0, 100)  // nothing committed in partition 1: from its start
        let slowest = try BacklogMeter(log: log, topic: "t", partitions: 2).measure()
        let slowBytes = try exactBytes(log, 0, from: 100) + exactBytes(log, 1, from: 0)
        #expect(slowest == BacklogMeter.Reading(messages: 200 + 20, messagesGroup: "slow", bytes: slowBytes, bytesGroup: "slow"))
        let fast = try BacklogMeter(log: log, topic: "t", partitions: 2, group: "fast").measure()
        #expect(fast == BacklogMeter.Reading(messages: 10, messagesGroup: "fast", bytes: try exactBytes(log, 0, from: 290), bytesGroup: "fast"))
        // A named group that has read nothing yet has the whole log to read.
        #expect(try BacklogMeter(log: log, topic: "t", partitions: 2, group: "later").measure().messages == 320)
        // A work queue counts from its done-below mark.
        let queue = try QueuePartition(directory: log.root + "/groups/q/queue/t/0")
        try queue.update(durable: true) { s in s.low = 42; s.next = 50 }
        let withQueue = try BacklogMeter(log: log, topic: "t", partitions: 2).measure()
        #expect(withQueue.messages == 258 + 20 && withQueue.messagesGroup == "q")
        #expect(withQueue.bytes == (try exactBytes(log, 0, from: 42) + exactBytes(log, 1, from: 0)))
    }

    @Test func meterBytesAreExactFromASparseIndexAndNeverFewerFromADamagedOne() throws {
        let log = LogDirectory(root: makeTempDirectory())
        defer { try? FileSystem.removeTree(log.root) }
        try log.createTopic("t", config: TopicConfig(partitions: 1))
        let writer = try PartitionWriter(directory: log.topicPath("t") + "/0", settings: .init(indexIntervalBytes: 1024))
        try appendMessages(writer, from: 0, count: 2000, perBatch: 3)
        let offsets: [Int64] = [1, 2, 3, 500, 1001, 1999]
        for offset in offsets {
            try commit(log, "g", 0, offset)
            let reading = try BacklogMeter(log: log, topic: "t", partitions: 1).measure()
            #expect(reading.messages == 2000 - offset)
            #expect(reading.bytes == (try exactBytes(log, 0, from: offset)), "offset \(offset)")
        }
        // A damaged index: increasing entries that name no batch, or the wrong one.
        let segment = Segment(log.topicPath("t") + "/0", 0)
        let index = try OpenFile.open(segment.indexPath, O_RDWR)
        defer { index.close() }
        let count = Int(try index.size()) / OffsetIndex.entrySize
        let logSize = UInt32(try #require(FileSystem.size(segment.logPath)))
        var rng = SplitMix64(state: 14)
        for round in 0..<40 {
            let relatives = (0..<count).map { _ in UInt32.random(in: 0..<2000, using: &rng) }.sorted()
            let positions = (0..<count).map { _ in UInt32.random(in: 0..<logSize, using: &rng) }.sorted()
            var junk = [UInt8](repeating: 0, count: count * OffsetIndex.entrySize)
            junk.withUnsafeMutableBytes { raw in
                for i in 0..<count {
                    OffsetIndex.encode(.init(relativeOffset: relatives[i], position: positions[i]), into: raw.baseAddress! + i * OffsetIndex.entrySize)
                }
            }
            try junk.withUnsafeBytes { try index.write($0, at: 0) }
            let offset = offsets[round % offsets.count]
            try commit(log, "g", 0, offset)
            let reading = try BacklogMeter(log: log, topic: "t", partitions: 1).measure()
            #expect(reading.bytes >= (try exactBytes(log, 0, from: offset)), "round \(round)")
        }
    }
}
