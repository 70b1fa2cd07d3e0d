import Glibc

public struct RedriveOptions {
    public var topic: String
    public var query = DeadLetterQuery()
    /// Where letters go; nil: each to its `mq.original.topic`.
    public var destination: String? = nil
    /// Letters per second at most.
    public var ratePerSecond: Double? = nil
    /// Wait while another redrive or purge of the topic runs (else fail with 75).
    public var wait = true
    public var dryRun = false

    public init(topic: String) { self.topic = topic }
}

public struct RedriveSummary: Sendable {
    /// Letters written back by this run.
    public var moved = 0
    /// Matching letters that an earlier redrive or purge had settled.
    public var alreadySettled = 0
    /// Letters without `mq.original.topic`, left in place (redrive them with `--into`).
    public var noOriginal = 0
}

/// `mq-dlq redrive`: writes matching dead letters back to their original
/// topic (or another), each exactly once across all redrives and purges of
/// the dead-letter topic, however they are interrupted (CopyJournal with id
/// `dlq.TOPIC`). A letter goes back with its key, value, timestamp and user
/// headers; the failure headers are dropped and `mq.redrive.from` and
/// `mq.redrive.count` added (DeadLetter.redrivenHeaders). Not thread-safe.
public final class Redriver {
    public let options: RedriveOptions
    public let log: LogDirectory
    /// Called after each written chunk with the number moved so far.
    public var progress: (Int) -> Void = { _ in }
    /// With `dryRun`: called with one line per letter that would move.
    public var dryRunLine: (String) -> Void = { _ in }

    public init(options: RedriveOptions, log: LogDirectory) {
        self.options = options
        self.log = log
    }

    /// - Throws: `MQError`: no such topic (66), busy (75, without wait), a
    ///   stop signal (130/143, after writing and settling what was read).
    public func run() throws -> RedriveSummary {
        try log.requireTopic(options.topic)
        if let to = options.destination { try log.requireTopic(to, remedy: " (create it first with 'mq-topic create \(to)')") }
        return options.dryRun ? try dryRun() : try redrive()
    }

    private var scanQuery: DeadLetterQuery {
        var q = options.query
        q.includeSettled = true  // counted as already settled, not moved
        q.limit = nil
        return q
    }

    private var existing = Set<String>()

    private func destinationTopic(_ letter: DeadLetter) throws -> String? {
        guard let name = options.destination ?? letter.originalTopic else { return nil }
        if existing.contains(name) { return name }
        if log.topicExists(name) {
            existing.insert(name)
        } else {
            throw MQError(.noInput, "topic '\(name)', where dead letter \(letter.topic)/\(letter.partition)/\(letter.offset) came from, does not exist in \(log.root) (create it, or send the letters elsewhere with --into)")
        }
        return name
    }

    /// The original partition when the destination has it, else by key, else
    /// the letter's partition modulo the destination's count.
    static func destinationPartition(_ letter: DeadLetter, partitions: Int32) -> Int32 {
        if let p = letter.originalPartition, p >= 0, p < partitions { return p }
        if let key = letter.key { return key.withUnsafeBytes { Partitioner.partition(forKey: $0, partitions: partitions) } }
        return letter.partition % partitions
    }

