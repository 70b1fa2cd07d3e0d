import Glibc

/// Where `mq-replay -g GROUP TOPIC --reset-to` moves a group.
public enum ResetTarget: Equatable, Sendable {
    /// `beginning`, `end`, an offset (clamped into `[log start, log end]`), or
    /// a time: the first offset with a timestamp at or after it.
    case position(StartPosition)
    /// The committed offset moved by this many (`+N`, `-N`), clamped.
    case shift(Int64)

    /// Parses `beginning`, `end`, an offset, `+N`/`-N` (a shift; note that a
    /// relative time needs a unit: `-10m`), or a time as `mq-tail --from` takes it.
    public static func parse(_ text: String, nowMs: Int64) throws -> ResetTarget {
        if let sign = text.first, sign == "+" || sign == "-", let n = Int64(text.dropFirst()), n >= 0 {
            return .shift(sign == "-" ? -n : n)
        }
        return .position(try StartPosition.parse(text, nowMs: nowMs))
    }

    /// The new committed offset, given the partition's current one (nil:
    /// none) and its log bounds; `offsetForTime` is asked only for a time.
    public func newOffset(current: Int64?, logStart: Int64, logEnd: Int64, offsetForTime: (Int64) throws -> Int64) rethrows -> Int64 {
        let raw: Int64
        switch self {
        case .position(.beginning): raw = logStart
        case .position(.end), .position(.last), .position(.lastOfEach): raw = logEnd
        case .position(.nth(let n)): raw = n > logEnd - logStart ? logEnd : logStart + max(n, 1) - 1
        case .position(.offset(let o)): raw = o
        case .position(.time(let t)): raw = try offsetForTime(t)
        case .shift(let n):
            let (sum, overflow) = (current ?? logStart).addingReportingOverflow(n)
            raw = overflow ? (n < 0 ? .min : .max) : sum
        }
        return min(max(raw, logStart), logEnd)
    }
}

/// One partition of a reset: before and after.
public struct ResetRow: Equatable, Sendable {
    public var topic: String
    public var partition: Int32
    /// The committed offset before (nil: none).
    public var current: Int64?
    public var new: Int64
    public var logEnd: Int64
    /// Messages the group has left to read after the reset.
    public var lag: Int64 { max(0, logEnd - new) }
    /// A work queue: the state under `groups/G/queue/TOPIC/P` is reset too.
    public var queue: Bool
    /// The committed-offset file is written: always, except for a work
    /// queue that has none (a queue-only group gets no offset file).
    public var offsetFile: Bool = true
    /// The log start offset, for recomputing a shift under the lease.
    public var logStart: Int64 = 0
}

/// Moves a consumer group's committed offsets, as Kafka's
/// `kafka-consumer-groups --reset-offsets` does.
///
/// Each partition's committed-offset file is written under the partition's
/// lease (docs/FORMAT.md §13): a running member that holds it makes the
/// reset fail with `tempFail`, and nothing is written. All the leases are
/// taken before any offset is written, so a reset changes every partition
/// or none. A work queue's state (§14) is reset under its lock to
/// `low = next = NEW` with no entries, unless an entry is leased by a live
/// member. Not thread-safe.
public struct OffsetReset {
    public let log: LogDirectory
    public let group: GroupDirectory
    public let topic: String
    public let partition: Int32?
    public let target: ResetTarget

    public init(log: LogDirectory, group: String, topic: String, partition: Int32?, target: ResetTarget) throws {
        self.log = log
        self.group = try GroupDirectory(log: log, group: group)
        self.topic = topic
        self.partition = partition
        self.target = target
    }

    /// Computes the reset without changing anything.
    /// - Throws: `MQError`: no such topic or group (noInput), a bad partition (usage).
    public func plan() throws -> [ResetRow] {
        try log.requireTopic(topic)
        guard FileSystem.isDirectory(group.path) else {
            throw MQError(.noInput, "group '\(group.group)' does not exist in \(log.root) (it has never consumed anything)")
        }
        let t = try log.openTopic(topic)
        let partitions: [Int32]
        if let p = partition {
            guard p >= 0 && p < t.partitions else {
                throw MQError.usage("partition \(p) does not exist: topic '\(topic)' has \(t.partitions) partition\(t.partitions == 1 ? "" : "s")")
            }
            partitions = [p]
        } else {
            partitions = Array(0..<t.partitions)
        }
        var rows: [ResetRow] = []
        for p in partitions {
            let reader = PartitionReader(directory: t.partitionPath(p))
            let queueDir = queuePath(p)
            let isQueue = FileSystem.isDirectory(queueDir)
            let slot = try group.committedSlot(topic, p)
            var current = slot?.offset
            if current == nil, isQueue {
                let state = try QueuePartition(directory: queueDir).read()
                if state.generation > 0 { current = state.low }
            }
            let start = try reader.logStartOffset()
            let end = try reader.logEndOffset()
            let new = try target.newOffset(current: current, logStart: start, logEnd: end) { try reader.offset(forTime: $0) }
            rows.append(ResetRow(topic: topic, partition: p, current: current, new: new, logEnd: end, queue: isQueue, offsetFile: slot != nil || !isQueue, logStart: start))
        }
        return rows
    }

