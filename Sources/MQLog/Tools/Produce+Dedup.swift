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

/// `--id-header` state of a producer.
final class ProducerDedup {
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
    var chunk: [Pending] = []
    var chunkBytes = 0

    init(store: DedupStore, idHeader: String) {
        self.store = store
        self.idHeader = idHeader
    }
}

/// `--producer` state of a producer.
final class NamedProducer {
    static let source = TopicPartition("stdin", 0)
    let journal: CopyJournal
    let writer: CopyWriter

    init(journal: CopyJournal, writer: CopyWriter) {
        self.journal = journal
        self.writer = writer
    }
}

extension Producer {
    /// The copy id of a named producer writing to `topic`.
    public static func producerCopyID(name: String, topic: String) -> String { "produce.\(topic).\(name)" }

    func openDedup() throws {
        let topicName = topic.name
        if let name = options.producerName {
            let journal = try CopyJournal.open(log, id: Producer.producerCopyID(name: name, topic: topicName), wait: true)
            let writer = CopyWriter(journal: journal, log: log)
            writer.codec = options.codec
            // Fewer, larger chunks than a copy's default: three fsyncs each.
            writer.maxChunkRecords = max(1000, min(options.batchMessages, 100_000))
            writer.maxChunkBytes = 16 << 20
            named = NamedProducer(journal: journal, writer: writer)
            return
        }
        guard let header = options.idHeader else { return }
        let store = try DedupStore(directory: log.topicPath(topicName) + "/dedup", windowMs: options.dedupWindowMs)
        store.recoverPartition = { [unowned self] p in
            guard p >= 0, p < self.topic.partitions else { return nil }
            _ = try self.writer(p).currentEndOffset()
            return self.topic.partitionPath(p)
        }
        dedup = ProducerDedup(store: store, idHeader: header)
    }

    func closeDedup() {
        if let store = dedup?.store, store.recoveredIDs > 0 {
            warn("finished a write of '\(options.topic)' interrupted by a producer that died: recorded \(store.recoveredIDs) id\(store.recoveredIDs == 1 ? "" : "s") it had written")
        }
        named?.journal.close()
    }

    // MARK: Accepting messages with ids

    /// `-K` input: the key is the id, also stored in the id header.
    func acceptKeyed(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer, number: Int, timestamp: Int64) throws {
        let d = dedup!
        guard let key else {
            try reject("\(unitName) \(number): no id: --id-header takes the id from the key, and the line has no key delimiter")
            return
        }
        let id = Array(key)
        let headers = RecordBatchBuilder.encodeHeaders(options.headers + [Header(name: d.idHeader, value: id)])
        try addWithID(Array(key), Array(value), headers: headers, partition: nil, timestamp: timestamp, id: IDHash.of(id), number: number)
    }

    /// JSON input: the id is the envelope's header named by `--id-header`.
    func acceptEnvelope(_ message: Message, number: Int, timestamp: Int64) throws {
        let d = dedup!
        guard let h = message.headers.first(where: { $0.name == d.idHeader }), let id = h.value else {
            try reject("\(unitName) \(number): no id: the envelope has no header '\(d.idHeader)' (--id-header)")
            return
        }
        let headers = RecordBatchBuilder.encodeHeaders(message.headers + options.headers)
        try addWithID(message.key ?? options.fixedKey, message.value, headers: headers, partition: message.partition, timestamp: message.timestamp ?? timestamp, id: IDHash.of(id), number: number)
    }

    private func addWithID(_ key: [UInt8]?, _ value: [UInt8]?, headers: [UInt8], partition: Int32?, timestamp: Int64, id: IDHash, number: Int) throws {
        let d = dedup!
        let size = RecordBatchBuilder.maxRecordSize(keyCount: key?.count, valueCount: value?.count, encodedHeadersCount: headers.count)
        if size + BatchLayout.headerSize > maxMessageBytes {
            try reject("\(unitName) \(number): message of \(size) bytes (with record overhead) is over max.message.bytes (\(maxMessageBytes) bytes) of topic '\(options.topic)'")
            return
        }
        if d.chunk.isEmpty { oldestPendingNanos = monotonicNanos() }
        d.chunk.append(.init(key: key, value: value, headers: headers, partition: partition, timestamp: timestamp, id: id, size: size))
        d.chunkBytes += size
        pendingCount = d.chunk.count
        summary.accepted += 1
        if d.chunk.count >= options.batchMessages || d.chunkBytes >= 16 << 20 { try flushDedup() }
    }

