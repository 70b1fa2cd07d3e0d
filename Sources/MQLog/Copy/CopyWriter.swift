/// A source record handed to a copy.
public struct CopyRecord: Sendable {
    public var source: TopicPartition
    public var offset: Int64
    public var timestamp: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [Header]
    /// The headers already encoded (`RecordBatchBuilder.encodeHeaders`); used instead of `headers` when set.
    public var encodedHeaders: [UInt8]? = nil

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64, key: [UInt8]?, value: [UInt8]?, headers: [Header]) {
        self.source = TopicPartition(topic, partition)
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }
}

/// Writes source records into destination partitions under a `CopyJournal`,
/// each exactly once (the chunk protocol of CopyJournal.swift). Records are
/// collected into a chunk of at most `maxChunkRecords` records or
/// `maxChunkBytes` bytes, which `add` writes when full and `flush` writes
/// when asked.
///
/// Batches are its own (a batch holds consecutive offsets of one source and
/// carries them in its producer id, epoch and sequence); they are appended
/// and synced through each destination topic's `TopicAppender`, the append
/// path every tool shares, over one pool of writers. Not thread-safe.
public final class CopyWriter {
    public let journal: CopyJournal
    public let log: LogDirectory
    public var maxChunkRecords = 1000
    public var maxChunkBytes = 4 << 20
    /// The codec of written batches; nil means each destination topic's `compression.type`.
    public var codec: CompressionCodec? = nil
    /// Records written and settled by this writer.
    public private(set) var copied = 0
    /// Records not written because they were settled already.
    public private(set) var skipped = 0

    /// Where a test makes `flush` stop as if the process died there.
    enum CrashPoint { case afterPending, afterFirstBatch, afterSync }
    var crash: CrashPoint?
    struct SimulatedCrash: Error {}

    private struct OpenBatch {
        let builder: RecordBatchBuilder
        let source: TopicPartition
        var nextOffset: Int64
    }

    private var topics: [String: Topic] = [:]
    /// The destination topics' append paths, over one pool of writers.
    private var appenders: [String: TopicAppender] = [:]
    /// The destinations' writers, a bounded number open at once.
    private let pool = WriterPool()
    private var open: [TopicPartition: OpenBatch] = [:]
    /// Batches closed to more records per destination (written by the
    /// chunk), and the order destinations appeared in.
    private var finished: [TopicPartition: [RecordBatchBuilder]] = [:]
    private var destinationOrder: [TopicPartition] = []
    private var chunk: [TopicPartition: OffsetRanges] = [:]
    private var chunkRecords = 0
    private var chunkBytes = 0
    private var failure: Error?

    public init(journal: CopyJournal, log: LogDirectory) {
        self.journal = journal
        self.log = log
    }

    /// Records waiting in the current chunk.
    public var pendingRecords: Int { chunkRecords }

    /// The destination topic, opened once (its shared "in use" lock is held
    /// for the writer's life).
    public func topic(_ name: String) throws -> Topic {
        if let t = topics[name] { return t }
        let t = try log.openTopic(name)
        topics[name] = t
        return t
    }

    /// The append path of destination topic `name`. Its sync policy is
    /// `.exit`: each chunk is made durable at its end (`pool.syncAll`).
    private func appender(_ name: String) throws -> TopicAppender {
        if let a = appenders[name] { return a }
        let t = try topic(name)
        let batchBytes = max(1024, min(1 << 20, t.config.maxMessageBytes - BatchLayout.headerSize))
        let a = TopicAppender(topic: t, pool: pool, sync: .exit, codec: codec ?? t.config.defaultCodec,
                              batchMessages: maxChunkRecords, batchBytes: batchBytes, settings: .init(t.config))
        appenders[name] = a
        return a
    }

