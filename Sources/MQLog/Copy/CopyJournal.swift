import Glibc

// Exactly-once copies between topics (docs/FORMAT.md, "Exactly-once copies").
//
// A copy moves records from source partitions into destination partitions
// so that each source record lands in the destination exactly once, however
// often the copy is interrupted (even by SIGKILL or a machine crash) and run
// again. `mq-dlq redrive` and `mq-replay --into` are copies.
//
// API
//
//     let journal = try CopyJournal.open(log, id: "dlq.orders.dlq", wait: false)
//                                              // flock on ROOT/copies/ID/lock for the
//                                              // journal's life; busy + !wait: MQError 75
//     journal.metadata["ranges"] = "..."      // free-form, persisted by the next save
//     try journal.saveMetadata()               // or with the next flush / markSettled
//     journal.isSettled(topic: "orders.dlq", partition: 0, offset: 17)
//     journal.firstUnsettled(topic: "orders.dlq", partition: 0, from: 0)
//     try journal.markSettled(topic: "orders.dlq", partition: 0, [3...9])   // purge: settle without copying
//     let writer = CopyWriter(journal: journal, log: log)
//     try writer.add(CopyRecord(...), to: TopicPartition("orders", 2))        // false: settled, skipped
//     try writer.flush()                       // the chunk protocol; add flushes full chunks itself
//     journal.close()                          // records added but not flushed are neither written nor settled
//     CopyJournal.destinationPartition(...)    // same number, murmur2 of the key, or source mod N
//     try CopyJournal.snapshot(log, id:)       // lock-free read of the last saved state (mq-compact, list)
//
// Producer identity: each source partition gets a producer id, a stable
// positive 63-bit hash of (copy id, topic, partition). A copied batch holds
// records with consecutive source offsets only, and carries its first source
// offset o as producerEpoch = o >> 31, baseSequence = o & 0x7fffffff, so the
// destination itself records which source offsets it holds.
//
// Chunk protocol (CopyWriter.flush): save PENDING = each destination
// partition's log end offset (fsync); append and fsync the batches; save
// SETTLED += the chunk, PENDING = {} (fsync). Opening a journal whose saved
// state has PENDING scans those destination partitions from the recorded
// offsets, batch headers only, and settles what batches with this copy's
// producer ids hold: a crash after the destination fsync never duplicates,
// and a crash before it never loses.

/// A topic and one of its partitions.
public struct TopicPartition: Hashable, Sendable, Comparable, CustomStringConvertible {
    public var topic: String
    public var partition: Int32
    public init(_ topic: String, _ partition: Int32) {
        self.topic = topic
        self.partition = partition
    }
    public static func < (a: TopicPartition, b: TopicPartition) -> Bool {
        a.topic != b.topic ? a.topic < b.topic : a.partition < b.partition
    }
    public var description: String { "\(topic)/\(partition)" }
}

/// What a copy has done, as saved in `ROOT/copies/ID/state`.
public struct CopyState: Sendable, Equatable {
    /// Free-form, saved for the caller (a replay keeps its resolved ranges here).
    public var metadata: [String: String] = [:]
    /// Per source partition, the source offsets already copied (or settled without copying).
    public var settled: [TopicPartition: OffsetRanges] = [:]
    /// Destination partitions being written, with their log end offset before the write.
    public var pending: [TopicPartition: Int64] = [:]

    public init() {}

    static let magic = Array("MQCOPY01".utf8)

