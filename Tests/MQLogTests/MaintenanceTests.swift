import Testing
import Glibc
@testable import MQLog

@Suite struct MaintenanceTests {
    /// A log directory with topic `t` (2 partitions) holding 300 messages in segments of about 1 KiB in partition 0.
    func makeLog() throws -> (LogDirectory, String) {
        let root = makeTempDirectory()
        let log = LogDirectory(root: root)
        try log.createTopic("t", config: TopicConfig(partitions: 2))
        let writer = try PartitionWriter(directory: log.topicPath("t") + "/0", settings: .init(segmentBytes: 1024))
        try appendMessages(writer, from: 0, count: 300, perBatch: 5)
        return (log, root)
    }

    /// Commits `offset` as a group would, in `committed/TOPIC` (or, with
    /// `legacy`, in the earlier layout's file of the partition).
    func commit(_ log: LogDirectory, group: String, topic: String, partition: Int32, offset: Int64, at ms: Int64? = nil, legacy: Bool = false) throws {
        let g = try GroupDirectory(log: log, group: group)
        let f: OpenFile
        let at: Int64
        if legacy {
            try FileSystem.makeDirectories(g.legacyOffsetsPath(topic))
            f = try OpenFile.open(g.legacyOffsetPath(topic, partition), O_RDWR | O_CREAT, creating: true)
            at = 0
        } else {
            try g.prepare(topic: topic)
            f = try OpenFile.open(g.commitsPath(topic), O_RDWR | O_CREAT, creating: true)
            at = CommittedOffsetFile.position(of: partition)
        }
        defer { f.close() }
        var slot = try CommittedOffsetFile.commit(f, at: at, after: try CommittedOffsetFile.read(f, at: at), offset: offset)
        if let ms {
            // Rewrite the slot with an old commit time, as a group idle since then would have it.
            slot.committedMs = ms
            try CommittedOffsetFile.encode(slot).withUnsafeBytes { try f.write($0, at: at + Int64(slot.generation % 2) * Int64(CommittedOffsetFile.slotSize)) }
        }
    }

