import Testing
import Glibc
@testable import MQLog

/// A log root with topic T of `partitions` partitions.
private func makeTopic(partitions: Int32 = 2) throws -> (root: String, dirs: [String]) {
    let root = makeTempDirectory()
    let log = LogDirectory(root: root)
    _ = try log.createTopic("T", config: TopicConfig(partitions: partitions))
    return (root, (0..<partitions).map { log.topicPath("T") + "/\($0)" })
}

/// Appends one transactional batch of `values` as `txn` would from mq-produce.
/// A builder holding one record per value.
private func builder(_ values: [String]) -> RecordBatchBuilder {
    let builder = RecordBatchBuilder(codec: .none)
    let noHeaders = RecordBatchBuilder.encodeHeaders([])
    for v in values {
        Array(v.utf8).withUnsafeBytes { value in noHeaders.withUnsafeBytes { h in
            builder.append(timestamp: 1_700_000_000_000, key: nil, value: value, headers: h)
        } }
    }
    return builder
}

private func appendTransactional(_ txn: ProducerTransaction, _ writer: PartitionWriter, partition: Int32, _ values: [String]) throws {
    let builder = builder(values)
    let (register, sequence) = try txn.willAppend(topic: "T", partition: partition, directory: writer.directory, records: builder.count)
    builder.producerId = txn.producerId
    builder.producerEpoch = txn.epoch
    builder.baseSequence = sequence
    builder.extraAttributes = BatchAttributes.transactional
    _ = try builder.finish()
    try writer.appendTransactional(builder.output, producerId: txn.producerId, epoch: txn.epoch, register: register)
}

private func appendPlain(_ writer: PartitionWriter, _ values: [String]) throws {
    let builder = builder(values)
    _ = try builder.finish()
    try writer.append(builder.output)
}

private func values(_ dir: String, from offset: Int64 = 0, isolation: ReadIsolation = .readCommitted) throws -> [String] {
    let cursor = try PartitionCursor(partition: 0, directory: dir, startOffset: offset, isolation: isolation)
    var out: [String] = []
    while let r = try cursor.peek() {
        out.append(String(decoding: r.value!, as: UTF8.self))
        cursor.advance()
    }
    return out
}

private func controlBatches(_ dir: String) throws -> [(offset: Int64, decision: TransactionDecision?)] {
    let reader = PartitionReader(directory: dir)
    try reader.seekToBeginning()
    var out: [(Int64, TransactionDecision?)] = []
    while let (header, bytes) = try reader.nextBatch() {
        guard header.isControl else { continue }
        let decoder = BatchDecoder()
        defer { withExtendedLifetime(decoder) {} }  // records point into its buffer
        var records = RecordIterator(records: try decoder.records(of: bytes, header: header), header: header)
        let r = try records.next()!
        out.append((header.baseOffset, TransactionMarker.decision(key: r.key)))
    }
    return out
}

private func transactionFiles(_ root: String) -> [String] {
    ((try? FileSystem.list(TransactionFiles.directory(root))) ?? []).sorted()
}

@Suite struct TransactionTests {
    @Test func recordsAndListsRoundTripAndRejectDamage() throws {
        var record = TransactionRecord(producerId: 0x7123_4567_89ab_cdef, startedMs: 42, timeoutMs: 900_000)
        record.partitions = [.init(topic: "a.b", partition: 3), .init(topic: "c", partition: 0)]
        let bytes = record.encode()
        #expect(TransactionRecord.decode(bytes) == record)
        var damaged = bytes
        damaged[20] ^= 1
        #expect(TransactionRecord.decode(damaged) == nil)

        let list = OpenTransactions(entries: [.init(producerId: 5, epoch: 0, firstOffset: 10), .init(producerId: 9, epoch: 1, firstOffset: 7)])
        #expect(OpenTransactions.decode(list.encode()) == list)
        #expect(list.firstOpenOffset == 7)
        var bad = list.encode()
        bad[bad.count - 6] ^= 0x40
        #expect(OpenTransactions.decode(bad) == nil)
    }

