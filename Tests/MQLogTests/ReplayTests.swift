import Glibc
import Testing
@testable import MQLog

private let t0: Int64 = 1_700_000_000_000

/// A topic of `partitions` partitions, each with `perPartition` messages
/// (partition p, message j has timestamp t0 + j), in a fresh log.
private func makeTopic(partitions: Int32 = 2, perPartition: Int = 10) throws -> (LogDirectory, Topic) {
    let log = LogDirectory(root: makeTempDirectory())
    try log.createTopic("t", config: TopicConfig(partitions: partitions))
    let topic = try log.openTopic("t")
    for p in 0..<partitions {
        let writer = try PartitionWriter(directory: topic.partitionPath(p), settings: .init(segmentBytes: 1024))
        try appendMessages(writer, from: 0, count: perPartition, perBatch: 3)
    }
    return (log, topic)
}

@Suite struct ReplayRangeTests {
    @Test func parsesEveryForm() throws {
        #expect(try ReplayBound.parse("beginning", isTo: false, nowMs: t0) == .beginning)
        #expect(try ReplayBound.parse("earliest", isTo: false, nowMs: t0) == .beginning)
        #expect(try ReplayBound.parse("end", isTo: true, nowMs: t0) == .end)
        #expect(try ReplayBound.parse("42", isTo: false, nowMs: t0) == .offset(42))
        #expect(try ReplayBound.parse("@1700000000005", isTo: false, nowMs: t0) == .time(t0 + 5))
        #expect(try ReplayBound.parse("-1h", isTo: false, nowMs: t0) == .time(t0 - 3_600_000))
        #expect(try ReplayBound.parse("2026-11-21T10:00:00Z", isTo: false, nowMs: t0) == .time(1_795_255_200_000))
        #expect(try ReplayBound.parse("0:5,2:7", isTo: false, nowMs: t0) == .partitions([0: 5, 2: 7], fallback: .beginning))
        #expect(try ReplayBound.parse("1:3", isTo: true, nowMs: t0) == .partitions([1: 3], fallback: .end))
        for bad in ["0:x", "0:5,0:6", "0:", "-1:5", "yesterday", "0:5,", "1:2:3"] {
            #expect(throws: MQError.self) { try ReplayBound.parse(bad, isTo: false, nowMs: t0) }
        }
    }

    @Test func toBeforeFromIsAUsageError() throws {
        #expect(throws: MQError.self) { try ReplayBound.validate(from: .offset(5), to: .offset(4)) }
        #expect(throws: MQError.self) { try ReplayBound.validate(from: .time(t0 + 5), to: .time(t0)) }
        #expect(throws: MQError.self) { try ReplayBound.validate(from: .partitions([1: 5], fallback: .beginning), to: .partitions([1: 2], fallback: .end)) }
        try ReplayBound.validate(from: .offset(5), to: .offset(5))
        try ReplayBound.validate(from: .time(t0), to: .time(t0))
        try ReplayBound.validate(from: .offset(5), to: .time(t0))
    }

    @Test func resolvesOffsetsInclusiveAndClampsToTheLog() throws {
        let (log, topic) = try makeTopic()
        defer { try? FileSystem.removeTree(log.root) }
        func range(_ from: ReplayBound, _ to: ReplayBound, _ partitions: [Int32] = [0, 1]) throws -> [[Int64]] {
            try resolveReplayRange(topic: topic, partitions: partitions, from: from, to: to).map { [Int64($0.partition), $0.start, $0.stop] }
        }
        #expect(try range(.beginning, .end) == [[0, 0, 10], [1, 0, 10]])
        #expect(try range(.offset(2), .offset(4)) == [[0, 2, 5], [1, 2, 5]])          // 2, 3 and 4
        #expect(try range(.offset(4), .offset(4)) == [[0, 4, 5], [1, 4, 5]])          // one message
        #expect(try range(.offset(7), .offset(500)) == [[0, 7, 10], [1, 7, 10]])      // to the end as it is
        #expect(try range(.offset(50), .end) == [[0, 10, 10], [1, 10, 10]])          // nothing
        #expect(try range(.end, .end) == [[0, 10, 10], [1, 10, 10]])
        #expect(try range(.beginning, .beginning) == [[0, 0, 0], [1, 0, 0]])
        #expect(try range(.offset(3), .offset(Int64.max)) == [[0, 3, 10], [1, 3, 10]])
        #expect(try range(.partitions([1: 6], fallback: .beginning), .partitions([0: 1], fallback: .end)) == [[0, 0, 2], [1, 6, 10]])
        #expect(try range(.offset(2), .end, [1]) == [[1, 2, 10]])
        #expect(throws: MQError.self) { try range(.partitions([5: 1], fallback: .beginning), .end) }
    }

