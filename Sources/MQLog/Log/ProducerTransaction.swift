import Glibc

/// One producer's transaction across any partitions of any topics
/// (docs/FORMAT.md §18). The producer holds the lock of its record for its
/// whole life: while it is held, the transaction is alive.
///
/// Use: `begin`, then `willAppend` before each transactional batch (it says
/// whether the partition must register the transaction), then `commit` or
/// `abort`. Not thread-safe.
public final class ProducerTransaction {
    public let root: String
    public let producerId: Int64
    public let epoch: Int16 = 0
    private let lock: OpenFile
    private var record: TransactionRecord
    private var registered: Set<String> = []
    /// Batches written per partition directory: the next base sequence.
    private var sequences: [String: Int32] = [:]

    /// Creates and locks the record of a new transaction with a fresh random producer id.
    public init(root: String, timeoutMs: Int64) throws {
        self.root = root
        let dir = TransactionFiles.directory(root)
        if try FileSystem.makeDirectory(dir) { try FileSystem.syncDirectory(root) }
        // The lock file gets its name only once it is locked: a lock file
        // that is there and free always means a producer that is gone.
        let tmp = dir + "/new.lock.~tmp.\(getpid())"
        let handle = try OpenFile.open(tmp, O_RDONLY | O_CREAT | O_TRUNC, creating: true)
        defer { try? FileSystem.remove(tmp) }
        var pid: Int64 = 0
        do {
            try handle.lock(exclusive: true)
            repeat {
                pid = Int64.random(in: 1...Int64.max)
            } while try !FileSystem.link(tmp, to: TransactionFiles.lock(root, pid))
        } catch {
            handle.close()
            throw error
        }
        self.producerId = pid
        self.lock = handle
        record = TransactionRecord(producerId: pid, startedMs: currentTimeMillis(), timeoutMs: timeoutMs)
        try FileSystem.writeAtomically(TransactionFiles.record(root, pid), record.encode())
    }

    deinit { lock.close() }

    /// Call before appending a batch of this transaction to a partition.
    /// Records the partition in the transaction record first (fsynced), so
    /// that recovery knows every partition that may hold its batches.
    /// - Returns: whether the append must register the transaction in the
    ///   partition's open list, and the batch's base sequence.
    public func willAppend(topic: String, partition: Int32, directory: String, records: Int32) throws -> (register: Bool, baseSequence: Int32) {
        let sequence = sequences[directory] ?? 0
        sequences[directory] = sequence &+ records
        if registered.contains(directory) { return (false, sequence) }
        if try TransactionDecision.read(root, producerId) == .abort { throw TransactionError.fenced(producerId) }
        record.partitions.append(TransactionRecord.Partition(topic: topic, partition: partition))
        try FileSystem.writeAtomically(TransactionFiles.record(root, producerId), record.encode())
        registered.insert(directory)
        return (true, sequence)
    }

    /// Number of partitions the transaction wrote to.
    public var partitionCount: Int { registered.count }

    /// Commits: makes every batch durable, records the decision (the commit
    /// point), then writes the COMMIT markers and removes the record.
    /// - Parameter pool: the pool the transaction's batches were written
    ///   through (its writers may have been closed since).
    /// - Throws: `TransactionError.fenced` when another process aborted the
    ///   transaction first (its timeout passed).
    public func commit(pool: WriterPool) throws {
        for d in registered.sorted() { try pool.sync(d) }
        let decision = try TransactionDecision.decide(.commit, root, producerId)
        try finish(pool: pool, decision: decision)
        if decision == .abort { throw TransactionError.fenced(producerId) }
    }

    /// Aborts: records the decision, then the .txnindex entries and ABORT
    /// markers, and removes the record.
    public func abort(pool: WriterPool) throws {
        let decision = try TransactionDecision.decide(.abort, root, producerId)
        try finish(pool: pool, decision: decision)
    }

    /// `commit(pool:)` with the writers of every partition written to.
    public func commit(writers: [PartitionWriter]) throws { try commit(pool: WriterPool(adopting: writers)) }

    /// `abort(pool:)` with the writers of every partition written to.
    public func abort(writers: [PartitionWriter]) throws { try abort(pool: WriterPool(adopting: writers)) }

    private func finish(pool: WriterPool, decision: TransactionDecision) throws {
        let directories = registered.sorted()
        for d in directories {
            try pool.writer(d).finishTransaction(producerId: producerId, decision: decision)
        }
        for d in directories { try pool.sync(d) }
        try FileSystem.remove(TransactionFiles.record(root, producerId))
        try FileSystem.remove(TransactionFiles.decision(root, producerId))
        try FileSystem.remove(TransactionFiles.lock(root, producerId))
        try FileSystem.syncDirectory(TransactionFiles.directory(root))
    }
}