    /// magic, body length (u32), CRC-32C of the body (u32), body; little-endian.
    func encode() -> [UInt8] {
        var body = StateEncoder()
        body.u32(UInt32(metadata.count))
        for (k, v) in metadata.sorted(by: { $0.key < $1.key }) { body.string(k); body.string(v) }
        body.u32(UInt32(settled.count))
        for (tp, ranges) in settled.sorted(by: { $0.key < $1.key }) {
            body.string(tp.topic)
            body.i64(Int64(tp.partition))
            body.u32(UInt32(ranges.ranges.count))
            for r in ranges.ranges { body.i64(r.lowerBound); body.i64(r.upperBound) }
        }
        body.u32(UInt32(pending.count))
        for (tp, offset) in pending.sorted(by: { $0.key < $1.key }) {
            body.string(tp.topic)
            body.i64(Int64(tp.partition))
            body.i64(offset)
        }
        var out = StateEncoder()
        out.bytes += CopyState.magic
        out.u32(UInt32(body.bytes.count))
        out.u32(CRC32C.checksum(body.bytes))
        out.bytes += body.bytes
        return out.bytes
    }

    static func decode(_ bytes: [UInt8]) -> CopyState? {
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else { return nil }
        var d = StateDecoder(bytes: bytes, at: 8)
        guard let length = d.u32(), let crc = d.u32(), bytes.count == 16 + Int(length),
              CRC32C.checksum(Array(bytes[16...])) == crc else { return nil }
        var s = CopyState()
        guard let metaCount = d.u32() else { return nil }
        for _ in 0..<metaCount {
            guard let k = d.string(), let v = d.string() else { return nil }
            s.metadata[k] = v
        }
        guard let sourceCount = d.u32() else { return nil }
        for _ in 0..<sourceCount {
            guard let topic = d.string(), let p = d.i64(), let n = d.u32() else { return nil }
            var ranges = OffsetRanges()
            for _ in 0..<n {
                guard let lo = d.i64(), let hi = d.i64(), lo <= hi else { return nil }
                ranges.insert(lo...hi)
            }
            s.settled[TopicPartition(topic, Int32(truncatingIfNeeded: p))] = ranges
        }
        guard let pendingCount = d.u32() else { return nil }
        for _ in 0..<pendingCount {
            guard let topic = d.string(), let p = d.i64(), let o = d.i64() else { return nil }
            s.pending[TopicPartition(topic, Int32(truncatingIfNeeded: p))] = o
        }
        guard d.at == bytes.count else { return nil }
        return s
    }
}

private struct StateEncoder {
    var bytes: [UInt8] = []
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func i64(_ v: Int64) { withUnsafeBytes(of: v.littleEndian) { bytes += $0 } }
    mutating func string(_ s: String) { u32(UInt32(s.utf8.count)); bytes += Array(s.utf8) }
}

private struct StateDecoder {
    let bytes: [UInt8]
    var at: Int
    mutating func take(_ n: Int) -> ArraySlice<UInt8>? {
        guard n >= 0, bytes.count - at >= n else { return nil }
        defer { at += n }
        return bytes[at..<at + n]
    }
    mutating func u32() -> UInt32? {
        take(4).map { s in s.reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) } }
    }
    mutating func i64() -> Int64? {
        take(8).map { s in Int64(bitPattern: s.reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }) }
    }
    mutating func string() -> String? {
        guard let n = u32(), let s = take(Int(n)) else { return nil }
        return String(decoding: s, as: UTF8.self)
    }
}

/// One copy's journal: its lock and saved state. See the top of this file.
/// Not thread-safe.
public final class CopyJournal {
    public let id: String
    public let log: LogDirectory
    public let directory: String
    private var lock: OpenFile?
    public private(set) var state: CopyState

    /// The caller's metadata; saved with the next `saveMetadata`, `flush` or `markSettled`.
    public var metadata: [String: String] {
        get { state.metadata }
        set { state.metadata = newValue }
    }

    /// Checks a copy id: the topic-name rule (1 to 249 of `[A-Za-z0-9._-]`, not `.` or `..`).
    public static func validateID(_ id: String) throws {
        guard LogDirectory.isValidTopicName(id) else {
            throw MQError.usage("invalid copy id '\(id)': use 1 to 249 letters, digits, '.', '_' and '-'")
        }
    }

    public static func directory(_ log: LogDirectory, id: String) -> String { log.root + "/copies/" + id }

