import Foundation
import Glibc
import Testing
@testable import MQLog

@Suite struct DedupStoreTests {
    static func entry(_ ts: Int64, _ p: Int32 = 0, _ o: Int64 = 0) -> DedupEntry { DedupEntry(timestampMs: ts, partition: p, offset: o) }

    @Test func hashIsFNV1a128() {
        // The empty input hashes to the offset basis; one byte changes it.
        #expect(IDHash.of("") == IDHash(hi: 0x6c62_272e_07bb_0142, lo: 0x62b8_2175_6295_c58d))
        #expect(IDHash.of("a") != IDHash.of("b"))
        #expect(IDHash.of("ab") != IDHash.of("ba"))
    }

    @Test func distinctIDsDoNotCollide() {
        // At 128 bits a collision among n ids has probability about n²/2^129;
        // 200,000 ids of the shape users give must all differ, even in each half.
        var full = Set<IDHash>(), his = Set<UInt64>(), los = Set<UInt64>()
        for i in 0..<200_000 {
            let h = IDHash.of("order-\(i)")
            full.insert(h); his.insert(h.hi); los.insert(h.lo)
        }
        #expect(full.count == 200_000)
        #expect(his.count == 200_000)
        #expect(los.count == 200_000)
    }

    @Test func idsAreSharedAndExpireWithTheWindow() throws {
        let dir = makeTempDirectory() + "/dedup"
        let a = try DedupStore(directory: dir, windowMs: 60_000)
        let now = currentTimeMillis()
        try a.withLock {
            try a.record([(IDHash.of("old"), Self.entry(now - 120_000, 0, 1)), (IDHash.of("new"), Self.entry(now, 2, 7))], done: false, sync: true)
        }
        // Another process (another store object) sees them after taking the lock.
        let b = try DedupStore(directory: dir, windowMs: 60_000)
        try b.withLock {
            #expect(b.lookup(IDHash.of("new"), nowMs: now) == Self.entry(now, 2, 7))
            #expect(b.lookup(IDHash.of("old"), nowMs: now) == nil)
            #expect(b.lookup(IDHash.of("other"), nowMs: now) == nil)
            // The window is measured from the lookup: later, "new" expires too.
            #expect(b.lookup(IDHash.of("new"), nowMs: now + 60_000) == nil)
        }
        // A longer window remembers "old".
        let c = try DedupStore(directory: dir, windowMs: 600_000)
        try c.withLock { #expect(c.lookup(IDHash.of("old"), nowMs: now) != nil) }
    }

    @Test func trimRewritesTheLiveIDsAndOthersFollow() throws {
        let dir = makeTempDirectory() + "/dedup"
        let a = try DedupStore(directory: dir, windowMs: 60_000)
        let b = try DedupStore(directory: dir, windowMs: 60_000)
        let now = currentTimeMillis()
        var ids: [(IDHash, DedupEntry)] = []
        for i in 0..<1000 { ids.append((IDHash.of("id\(i)"), Self.entry(i < 900 ? now - 120_000 : now, 0, Int64(i)))) }
        try a.withLock { try a.record(ids, done: false, sync: true) }
        try b.withLock { #expect(b.count == 1000) }
        try a.trim()
        #expect(try FileSystem.readAll(dir + "/ids").count == 100 * DedupStore.entrySize)
        try b.withLock {
            #expect(b.count == 100)
            #expect(b.lookup(IDHash.of("id950"), nowMs: now) == Self.entry(now, 0, 950))
            #expect(b.lookup(IDHash.of("id10"), nowMs: now) == nil)
            try b.record([(IDHash.of("later"), Self.entry(now))], done: false, sync: true)
        }
        try a.withLock { #expect(a.lookup(IDHash.of("later"), nowMs: now) != nil) }
    }

    @Test func aTornAppendIsCut() throws {
        let dir = makeTempDirectory() + "/dedup"
        let a = try DedupStore(directory: dir, windowMs: 60_000)
        let now = currentTimeMillis()
        try a.withLock { try a.record([(IDHash.of("x"), Self.entry(now))], done: false, sync: true) }
        // A writer died after writing part of its next entry.
        var torn: [UInt8] = []
        DedupStore.encode(.id, hash: IDHash.of("y"), partition: 0, timestampMs: now, offset: 1, into: &torn)
        let h = try OpenFile.open(dir + "/ids", O_WRONLY)
        try Array(torn[0..<20]).withUnsafeBytes { try h.write($0, at: Int64(DedupStore.entrySize)) }
        h.close()
        let b = try DedupStore(directory: dir, windowMs: 60_000)
        try b.withLock {
            #expect(b.lookup(IDHash.of("x"), nowMs: now) != nil)
            #expect(b.lookup(IDHash.of("y"), nowMs: now) == nil)
        }
        #expect(try FileSystem.readAll(dir + "/ids").count == DedupStore.entrySize)
        // The next append goes where the torn one began.
        try b.withLock { try b.record([(IDHash.of("z"), Self.entry(now))], done: false, sync: true) }
        #expect(try FileSystem.readAll(dir + "/ids").count == 2 * DedupStore.entrySize)
    }

    /// Appends records with header "id" = each of `ids` to partition 0 of `topic`.
    static func write(_ log: LogDirectory, _ topic: String, ids: [String]) throws {
        let writer = try PartitionWriter(directory: log.topicPath(topic) + "/0", settings: .init())
        let builder = RecordBatchBuilder(codec: .none)
        for id in ids {
            let headers = RecordBatchBuilder.encodeHeaders([Header(name: "other", value: Array("o".utf8)), Header(name: "id", value: Array(id.utf8))])
            Array("v-\(id)".utf8).withUnsafeBytes { v in headers.withUnsafeBytes { h in
                builder.append(timestamp: 1_700_000_000_000, key: nil, value: v, headers: h)
            } }
        }
        _ = try builder.finish()
        try writer.append(builder.output)
        try writer.sync()
    }

    @Test func aChunkLeftByADeadWriterIsFinishedFromThePartitionTail() throws {
        let log = LogDirectory(root: makeTempDirectory())
        try log.createTopic("t", config: TopicConfig(partitions: 1))
        let dir = log.topicPath("t") + "/dedup"
        // Before the chunk: a record with an id that no producer with
        // --id-header wrote (not to be recorded by recovery).
        try Self.write(log, "t", ids: ["before"])
        let dead = try DedupStore(directory: dir, windowMs: 60_000)
        try dead.withLock {
            try dead.beginChunk([(partition: 0, offset: 1)], idHeader: "id")
            // The data reaches the log; the process dies before its ids and DONE.
            try Self.write(log, "t", ids: ["a", "b", "c"])
        }
        let next = try DedupStore(directory: dir, windowMs: 60_000)
        // Without a way to read the partitions, it refuses rather than forget.
        #expect(throws: MQError.self) { try next.withLock {} }
        next.recoverPartition = { p in log.topicPath("t") + "/\(p)" }
        let now = currentTimeMillis()
        try next.withLock {
            #expect(next.lookup(IDHash.of("a"), nowMs: now)?.offset == 1)
            #expect(next.lookup(IDHash.of("b"), nowMs: now)?.offset == 2)
            #expect(next.lookup(IDHash.of("c"), nowMs: now)?.offset == 3)
            #expect(next.lookup(IDHash.of("before"), nowMs: now) == nil)
        }
        #expect(next.recoveredIDs == 3)
        // The chunk is closed now: a third user has nothing to finish.
        let third = try DedupStore(directory: dir, windowMs: 60_000)
        try third.withLock { #expect(third.lookup(IDHash.of("b"), nowMs: now) != nil) }
        #expect(third.recoveredIDs == 0)
    }

    @Test func aChunkThatDiedBeforeWritingRecordsNothing() throws {
        let log = LogDirectory(root: makeTempDirectory())
        try log.createTopic("t", config: TopicConfig(partitions: 1))
        let dir = log.topicPath("t") + "/dedup"
        let dead = try DedupStore(directory: dir, windowMs: 60_000)
        try dead.withLock { try dead.beginChunk([(partition: 0, offset: 0)], idHeader: "id") }
        let next = try DedupStore(directory: dir, windowMs: 60_000)
        next.recoverPartition = { p in log.topicPath("t") + "/\(p)" }
        try next.withLock { #expect(next.count == 0) }
        #expect(next.recoveredIDs == 0)
    }

    @Test func theFileTrimsItselfOnceMostOfItIsPastTheWindow() throws {
        let dir = makeTempDirectory() + "/dedup"
        let a = try DedupStore(directory: dir, windowMs: 60_000)
        let now = currentTimeMillis()
        var ids: [(IDHash, DedupEntry)] = []
        for i in 0..<70_000 { ids.append((IDHash.of("old\(i)"), Self.entry(now - 120_000))) }
        try a.withLock { try a.record(ids, done: false, sync: true) }
        // The next use past 65,536 entries drops the expired ones from memory and the file.
        try a.withLock { try a.record([(IDHash.of("new"), Self.entry(now))], done: false, sync: true) }
        #expect(a.count == 1)
        #expect(try FileSystem.readAll(dir + "/ids").count == DedupStore.entrySize)
    }

    @Test func trimsKeepWhatTheLongestWindowNeeds() throws {
        let dir = makeTempDirectory() + "/dedup"
        let short = try DedupStore(directory: dir, windowMs: 60_000)
        let long = try DedupStore(directory: dir, windowMs: 3_600_000)
        let now = currentTimeMillis()
        try long.withLock { try long.record([(IDHash.of("ten minutes ago"), Self.entry(now - 600_000)), (IDHash.of("two hours ago"), Self.entry(now - 7_200_000))], done: false, sync: true) }
        #expect(DedupStore.declaredWindow(dir) == 3_600_000)
        // The short-window user does not see the ten-minute-old id, but its trim keeps it.
        try short.trim()
        #expect(short.retainMs == 3_600_000)
        try long.withLock {
            #expect(long.lookup(IDHash.of("ten minutes ago"), nowMs: now) != nil)
            #expect(long.lookup(IDHash.of("two hours ago"), nowMs: now) == nil)
        }
        #expect(try FileSystem.readAll(dir + "/ids").count == DedupStore.entrySize)
    }

    @Test func housekeepingDropsExpiredEntriesUnlessAChunkIsOpen() throws {
        let log = LogDirectory(root: makeTempDirectory())
        try log.createTopic("t", config: TopicConfig(partitions: 1))
        let dir = log.topicPath("t") + "/dedup"
        let a = try DedupStore(directory: dir, windowMs: 60_000)
        let now = currentTimeMillis()
        try a.withLock { try a.record([(IDHash.of("old"), Self.entry(now - 120_000)), (IDHash.of("new"), Self.entry(now))], done: false, sync: true) }
        #expect(try DedupStore.housekeep(directory: dir, now: now, dryRun: true) == 1)
        #expect(try FileSystem.readAll(dir + "/ids").count == 2 * DedupStore.entrySize)
        #expect(try DedupStore.housekeep(directory: dir, now: now, dryRun: false) == 1)
        #expect(try FileSystem.readAll(dir + "/ids").count == DedupStore.entrySize)
        try a.withLock { #expect(a.lookup(IDHash.of("new"), nowMs: now) != nil) }
        // An interrupted chunk is left for the next producer to finish.
        try a.withLock {
            try a.record([(IDHash.of("older"), Self.entry(now - 300_000))], done: false, sync: true)
            try a.beginChunk([(partition: 0, offset: 0)], idHeader: "id")
        }
        #expect(try DedupStore.housekeep(directory: dir, now: now, dryRun: false) == 0)
        // A store no user declared a window for is left alone.
        let bare = makeTempDirectory() + "/dedup"
        #expect(try DedupStore.housekeep(directory: bare, now: now, dryRun: false) == 0)
    }
}

