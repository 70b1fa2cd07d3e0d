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

    /// Over many partitions, messages whose partition is known at once (a
    /// key, a forced partition) are held back and added partition by
    /// partition; unkeyed messages (the sticky partition) and records too
    /// large to hold are added after those held. Each partition keeps the
    /// order of the input, and each record its key, value, headers and time.
    @Test func messagesHeldBackReachTheirPartitionsInOrderWithEverything() throws {
        let partitions: Int32 = 300  // at least StagedRecords.minimumPartitions
        let (log, topic) = try makeTopic(partitions)
        defer { try? FileSystem.removeTree(log.root) }
        let a = appender(topic, pool: WriterPool(capacity: 30), batchBytes: 4096, maxPendingBytes: 256 << 10)
        try a.writeInBackground()
        struct Sent: Equatable {
            var key: [UInt8]?
            var value: [UInt8]?
            var headers: [Header]
            var timestamp: Int64
        }
        var sent: [Sent] = []
        var forcedTo: [Int32?] = []
        var rng = SplitMix64(state: 12)
        for i in 0..<6000 {
            let kind = i % 10
            let key: [UInt8]? = kind < 6 ? Array("k\(rng.next() % 500)".utf8) : kind == 6 ? [] : nil
            // Every 500th message is larger than the arena (1 MiB) holds back,
            // every 150th fills a good part of it.
            let size = i % 500 == 499 ? 200_000 : i % 150 == 149 ? 100_000 : Int(rng.next() % 40)
            let value: [UInt8]? = kind == 9 ? nil : Array("m\(i) ".utf8) + Array(repeating: UInt8(97 + i % 26), count: size)
            let headers = i % 3 == 0 ? [Header(name: "n", value: Array("\(i)".utf8))] : []
            // Half of the forced ones go where the next unkeyed one will.
            let forced: Int32? = kind == 8 ? (i % 20 == 8 ? a.sticky : Int32(i % Int(partitions))) : nil
            forcedTo.append(forced)
            let m = Message(key: key, value: value, headers: headers)
            let timestamp = 1_700_000_000_000 + Int64(i)
            try a.add(m, partition: forced, timestamp: timestamp)
            sent.append(Sent(key: key, value: value, headers: headers, timestamp: timestamp))
            if i == 2999 { try a.flushAll() }
        }
        try a.finishAll()
        #expect(a.pendingCount == 0)
        var received = 0
        for p in 0..<partitions {
            let cursor = try PartitionCursor(partition: p, directory: topic.partitionPath(p), startOffset: 0)
            var previous = Int64.min
            while let r = try cursor.peek() {
                let got = Sent(key: r.key.map { Array($0) }, value: r.value.map { Array($0) },
                               headers: try r.headers().map { Header(name: String(decoding: $0.name, as: UTF8.self), value: $0.value.map { Array($0) }) },
                               timestamp: r.timestamp)
                let i = Int(r.timestamp - 1_700_000_000_000)
                try #require(i >= 0 && i < sent.count, "partition \(p): time \(r.timestamp)")
                #expect(got == sent[i], "message \(i) in partition \(p)")
                #expect(r.timestamp > previous, "partition \(p): message \(i) after a later one")
                previous = r.timestamp
                if let key = sent[i].key, i % 10 != 8 {
                    let expected = key.withUnsafeBytes { Partitioner.partition(forKey: $0, partitions: partitions) }
                    #expect(p == expected, "message \(i): keyed to \(expected)")
                }
                if let forced = forcedTo[i] { #expect(p == forced, "message \(i): forced to \(forced)") }
                received += 1
                cursor.advance()
            }
        }
        #expect(received == sent.count)
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