    /// Adds a record to the chunk, to be written to `destination`; writes the
    /// chunk when it is full.
    /// - Returns: false when the record was settled already (not written again).
    @discardableResult
    public func add(_ record: CopyRecord, to destination: TopicPartition) throws -> Bool {
        if let failure { throw failure }
        if journal.isSettled(topic: record.source.topic, partition: record.source.partition, offset: record.offset)
            || chunk[record.source]?.contains(record.offset) == true {
            skipped += 1
            return false
        }
        guard record.offset >= 0, record.offset < 1 << 46 else {
            throw MQError.data("cannot copy offset \(record.offset) of \(record.source): a copy carries source offsets below 2^46 in the producer epoch and sequence")
        }
        let topic = try self.topic(destination.topic)
        guard destination.partition >= 0, destination.partition < topic.partitions else {
            throw MQError.usage("partition \(destination.partition) does not exist: topic '\(destination.topic)' has \(topic.partitions) partition\(topic.partitions == 1 ? "" : "s")")
        }
        let headers = record.encodedHeaders ?? RecordBatchBuilder.encodeHeaders(record.headers)
        let size = RecordBatchBuilder.maxRecordSize(keyCount: record.key?.count, valueCount: record.value?.count, encodedHeadersCount: headers.count)
        let batchBytes = max(1024, min(1 << 20, topic.config.maxMessageBytes - BatchLayout.headerSize))
        if let o = open[destination] {
            // A batch holds consecutive source offsets of one source, within
            // one producer epoch (2^31 offsets), as Kafka's sequences require.
            let continues = o.source == record.source && o.nextOffset == record.offset
                && record.offset & 0x7fff_ffff != 0 && o.builder.recordBytes + size <= batchBytes
            if !continues { try finishBatch(destination) }
        }
        if open[destination] == nil {
            let builder = RecordBatchBuilder(codec: codec ?? topic.config.defaultCodec, capacity: min(batchBytes, max(size, 64 << 10)))
            builder.producerId = journal.producerID(record.source)
            builder.producerEpoch = Int16(truncatingIfNeeded: record.offset >> 31)
            builder.baseSequence = Int32(truncatingIfNeeded: record.offset & 0x7fff_ffff)
            open[destination] = OpenBatch(builder: builder, source: record.source, nextOffset: record.offset)
            if finished[destination] == nil {
                finished[destination] = []
                destinationOrder.append(destination)
            }
        }
        headers.withUnsafeBytes { h in
            withOptionalBytes(record.key) { k in
                withOptionalBytes(record.value) { v in
                    open[destination]!.builder.append(timestamp: record.timestamp, key: k, value: v, headers: h)
                }
            }
        }
        open[destination]!.nextOffset = record.offset + 1
        chunk[record.source, default: OffsetRanges()].insert(record.offset)
        chunkRecords += 1
        chunkBytes += size
        if chunkRecords >= maxChunkRecords || chunkBytes >= maxChunkBytes { try flush() }
        return true
    }

    /// Settles source offsets that hold nothing to copy (a gap the source
    /// skipped: deleted messages, transaction markers) with the current
    /// chunk, so that the journal keeps one range where the source has
    /// holes. Saved with the chunk's records; lost with them if the chunk is
    /// not written (then found again by the next run).
    public func settleWithChunk(_ source: TopicPartition, _ offsets: ClosedRange<Int64>) {
        chunk[source, default: OffsetRanges()].insert(offsets)
    }

    /// Closes the destination's open batch to more records.
    private func finishBatch(_ destination: TopicPartition) throws {
        guard let o = open.removeValue(forKey: destination) else { return }
        finished[destination]!.append(o.builder)
    }

    /// Writes the chunk: saves the destinations' log ends as pending, appends
    /// and fsyncs the batches, then saves the chunk's offsets as settled.
    ///
    /// When it throws after the chunk was recorded as pending, this writer
    /// stays failed (every later call throws the same error): part of the
    /// chunk may be in the destination, and only opening the copy again
    /// settles exactly that part.
    public func flush() throws {
        if let failure { throw failure }
        for d in Array(open.keys) { try finishBatch(d) }
        guard chunkRecords > 0 else { return }
        var ends: [TopicPartition: Int64] = [:]
        for d in destinationOrder { ends[d] = try appender(d.topic).writer(d.partition).currentEndOffset() }
        try journal.beginChunk(destinations: ends, sources: Set(chunk.keys))
        do {
            try writeChunk()
        } catch {
            failure = error
            throw error
        }
    }

    private func writeChunk() throws {
        if crash == .afterPending { throw SimulatedCrash() }
        var first = true
        for d in destinationOrder {
            let appender = try appender(d.topic)
            for batch in finished[d]! {
                _ = try appender.write(batch, to: d.partition)
                if first && crash == .afterFirstBatch { throw SimulatedCrash() }
                first = false
            }
        }
        // Every destination of the chunk, and nothing else, is unsynced in the pool.
        try pool.syncAll()
        if crash == .afterSync { throw SimulatedCrash() }
        try journal.endChunk(settling: chunk)
        copied += chunkRecords
        chunk = [:]
        chunkRecords = 0
        chunkBytes = 0
        finished = [:]
        destinationOrder = []
    }
}