    @Test func readersStopAtTheLastStableOffsetUntilCommit() throws {
        let (root, dirs) = try makeTopic()
        let writer = try PartitionWriter(directory: dirs[0], settings: .init())
        try appendPlain(writer, ["a", "b"])
        let txn = try ProducerTransaction(root: root, timeoutMs: 900_000)
        try appendTransactional(txn, writer, partition: 0, ["t1", "t2"])
        try appendPlain(writer, ["c"])
        try appendTransactional(txn, writer, partition: 0, ["t3"])
        #expect(try values(dirs[0]) == ["a", "b"])
        #expect(try values(dirs[0], isolation: .readUncommitted) == ["a", "b", "t1", "t2", "c", "t3"])
        // A cursor that starts past the transaction's first offset is held too.
        #expect(try values(dirs[0], from: 4) == [])
        #expect(try writer.openTransactions().entries.map(\.firstOffset) == [2])

        // A follower blocked at the transaction proceeds once it commits.
        let follower = try PartitionCursor(partition: 0, directory: dirs[0], startOffset: 0)
        var seen: [String] = []
        while let r = try follower.peek() { seen.append(String(decoding: r.value!, as: UTF8.self)); follower.advance() }
        #expect(seen == ["a", "b"])
        try txn.commit(writers: [writer])
        while let r = try follower.peek() { seen.append(String(decoding: r.value!, as: UTF8.self)); follower.advance() }
        #expect(seen == ["a", "b", "t1", "t2", "c", "t3"])
        #expect(follower.nextOffset == 7)  // past the COMMIT marker
        #expect(try controlBatches(dirs[0]).map(\.decision) == [.commit])
        #expect(try writer.openTransactions().entries.isEmpty)
        #expect(transactionFiles(root).isEmpty)
    }

    @Test func abortedRecordsAreSkippedAndIndexed() throws {
        let (root, dirs) = try makeTopic()
        let w0 = try PartitionWriter(directory: dirs[0], settings: .init())
        let w1 = try PartitionWriter(directory: dirs[1], settings: .init())
        let txn = try ProducerTransaction(root: root, timeoutMs: 900_000)
        try appendTransactional(txn, w0, partition: 0, ["x1", "x2"])
        try appendPlain(w0, ["plain"])
        try appendTransactional(txn, w1, partition: 1, ["y1"])
        try txn.abort(writers: [w0, w1])
        try appendPlain(w0, ["after"])
        #expect(try values(dirs[0]) == ["plain", "after"])
        #expect(try values(dirs[1]) == [])
        #expect(try values(dirs[0], isolation: .readUncommitted) == ["x1", "x2", "plain", "after"])
        let index = try FileSystem.readAll(Segment(dirs[0], 0).txnIndexPath)
        #expect(index.count == AbortedTransaction.size)
        let entry = index.withUnsafeBytes { AbortedTransaction.decode($0.baseAddress!) }
        #expect(entry == AbortedTransaction(producerId: txn.producerId, firstOffset: 0, lastOffset: 3, lastStableOffset: 4))
        #expect(try controlBatches(dirs[0]).map(\.offset) == [3])
        #expect(transactionFiles(root).isEmpty)
    }

    @Test func anOrphanIsAbortedByTheNextReader() throws {
        let (root, dirs) = try makeTopic()
        let w0 = try PartitionWriter(directory: dirs[0], settings: .init())
        let w1 = try PartitionWriter(directory: dirs[1], settings: .init())
        do {
            let txn = try ProducerTransaction(root: root, timeoutMs: 900_000)
            try appendTransactional(txn, w0, partition: 0, ["x1"])
            try appendTransactional(txn, w1, partition: 1, ["y1"])
            try appendPlain(w0, ["plain"])
            // The transaction goes away without ending: its lock is released
            // as a dead process's would be.
        }
        #expect(transactionFiles(root).count == 2)  // record and lock
        #expect(try values(dirs[0]) == ["plain"])
        // Recovery finished every partition of the record, not only the one read.
        #expect(try w1.openTransactions().entries.isEmpty)
        #expect(try controlBatches(dirs[1]).map(\.decision) == [.abort])
        #expect(try values(dirs[1]) == [])
        #expect(transactionFiles(root).isEmpty)
    }

    @Test func aDecidedCommitIsCompletedByRecoveryWithoutASecondMarker() throws {
        let (root, dirs) = try makeTopic()
        let w0 = try PartitionWriter(directory: dirs[0], settings: .init())
        let w1 = try PartitionWriter(directory: dirs[1], settings: .init())
        var pid: Int64 = 0
        do {
            let txn = try ProducerTransaction(root: root, timeoutMs: 900_000)
            pid = txn.producerId
            try appendTransactional(txn, w0, partition: 0, ["x1", "x2"])
            try appendTransactional(txn, w1, partition: 1, ["y1"])
            // Dies after the commit point, having finished partition 0 but
            // before that partition's list lost it (marker written, list not).
            #expect(try TransactionDecision.decide(.commit, root, pid) == .commit)
            // Once made, a decision stands.
            #expect(try TransactionDecision.decide(.abort, root, pid) == .commit)
            let listBefore = try w0.openTransactions()
            try w0.finishTransaction(producerId: pid, decision: .commit)
            try listBefore.write(partition: dirs[0])
        }
        #expect(try values(dirs[1]) == ["y1"])
        #expect(try values(dirs[0]) == ["x1", "x2"])
        #expect(try controlBatches(dirs[0]).map(\.decision) == [.commit])
        #expect(try controlBatches(dirs[1]).map(\.decision) == [.commit])
        #expect(try w0.openTransactions().entries.isEmpty)
        #expect(transactionFiles(root).isEmpty)
    }