    /// `--producer`: hands the record to the copy, record number - 1 as its source offset.
    func addNamed(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer, partition forced: Int32?, timestamp: Int64, number: Int) throws {
        let n = named!
        let offset = Int64(number - 1)
        // Without a key, stable across reruns: blocks of 1,000 records in turn.
        let partition = choosePartition(forced: forced, key: key, otherwise: Int32(truncatingIfNeeded: (offset / 1000) % Int64(self.topic.partitions)))
        var record = CopyRecord(topic: NamedProducer.source.topic, partition: NamedProducer.source.partition, offset: offset, timestamp: timestamp,
                                key: key.map { Array($0) }, value: value.map { Array($0) }, headers: [])
        record.encodedHeaders = Array(headers)
        if n.writer.pendingRecords == 0 { oldestPendingNanos = monotonicNanos() }
        summary.accepted += 1
        if try !n.writer.add(record, to: TopicPartition(topic.name, partition)) { summary.duplicates += 1 }
        pendingCount = n.writer.pendingRecords
    }

    // MARK: Writing a chunk

    func flushDedup() throws {
        if let n = named {
            try n.writer.flush()
            pendingCount = 0
            return
        }
        let d = dedup!
        guard !d.chunk.isEmpty else { return }
        let chunk = d.chunk
        d.chunk = []
        d.chunkBytes = 0
        pendingCount = 0
        // Per message: partition and offset written, or of the first copy.
        var placed = [(dup: Bool, partition: Int32, offset: Int64)](repeating: (false, -1, -1), count: chunk.count)
        try d.store.withLock {
            let now = currentTimeMillis()
            var dupOf = [Int](repeating: -1, count: chunk.count)
            var firstInChunk = IDTable(capacity: chunk.count)  // offset = index in the chunk
            var perPartition: [Int32: [Int]] = [:]
            var order: [Int32] = []
            for (i, m) in chunk.enumerated() {
                if let e = d.store.lookup(m.id, nowMs: now) {
                    placed[i] = (true, e.partition, e.offset)
                    continue
                }
                if let j = firstInChunk[m.id] {
                    dupOf[i] = Int(j.offset)
                    continue
                }
                firstInChunk.insertNewer(m.id, DedupEntry(timestampMs: 0, partition: 0, offset: Int64(i)))
                let p = withOptionalBytes(m.key) { choosePartition(forced: m.partition, key: $0, otherwise: appender.sticky) }
                if perPartition[p] == nil { order.append(p) }
                perPartition[p, default: []].append(i)
            }
            if !order.isEmpty {
                var ends: [(partition: Int32, offset: Int64)] = []
                for p in order { ends.append((p, try writer(p).currentEndOffset())) }
                try d.store.beginChunk(ends, idHeader: d.idHeader)
                for p in order { try writePartition(p, perPartition[p]!, chunk, &placed) }
                for p in order { try appender.pool.sync(appender.directory(p)) }
                var ids: [(IDHash, DedupEntry)] = []
                ids.reserveCapacity(firstInChunk.count)
                for i in chunk.indices where !placed[i].dup && placed[i].offset >= 0 {
                    ids.append((chunk[i].id, DedupEntry(timestampMs: now, partition: placed[i].partition, offset: placed[i].offset)))
                }
                try d.store.record(ids, done: true, sync: false)
                appender.advanceSticky()
            }
            for i in chunk.indices where dupOf[i] >= 0 {
                let first = placed[dupOf[i]]
                placed[i] = (true, first.partition, first.offset)
            }
        }
        summary.duplicates += placed.reduce(0) { $0 + ($1.dup ? 1 : 0) }
        if options.printOffsets {
            for r in placed { output.append(r.dup ? "dup \(r.partition) \(r.offset)\n" : "\(r.partition) \(r.offset)\n") }
            try writeOutput()
        }
    }

    /// Writes the chunk's messages for one partition in batches, noting their offsets.
    private func writePartition(_ p: Int32, _ indices: [Int], _ chunk: [ProducerDedup.Pending], _ placed: inout [(dup: Bool, partition: Int32, offset: Int64)]) throws {
        let builder = RecordBatchBuilder(codec: codec, capacity: batchBytes)
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
            if !builder.isEmpty && (builder.recordBytes + m.size > batchBytes || Int(builder.count) >= options.batchMessages) { try write() }
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
