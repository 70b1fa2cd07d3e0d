import Glibc

// `mq-consume --dedup` (docs/FORMAT.md, "Deduplication"): the group keeps a
// DedupStore (`groups/G/dedup/`) of the ids it processed. A message whose id
// (header `--id-header`) is there within the window, or is being handled
// now, is skipped and committed like a filtered one. An id is recorded when
// its message was written out (or its handler exited 0), appended and
// fdatasynced before the commit that passes the message, so a crash can
// repeat a message (at least once) but a committed one is always recorded.

/// `--dedup` state of a consumer.
final class ConsumerDedup {
    struct Ref: Hashable {
        var topic: String
        var partition: Int32
        var offset: Int64
    }

    let store: DedupStore
    let idHeader: [UInt8]
    /// Processed, not yet recorded.
    private var unrecorded = IDTable()
    /// With a handler: messages handed to it and not complete, with their ids.
    private var inFlight: [Ref: IDHash] = [:]
    private var inFlightIDs: [IDHash: Int] = [:]
    private var lastRefreshNanos: UInt64 = 0
    /// Messages skipped as duplicates.
    private(set) var skipped = 0

    init(store: DedupStore, idHeader: String) {
        self.store = store
        self.idHeader = Array(idHeader.utf8)
    }

    /// Reads the ids the group's other members recorded (at most every 50 ms).
    func refresh() throws {
        let now = monotonicNanos()
        guard now &- lastRefreshNanos >= 50_000_000 else { return }
        lastRefreshNanos = now
        try store.withLock {}
    }

    /// The id of a record, if it has one (the first header with the name).
    @inline(__always)
    func id(of r: RecordView) throws -> IDHash? {
        var cursor = ByteCursor(r.headerBytes)
        for _ in 0..<r.headerCount {
            guard let name = try cursor.bytes(allowNull: false) else { throw BatchProblem.badRecords("null header name") }
            let value = try cursor.bytes(allowNull: true)
            if name.count == idHeader.count && idHeader.withUnsafeBytes({ memcmp($0.baseAddress!, name.baseAddress!, name.count) == 0 }) {
                return value.map { IDHash.of($0) }
            }
        }
        return nil
    }

    /// False when the record's id was processed within the window (or is
    /// being handled); otherwise notes it as delivered or handed over.
    func admit(_ r: RecordView, topic: String, partition: Int32, handled: Bool) throws -> Bool {
        guard let h = try id(of: r) else { return true }
        if store.lookup(h, nowMs: currentTimeMillis()) != nil || unrecorded[h] != nil || (!inFlightIDs.isEmpty && inFlightIDs[h] != nil) {
            skipped += 1
            return false
        }
        if handled {
            inFlight[Ref(topic: topic, partition: partition, offset: r.offset)] = h
            inFlightIDs[h, default: 0] += 1
        } else {
            unrecorded.insertNewer(h, DedupEntry(timestampMs: currentTimeMillis(), partition: partition, offset: r.offset))
        }
        return true
    }

    /// A handler finished a job: its id counts as processed when the handler
    /// succeeded (a dead-lettered message may come back by a redrive).
    func completed(_ job: Job) {
        guard let h = inFlight.removeValue(forKey: Ref(topic: job.topic, partition: job.partition, offset: job.offset)) else { return }
        if let n = inFlightIDs[h], n > 1 { inFlightIDs[h] = n - 1 } else { inFlightIDs[h] = nil }
        if !job.deadLettered {
            unrecorded.insertNewer(h, DedupEntry(timestampMs: currentTimeMillis(), partition: job.partition, offset: job.offset))
        }
    }

    /// Records the processed ids durably (before a commit).
    func record() throws {
        guard unrecorded.count > 0 else { return }
        var ids: [(IDHash, DedupEntry)] = []
        ids.reserveCapacity(unrecorded.count)
        unrecorded.forEach { ids.append(($0, $1)) }
        try store.withLock { try store.record(ids, done: false, sync: true) }
        unrecorded = IDTable()
    }
}

extension Consumer {
    func openDedup(_ group: GroupDirectory) throws {
        guard let header = options.dedupIDHeader else { return }
        dedup = ConsumerDedup(store: try DedupStore(directory: group.path + "/dedup", windowMs: options.dedupWindowMs), idHeader: header)
    }

    @inline(__always)
    func isNew(_ r: RecordView, topic: String, partition: Int32, handled: Bool) throws -> Bool {
        guard let dedup else { return true }
        return try dedup.admit(r, topic: topic, partition: partition, handled: handled)
    }
}