    /// Opens (creating) the copy `id` and takes its lock for the journal's life.
    /// Finishes an interrupted chunk first (see the top of this file).
    /// - Parameter wait: wait while another process holds the copy; when false,
    ///   fail with status 75 (tempFail) instead.
    public static func open(_ log: LogDirectory, id: String, wait: Bool = true) throws -> CopyJournal {
        try validateID(id)
        let dir = directory(log, id: id)
        try FileSystem.makeDirectoriesDurably(dir)
        let lock = try OpenFile.open(dir + "/lock", O_RDWR | O_CREAT, creating: true)
        do {
            if !(try lock.lock(exclusive: true, wait: false)) {
                if !wait {
                    var st = stat()
                    fstat(lock.fd, &st)
                    let holders = (FlockHolders.byInode()[UInt64(st.st_ino)] ?? []).filter { $0 != getpid() }
                    let by = holders.isEmpty ? "another process" : "process " + holders.map(String.init).joined(separator: ", ")
                    throw MQError(.tempFail, "copy '\(id)' is in use by \(by) (\(dir)/lock); wait for it to finish, or run without --no-wait to wait")
                }
                try lock.lock(exclusive: true)
            }
            let journal = CopyJournal(id: id, log: log, directory: dir, lock: lock, state: try readState(dir))
            try journal.recover()
            return journal
        } catch {
            lock.close()
            throw error
        }
    }

    private init(id: String, log: LogDirectory, directory: String, lock: OpenFile, state: CopyState) {
        self.id = id
        self.log = log
        self.directory = directory
        self.lock = lock
        self.state = state
    }

    deinit { lock?.close() }

    /// Releases the lock. The journal must not be used afterwards.
    public func close() {
        lock?.close()
        lock = nil
    }

    /// The saved state of copy `id`, read without the lock (nil when the copy
    /// has never run). While a chunk is pending it may miss what that chunk
    /// copies: it never claims more than is done.
    public static func snapshot(_ log: LogDirectory, id: String) throws -> CopyState? {
        let dir = directory(log, id: id)
        guard FileSystem.exists(dir + "/state") else { return nil }
        return try readState(dir)
    }

    /// The smallest offset ≥ `start` of a source partition that copy `id` has
    /// not settled, read without the lock (for retention and compaction).
    public static func firstUnsettled(_ log: LogDirectory, id: String, topic: String, partition: Int32, from start: Int64 = 0) throws -> Int64 {
        try snapshot(log, id: id)?.settled[TopicPartition(topic, partition)]?.firstMissing(atOrAfter: start) ?? start
    }

    private static func readState(_ dir: String) throws -> CopyState {
        let path = dir + "/state"
        guard FileSystem.exists(path) else { return CopyState() }
        guard let s = CopyState.decode(try FileSystem.readAll(path)) else {
            throw MQError.corrupt("corrupt copy state '\(path)': bad magic, length or checksum (it is replaced atomically, so this is damage from outside: restore it, or remove the copy's directory to start the copy over)")
        }
        return s
    }

    /// Writes the state: temporary file, fsync, rename, directory fsync.
    func save() throws {
        precondition(lock != nil, "copy journal used after close")
        try FileSystem.writeAtomically(directory + "/state", state.encode())
    }

    public func saveMetadata() throws { try save() }

    // MARK: Settled offsets

    public func isSettled(topic: String, partition: Int32, offset: Int64) -> Bool {
        state.settled[TopicPartition(topic, partition)]?.contains(offset) ?? false
    }

    /// The smallest offset ≥ `start` of the source partition not settled yet.
    public func firstUnsettled(topic: String, partition: Int32, from start: Int64 = 0) -> Int64 {
        state.settled[TopicPartition(topic, partition)]?.firstMissing(atOrAfter: start) ?? start
    }

    public func settled(topic: String, partition: Int32) -> OffsetRanges {
        state.settled[TopicPartition(topic, partition)] ?? OffsetRanges()
    }

