import Testing
import Glibc
@testable import MQLog

@Suite struct TopicAppenderTests {
    /// Topic `t` of `partitions` partitions in a fresh log directory.
    private func makeTopic(_ partitions: Int32) throws -> (LogDirectory, Topic) {
        let log = LogDirectory(root: makeTempDirectory())
        try log.createTopic("t", config: TopicConfig(partitions: partitions))
        return (log, try log.openTopic("t"))
    }

    private func appender(_ topic: Topic, pool: WriterPool = WriterPool(capacity: 16), batchBytes: Int = 1024,
                          maxPendingBytes: Int = 4096) -> TopicAppender {
        TopicAppender(topic: topic, pool: pool, sync: .exit, codec: .none, batchMessages: 1000, batchBytes: batchBytes,
                      maxPendingBytes: maxPendingBytes, settings: .init())
    }

    private func add(_ a: TopicAppender, _ value: String, partition: Int32) throws {
        try a.add(Message(key: nil, value: Array(value.utf8), headers: []), partition: partition, timestamp: 1_700_000_000_000)
    }

    @Test func writingInTheBackgroundKeepsEachPartitionsOrderAndLosesNothing() throws {
        let (log, topic) = try makeTopic(4)
        defer { try? FileSystem.removeTree(log.root) }
        let a = appender(topic, maxPendingBytes: 1 << 20)
        try a.writeInBackground()
        // Batches of 1 KiB fill and are handed over one by one, and all
        // pending ones every 700 messages: many rounds, builders reused.
        for i in 0..<3000 {
            try add(a, "message \(i)", partition: Int32(i % 4))
            if i % 700 == 699 { try a.flushAll() }
        }
        try a.flushAll()
        try a.syncAll()
        for p in 0..<4 {
            let dir = topic.partitionPath(Int32(p))
            let values = try readValues(dir).map(\.1)
            let expected = stride(from: p, to: 3000, by: 4).map { "message \($0)" }
            let missing = Set(expected).subtracting(values)
            let same = values == expected
            #expect(same, "partition \(p): \(values.count) of \(expected.count) messages, missing \(missing.sorted().prefix(5))")
            // A batch handed over takes no message added after it was.
            let reader = PartitionReader(directory: dir)
            while let (_, bytes) = try reader.nextBatch() { #expect(bytes.count <= 1024 + BatchLayout.headerSize) }
            let w = try PartitionWriter(directory: dir, settings: .init())
            _ = try w.currentEndOffset()
            #expect(w.state.flushedPosition == w.state.endPosition, "partition \(p) is durable after syncAll")
        }
    }

    /// At the end of input the last round is written by both threads, a
    /// chunk of the pool's capacity at a time, and after the file system's
    /// sync both record in head what it made durable, for writers still
    /// open and writers the pool closed.
    @Test func finishingWritesTheLastRoundOnBothThreadsAndRecordsItDurable() throws {
        let partitions = 40  // at least FileSystemSync.threshold: one syncfs
        let (log, topic) = try makeTopic(Int32(partitions))
        defer { try? FileSystem.removeTree(log.root) }
        let a = appender(topic, pool: WriterPool(capacity: 7), batchBytes: 1 << 20, maxPendingBytes: 1 << 20)
        try a.writeInBackground()
        for i in 0..<2000 {
            try add(a, "message \(i)", partition: Int32(i % partitions))
            if i == 999 { try a.flushAll() }  // one round in the background first
        }
        try a.finishAll()
        #expect(a.pendingCount == 0)
        for p in 0..<partitions {
            let dir = topic.partitionPath(Int32(p))
            let expected = stride(from: p, to: 2000, by: partitions).map { "message \($0)" }
            #expect(try readValues(dir).map(\.1) == expected, "partition \(p)")
            let w = try PartitionWriter(directory: dir, settings: .init())
            _ = try w.currentEndOffset()
            #expect(w.state.flushedPosition == w.state.endPosition, "partition \(p) is recorded durable")
        }
    }

    @Test func aFailedBackgroundWriteIsThrownAndNothingHandedOverAfterItIsWritten() throws {
        let (log, topic) = try makeTopic(2)
        defer { try? FileSystem.removeTree(log.root) }
        // One open writer: partition 0's is closed when partition 1 is written.
        let a = appender(topic, pool: WriterPool(capacity: 1), batchBytes: 1 << 20, maxPendingBytes: 1 << 20)
        try a.writeInBackground()
        try add(a, "first 0", partition: 0)
        try add(a, "first 1", partition: 1)
        try a.flushAll()
        try a.waitForWrites()
        // Partition 0 cannot be opened again: the next round fails on it.
        try FileSystem.removeTree(topic.partitionPath(0))
        try add(a, "second 0", partition: 0)
        try a.flushAll()   // handed over; the failure comes later
        #expect(throws: MQError.self) { try a.waitForWrites() }
        try add(a, "third 1", partition: 1)
        #expect(throws: MQError.self) { try a.flushAll() }
        #expect(throws: MQError.self) { try a.syncAll() }
        // Nothing handed over after the failed round was written.
        #expect(try readValues(topic.partitionPath(1)).map(\.1) == ["first 1"])
    }

    @Test func withoutBackgroundWritingAFlushHasWrittenWhenItReturns() throws {
        let (log, topic) = try makeTopic(2)
        defer { try? FileSystem.removeTree(log.root) }
        let a = appender(topic)
        a.placed = { _ in }
        try a.writeInBackground()  // refused: offsets are reported per flush
        try add(a, "one", partition: 1)
        try a.flushAll()
        #expect(try readValues(topic.partitionPath(1)).map(\.1) == ["one"])
    }
}