    @Test func aTimedOutTransactionIsAbortedAndItsProducerFenced() throws {
        let (root, dirs) = try makeTopic()
        let w0 = try PartitionWriter(directory: dirs[0], settings: .init())
        let txn = try ProducerTransaction(root: root, timeoutMs: 1)
        try appendTransactional(txn, w0, partition: 0, ["x1"])
        usleep(5_000)
        // Its lock is held (it is alive), but its timeout passed.
        #expect(try values(dirs[0]) == [])
        #expect(try w0.openTransactions().entries.isEmpty)
        #expect(try TransactionDecision.read(root, txn.producerId) == .abort)
        // Further writes and the commit fail as fenced.
        #expect(throws: MQError.self) { try appendTransactional(txn, w0, partition: 0, ["x2"]) }
        do {
            try txn.commit(writers: [w0])
            Issue.record("commit of a fenced transaction succeeded")
        } catch let e as MQError {
            #expect(e.status == .tempFail)
        }
        #expect(try values(dirs[0], isolation: .readUncommitted) == ["x1"])
        #expect(try values(dirs[0]) == [])
        #expect(transactionFiles(root).isEmpty)
    }

    @Test func aLiveTransactionWithinItsTimeoutIsLeftAlone() throws {
        let (root, dirs) = try makeTopic()
        let w0 = try PartitionWriter(directory: dirs[0], settings: .init())
        let txn = try ProducerTransaction(root: root, timeoutMs: 900_000)
        try appendTransactional(txn, w0, partition: 0, ["x1"])
        #expect(try TransactionRecovery.resolve(partitionDir: dirs[0], producerId: txn.producerId) == .live)
        #expect(try TransactionRecovery.lastStableOffset(partitionDir: dirs[0], logEnd: 1) == 0)
        try TransactionRecovery.recoverOrphans(root: root)
        #expect(try w0.openTransactions().entries.count == 1)
        try txn.commit(writers: [w0])
        #expect(try TransactionRecovery.lastStableOffset(partitionDir: dirs[0], logEnd: 2) == 2)
        #expect(try values(dirs[0]) == ["x1"])
    }

    @Test func temporariesOfADeadProducerAreRemovedThoseOfALiveOneKept() throws {
        let (root, _) = try makeTopic()
        let dir = TransactionFiles.directory(root)
        try FileSystem.makeDirectories(dir)
        // 4194303, the very last process id Linux can hand out: practically never in use.
        let dead = ["00000000000000aa.~tmp.4194303", "new.lock.~tmp.4194303"]
        let live = ["00000000000000bb.~tmp.\(getpid())"]
        for name in dead + live { try FileSystem.writeAtomically(dir + "/" + name, []) }
        try TransactionRecovery.recoverOrphans(root: root)
        #expect(transactionFiles(root) == live)
    }

    @Test func abortMarkersAcrossARollIndexTheMarkersSegment() throws {
        let (root, dirs) = try makeTopic()
        let w0 = try PartitionWriter(directory: dirs[0], settings: .init(segmentBytes: 200))
        let txn = try ProducerTransaction(root: root, timeoutMs: 900_000)
        for i in 0..<5 { try appendTransactional(txn, w0, partition: 0, ["value number \(i) of a long enough batch"]) }
        try txn.abort(writers: [w0])
        let segments = try LogSegments.baseOffsets(in: dirs[0])
        #expect(segments.count > 1)
        let marker = try controlBatches(dirs[0]).first!.offset
        let holder = segments.last { $0 <= marker }!
        #expect(FileSystem.exists(Segment(dirs[0], holder).txnIndexPath))
        #expect(try values(dirs[0]) == [])
    }

    @Test func mergingTxnIndexesKeepsEveryEntryOnceAcrossReruns() throws {
        let dir = makeTempDirectory()
        let a = AbortedTransaction(producerId: 1, firstOffset: 0, lastOffset: 5, lastStableOffset: 6)
        let b = AbortedTransaction(producerId: 2, firstOffset: 7, lastOffset: 12, lastStableOffset: 13)
        let c = AbortedTransaction(producerId: 3, firstOffset: 14, lastOffset: 20, lastStableOffset: 21)
        try FileSystem.writeAtomically(Segment(dir, 0).txnIndexPath, a.encode())
        try FileSystem.writeAtomically(Segment(dir, 10).txnIndexPath, b.encode() + c.encode())
        try TxnIndexFiles.merge(into: 0, from: [0, 10, 15], in: dir)
        // A crash before the old file was removed: the rerun adds nothing twice.
        try TxnIndexFiles.merge(into: 0, from: [0, 10, 15], in: dir)
        #expect(try FileSystem.readAll(Segment(dir, 0).txnIndexPath) == a.encode() + b.encode() + c.encode())
    }
}
