import Glibc

/// Moves due messages from `T.delay` into `T`. Every `mq-consume` of T runs
/// one; a flock makes exactly one of them active at a time.
///
/// State: `DelayMoverFiles`, in the delay topic's directory.
///
/// A move appends the due messages to T, fsyncs T, then appends their offsets
/// to the journal and fsyncs it. A crash between the two repeats that one move
/// batch (at most `maxBatch` messages) on the next start: the only duplicates.
/// Nothing is lost: a message leaves the pending set only after T holds it.
/// Waiting messages are kept in memory, in due order. Not thread-safe.
final class DelayMover {
    static let maxBatch = 1000

    let log: LogDirectory
    let target: String
    let delayTopic: String
    private var lock: OpenFile?
    private var cursor: PartitionCursor?
    private var pending = MinHeap<(due: Int64, offset: Int64, message: Message)>(by: { ($0.due, $0.offset) < ($1.due, $1.offset) })
    private var moved = Set<Int64>()
    private var lowWater: Int64 = 0
    private var lowWaterSlot: CommittedOffsetFile.Slot?
    private var lowWaterFile: OpenFile?
    private var journal: OpenFile?
    private var journalBytes: Int64 = 0
    private var targetTopic: Topic?
    /// Writes moved messages to the target, each partition's batch fsynced.
    private var appender: TopicAppender?
    private var roundRobin: Int32 = 0
    private var nextTry: UInt64 = 0

    init(log: LogDirectory, target: String) {
        self.log = log
        self.target = target
        self.delayTopic = DelayQueue.topicName(for: target)
    }

    deinit {
        lock?.close()
        lowWaterFile?.close()
        journal?.close()
    }

    private var directory: String { log.topicPath(delayTopic) }

    /// Ticks every mover of a consumer (`tick`).
    /// - Returns: when to tick them again (monotonic ns): when the next
    ///   message is due, and at most 200 ms from now.
    static func tickAll(_ movers: some Collection<DelayMover>) throws -> UInt64 {
        var waitMs: Int64 = 200
        for mover in movers {
            if let due = try mover.tick() { waitMs = min(waitMs, due) }
        }
        return monotonicNanos() + UInt64(max(0, waitMs)) * 1_000_000
    }

    /// Reads newly delayed messages and moves the due ones.
    /// - Returns: milliseconds until the next message is due, or nil if none waits.
    func tick() throws -> Int64? {
        if lock == nil {
            let now = monotonicNanos()
            guard now >= nextTry, log.topicExists(delayTopic) else { return nil }
            nextTry = now + 500_000_000
            guard try becomeMover() else { return nil }
        }
        while let r = try cursor!.peek() {
            if !moved.contains(r.offset) {
                let headers = try r.headers()
                var due: Int64 = 0
                var kept: [Header] = []
                for h in headers {
                    let name = String(decoding: h.name, as: UTF8.self)
                    if name == DelayQueue.deliverAtHeader, let v = h.value { due = Int64(String(decoding: v, as: UTF8.self)) ?? 0 }
                    kept.append(Header(name: name, value: h.value.map(Array.init)))
                }
                let m = Message(key: r.key.map(Array.init), value: r.value.map(Array.init), headers: kept, timestamp: r.timestamp)
                pending.push((due, r.offset, m))
            }
            cursor!.advance()
        }
        let now = currentTimeMillis()
        while let first = pending.first, first.due <= now {
            var batch: [(due: Int64, offset: Int64, message: Message)] = []
            while batch.count < DelayMover.maxBatch, let next = pending.first, next.due <= now { batch.append(pending.pop()!) }
            do {
                try move(batch)
            } catch {
                for e in batch { pending.push(e) }  // not moved: keep them waiting
                throw error
            }
        }
        try advanceLowWater()
        return pending.first.map { max(0, $0.due - currentTimeMillis()) }
    }