    /// Applies a plan: takes every lease, then writes every offset (and queue state).
    /// A shift (`+N`, `-N`) is recomputed from the offset read under the
    /// lease, in case a consumer committed since the plan.
    /// - Returns: the rows as applied.
    /// - Throws: `MQError` `tempFail` naming the partition when a running
    ///   member holds its lease or a queue message is leased; nothing is written then.
    @discardableResult
    public func apply(_ planned: [ResetRow]) throws -> [ResetRow] {
        var rows = planned
        var leases: [Int32: PartitionLease] = [:]
        try group.prepare(topic: topic)
        // Consecutive partitions' leases together: one lock, one read and one write per run.
        let wanted = rows.filter(\.offsetFile).map(\.partition)
        for lease in try PartitionLease.tryAcquireAll(group, topic: topic, partitions: wanted) { leases[lease.partition] = lease }
        defer { PartitionLease.releaseAll(Array(leases.values)) }
        if let held = wanted.first(where: { leases[$0] == nil }) {
            throw MQError(.tempFail, "group '\(group.group)' is consuming topic '\(topic)' partition \(held): a running mq-consume holds its lease; stop the group's consumers, then reset")
        }
        if case .shift = target {
            for i in rows.indices {
                guard let held = leases[rows[i].partition]?.committed?.offset, held != rows[i].current else { continue }
                rows[i].current = held
                rows[i].new = target.newOffset(current: held, logStart: rows[i].logStart, logEnd: rows[i].logEnd) { $0 }
            }
        }
        // Work queues: refuse before changing anything while a message is out.
        for row in rows where row.queue {
            if let owner = try QueuePartition(directory: queuePath(row.partition)).read().leasedEntryOwner(now: currentTimeMillis(), isAlive: group.isMemberAlive) {
                throw MQError(.tempFail, "group '\(group.group)' is working on topic '\(topic)' partition \(row.partition): member \(owner) holds a message of its queue; stop the group's consumers, then reset")
            }
        }
        for row in rows {
            if row.queue {
                try QueuePartition(directory: queuePath(row.partition)).update(durable: true) { state in
                    if let owner = state.leasedEntryOwner(now: currentTimeMillis(), isAlive: group.isMemberAlive) {
                        throw MQError(.tempFail, "group '\(group.group)' is working on topic '\(topic)' partition \(row.partition): member \(owner) holds a message of its queue; stop the group's consumers, then reset")
                    }
                    state.reset(to: row.new)
                }
            }
            try leases[row.partition]?.reset(to: row.new)
        }
        return rows
    }

    private func queuePath(_ p: Int32) -> String { group.queuePath(topic, p) }
}

extension QueueState {
    /// The owner of an entry whose lease runs and whose owner lives, if any.
    func leasedEntryOwner(now: Int64, isAlive: (String) -> Bool) -> String? {
        for e in entries where !e.done && e.leaseUntil > now && !e.owner.isEmpty && isAlive(e.owner) { return e.owner }
        return nil
    }

    /// Starts the queue over at `offset`: everything below counts as done,
    /// nothing at or above has been claimed. Attempt counts are forgotten.
    mutating func reset(to offset: Int64) {
        low = offset
        next = offset
        entries = []
    }
}

/// Renders reset rows as the table `mq-replay --reset-to` prints.
public func renderResetTable(_ rows: [ResetRow]) -> String {
    var lines = [["TOPIC", "PARTITION", "CURRENT", "NEW", "LAG"]]
    for r in rows {
        lines.append([r.topic, String(r.partition), r.current.map { String($0) } ?? "-", String(r.new), String(r.lag)])
    }
    var widths = [Int](repeating: 0, count: 5)
    for l in lines { for (i, c) in l.enumerated() { widths[i] = max(widths[i], c.count) } }
    var out = ""
    for l in lines {
        var cells: [String] = []
        for (i, c) in l.enumerated() {
            let pad = String(repeating: " ", count: widths[i] - c.count)
            cells.append(i == 0 ? c + pad : pad + c)
        }
        out += cells.joined(separator: "  ") + "\n"
    }
    return out
}
