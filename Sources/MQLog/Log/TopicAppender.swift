/// When appended data is fsynced (`mq-produce --sync`).
public enum SyncPolicy: String, Sendable, CaseIterable {
    /// Once, before a successful exit (and on SIGINT/SIGTERM).
    case exit
    /// After every batch, before its offsets are printed.
    case batch
    /// Never: the operating system writes the data back in its own time.
    case none
}

/// Appends messages to one topic: the one way every tool writes messages
/// (`mq-produce`, dead letters, the delay mover, and copies: `CopyWriter`,
/// which builds its own batches and writes them with `write(_:to:)`).
///
/// It chooses partitions (a forced one, else murmur2 of the key, else a
/// sticky partition that moves on after each batch), collects one batch per
/// partition, writes a batch when it is full (`batchMessages` records, or
/// `batchBytes` of records) and all of them when pending records pass
/// `maxPendingBytes`, opens partitions through a `WriterPool`, and fsyncs as
/// `sync` says (`.batch`: after every batch; `.exit`: in `syncAll`).
///
/// Batch buffers start small and grow, so 10,000 partitions with a partial
/// batch each cost their records, not 10,000 × `batchBytes`.
///
/// With `writeInBackground`, batches are written on a thread of their own
/// while the next ones fill (see there).
/// Not thread-safe.
final class TopicAppender {
    let topic: Topic
    let pool: WriterPool
    let sync: SyncPolicy
    let codec: CompressionCodec
    /// Most records in one batch.
    let batchMessages: Int
    /// Most bytes of records (before compression) in one batch.
    let batchBytes: Int
    /// All pending batches are written when their records pass this.
    let maxPendingBytes: Int
    /// Settings of the partitions' writers.
    let settings: PartitionWriter.Settings
    /// The partition of every message (`-p`), if any.
    let fixedPartition: Int32?
    /// When set, batches are written as part of this transaction.
    var transaction: ProducerTransaction?
    /// Called after `flushAll` with each message's partition and offset, in
    /// the order the messages were added (`--print-offsets`).
    var placed: (([(partition: Int32, offset: Int64)]) throws -> Void)? {
        didSet { tracksOrder = placed != nil }
    }
    /// `placed != nil`, read per message without copying the closure.
    private var tracksOrder = false

    private var builders: [RecordBatchBuilder?]
    /// `builders`, unretained, for the per-record path.
    private var builderRefs: [Unmanaged<RecordBatchBuilder>?]
    private var order: [Int32] = []
    private(set) var pendingCount = 0
    private var pendingBytes = 0
    /// When the oldest pending message was added (monotonic ns).
    private(set) var oldestPendingNanos: UInt64 = 0
    private(set) var sticky: Int32
    /// Writes the batches handed to it (`writeInBackground`).
    private var background: BackgroundWorker?
    /// The partitions and builders of the batches handed to `background`.
    private var handedOver: [(partition: Int, builder: RecordBatchBuilder)] = []
    /// Builders free for reuse, from batches `background` wrote.
    private var spare: [RecordBatchBuilder?] = []
    /// Messages held back to reach their batches partition by partition
    /// (`writeInBackground` over many partitions; counted pending).
    private var staged: StagedRecords? {
        didSet { stagedRef = staged.map { Unmanaged.passUnretained($0) } }
    }
    /// `staged`, unretained, for the per-message path.
    private var stagedRef: Unmanaged<StagedRecords>?

    /// The default of `maxPendingBytes` for `partitions` partitions: 32 MiB,
    /// or `partitionShare` per partition when that is more (up to
    /// `pendingCeiling`), so that a topic of many partitions still gets
    /// batches of a useful size before memory forces them out: 10,000
    /// partitions under 32 MiB would be written in batches of 3 KiB, each
    /// costing the same lock, state read and write as a batch of a megabyte.
    /// Kafka's producer has the same trade-off between `batch.size` (16 KB
    /// per partition) and `buffer.memory`.
    static func defaultMaxPendingBytes(partitions: Int32) -> Int {
        min(max(32 << 20, Int(partitions) * partitionShare), pendingCeiling)
    }

