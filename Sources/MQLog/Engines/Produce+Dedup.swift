import Glibc

// mq-produce's exactly-once modes (docs/FORMAT.md, "Deduplication"):
//
// - `--id-header NAME`: messages carry ids; the topic's DedupStore
//   (`topics/T/dedup/`) remembers the ids written within the window, across
//   processes and restarts. Messages are collected into a chunk; under the
//   store's lock the chunk's duplicates are dropped (reported with
//   `--print-offsets` as `dup P O`, where the first copy is) and the rest is
//   written with the store's chunk protocol.
// - `--producer NAME`: the input is copied exactly once with a CopyJournal
//   (`copies/produce.NAME/`) whose source is the input itself, record
//   numbers standing for source offsets: a rerun with the same input skips
//   the records already written, as mq-replay --into and mq-dlq redrive do.

/// `--id-header`: messages are collected into a chunk, whose duplicates
/// (against the store and within the chunk) are dropped under the store's
/// lock and the rest written with the store's chunk protocol.
final class IDDedupProduceWriter: ProduceWriter {
    struct Pending {
        var key: [UInt8]?
        var value: [UInt8]?
        var headers: [UInt8]
        var partition: Int32?
        var timestamp: Int64
        var id: IDHash
        var size: Int
    }

    let store: DedupStore
    let idHeader: String
    let appender: TopicAppender
    let printer: OffsetPrinter?
    /// Most messages in a chunk, and in a batch (`--batch-messages`).
    let batchMessages: Int
    private var chunk: [Pending] = []
    private var chunkBytes = 0
    private(set) var oldestPendingNanos: UInt64 = 0
    private(set) var duplicates = 0

    init(store: DedupStore, idHeader: String, appender: TopicAppender, batchMessages: Int, printer: OffsetPrinter?) {
        self.store = store
        self.idHeader = idHeader
        self.appender = appender
        self.batchMessages = batchMessages
        self.printer = printer
    }

    var pendingCount: Int { chunk.count }

    func add(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer,
             partition: Int32?, timestamp: Int64, number: Int, recordSize: Int, id: [UInt8]?) throws {
        guard let id else { preconditionFailure("--id-header: a message without an id reached the writer") }
        if chunk.isEmpty { oldestPendingNanos = monotonicNanos() }
        chunk.append(.init(key: key.map { Array($0) }, value: value.map { Array($0) }, headers: Array(headers),
                           partition: partition, timestamp: timestamp, id: IDHash.of(id), size: recordSize))
        chunkBytes += recordSize
        if chunk.count >= batchMessages || chunkBytes >= 16 << 20 { try flush() }
    }

    func sync() throws { try appender.syncAll() }

    func close(warn: (String) -> Void) {
        if store.recoveredIDs > 0 {
            warn("finished a write of '\(appender.topic.name)' interrupted by a producer that died: recorded \(store.recoveredIDs) id\(store.recoveredIDs == 1 ? "" : "s") it had written")
        }
    }

    // MARK: Writing a chunk

    func flush() throws {
        guard !chunk.isEmpty else { return }
        let chunk = self.chunk
        self.chunk = []
        chunkBytes = 0
        let appender = self.appender
        // Per message: partition and offset written, or of the first copy.
        var placed = [(dup: Bool, partition: Int32, offset: Int64)](repeating: (false, -1, -1), count: chunk.count)
        try store.withLock {
            let now = currentTimeMillis()
            var dupOf = [Int](repeating: -1, count: chunk.count)
            var firstInChunk = IDTable(capacity: chunk.count)  // offset = index in the chunk
            var perPartition: [Int32: [Int]] = [:]
            var order: [Int32] = []
            for (i, m) in chunk.enumerated() {
                if let e = store.lookup(m.id, nowMs: now) {
                    placed[i] = (true, e.partition, e.offset)
                    continue
                }
                if let j = firstInChunk[m.id] {
                    dupOf[i] = Int(j.offset)
                    continue
                }
                firstInChunk.insertNewer(m.id, DedupEntry(timestampMs: 0, partition: 0, offset: Int64(i)))
                let p = withOptionalBytes(m.key) { appender.partition(forced: m.partition, key: $0, otherwise: appender.sticky) }
                if perPartition[p] == nil { order.append(p) }
                perPartition[p, default: []].append(i)
            }
            if !order.isEmpty {
                var ends: [(partition: Int32, offset: Int64)] = []
                for p in order { ends.append((p, try appender.writer(p).currentEndOffset())) }
                try store.beginChunk(ends, idHeader: idHeader)
                for p in order { try writePartition(p, perPartition[p]!, chunk, &placed) }
                for p in order { try appender.pool.sync(appender.directory(p)) }
                var ids: [(IDHash, DedupEntry)] = []
                ids.reserveCapacity(firstInChunk.count)
                for i in chunk.indices where !placed[i].dup && placed[i].offset >= 0 {
                    ids.append((chunk[i].id, DedupEntry(timestampMs: now, partition: placed[i].partition, offset: placed[i].offset)))
                }
                try store.record(ids, done: true, sync: false)
                appender.advanceSticky()
            }
            for i in chunk.indices where dupOf[i] >= 0 {
                let first = placed[dupOf[i]]
                placed[i] = (true, first.partition, first.offset)
            }
        }
        duplicates += placed.reduce(0) { $0 + ($1.dup ? 1 : 0) }
        if let printer {
            for r in placed { printer.line(r.dup ? "dup \(r.partition) \(r.offset)" : "\(r.partition) \(r.offset)") }
            try printer.emit()
        }
    }

