import Foundation
import Glibc
import Testing
@testable import MQLog

@Suite struct CopyJournalTests {
    // MARK: Offset ranges and state

    @Test func rangesMergeSplitAndAnswer() {
        var r = OffsetRanges()
        r.insert(10...19)
        r.insert(30...39)
        #expect(r.ranges == [10...19, 30...39])
        r.insert(20)                        // touches the first: merges
        #expect(r.ranges == [10...20, 30...39])
        r.insert(25...26)                   // in the gap: a range of its own
        #expect(r.ranges == [10...20, 25...26, 30...39])
        r.insert(21...29)                   // bridges three
        #expect(r.ranges == [10...39])
        r.insert(0...2)
        r.insert(50...50)
        r.insert(5...60)                    // swallows two
        #expect(r.ranges == [0...2, 5...60])
        #expect(r.contains(0) && r.contains(60) && !r.contains(3) && !r.contains(61))
        #expect(r.firstMissing(atOrAfter: 0) == 3)
        #expect(r.firstMissing(atOrAfter: 4) == 4)
        #expect(r.firstMissing(atOrAfter: 5) == 61)
        #expect(r.gaps(in: 0...70) == [3...4, 61...70])
        #expect(r.gaps(in: 6...8) == [])
        #expect(r.count(in: 0...9) == 8)
        #expect(r.count == 59)
        #expect(OffsetRanges([5...6, 1...2, 3...4]).ranges == [1...6])
    }