    /// The least a partition's pending batch may reach before all are written (see `defaultMaxPendingBytes`).
    static let partitionShare = 16 << 10
    /// The most pending bytes however many partitions there are.
    static let pendingCeiling = 256 << 20

    init(topic: Topic, pool: WriterPool, sync: SyncPolicy, codec: CompressionCodec, batchMessages: Int, batchBytes: Int,
         maxPendingBytes: Int? = nil, settings: PartitionWriter.Settings, fixedPartition: Int32? = nil) {
        self.topic = topic
        self.pool = pool
        self.sync = sync
        self.codec = codec
        self.batchMessages = batchMessages
        self.batchBytes = batchBytes
        self.maxPendingBytes = maxPendingBytes ?? Self.defaultMaxPendingBytes(partitions: topic.partitions)
        self.settings = settings
        self.fixedPartition = fixedPartition
        self.builders = Array(repeating: nil, count: Int(topic.partitions))
        self.builderRefs = Array(repeating: nil, count: Int(topic.partitions))
        self.sticky = Int32.random(in: 0..<topic.partitions)
    }

    // MARK: Partitions

    /// The fixed partition, else `forced`, else the key's (murmur2), else `otherwise`.
    @inline(__always)
    func partition(forced: Int32?, key: UnsafeRawBufferPointer?, otherwise: @autoclosure () -> Int32) -> Int32 {
        if let p = forced ?? fixedPartition { return p }
        if let key { return Partitioner.partition(forKey: key, partitions: topic.partitions) }
        return otherwise()
    }

    /// The sticky partition moves on (after a batch, or a chunk, was written to it).
    func advanceSticky() {
        if fixedPartition == nil { sticky = (sticky + 1) % topic.partitions }
    }

    func directory(_ partition: Int32) -> String { topic.partitionPath(partition) }

    /// The writer of `partition` (from the pool; do not keep it across another call).
    func writer(_ partition: Int32) throws -> PartitionWriter {
        try pool.writer(directory(partition), settings: settings)
    }

    // MARK: Adding messages

    /// Adds one message to its partition's batch, writing batches as they fill.
    /// - Parameters:
    ///   - recordSize: `RecordBatchBuilder.maxRecordSize` of the message.
    ///   - partition: a partition to use instead of choosing one.
    @inline(__always)
    func add(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer,
             partition forced: Int32?, timestamp: Int64, recordSize: Int) throws {
        if let stagedRef, try stagedRef._withUnsafeGuaranteedRef({
            try hold(in: $0, key: key, value: value, headers: headers, partition: forced, timestamp: timestamp, recordSize: recordSize)
        }) { return }
        let p = partition(forced: forced, key: key, otherwise: sticky)
        try append(to: p, key: key, value: value, headers: headers, timestamp: timestamp, recordSize: recordSize)
        if tracksOrder { order.append(p) }
        try countPending(recordSize)
    }

    /// Counts one more message pending (added to its batch or held back),
    /// and writes all pending batches once they pass `maxPendingBytes`.
    @inline(__always)
    private func countPending(_ recordSize: Int) throws {
        if pendingCount == 0 { oldestPendingNanos = monotonicNanos() }
        pendingCount += 1
        pendingBytes += recordSize
        // Bound memory when many partitions each hold a partial batch.
        if pendingBytes > maxPendingBytes { try flushAll() }
    }

    /// Holds the message back in `staged` when its partition does not depend
    /// on what was written before it (the sticky one does) and it is not too
    /// large; otherwise first adds those held, so that it comes after them.
    /// - Returns: true when it is held.
    @inline(__always)
    private func hold(in staged: StagedRecords, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer,
                      partition forced: Int32?, timestamp: Int64, recordSize: Int) throws -> Bool {
        guard forced != nil || key != nil, recordSize <= staged.largestRecord else {
            try addStaged()
            return false
        }
        let p = partition(forced: forced, key: key, otherwise: sticky)
        if !staged.stage(partition: p, timestamp: timestamp, key: key, value: value, headers: headers, recordSize: recordSize) {
            try addStaged()
            // The arena is empty now and the record below its largest: it
            // fits. Were it not to, it is added at once, never dropped.
            if !staged.stage(partition: p, timestamp: timestamp, key: key, value: value, headers: headers, recordSize: recordSize) {
                try append(to: p, key: key, value: value, headers: headers, timestamp: timestamp, recordSize: recordSize)
            }
        }
        try countPending(recordSize)
        return true
    }

