import Testing
import Glibc
@testable import MQLog

@Suite struct WriterPoolTests {
    /// Three partition directories under a fresh temporary directory.
    private func partitions(_ n: Int) throws -> (root: String, dirs: [String]) {
        let root = makeTempDirectory()
        let dirs = (0..<n).map { root + "/\($0)" }
        for d in dirs { _ = try FileSystem.makeDirectory(d) }
        return (root, dirs)
    }

    /// The durable part of a partition as its head file records it.
    private func flushed(_ dir: String) throws -> (flushed: Int64, end: Int64) {
        let w = try PartitionWriter(directory: dir, settings: .init())
        _ = try w.currentEndOffset()
        return (w.state.flushedPosition, w.state.endPosition)
    }

    @Test func closesTheLeastRecentlyUsedWriter() throws {
        let (root, dirs) = try partitions(3)
        defer { try? FileSystem.removeTree(root) }
        let pool = WriterPool(capacity: 2)
        let a = try pool.writer(dirs[0], settings: .init())
        let b = try pool.writer(dirs[1], settings: .init())
        #expect(try pool.writer(dirs[0], settings: .init()) === a)  // a is now the most recent
        _ = try pool.writer(dirs[2], settings: .init())
        #expect(pool.openCount == 2 && pool.evictions == 1)
        #expect(try pool.writer(dirs[0], settings: .init()) === a)
        #expect(try pool.writer(dirs[1], settings: .init()) !== b)   // b was closed and opened again
        #expect(pool.evictions == 2)
    }

    @Test func syncCoversAppendsOfClosedWriters() throws {
        let (root, dirs) = try partitions(5)
        defer { try? FileSystem.removeTree(root) }
        let pool = WriterPool(capacity: 2)
        for (i, d) in dirs.enumerated() {
            try appendMessages(try pool.writer(d, settings: .init()), from: 0, count: 10 + i, perBatch: 5)
        }
        #expect(pool.openCount == 2 && pool.evictions == 3)
        // Closing did not fsync: the closed writers' appends are not yet durable.
        for d in dirs.prefix(3) {
            let (f, e) = try flushed(d)
            #expect(f == 0 && e > 0)
        }
        try pool.sync(dirs[0])
        #expect(try flushed(dirs[0]).flushed == flushed(dirs[0]).end)
        #expect(try flushed(dirs[1]).flushed == 0)
        try pool.syncAll()
        for d in dirs {
            let (f, e) = try flushed(d)
            #expect(f == e && e > 0, "\(d): flushed \(f) of \(e)")
        }
        #expect(pool.openCount <= 2)
    }

    @Test func manyPartitionsAreSyncedAtOnceWhereTheFileSystemAllows() throws {
        let n = FileSystemSync.threshold + 8
        let (root, dirs) = try partitions(n)
        defer { try? FileSystem.removeTree(root) }
        let pool = WriterPool(capacity: 8)
        for (i, d) in dirs.enumerated() {
            try appendMessages(try pool.writer(d, settings: .init()), from: 0, count: 3 + i % 4, perBatch: 2)
        }
        let evicted = pool.evictions
        #expect(evicted == n - 8)
        let atOnce = try FileSystemSync.syncAll(holding: [root])
        try pool.syncAll()
        if atOnce {
            // One syncfs: the closed writers' partitions were not opened again to be synced.
            #expect(pool.evictions == evicted)
        }
        for d in dirs {
            let (f, e) = try flushed(d)
            #expect(f == e && e > 0, "\(d): flushed \(f) of \(e)")
        }
    }

    @Test func aTransactionCommitsThroughClosedWriters() throws {
        let (root, dirs) = try partitions(4)
        defer { try? FileSystem.removeTree(root) }
        let pool = WriterPool(capacity: 1)
        let txn = try ProducerTransaction(root: root, timeoutMs: 60_000)
        for (p, d) in dirs.enumerated() {
            let builder = RecordBatchBuilder(codec: .none)
            let h = RecordBatchBuilder.encodeHeaders([])
            h.withUnsafeBytes { hp in Array("m\(p)".utf8).withUnsafeBytes { v in builder.append(timestamp: 1, key: nil, value: v, headers: hp) } }
            let (register, sequence) = try txn.willAppend(topic: "t", partition: Int32(p), directory: d, records: 1)
            builder.producerId = txn.producerId
            builder.producerEpoch = txn.epoch
            builder.baseSequence = sequence
            builder.extraAttributes = BatchAttributes.transactional
            _ = try builder.finish()
            try pool.writer(d, settings: .init()).appendTransactional(builder.output, producerId: txn.producerId, epoch: txn.epoch, register: register)
        }
        try txn.commit(pool: pool)
        for d in dirs {
            let w = try PartitionWriter(directory: d, settings: .init())
            #expect(try w.openTransactions().entries.isEmpty)
            #expect(try w.currentEndOffset() == 2)   // the record and the COMMIT marker
            #expect(w.state.flushedNextOffset == 2)
        }
    }

    @Test func aWriterOpensItsIndexesOnlyForAnEntry() throws {
        let (root, dirs) = try partitions(1)
        defer { try? FileSystem.removeTree(root) }
        let dir = dirs[0]
        let segment = Segment(dir, 0)
        func open(_ path: String) -> Int { ReaderPoolTests.descriptorsOpen(on: path) }
        // As `mq-topic create` leaves a partition: nothing for the writer to recover.
        try PartitionWriter.createFiles(in: dir, now: currentTimeMillis())
        let w = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 4096))
        // Small batches, less than the index interval in all: no entry, no index open.
        try appendMessages(w, from: 0, count: 20, perBatch: 5)
        #expect(open(segment.logPath) == 1)
        #expect(open(segment.indexPath) == 0 && open(segment.timeIndexPath) == 0)
        #expect(w.state.indexBytes == 0)
        // Past the interval: the entries are written, the indexes now open.
        try appendMessages(w, from: 20, count: 400, perBatch: 100)
        #expect(w.state.indexBytes > 0 && w.state.timeIndexBytes > 0)
        #expect(open(segment.indexPath) == 1 && open(segment.timeIndexPath) == 1)
        #expect(FileSystem.size(segment.indexPath) == w.state.indexBytes)
        #expect(FileSystem.size(segment.timeIndexPath) == w.state.timeIndexBytes)
    }
}