    @Test func resolvesTimesAsAtOrAfterFromAndAtOrBeforeTo() throws {
        let (log, topic) = try makeTopic()
        defer { try? FileSystem.removeTree(log.root) }
        func range(_ from: ReplayBound, _ to: ReplayBound) throws -> [Int64] {
            let r = try resolveReplayRange(topic: topic, partitions: [0], from: from, to: to)[0]
            return [r.start, r.stop]
        }
        // Message j has timestamp t0 + j.
        #expect(try range(.time(t0 + 3), .time(t0 + 6)) == [3, 7])
        #expect(try range(.time(t0 - 100), .time(t0)) == [0, 1])
        #expect(try range(.time(t0 + 100), .end) == [10, 10])
        #expect(try range(.beginning, .time(t0 - 1)) == [0, 0])
        #expect(try range(.time(t0 + 8), .offset(2)) == [8, 8])  // mixed and crossed: empty, not an error
    }

    @Test func appendsAfterResolutionAreNotInTheRange() throws {
        let (log, topic) = try makeTopic(partitions: 1)
        defer { try? FileSystem.removeTree(log.root) }
        let before = try resolveReplayRange(topic: topic, partitions: [0], from: .beginning, to: .end)
        let writer = try PartitionWriter(directory: topic.partitionPath(0), settings: .init())
        try appendMessages(writer, from: 10, count: 5, perBatch: 5)
        var merge = try RangeMerge(topic: topic, ranges: before)
        var offsets: [Int64] = []
        while let (c, r) = try merge.next() { offsets.append(r.offset); merge.advance(c) }
        #expect(offsets == Array(0..<10))
    }

    @Test func mergeIsByTimestampThenPartition() throws {
        let (log, topic) = try makeTopic(partitions: 2, perPartition: 3)
        defer { try? FileSystem.removeTree(log.root) }
        let ranges = try resolveReplayRange(topic: topic, partitions: [0, 1], from: .offset(1), to: .end)
        var merge = try RangeMerge(topic: topic, ranges: ranges)
        var seen: [String] = []
        while let (c, r) = try merge.next() { seen.append("\(merge.partition(c))@\(r.offset)"); merge.advance(c) }
        #expect(seen == ["0@1", "1@1", "0@2", "1@2"])
    }
}

@Suite struct RateLimiterTests {
    @Test func spacesRecordsAfterASmallBurst() {
        var l = RateLimiter(perSecond: 100)  // burst 5, starts with one token
        #expect(l.reserve(now: 0) == 0)
        #expect(l.reserve(now: 0) == 10_000_000)
        // Waiting as told: the next one is due 10 ms after that.
        #expect(l.reserve(now: 10_000_000) == 10_000_000)
        // After a long pause at most the burst goes out at once.
        var free = 0
        var now: UInt64 = 5_000_000_000
        while l.reserve(now: now) == 0 { free += 1; now += 1 }
        #expect(free == 5)
    }

    @Test func aChunkWaitsAsLongAsItsRecordsOneByOne() {
        var one = RateLimiter(perSecond: 100), chunk = RateLimiter(perSecond: 100)
        var singly: UInt64 = 0
        for _ in 0..<7 { singly += one.reserve(now: 0) }
        #expect(chunk.reserve(7, now: 0) == singly)
        #expect(singly == 60_000_000)  // the first one is there, six are 10 ms apart
        #expect(chunk.reserve(3, now: singly) == 30_000_000)
    }