    /// Writes the chunk's messages for one partition in batches, noting their offsets.
    private func writePartition(_ p: Int32, _ indices: [Int], _ chunk: [Pending], _ placed: inout [(dup: Bool, partition: Int32, offset: Int64)]) throws {
        let builder = RecordBatchBuilder(codec: appender.codec, capacity: appender.batchBytes)
        var inBatch: [Int] = []
        func write() throws {
            guard !builder.isEmpty else { return }
            let base = try appender.write(builder, to: p)
            for (k, i) in inBatch.enumerated() { placed[i] = (false, p, base + Int64(k)) }
            inBatch.removeAll(keepingCapacity: true)
            builder.reset()
        }
        for i in indices {
            let m = chunk[i]
            if !builder.isEmpty && (builder.recordBytes + m.size > appender.batchBytes || Int(builder.count) >= batchMessages) { try write() }
            m.headers.withUnsafeBytes { h in
                withOptionalBytes(m.key) { k in
                    withOptionalBytes(m.value) { v in
                        builder.append(timestamp: m.timestamp, key: k, value: v, headers: h)
                    }
                }
            }
            inBatch.append(i)
        }
        try write()
    }
}

/// `--producer`: the input is an exactly-once copy (a `CopyWriter`), record
/// number - 1 standing for the source offset.
final class NamedProduceWriter: ProduceWriter {
    static let source = TopicPartition("stdin", 0)
    let journal: CopyJournal
    let writer: CopyWriter
    let appender: TopicAppender
    private(set) var oldestPendingNanos: UInt64 = 0
    private(set) var duplicates = 0

    init(journal: CopyJournal, writer: CopyWriter, appender: TopicAppender) {
        self.journal = journal
        self.writer = writer
        self.appender = appender
    }

    var pendingCount: Int { writer.pendingRecords }

    func add(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer,
             partition forced: Int32?, timestamp: Int64, number: Int, recordSize: Int, id: [UInt8]?) throws {
        let offset = Int64(number - 1)
        // Without a key, stable across reruns: blocks of 1,000 records in turn.
        let partitions = appender.topic.partitions
        let partition = appender.partition(forced: forced, key: key, otherwise: Int32(truncatingIfNeeded: (offset / 1000) % Int64(partitions)))
        var record = CopyRecord(topic: Self.source.topic, partition: Self.source.partition, offset: offset, timestamp: timestamp,
                                key: key.map { Array($0) }, value: value.map { Array($0) }, headers: [])
        record.encodedHeaders = Array(headers)
        if writer.pendingRecords == 0 { oldestPendingNanos = monotonicNanos() }
        if try !writer.add(record, to: TopicPartition(appender.topic.name, partition)) { duplicates += 1 }
    }

    func flush() throws { try writer.flush() }
    /// Every chunk of the copy is fsynced when it is written.
    func sync() throws {}
    func close(warn: (String) -> Void) { journal.close() }
}

extension Producer {
    /// The copy id of a named producer writing to `topic`.
    public static func producerCopyID(name: String, topic: String) -> String { "produce.\(topic).\(name)" }

    /// The writer of the mode the options ask for.
    func makeWriter(appender: TopicAppender) throws -> ProduceWriter {
        let printer = options.printOffsets ? OffsetPrinter(fd: options.outputFD) : nil
        if let name = options.producerName {
            let journal = try CopyJournal.open(log, id: Producer.producerCopyID(name: name, topic: topic.name), wait: true)
            let writer = CopyWriter(journal: journal, log: log)
            writer.codec = options.codec
            // Fewer, larger chunks than a copy's default: three fsyncs each.
            writer.maxChunkRecords = max(1000, min(options.batchMessages, 100_000))
            writer.maxChunkBytes = 16 << 20
            return NamedProduceWriter(journal: journal, writer: writer, appender: appender)
        }
        if let header = options.idHeader {
            let store = try DedupStore(directory: log.topicPath(topic.name) + "/dedup", windowMs: options.dedupWindowMs)
            store.recoverPartition = { p in
                guard p >= 0, p < appender.topic.partitions else { return nil }
                _ = try appender.writer(p).currentEndOffset()
                return appender.directory(p)
            }
            return IDDedupProduceWriter(store: store, idHeader: header, appender: appender, batchMessages: options.batchMessages, printer: printer)
        }
        return AppendingProduceWriter(appender: appender, printer: printer)
    }

    // MARK: Accepting messages with ids

    /// `-K` input: the key is the id, also stored in the id header.
    func acceptKeyed(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, number: Int, timestamp: Int64, idHeader: String) throws {
        guard let key else {
            try reject("\(unitName) \(number): no id: --id-header takes the id from the key, and the line has no key delimiter")
            return
        }
        let id = Array(key)
        let headers = RecordBatchBuilder.encodeHeaders(options.headers + [Header(name: idHeader, value: id)])
        try headers.withUnsafeBytes { h in
            try add(key: key, value: value, headers: h, partition: nil, timestamp: timestamp, number: number, id: id, to: modeWriter)
        }
    }

    /// JSON input: the id is the envelope's header named by `--id-header`.
    func acceptEnvelope(_ message: Message, number: Int, timestamp: Int64, idHeader: String) throws {
        guard let h = message.headers.first(where: { $0.name == idHeader }), let id = h.value else {
            try reject("\(unitName) \(number): no id: the envelope has no header '\(idHeader)' (--id-header)")
            return
        }
        let headers = RecordBatchBuilder.encodeHeaders(message.headers + options.headers)
        try headers.withUnsafeBytes { hp in
            try withOptionalBytes(message.key ?? options.fixedKey) { k in
                try withOptionalBytes(message.value) { v in
                    try add(key: k, value: v, headers: hp, partition: message.partition, timestamp: message.timestamp ?? timestamp, number: number, id: id, to: modeWriter)
                }
            }
        }
    }
}
