import Glibc
import Testing
@testable import MQLog

/// Leases taken, committed and given back many at a time: the same records
/// in `committed/TOPIC` as one at a time.
@Suite struct GroupLeaseTests {
    let record = Int64(CommittedOffsetFile.recordSize)

    /// A group `g` of a log whose topic `t` has 12 partitions.
    func makeGroup() throws -> (GroupDirectory, String) {
        let root = makeTempDirectory()
        let log = LogDirectory(root: root)
        try log.createTopic("t", config: TopicConfig(partitions: 12))
        return (try GroupDirectory(log: log, group: "g"), root)
    }

    /// The bytes of `committed/t`, as long as 12 records (zeros past its end).
    func fileBytes(_ g: GroupDirectory) throws -> [UInt8] {
        let f = try OpenFile.open(g.commitsPath("t"), O_RDONLY)
        defer { f.close() }
        var bytes = [UInt8](repeating: 0, count: 12 * CommittedOffsetFile.recordSize)
        _ = try bytes.withUnsafeMutableBytes { try f.read(into: $0.baseAddress!, count: $0.count, at: 0) }
        return bytes
    }

    @Test func leasesOfConsecutivePartitionsAreTakenCommittedAndGivenBackTogether() throws {
        let (g, root) = try makeGroup()
        defer { try? FileSystem.removeTree(root) }
        // Commits made before, one partition at a time: 4 twice (its newest
        // commit in the first slot), 6 once, 9 once and then damaged.
        for (p, offsets) in [(4, [40, 41]), (6, [60]), (9, [90, 91])] as [(Int32, [Int64])] {
            let lease = try #require(try PartitionLease.tryAcquire(g, topic: "t", partition: p))
            for o in offsets { try lease.commit(o) }
        }
        let f = try OpenFile.open(g.commitsPath("t"), O_RDWR)
        defer { f.close() }
        // Partition 9's newest slot (generation 2, the first of its pair) damaged: its commit is 90.
        try [UInt8](repeating: 0xEE, count: 8).withUnsafeBytes { try f.write($0, at: CommittedOffsetFile.position(of: 9) + 8) }
        // Another open file (another process) holds partition 7.
        #expect(try f.lockRange(start: CommittedOffsetFile.position(of: 7), length: record))

        let wanted: [Int32] = [2, 3, 4, 5, 6, 7, 8, 9, 10, 0]
        var leases = try PartitionLease.tryAcquireAll(g, topic: "t", partitions: wanted, member: "m1")
        #expect(leases.map(\.partition) == [2, 3, 4, 5, 6, 8, 9, 10, 0])
        #expect(leases.map { $0.committed?.offset ?? -1 } == [-1, -1, 41, -1, 60, -1, 90, -1, -1])
        // Held: by this process once, and shown with its holder.
        #expect(try PartitionLease.tryAcquireAll(g, topic: "t", partitions: Array(0..<12)).map(\.partition) == [1, 11])
        let rows = try GroupCommits.read(g, topic: "t", partitions: 12)
        #expect(rows.filter { $0.ownerPIDs == [getpid()] }.map(\.partition) == [0, 2, 3, 4, 5, 6, 8, 9, 10])
        for p: Int32 in [0, 2, 3, 4, 5, 6, 8, 9, 10] {
            #expect(f.isRangeLocked(start: CommittedOffsetFile.position(of: p), length: record), "partition \(p)")
        }

        // Committed together, and again: the records read as if committed one at a time.
        let before = try fileBytes(g)
        try PartitionLease.commitAll(leases.map { ($0, Int64($0.partition) * 100) })
        try PartitionLease.commitAll(leases.map { ($0, Int64($0.partition) * 100 + 1) })
        #expect(try g.committedSlots("t", partitions: 12).map { $0?.offset ?? -1 } == [1, -1, 201, 301, 401, 501, 601, -1, 801, 901, 1001, -1])
        #expect(try g.committedSlots("t", partitions: 12).map { $0?.generation ?? 0 } == [2, 0, 2, 2, 4, 2, 3, 0, 2, 3, 2, 0])
        let after = try fileBytes(g)
        // Partitions 1, 7 and 11, not held, are as they were; so are the holders.
        for p in [1, 7, 11] { #expect(after[(p * 128)..<((p + 1) * 128)] == before[(p * 128)..<((p + 1) * 128)], "partition \(p)") }
        for p in 0..<12 { #expect(after[(p * 128 + 64)..<(p * 128 + 128)] == before[(p * 128 + 64)..<(p * 128 + 128)], "holder \(p)") }

        // Given back together: free for another open file.
        PartitionLease.releaseAll(leases)
        for p: Int32 in [0, 2, 3, 4, 5, 6, 8, 9, 10] {
            #expect(!f.isRangeLocked(start: CommittedOffsetFile.position(of: p), length: record), "partition \(p)")
        }
        // A lease given back does not unlock, when it goes, the lease taken since on its partition.
        let again = try #require(try PartitionLease.tryAcquire(g, topic: "t", partition: 3))
        leases.removeAll()
        #expect(f.isRangeLocked(start: CommittedOffsetFile.position(of: 3), length: record))
        #expect(again.committed?.offset == 301)
    }

    @Test func aRunPartlyHeldByAnotherProcessIsTakenPartitionByPartition() throws {
        let (g, root) = try makeGroup()
        defer { try? FileSystem.removeTree(root) }
        try g.prepare(topic: "t")
        let f = try OpenFile.open(g.commitsPath("t"), O_RDWR | O_CREAT, creating: true)
        defer { f.close() }
        // Another process holds the whole file, then only partitions 0 and 11.
        #expect(try f.lockRange(start: 0, length: 0))
        #expect(try PartitionLease.tryAcquireAll(g, topic: "t", partitions: Array(0..<12)).isEmpty)
        f.unlockRange(start: CommittedOffsetFile.position(of: 1), length: 10 * record)
        let leases = try PartitionLease.tryAcquireAll(g, topic: "t", partitions: Array(0..<12))
        #expect(leases.map(\.partition) == Array(1..<11))
        try PartitionLease.commitAll(leases.map { ($0, 5) })
        #expect(try g.committedSlots("t", partitions: 12).map { $0?.offset ?? -1 } == [-1] + Array(repeating: 5, count: 10) + [-1])
        // No partition number that a record's position cannot hold.
        #expect(try PartitionLease.tryAcquireAll(g, topic: "t", partitions: [-1, Int32.max]).isEmpty)
    }
}