    @Test func totalTimeMatchesTheRate() {
        var l = RateLimiter(perSecond: 100)
        var now: UInt64 = 0
        for _ in 0..<200 { now += l.reserve(now: now) }
        #expect(now >= 1_990_000_000 && now <= 2_000_000_000)
    }

    @Test func parsesUnits() throws {
        #expect(try RateLimiter.parse("100") == 100)
        #expect(try RateLimiter.parse("100/s") == 100)
        #expect(try RateLimiter.parse("120/m") == 2)
        #expect(try RateLimiter.parse("0.5/s") == 0.5)
        for bad in ["0", "-1/s", "abc", "10/d", "inf", ""] {
            #expect(throws: MQError.self) { try RateLimiter.parse(bad) }
        }
    }
}

@Suite struct ResetOffsetsTests {
    @Test func targetsParse() throws {
        #expect(try ResetTarget.parse("beginning", nowMs: t0) == .position(.beginning))
        #expect(try ResetTarget.parse("end", nowMs: t0) == .position(.end))
        #expect(try ResetTarget.parse("17", nowMs: t0) == .position(.offset(17)))
        #expect(try ResetTarget.parse("+5", nowMs: t0) == .shift(5))
        #expect(try ResetTarget.parse("-5", nowMs: t0) == .shift(-5))
        #expect(try ResetTarget.parse("-5m", nowMs: t0) == .position(.time(t0 - 300_000)))
        #expect(try ResetTarget.parse("@1700000000003", nowMs: t0) == .position(.time(t0 + 3)))
    }

    @Test func newOffsetsAreClampedIntoTheLog() throws {
        func new(_ t: ResetTarget, _ current: Int64?) -> Int64 {
            t.newOffset(current: current, logStart: 10, logEnd: 50) { $0 - t0 }
        }
        #expect(new(.position(.beginning), 30) == 10)
        #expect(new(.position(.end), 30) == 50)
        #expect(new(.position(.offset(20)), 30) == 20)
        #expect(new(.position(.offset(5)), 30) == 10)
        #expect(new(.position(.offset(99)), 30) == 50)
        #expect(new(.shift(-5), 30) == 25)
        #expect(new(.shift(-50), 30) == 10)
        #expect(new(.shift(+50), 30) == 50)
        #expect(new(.shift(5), nil) == 15)  // no commit: from the log start
        #expect(new(.shift(Int64.max), 30) == 50)
        #expect(new(.shift(Int64.min + 1), 30) == 10)
        #expect(new(.position(.time(t0 + 40)), nil) == 40)
    }

    @Test func resetMovesBackwardUnderTheLeaseAndRefusesWhileHeld() throws {
        let (log, _) = try makeTopic()
        defer { try? FileSystem.removeTree(log.root) }
        let group = try GroupDirectory(log: log, group: "g")
        try group.prepare(topic: "t")
        for p: Int32 in [0, 1] { try PartitionLease.tryAcquire(group, topic: "t", partition: p)!.commit(8) }
        let reset = try OffsetReset(log: log, group: "g", topic: "t", partition: nil, target: .shift(-3))
        let rows = try reset.plan()
        #expect(rows.map(\.current) == [8, 8] && rows.map(\.new) == [5, 5] && rows.map(\.lag) == [5, 5])
        // A member holding partition 1 blocks the whole reset: partition 0 is not written either.
        do {
            let held = try PartitionLease.tryAcquire(group, topic: "t", partition: 1)!
            #expect(throws: MQError.self) { try reset.apply(rows) }
            #expect(try group.committedOffset("t", 0) == 8)
            withExtendedLifetime(held) {}
        }
        let rows2 = try reset.plan()
        try reset.apply(rows2)
        #expect(try group.committedOffset("t", 0) == 5 && group.committedOffset("t", 1) == 5)
    }