    @Test func retentionFloorIsTheLowestCommittedOffsetOrQueueMark() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "t", partition: 0) == nil)
        try commit(log, group: "a", topic: "t", partition: 0, offset: 70)
        try commit(log, group: "b", topic: "t", partition: 0, offset: 40)
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "t", partition: 0) == 40)
        // Another partition and another topic are not held by these commits.
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "t", partition: 1) == nil)
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "u", partition: 0) == nil)
        let queue = try QueuePartition(directory: root + "/groups/q/queue/t/0")
        try queue.update(durable: true) { s in s.low = 25; s.next = 25 }
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "t", partition: 0) == 25)
    }

    @Test func delayTopicIsHeldAtTheMoversMark() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        try log.createTopic("t.delay", config: TopicConfig(partitions: 1))
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "t.delay", partition: 0) == 0)
        let f = try OpenFile.open(log.topicPath("t.delay") + "/mover.offset", O_RDWR | O_CREAT, creating: true)
        _ = try CommittedOffsetFile.commit(f, after: nil, offset: 12)
        f.close()
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "t.delay", partition: 0) == 12)
    }

    @Test func moverJournalLosesTheEntriesBelowItsMarkAndItsTornTail() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        try log.createTopic("t.delay", config: TopicConfig(partitions: 1))
        let dir = log.topicPath("t.delay")
        let mark = try OpenFile.open(dir + "/mover.offset", O_RDWR | O_CREAT, creating: true)
        _ = try CommittedOffsetFile.commit(mark, after: nil, offset: 10)
        mark.close()
        var journal: [UInt8] = []
        for offset: Int64 in [5, 12, 15] {
            var entry = [UInt8](repeating: 0, count: 16)
            entry.withUnsafeMutableBytes { p in
                p.storeBytes(of: offset.littleEndian, toByteOffset: 0, as: Int64.self)
                p.storeBytes(of: CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<8])).littleEndian, toByteOffset: 8, as: UInt32.self)
            }
            journal += entry
        }
        try FileSystem.writeAtomically(dir + "/mover.journal", journal + [1, 2, 3])
        let report = try GroupHousekeeping.run(log: log, now: currentTimeMillis(), expireAfterMs: nil, dryRun: false)
        #expect(report.trimmedJournalEntries == 1)
        let kept = try FileSystem.readAll(dir + "/mover.journal")
        #expect(kept == Array(journal[16...]))
        #expect(DelayMoverFiles.journalEntries(kept).offsets == [12, 15])
    }

    @Test func idleGroupsExpireLiveOnesStay() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        let now = currentTimeMillis()
        let day: Int64 = 86_400_000
        try commit(log, group: "old", topic: "t", partition: 0, offset: 10, at: now - 10 * day)
        try commit(log, group: "recent", topic: "t", partition: 0, offset: 20, at: now - 1 * day)
        try commit(log, group: "busy", topic: "t", partition: 0, offset: 30, at: now - 10 * day)
        let member = try GroupMembership(GroupDirectory(log: log, group: "busy"))
        // A dead member: a member file nobody locks.
        let dead = root + "/groups/recent/members/dead-1"
        try FileSystem.makeDirectories(root + "/groups/recent/members")
        try OpenFile.open(dead, O_RDWR | O_CREAT, creating: true).close()

        let dry = try GroupHousekeeping.run(log: log, now: now, expireAfterMs: 7 * day, dryRun: true)
        #expect(dry.expiredGroups == ["old"])
        #expect(dry.deadMembers == 1)
        #expect(FileSystem.isDirectory(root + "/groups/old") && FileSystem.exists(dead))

        let report = try GroupHousekeeping.run(log: log, now: now, expireAfterMs: 7 * day, dryRun: false)
        #expect(report.expiredGroups == ["old"])
        #expect(report.deadMembers == 1)
        #expect(report.bytesReclaimed > 0)
        #expect(!FileSystem.exists(root + "/groups/old"))
        #expect(!FileSystem.exists(dead))
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "t", partition: 0) == 20)
        withExtendedLifetime(member) {}
        #expect(FileSystem.isDirectory(root + "/groups/busy"))
        #expect(try GroupHousekeeping.run(log: log, now: now, expireAfterMs: 7 * day, dryRun: false).isEmpty)
    }

    @Test func groupDeleteIsRefusedWhileInUseUnlessForced() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        try commit(log, group: "idle", topic: "t", partition: 0, offset: 3)
        try commit(log, group: "leased", topic: "t", partition: 0, offset: 4)
        try commit(log, group: "member", topic: "t", partition: 0, offset: 5)
        let lease = try #require(try PartitionLease.tryAcquire(GroupDirectory(log: log, group: "leased"), topic: "t", partition: 0))
        let member = try GroupMembership(GroupDirectory(log: log, group: "member"))
        #expect(GroupAdmin.members(try GroupDirectory(log: log, group: "member")) == [GroupAdmin.Member(id: member.id, pid: getpid())])
        for name in ["leased", "member"] {
            #expect(throws: MQError.self) { try GroupAdmin.delete(log, group: name, force: false, dryRun: false) }
            #expect(FileSystem.isDirectory(root + "/groups/" + name))
        }
        let dry = try GroupAdmin.delete(log, group: "idle", force: false, dryRun: true)
        #expect(!dry.removed && dry.bytes > 0 && FileSystem.isDirectory(root + "/groups/idle"))
        #expect(try GroupAdmin.delete(log, group: "idle", force: false, dryRun: false).removed)
        let forced = try GroupAdmin.delete(log, group: "leased", force: true, dryRun: false)
        #expect(forced.removed && forced.inUse.count == 1)
        #expect(try LogStats.listGroups(log) == ["member"])
        #expect(throws: MQError.self) { try GroupAdmin.delete(log, group: "idle", force: true, dryRun: false) }
        withExtendedLifetime((lease, member)) {}
    }

    @Test func memberIDsGiveTheirProcessOnlyWhenTheyStartWithOne() {
        #expect(GroupDirectory.pid(ofMember: "1f-abc") == 31)
        for id in ["", "-", "zz-1", "0-1", "ffffffffff-1", "-5-1"] { #expect(GroupDirectory.pid(ofMember: id) == nil, "\(id)") }
    }

    @Test func stateOfDeletedTopicsIsRemovedUnlessHeld() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        try commit(log, group: "g", topic: "gone", partition: 0, offset: 5)
        try commit(log, group: "g", topic: "held", partition: 0, offset: 5)
        let g = try GroupDirectory(log: log, group: "g")
        let lease = try #require(try PartitionLease.tryAcquire(g, topic: "held", partition: 0))
        let report = try GroupHousekeeping.run(log: log, now: currentTimeMillis(), expireAfterMs: nil, dryRun: false)
        #expect(report.orphanedTopicStates == 1)
        #expect(!FileSystem.exists(g.commitsPath("gone")))
        #expect(FileSystem.exists(g.commitsPath("held")))
        withExtendedLifetime(lease) {}
    }

    @Test func commitsOfTheEarlierLayoutAreReadUntilCommittedAgainThenRemoved() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        try commit(log, group: "g", topic: "t", partition: 0, offset: 30, legacy: true)
        try commit(log, group: "g", topic: "t", partition: 1, offset: 7, legacy: true)
        try commit(log, group: "g", topic: "gone", partition: 0, offset: 3, legacy: true)
        let g = try GroupDirectory(log: log, group: "g")
        #expect(try g.committedOffset("t", 0) == 30)
        #expect(try g.committedSlots("t", partitions: 2).map { $0?.offset } == [30, 7])
        #expect(try RetentionGuard.firstNeededOffset(log: log, topic: "t", partition: 0) == 30)
        do {
            // A lease takes the earlier commit up, and its next commit goes to the topic's file.
            let lease = try #require(try PartitionLease.tryAcquire(g, topic: "t", partition: 0))
            #expect(lease.committed?.offset == 30)
            try lease.commit(31)
        }
        var report = try GroupHousekeeping.run(log: log, now: currentTimeMillis(), expireAfterMs: nil, dryRun: false)
        #expect(report.orphanedTopicStates == 1)
        #expect(!FileSystem.exists(g.legacyOffsetPath("t", 0)))
        #expect(FileSystem.exists(g.legacyOffsetPath("t", 1)), "partition 1 has no commit in the new file yet")
        #expect(!FileSystem.exists(g.legacyOffsetsPath("gone")))
        #expect(try g.committedSlots("t", partitions: 2).map { $0?.offset } == [31, 7])
        _ = try #require(try PartitionLease.tryAcquire(g, topic: "t", partition: 1)).commit(8)
        report = try GroupHousekeeping.run(log: log, now: currentTimeMillis(), expireAfterMs: nil, dryRun: false)
        #expect(!FileSystem.exists(g.path + "/offsets"))
        #expect(try g.committedSlots("t", partitions: 2).map { $0?.offset } == [31, 8])
    }

    @Test func aLeaseIsHeldByOneOpenFileAtATime() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        let g = try GroupDirectory(log: log, group: "g")
        let record = Int64(CommittedOffsetFile.recordSize)
        let other: OpenFile
        do {
            let a = try #require(try PartitionLease.tryAcquire(g, topic: "t", partition: 1))
            // The same process again: refused, though its locks do not conflict with each other.
            #expect(try PartitionLease.tryAcquire(g, topic: "t", partition: 1) == nil)
            // Through another open of the file (as another process would): refused by the lock.
            other = try OpenFile.open(g.commitsPath("t"), O_RDWR)
            #expect(try !other.lockRange(start: CommittedOffsetFile.position(of: 1), length: record))
            #expect(try other.lockRange(start: CommittedOffsetFile.position(of: 0), length: record))
            #expect(try PartitionLease.tryAcquire(g, topic: "t", partition: 0) == nil)
            other.unlockRange(start: 0, length: record)
            try a.commit(12)
            // Partition 0 was never committed and is not held now: no row.
            let before = currentTimeMillis()
            let rows = try GroupCommits.read(g, topic: "t", partitions: 2)
            #expect(rows.map { [$0.partition, Int32($0.committed ?? -1)] } == [[1, 12]] && rows.first?.ownerPIDs == [getpid()])
            // When the commit was written: just now.
            #expect(rows.first.flatMap(\.committedMs).map { $0 <= before && $0 > before - 60_000 } == true)
            withExtendedLifetime(a) {}
        }
        defer { other.close() }
        // Given back: free for another open, and no longer shown as held.
        #expect(try other.lockRange(start: CommittedOffsetFile.position(of: 1), length: record))
        other.unlockRange(start: CommittedOffsetFile.position(of: 1), length: record)
        #expect(try GroupCommits.read(g, topic: "t", partitions: 2).map { [$0.partition, Int32($0.committed ?? -1), Int32($0.ownerPIDs.count)] } == [[1, 12, 0]])
    }

    @Test func queueEntriesBelowTheLogStartAreTrimmedUnlessLeased() throws {
        let (log, root) = try makeLog()
        defer { try? FileSystem.removeTree(root) }
        let now = currentTimeMillis()
        let queue = try QueuePartition(directory: root + "/groups/q/queue/t/0")
        try queue.update(durable: true) { s in
            s.low = 3; s.next = 120
            s.entries = [QueueState.Entry(offset: 3), QueueState.Entry(offset: 7, leaseUntil: now + 60_000),
                         QueueState.Entry(offset: 100)]
        }
        // Retention removed the first segments.
        let segments = try LogSegments.baseOffsets(in: log.topicPath("t") + "/0")
        try #require(segments.count > 3)
        let start = segments[1]
        for base in segments where base < start {
            try FileSystem.remove(Segment(log.topicPath("t") + "/0", base).logPath)
        }
        #expect(start > 7 && start < 100)
        let report = try GroupHousekeeping.run(log: log, now: now, expireAfterMs: nil, dryRun: false)
        #expect(report.trimmedQueueEntries == 1)
        let state = try queue.read()
        #expect(state.entries.map(\.offset) == [7, 100])
        #expect(state.low == 7)
    }
}