    /// Settles source offsets without copying them (a purge), durably.
    public func markSettled(topic: String, partition: Int32, _ ranges: [ClosedRange<Int64>]) throws {
        guard !ranges.isEmpty else { return }
        let tp = TopicPartition(topic, partition)
        for r in ranges { state.settled[tp, default: OffsetRanges()].insert(r) }
        try save()
    }

    // MARK: Producer identity

    /// The producer id of a source partition in this copy: a stable positive
    /// 63-bit FNV-1a hash of "ID\0TOPIC\0PARTITION".
    public func producerID(_ source: TopicPartition) -> Int64 {
        CopyJournal.producerID(copy: id, source: source)
    }

    public static func producerID(copy id: String, source: TopicPartition) -> Int64 {
        let h = FNV1a.hash64(Array(id.utf8) + [0] + Array(source.topic.utf8) + [0] + Array(String(source.partition).utf8))
        let id = Int64(bitPattern: h & 0x7fff_ffff_ffff_ffff)
        return id == 0 ? 1 : id
    }

    /// The source offset a copied batch starts at, from its epoch and sequence.
    static func sourceOffset(epoch: Int16, sequence: Int32) -> Int64 {
        Int64(UInt16(bitPattern: epoch)) << 31 | Int64(UInt32(bitPattern: sequence) & 0x7fff_ffff)
    }

    // MARK: Recovery

    /// Settles what an interrupted chunk wrote: scans each pending destination
    /// partition from its recorded end, batch headers only, and counts the
    /// batches that carry this copy's producer ids.
    private func recover() throws {
        guard !state.pending.isEmpty else { return }
        var ids: [Int64: TopicPartition] = [:]
        for source in state.settled.keys { ids[producerID(source)] = source }
        for (dest, from) in state.pending.sorted(by: { $0.key < $1.key }) {
            let dir = log.topicPath(dest.topic) + "/\(dest.partition)"
            guard log.topicExists(dest.topic), FileSystem.isDirectory(dir) else { continue }
            // A writer that died between its write and its state update left
            // a whole batch past the recorded end: the next writer keeps it,
            // so count it now (the writer's check keeps or cuts it).
            let config = try log.readConfig(dest.topic)
            _ = try PartitionWriter(directory: dir, settings: .init(config)).currentEndOffset()
            let reader = PartitionReader(directory: dir)
            try reader.seek(toOffset: from)
            while let (header, _) = try reader.nextBatch() {
                guard header.baseOffset >= from, let source = ids[header.producerId] else { continue }
                let first = CopyJournal.sourceOffset(epoch: header.producerEpoch, sequence: header.baseSequence)
                state.settled[source, default: OffsetRanges()].insert(first...(first + Int64(header.lastOffsetDelta)))
            }
        }
        state.pending = [:]
        try save()
    }

    /// Records the destinations about to be written (and the sources whose
    /// producer ids recovery must know), durably, before the write.
    func beginChunk(destinations: [TopicPartition: Int64], sources: Set<TopicPartition>) throws {
        for s in sources where state.settled[s] == nil { state.settled[s] = OffsetRanges() }
        state.pending = destinations
        try save()
    }

    /// Settles a written and synced chunk, durably.
    func endChunk(settling: [TopicPartition: OffsetRanges]) throws {
        for (s, ranges) in settling { state.settled[s, default: OffsetRanges()].formUnion(ranges) }
        state.pending = [:]
        try save()
    }

    // MARK: Destinations

    /// The destination partition for a record: the same number when both
    /// topics have as many partitions, else Kafka's murmur2 partition of the
    /// key (as mq-produce), else the source partition modulo the count.
    public static func destinationPartition(key: [UInt8]?, sourcePartition: Int32, sourcePartitions: Int32, destinationPartitions: Int32) -> Int32 {
        if sourcePartitions == destinationPartitions { return sourcePartition }
        if let key { return key.withUnsafeBytes { Partitioner.partition(forKey: $0, partitions: destinationPartitions) } }
        return sourcePartition % destinationPartitions
    }
}