    @Test func aShiftCountsFromTheOffsetReadUnderTheLease() throws {
        let (log, _) = try makeTopic(partitions: 1)
        defer { try? FileSystem.removeTree(log.root) }
        let group = try GroupDirectory(log: log, group: "g")
        try group.prepare(topic: "t")
        try PartitionLease.tryAcquire(group, topic: "t", partition: 0)!.commit(8)
        let reset = try OffsetReset(log: log, group: "g", topic: "t", partition: nil, target: .shift(-3))
        let planned = try reset.plan()
        #expect(planned[0].new == 5)
        // A consumer commits between the plan and the reset.
        try PartitionLease.tryAcquire(group, topic: "t", partition: 0)!.commit(9)
        let applied = try reset.apply(planned)
        #expect(applied[0].current == 9 && applied[0].new == 6)
        #expect(try group.committedOffset("t", 0) == 6)
    }

    @Test func queueStateResetsAndRefusesLiveLeases() throws {
        var s = QueueState()
        s.low = 3; s.next = 9
        s.entries = [QueueState.Entry(offset: 4, leaseUntil: t0 + 10, owner: "alive"), QueueState.Entry(offset: 6, leaseUntil: t0 + 10, owner: "dead")]
        #expect(s.leasedEntryOwner(now: t0, isAlive: { $0 == "alive" }) == "alive")
        #expect(s.leasedEntryOwner(now: t0, isAlive: { _ in false }) == nil)
        #expect(s.leasedEntryOwner(now: t0 + 10, isAlive: { _ in true }) == nil)  // leases over
        s.reset(to: 1)
        #expect(s.low == 1 && s.next == 1 && s.entries.isEmpty)
    }

    @Test func resetTableLinesUp() {
        let rows = [ResetRow(topic: "orders", partition: 0, current: 120, new: 7, logEnd: 130, queue: false),
                    ResetRow(topic: "orders", partition: 10, current: nil, new: 0, logEnd: 3, queue: false)]
        #expect(renderResetTable(rows) == """
            TOPIC   PARTITION  CURRENT  NEW  LAG
            orders          0      120    7  123
            orders         10        -    0    3

            """)
    }
}

@Suite struct ReplayIdentityTests {
    private func id(_ from: String?, restamp: Bool = false, name: String? = nil, dest: String = "d", headers: [String] = []) -> String {
        var into = ReplayIntoOptions(destination: dest)
        into.restamp = restamp
        into.name = name
        into.identityWords = ReplayIntoOptions.identityWords(from: from, to: nil, partition: nil, grep: nil, key: nil, headers: headers)
        return ReplayCopier(options: ReplayOptions(topic: "t"), into: into, log: LogDirectory(root: "/nonexistent")).baseID(source: "t")
    }

    @Test func theArgumentsAsWrittenAreTheIdentity() {
        let base = id(nil)
        #expect(base.hasPrefix("replay.") && base.count == "replay.".count + 16)
        #expect(id("beginning") == base)  // the default, written out
        #expect(id(nil) == base)          // stable
        #expect(id("-1h") != base && id("-1h") == id("-1h"))
        #expect(id(nil, restamp: true) != base)
        #expect(id(nil, dest: "e") != base)
        #expect(id(nil, headers: ["a=1"]) != base)
        #expect(id("-1h", name: "fix") == "replay.fix" && id(nil, name: "fix") == "replay.fix")
    }

    @Test func storedRangesRoundTrip() {
        let ranges = [ReplayPartitionRange(partition: 0, start: 5, stop: 10), ReplayPartitionRange(partition: 3, start: 0, stop: 0)]
        #expect(ReplayCopier.decodeRanges(ReplayCopier.encodeRanges(ranges)) == ranges)
        #expect(ReplayCopier.decodeRanges("") == [])
        for bad in ["0:5", "x:1-2", "0:5-3", "0:-1-2"] { #expect(ReplayCopier.decodeRanges(bad) == nil) }
    }
}