    /// Adds the messages held back (`staged`) to their partitions' batches.
    private func addStaged() throws {
        guard let staged, !staged.isEmpty else { return }
        try staged.drain { p, timestamp, key, value, headers, recordSize in
            try append(to: p, key: key, value: value, headers: headers, timestamp: timestamp, recordSize: recordSize)
        }
    }

    /// Appends one message to partition `p`'s batch, first writing that
    /// batch when the message would not fit (the counts of what is pending
    /// are the caller's).
    @inline(__always)
    private func append(to p: Int32, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer,
                        timestamp: Int64, recordSize: Int) throws {
        // Used without retaining it (`builders` keeps it): over many
        // partitions, each record goes to a builder whose lines have left the
        // cache, and a reference count changed there is a locked instruction
        // that waits for them.
        var unretained = builderRefs[Int(p)] ?? newBuilder(p)
        let full = unretained._withUnsafeGuaranteedRef { b in
            !b.isEmpty && (b.recordBytes + recordSize > batchBytes || Int(b.count) >= batchMessages)
        }
        if full {
            if tracksOrder { try flushAll() } else { try flush(p) }
            // Written in the background, the batch went with its builder.
            unretained = builderRefs[Int(p)] ?? newBuilder(p)
        }
        unretained._withUnsafeGuaranteedRef { $0.append(timestamp: timestamp, key: key, value: value, headers: headers) }
    }

    /// Adds a message held as arrays (`add(key:value:headers:…)` for bytes already at hand).
    func add(_ m: Message, partition forced: Int32?, timestamp: Int64) throws {
        let headers = RecordBatchBuilder.encodeHeaders(m.headers)
        let size = RecordBatchBuilder.maxRecordSize(keyCount: m.key?.count, valueCount: m.value?.count, encodedHeadersCount: headers.count)
        try headers.withUnsafeBytes { h in
            try withOptionalBytes(m.key) { k in
                try withOptionalBytes(m.value) { v in
                    try add(key: k, value: v, headers: h, partition: forced, timestamp: timestamp, recordSize: size)
                }
            }
        }
    }

    @inline(never)
    private func newBuilder(_ partition: Int32) -> Unmanaged<RecordBatchBuilder> {
        // One partition gets the whole batch size at once; many start small.
        let b = RecordBatchBuilder(codec: codec, capacity: topic.partitions == 1 ? batchBytes : min(batchBytes, 16 << 10))
        builders[Int(partition)] = b
        builderRefs[Int(partition)] = Unmanaged.passUnretained(b)
        return Unmanaged.passUnretained(b)
    }

    /// How much storage an emptied builder keeps for its next batch.
    private var keptCapacity: Int { topic.partitions == 1 ? 8 << 20 : 64 << 10 }

    // MARK: Writing

    /// Writes one partition's pending batch (and fsyncs it with `.batch`).
    /// - Returns: its base offset, or nil when nothing was pending.
    /// With `writeInBackground`, hands it over instead, and returns nil.
    @discardableResult
    func flush(_ partition: Int32) throws -> Int64? {
        if background != nil {
            try handOver([Int(partition)])
            return nil
        }
        guard let builder = builders[Int(partition)], !builder.isEmpty else { return nil }
        let count = Int(builder.count)
        let base = try write(builder, to: partition)
        builder.reset(keepCapacity: keptCapacity)
        pendingCount -= count
        if pendingCount == 0 { pendingBytes = 0 }
        if partition == sticky { advanceSticky() }
        return base
    }