    @Test func rangesAgreeWithASetOnRandomInserts() {
        var rng = SplitMix64(state: 42)
        var r = OffsetRanges()
        var set = Set<Int64>()
        for _ in 0..<500 {
            let lo = Int64.random(in: 0..<400, using: &rng)
            let hi = lo + Int64.random(in: 0..<6, using: &rng)
            r.insert(lo...hi)
            for o in lo...hi { set.insert(o) }
        }
        for o in Int64(0)..<410 { #expect(r.contains(o) == set.contains(o)) }
        for (a, b) in zip(r.ranges, r.ranges.dropFirst()) { #expect(a.upperBound + 1 < b.lowerBound) }
        #expect(r.count == Int64(set.count))
    }

    @Test func stateRoundTripsAndDamageIsRejected() {
        var s = CopyState()
        s.metadata = ["ranges": "orders/0:0-9", "": "empty key"]
        s.settled[TopicPartition("a", 0)] = OffsetRanges([0...9, 20...20])
        s.settled[TopicPartition("b", 3)] = OffsetRanges()
        s.pending[TopicPartition("c", 1)] = 77
        var bytes = s.encode()
        #expect(CopyState.decode(bytes) == s)
        bytes[bytes.count - 3] ^= 1
        #expect(CopyState.decode(bytes) == nil)
        #expect(CopyState.decode(Array(s.encode().dropLast())) == nil)
    }

    @Test func producerIdentityIsStableAndCarriesTheOffset() {
        let a = CopyJournal.producerID(copy: "dlq.orders.dlq", source: TopicPartition("orders.dlq", 0))
        #expect(a > 0)
        #expect(a == CopyJournal.producerID(copy: "dlq.orders.dlq", source: TopicPartition("orders.dlq", 0)))
        #expect(a != CopyJournal.producerID(copy: "dlq.orders.dlq", source: TopicPartition("orders.dlq", 1)))
        #expect(a != CopyJournal.producerID(copy: "replay.1", source: TopicPartition("orders.dlq", 0)))
        for o: Int64 in [0, 1, 0x7fff_ffff, 1 << 31, (1 << 31) + 5, (1 << 46) - 1] {
            #expect(CopyJournal.sourceOffset(epoch: Int16(truncatingIfNeeded: o >> 31), sequence: Int32(truncatingIfNeeded: o & 0x7fff_ffff)) == o)
        }
    }

    @Test func destinationPartitionRule() {
        #expect(CopyJournal.destinationPartition(key: Array("k".utf8), sourcePartition: 2, sourcePartitions: 4, destinationPartitions: 4) == 2)
        let key = Array("order-17".utf8)
        let byKey = key.withUnsafeBytes { Partitioner.partition(forKey: $0, partitions: 3) }
        #expect(CopyJournal.destinationPartition(key: key, sourcePartition: 0, sourcePartitions: 1, destinationPartitions: 3) == byKey)
        #expect(CopyJournal.destinationPartition(key: nil, sourcePartition: 5, sourcePartitions: 8, destinationPartitions: 3) == 2)
    }

    // MARK: Copying

    /// A log with a source topic of `count` records (value "v<offset>", key
    /// "k<offset % 5>") and an empty destination topic.
    static func makeLog(count: Int, destinationPartitions: Int32 = 2, codec: String? = nil) throws -> LogDirectory {
        let log = LogDirectory(root: makeTempDirectory())
        try log.createTopic("src", config: TopicConfig(partitions: 1))
        var dest = TopicConfig(partitions: destinationPartitions)
        if let codec { dest.overrides["compression.type"] = codec }
        try log.createTopic("dst", config: dest)
        let writer = try PartitionWriter(directory: log.topicPath("src") + "/0", settings: .init())
        let builder = RecordBatchBuilder(codec: .none)
        let headers = RecordBatchBuilder.encodeHeaders([Header(name: "h", value: Array("x".utf8))])
        var i = 0
        while i < count {
            builder.reset()
            for j in i..<min(i + 7, count) {
                Array("v\(j)".utf8).withUnsafeBytes { v in Array("k\(j % 5)".utf8).withUnsafeBytes { k in headers.withUnsafeBytes { h in
                    builder.append(timestamp: 1_700_000_000_000 + Int64(j), key: k, value: v, headers: h)
                } } }
            }
            _ = try builder.finish()
            try writer.append(builder.output)
            i += 7
        }
        return log
    }

    /// Copies every source record whose offset passes `include`, keyed records by key.
    static func copy(_ log: LogDirectory, id: String = "test.copy", chunk: Int = 1000, include: (Int64) -> Bool = { _ in true },
                     crash: CopyWriter.CrashPoint? = nil) throws -> (copied: Int, skipped: Int) {
        let journal = try CopyJournal.open(log, id: id, wait: false)
        defer { journal.close() }
        let writer = CopyWriter(journal: journal, log: log)
        writer.maxChunkRecords = chunk
        writer.crash = crash
        let dest = try writer.topic("dst")
        let cursor = try PartitionCursor(partition: 0, directory: log.topicPath("src") + "/0", startOffset: 0)
        while let r = try cursor.peek() {
            if include(r.offset) {
                let key = r.key.map(Array.init)
                let record = CopyRecord(topic: "src", partition: 0, offset: r.offset, timestamp: r.timestamp, key: key,
                                        value: r.value.map(Array.init), headers: [Header(name: "from", value: Array("\(r.offset)".utf8))])
                let p = CopyJournal.destinationPartition(key: key, sourcePartition: 0, sourcePartitions: 1, destinationPartitions: dest.partitions)
                try writer.add(record, to: TopicPartition("dst", p))
            }
            cursor.advance()
        }
        try writer.flush()
        return (writer.copied, writer.skipped)
    }

    /// Source offsets found in the destination (from the "from" header), with repeats.
    static func copiedOffsets(_ log: LogDirectory) throws -> [Int64] {
        var out: [Int64] = []
        let config = try log.readConfig("dst")
        for p in 0..<config.partitions {
            let cursor = try PartitionCursor(partition: p, directory: log.topicPath("dst") + "/\(p)", startOffset: 0)
            while let r = try cursor.peek() {
                let from = try r.headers().first { String(decoding: $0.name, as: UTF8.self) == "from" }!
                let offset = Int64(String(decoding: from.value!, as: UTF8.self))!
                #expect(String(decoding: r.value!, as: UTF8.self) == "v\(offset)")
                #expect(r.timestamp == 1_700_000_000_000 + offset)
                out.append(offset)
                cursor.advance()
            }
        }
        return out.sorted()
    }

    @Test func copyingTwiceCopiesOnce() throws {
        let log = try Self.makeLog(count: 100)
        defer { try? FileSystem.removeTree(log.root) }
        let first = try Self.copy(log, chunk: 30)
        #expect(first.copied == 100 && first.skipped == 0)
        let second = try Self.copy(log, chunk: 30)
        #expect(second.copied == 0 && second.skipped == 100)
        #expect(try Self.copiedOffsets(log) == Array(0..<100))
        #expect(try CopyJournal.firstUnsettled(log, id: "test.copy", topic: "src", partition: 0) == 100)
        #expect(try CopyJournal.snapshot(log, id: "test.copy")?.pending.isEmpty == true)
    }

    @Test func gapsStartNewBatchesAndLaterRunsFillThem() throws {
        let log = try Self.makeLog(count: 60, destinationPartitions: 1)
        defer { try? FileSystem.removeTree(log.root) }
        _ = try Self.copy(log, include: { $0 % 10 < 6 })
        #expect(try Self.copiedOffsets(log) == (0..<60).filter { $0 % 10 < 6 })
        #expect(try CopyJournal.firstUnsettled(log, id: "test.copy", topic: "src", partition: 0) == 6)
        let rest = try Self.copy(log)
        #expect(rest.copied == 24 && rest.skipped == 36)
        #expect(try Self.copiedOffsets(log) == Array(0..<60))
    }

    @Test(arguments: [CopyWriter.CrashPoint.afterPending, .afterFirstBatch, .afterSync])
    func anInterruptedChunkIsNeitherLostNorDuplicated(_ point: CopyWriter.CrashPoint) throws {
        let log = try Self.makeLog(count: 80)
        defer { try? FileSystem.removeTree(log.root) }
        _ = try Self.copy(log, chunk: 20, include: { $0 < 20 })
        #expect(throws: CopyWriter.SimulatedCrash.self) { try Self.copy(log, chunk: 1000, crash: point) }
        let saved = try CopyJournal.snapshot(log, id: "test.copy")!
        #expect(!saved.pending.isEmpty)  // the crash left the chunk pending
        let inDest = try Self.copiedOffsets(log)
        switch point {
        case .afterPending: #expect(inDest == Array(0..<20))
        case .afterFirstBatch: #expect(inDest.count > 20 && inDest.count < 80)
        case .afterSync: #expect(inDest == Array(0..<80))
        }
        // Opening the copy again settles what the interrupted chunk wrote.
        let journal = try CopyJournal.open(log, id: "test.copy")
        #expect(journal.state.pending.isEmpty)
        #expect(journal.settled(topic: "src", partition: 0).count == Int64(inDest.count))
        journal.close()
        let rerun = try Self.copy(log)
        #expect(rerun.copied == 80 - inDest.count)
        #expect(try Self.copiedOffsets(log) == Array(0..<80))
    }

    @Test func aWriterThatFailedMidChunkStaysFailed() throws {
        let log = try Self.makeLog(count: 3)
        defer { try? FileSystem.removeTree(log.root) }
        let journal = try CopyJournal.open(log, id: "fail")
        defer { journal.close() }
        let writer = CopyWriter(journal: journal, log: log)
        writer.crash = .afterFirstBatch
        let record = { (o: Int64) in CopyRecord(topic: "src", partition: 0, offset: o, timestamp: 0, key: nil, value: [1], headers: []) }
        try writer.add(record(0), to: TopicPartition("dst", 0))
        try writer.add(record(2), to: TopicPartition("dst", 0))
        #expect(throws: CopyWriter.SimulatedCrash.self) { try writer.flush() }
        writer.crash = nil
        // Writing the chunk again would duplicate its first batch.
        #expect(throws: CopyWriter.SimulatedCrash.self) { try writer.flush() }
        #expect(throws: CopyWriter.SimulatedCrash.self) { try writer.add(record(1), to: TopicPartition("dst", 0)) }
    }

    @Test func aBusyCopyFailsWith75OrWaits() throws {
        let log = try Self.makeLog(count: 1)
        defer { try? FileSystem.removeTree(log.root) }
        let held = try CopyJournal.open(log, id: "busy")
        do {
            _ = try CopyJournal.open(log, id: "busy", wait: false)
            Issue.record("a second open of a held copy succeeded")
        } catch let e as MQError {
            #expect(e.status == .tempFail)
            #expect(e.message.contains("busy") && e.message.contains("in use"))
        }
        // A waiting open gets the copy once the holder closes it.
        let opened = Flag()
        let waiter = Thread {
            if let j = try? CopyJournal.open(log, id: "busy", wait: true) {
                opened.set()
                j.close()
            }
        }
        waiter.start()
        usleep(200_000)
        #expect(!opened.value)
        held.close()
        while !waiter.isFinished { usleep(10_000) }
        #expect(opened.value)
    }

    @Test func markSettledAndMetadataPersist() throws {
        let log = try Self.makeLog(count: 10)
        defer { try? FileSystem.removeTree(log.root) }
        let j = try CopyJournal.open(log, id: "meta")
        j.metadata["ranges"] = "src/0:0-9"
        try j.markSettled(topic: "src", partition: 0, [0...3, 5...5])
        j.close()
        let again = try CopyJournal.open(log, id: "meta")
        defer { again.close() }
        #expect(again.metadata == ["ranges": "src/0:0-9"])
        #expect(again.isSettled(topic: "src", partition: 0, offset: 5) && !again.isSettled(topic: "src", partition: 0, offset: 4))
        #expect(again.firstUnsettled(topic: "src", partition: 0) == 4)
        #expect(again.firstUnsettled(topic: "other", partition: 0, from: 7) == 7)
    }

    @Test func copiedBatchesCarryTheSourceAndValidateAsKafka() throws {
        let log = try Self.makeLog(count: 50, destinationPartitions: 1, codec: "zstd")
        defer { try? FileSystem.removeTree(log.root) }
        _ = try Self.copy(log, include: { $0 != 17 })
        let producer = CopyJournal.producerID(copy: "test.copy", source: TopicPartition("src", 0))
        let reader = PartitionReader(directory: log.topicPath("dst") + "/0")
        var starts: [Int64] = []
        let decoder = BatchDecoder()
        defer { withExtendedLifetime(decoder) {} }  // records point into its buffer
        while let (h, bytes) = try reader.nextBatch() {
            #expect(h.producerId == producer)
            #expect(h.compression == .zstd)
            let first = CopyJournal.sourceOffset(epoch: h.producerEpoch, sequence: h.baseSequence)
            starts.append(first)
            var records = RecordIterator(records: try decoder.records(of: bytes, header: h), header: h)
            var expected = first
            while let r = try records.next() {
                #expect(String(decoding: r.value!, as: UTF8.self) == "v\(expected)")
                expected += 1
            }
        }
        #expect(starts == [0, 18])
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("interop/kafka_validate.py").path
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, log.topicPath("dst") + "/0"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "kafka_validate.py: \(output)")
        #expect(output.contains("49 record(s)"), "\(output)")
    }
}

final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var raised = false
    func set() { lock.lock(); raised = true; lock.unlock() }
    var value: Bool { lock.lock(); defer { lock.unlock() }; return raised }
}