    private func becomeMover() throws -> Bool {
        let handle = try OpenFile.open(DelayMoverFiles.lockPath(directory), O_RDWR | O_CREAT, creating: true)
        guard try handle.lock(exclusive: true, wait: false) else { handle.close(); return false }
        lock = handle
        // The progress files' names must survive a crash as their contents
        // do, or the next mover starts again from offset 0 and moves every
        // delayed message a second time.
        let created = !FileSystem.exists(DelayMoverFiles.journalPath(directory)) || !FileSystem.exists(DelayMoverFiles.lowWaterPath(directory))
        let lw = try OpenFile.open(DelayMoverFiles.lowWaterPath(directory), O_RDWR | O_CREAT, creating: true)
        lowWaterFile = lw
        lowWaterSlot = try CommittedOffsetFile.read(lw)
        lowWater = lowWaterSlot?.offset ?? 0
        let j = try OpenFile.open(DelayMoverFiles.journalPath(directory), O_RDWR | O_CREAT, creating: true)
        journal = j
        if created { try FileSystem.syncDirectory(directory) }
        journalBytes = try j.size()
        var raw = [UInt8](repeating: 0, count: Int(journalBytes))
        _ = try raw.withUnsafeMutableBytes { try j.read(into: $0.baseAddress!, count: $0.count, at: 0) }
        // A torn last entry is cut: that move is repeated.
        let (offsets, at) = DelayMoverFiles.journalEntries(raw)
        for offset in offsets where offset >= lowWater { moved.insert(offset) }
        if at != raw.count { try j.truncate(to: Int64(at)); journalBytes = Int64(at) }
        let topic = try log.openTopic(target)
        targetTopic = topic
        appender = TopicAppender(topic: topic, pool: .forSyncedBatches(), sync: .batch, codec: .none,
                                 batchMessages: Int.max, batchBytes: 1 << 20, settings: .init(topic.config))
        cursor = try PartitionCursor(partition: 0, directory: log.topicPath(delayTopic) + "/0", startOffset: lowWater)
        return true
    }

    private func move(_ entries: [(due: Int64, offset: Int64, message: Message)]) throws {
        guard let topic = targetTopic else { return }
        guard let appender else { return }
        // Keyed messages go to their key's partition, the others in turn;
        // each partition's messages become one batch (more when over 1 MiB).
        for e in entries {
            var forced: Int32? = nil
            if e.message.key == nil {
                forced = roundRobin
                roundRobin = (roundRobin + 1) % topic.partitions
            }
            try appender.add(e.message, partition: forced, timestamp: e.message.timestamp ?? currentTimeMillis())
        }
        try appender.flushAll()
        // Only now, with the messages durable in the target, record the move.
        var bytes = [UInt8](repeating: 0, count: 16 * entries.count)
        bytes.withUnsafeMutableBytes { raw in
            for (i, e) in entries.enumerated() {
                raw.storeBytes(of: e.offset.littleEndian, toByteOffset: 16 * i, as: Int64.self)
                let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(raw)[16 * i..<16 * i + 8]))
                raw.storeBytes(of: crc.littleEndian, toByteOffset: 16 * i + 8, as: UInt32.self)
            }
        }
        try bytes.withUnsafeBytes { try journal!.write($0, at: journalBytes) }
        try journal!.sync()
        journalBytes += Int64(bytes.count)
        for e in entries { moved.insert(e.offset) }
    }

    /// Raises the low-water mark past offsets that were all moved, and
    /// shortens the journal when everything in it is below the mark.
    private func advanceLowWater() throws {
        guard let cursor else { return }
        let mark = pending.unordered.map(\.offset).min() ?? cursor.nextOffset
        guard mark > lowWater else { return }
        lowWater = mark
        lowWaterSlot = try CommittedOffsetFile.commit(lowWaterFile!, after: lowWaterSlot, offset: mark)
        moved = moved.filter { $0 >= mark }
        if moved.isEmpty && journalBytes > 0 {
            try journal!.truncate(to: 0)
            try journal!.sync()
            journalBytes = 0
        }
    }
}