    /// Appends the records of `builder` as one batch (of the transaction, if
    /// any) and fsyncs it with `.batch`. Leaves the builder finished.
    /// - Returns: the batch's base offset.
    func write(_ builder: RecordBatchBuilder, to partition: Int32) throws -> Int64 {
        let w = try writer(partition)
        let base: Int64
        if let transaction {
            let (register, sequence) = try transaction.willAppend(topic: topic.name, partition: partition, directory: w.directory, records: builder.count)
            builder.producerId = transaction.producerId
            builder.producerEpoch = transaction.epoch
            builder.baseSequence = sequence
            builder.extraAttributes = BatchAttributes.transactional
            _ = try builder.finish()
            base = try w.appendTransactional(builder.output, producerId: transaction.producerId, epoch: transaction.epoch, register: register)
        } else {
            base = try Self.append(builder, with: w, startingWriteback: false)
        }
        if sync == .batch { try w.sync() }
        return base
    }

    /// Finishes `builder`'s batch (CRC-32C, compression) and appends it with
    /// `w`; `startingWriteback` (many partitions, whose batches each stay
    /// below the writeback size) then starts the writeback of what `w` has
    /// not started. The write of a batch, on either thread.
    /// - Returns: the batch's base offset.
    private static func append(_ builder: RecordBatchBuilder, with w: PartitionWriter, startingWriteback: Bool) throws -> Int64 {
        _ = try builder.finish()
        let base = try w.append(builder.output)
        if startingWriteback { w.startPendingWriteback() }
        return base
    }

    /// Writes every pending batch, in partition order, then reports where
    /// each message went (`placed`).
    /// With `writeInBackground`, hands them over instead (see there).
    func flushAll() throws {
        guard pendingCount > 0 else { return }
        try addStaged()
        if background != nil {
            try handOver(nil)
            return
        }
        var next = [Int64](repeating: -1, count: placed != nil ? builders.count : 0)
        for p in flushOrder() {
            guard let base = try flush(Int32(p)) else { continue }
            if placed != nil { next[p] = base }
            // Many partitions' batches each stay below the writeback size.
            if topic.partitions > 1 { try writer(Int32(p)).startPendingWriteback() }
        }
        pendingBytes = 0
        if let placed {
            var offsets: [(partition: Int32, offset: Int64)] = []
            offsets.reserveCapacity(order.count)
            for p in order {
                offsets.append((p, next[Int(p)]))
                next[Int(p)] += 1
            }
            order.removeAll(keepingCapacity: true)
            try placed(offsets)
        }
    }

    /// The partitions in the order `flushAll` writes them: in partition
    /// order, unless more have batches pending than the pool keeps open;
    /// then those whose writer is open go first, so that a round over
    /// 10,000 partitions reopens all but the pool's capacity of them instead
    /// of every one (least recently used first would close each writer just
    /// before its turn comes again).
    private func flushOrder() -> [Int] {
        let pending = builders.indices.filter { builders[$0].map { !$0.isEmpty } ?? false }
        guard pending.count > pool.capacity else { return pending }
        let open = pending.filter { pool.isOpen(directory(Int32($0))) }
        return open + pending.filter { !pool.isOpen(directory(Int32($0))) }
    }

    /// Makes every batch written durable, unless the policy is `.none`.
    /// With `writeInBackground`, first waits for the batches handed over,
    /// and the background thread records half of what the sync made
    /// durable while this one records the other half.
    func syncAll() throws {
        try waitForWrites()
        guard sync != .none else { return }
        try pool.syncAll(alongside: background)
    }

    /// Writes every pending batch and makes them durable (`syncAll`): the
    /// end of the input. With `writeInBackground`, this thread, which has
    /// nothing else left to do, writes half of the last round while the
    /// background thread writes the other half, instead of waiting for it.
    func finishAll() throws {
        try addStaged()
        if let background, pendingCount > 0 {
            try waitForWrites()
            try writeOnBothThreads(background)
        } else {
            try flushAll()
        }
        try syncAll()
    }