    private func redrive() throws -> RedriveSummary {
        let journal = try CopyJournal.open(log, id: DeadLetters.copyID(for: options.topic), wait: options.wait)
        defer { journal.close() }
        StopSignals.install()
        let writer = CopyWriter(journal: journal, log: log)
        var limiter = options.ratePerSecond.map { RateLimiter(perSecond: $0) }
        if let rate = options.ratePerSecond { writer.maxChunkRecords = max(1, min(1000, Int(rate / 4))) }
        var summary = RedriveSummary()
        var lastReported = 0
        var lastFlush = monotonicNanos()
        func stop() throws -> Never {
            try writer.flush()
            let n = writer.copied
            let name = StopSignals.name
            throw MQError(StopSignals.exitStatus, "stopped by \(name) after moving \(n) dead letter\(n == 1 ? "" : "s") (each exactly once; run again to move the rest)")
        }
        try DeadLetters.scan(log, topic: options.topic, query: scanQuery, now: currentTimeMillis(),
                             settled: { _, _ in false }) { _, letter in
            if StopSignals.signal != 0 { try stop() }
            if journal.isSettled(topic: letter.topic, partition: letter.partition, offset: letter.offset) {
                summary.alreadySettled += 1
                return true
            }
            guard let name = try destinationTopic(letter) else {
                summary.noOriginal += 1
                return true
            }
            let topic = try writer.topic(name)
            let record = CopyRecord(topic: letter.topic, partition: letter.partition, offset: letter.offset, timestamp: letter.timestamp,
                                    key: letter.key, value: letter.value, headers: letter.redrivenHeaders())
            try writer.add(record, to: TopicPartition(name, Redriver.destinationPartition(letter, partitions: topic.partitions)))
            summary.moved += 1
            if writer.copied != lastReported {
                lastReported = writer.copied
                progress(lastReported)
            }
            if limiter != nil {
                let due = monotonicNanos() + limiter!.reserve(now: monotonicNanos())
                if monotonicNanos() < due {
                    // Write what waited long enough, so a slow redrive makes steady progress.
                    if writer.pendingRecords > 0 && monotonicNanos() - lastFlush > 200_000_000 {
                        try writer.flush()
                        lastFlush = monotonicNanos()
                        progress(writer.copied)
                    }
                    var now = monotonicNanos()
                    while now < due {
                        _ = waitReadable([StopSignals.fd], timeoutMs: Int32(min(1000, (due - now) / 1_000_000 + 1)))
                        if StopSignals.signal != 0 { try stop() }
                        now = monotonicNanos()
                    }
                }
            }
            if let limit = options.query.limit, summary.moved >= limit { return false }
            return true
        }
        try writer.flush()
        progress(writer.copied)
        return summary
    }

    private func dryRun() throws -> RedriveSummary {
        var summary = RedriveSummary()
        let settled = try DeadLetters.savedSettled(log, topic: options.topic)
        var partitions: [String: Int32] = [:]
        try DeadLetters.scan(log, topic: options.topic, query: scanQuery, now: currentTimeMillis(), settled: { _, _ in false }) { _, letter in
            if settled(TopicPartition(letter.topic, letter.partition), letter.offset) {
                summary.alreadySettled += 1
                return true
            }
            guard let name = try destinationTopic(letter) else {
                summary.noOriginal += 1
                return true
            }
            if partitions[name] == nil { partitions[name] = try log.readConfig(name).partitions }
            let p = Redriver.destinationPartition(letter, partitions: partitions[name]!)
            dryRunLine(DeadLetters.planLine(letter, destination: "\(name)/\(p)"))
            summary.moved += 1
            if let limit = options.query.limit, summary.moved >= limit { return false }
            return true
        }
        return summary
    }
}

/// `mq-dlq purge`: settles matching dead letters without moving them, in
/// the same journal as redrives, so they leave `list` and `show` and are
/// never redriven. Their bytes stay until retention deletes the segments.
public enum DeadLetterPurge {
    /// What `run` would purge, as the copy's last saved state has the settled
    /// letters; takes no lock and changes nothing (`purge --dry-run`).
    /// - Parameter line: called with one line per letter a purge would settle.
    /// - Returns: the number of those letters.
    /// - Throws: `MQError`: no such topic (66), corrupt data (65).
    public static func plan(_ log: LogDirectory, topic: String, query: DeadLetterQuery, line: (String) -> Void) throws -> Int {
        var count = 0
        try DeadLetters.scan(log, topic: topic, query: query, now: currentTimeMillis(),
                             settled: try DeadLetters.savedSettled(log, topic: topic)) { _, letter in
            line(DeadLetters.planLine(letter, destination: nil))
            count += 1
            return true
        }
        return count
    }

    /// - Parameter confirm: asked with the number found before anything is
    ///   settled; false cancels (nothing changes).
    /// - Returns: the number purged, or nil when cancelled.
    public static func run(_ log: LogDirectory, topic: String, query: DeadLetterQuery, wait: Bool,
                           confirm: (Int) throws -> Bool) throws -> Int? {
        try log.requireTopic(topic)
        let journal = try CopyJournal.open(log, id: DeadLetters.copyID(for: topic), wait: wait)
        defer { journal.close() }
        var found: [Int32: OffsetRanges] = [:]
        var count = 0
        try DeadLetters.scan(log, topic: topic, query: query, now: currentTimeMillis(),
                             settled: { tp, o in journal.isSettled(topic: tp.topic, partition: tp.partition, offset: o) }) { _, letter in
            found[letter.partition, default: OffsetRanges()].insert(letter.offset)
            count += 1
            return true
        }
        guard count > 0 else { return 0 }
        guard try confirm(count) else { return nil }
        for (p, ranges) in found.sorted(by: { $0.key < $1.key }) {
            try journal.markSettled(topic: topic, partition: p, ranges.ranges)
        }
        return count
    }
}