    /// Writes the pending batches with the background thread, a chunk of
    /// at most the pool's capacity at a time: this thread takes the chunk's
    /// writers from the pool (which is not thread-safe, and which then
    /// closes only writers of earlier chunks), then each thread appends
    /// half of the chunk through its own writers.
    private func writeOnBothThreads(_ background: BackgroundWorker) throws {
        let partitions = flushOrder()
        let startWriteback = topic.partitions > 1
        var from = 0
        while from < partitions.count {
            let chunk = Array(partitions[from..<min(from + pool.capacity, partitions.count)])
            from += chunk.count
            let writers = try chunk.map { try writer(Int32($0)) }
            let batches = chunk.map { builders[$0]! }
            try background.inHalves(chunk.count) { range in
                for k in range { _ = try Self.append(batches[k], with: writers[k], startingWriteback: startWriteback) }
            }
            for (p, b) in zip(chunk, batches) {
                pendingCount -= Int(b.count)
                b.reset(keepCapacity: keptCapacity)
                if Int32(p) == sticky { advanceSticky() }
            }
        }
        pendingBytes = 0
    }

    /// Bytes cut by recoveries when opening `partition` (a writer died
    /// mid-append). With `writeInBackground`, only after `syncAll`.
    func recoveredBytesDropped(_ partition: Int32) -> Int64 { pool.recoveredBytesDropped(directory(partition)) }

    // MARK: Writing in the background

    /// From now on, `flush` and `flushAll` hand the pending batches to a
    /// thread of their own and return: it writes them while the next ones
    /// fill, and the next handing over waits for it. Memory holds up to two
    /// rounds of pending batches (`maxPendingBytes` each).
    ///
    /// Only for a caller that needs no offset when a flush returns: does
    /// nothing with `placed`, a transaction or `sync == .batch`. A write's
    /// error is thrown by a later `flush`, `flushAll` or `syncAll` (and
    /// nothing handed over after the failed round is written); `syncAll`
    /// waits for everything handed over, so what it reports durable is.
    func writeInBackground() throws {
        guard background == nil, placed == nil, transaction == nil, sync != .batch else { return }
        background = try BackgroundWorker()
        spare = Array(repeating: nil, count: builders.count)
        if topic.partitions >= StagedRecords.minimumPartitions && fixedPartition == nil {
            staged = StagedRecords(partitions: topic.partitions)
        }
    }

    /// Returns when every batch handed over is written (`writeInBackground`),
    /// and takes their builders back for reuse.
    /// - Throws: the error of a write in the background.
    func waitForWrites() throws {
        guard let background else { return }
        try background.wait()
        for (p, b) in handedOver {
            b.reset(keepCapacity: keptCapacity)
            spare[p] = b
        }
        handedOver.removeAll(keepingCapacity: true)
    }

    /// Hands the pending batches of `partitions` (nil: all, in `flushOrder`)
    /// to the background thread, after the previous ones are written; their
    /// partitions get spare builders, or new ones when a message comes.
    private func handOver(_ partitions: [Int]?) throws {
        try waitForWrites()
        // The pool is idle now: the order may ask it what is open.
        for p in partitions ?? flushOrder() {
            guard let b = builders[p], !b.isEmpty else { continue }
            handedOver.append((p, b))
            // A partition that gets no more messages gets no new builder.
            builders[p] = spare[p]
            builderRefs[p] = spare[p].map { Unmanaged.passUnretained($0) }
            spare[p] = nil
            pendingCount -= Int(b.count)
            if Int32(p) == sticky { advanceSticky() }
        }
        if pendingCount == 0 { pendingBytes = 0 }
        let round = handedOver.map { (directory: directory(Int32($0.partition)), builder: $0.builder) }
        let pool = pool, settings = settings, startWriteback = topic.partitions > 1
        try background!.run {
            for (directory, builder) in round {
                let w = try pool.writer(directory, settings: settings)
                _ = try Self.append(builder, with: w, startingWriteback: startWriteback)
            }
        }
    }
}
