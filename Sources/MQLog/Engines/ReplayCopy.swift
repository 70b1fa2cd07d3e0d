import Glibc

/// `mq-replay --into DEST`: what to copy and how.
public struct ReplayIntoOptions: Sendable {
    public var destination: String
    /// New timestamps (the time of the copy) instead of the source's.
    public var restamp = false
    /// The replay's name, instead of a hash of its arguments.
    public var name: String? = nil
    /// Start a new run when the last one with this identity is complete.
    public var again = false
    /// Create DEST (with the source's partition count) when it is missing.
    public var create = true
    /// Wait while another process runs the same replay (else fail with tempFail).
    public var wait = true
    /// The command-line words that, with the topics, make the replay's
    /// identity: `--from` and `--to` as written, the partition selection and
    /// the filters.
    public var identityWords: [String] = []

    public init(destination: String) { self.destination = destination }

    /// The identity words of a command line: `--from` and `--to` as written
    /// (nil: the defaults), `-p`, and the filters as written.
    public static func identityWords(from: String?, to: String?, partition: Int32?, grep: String?, key: String?, headers: [String]) -> [String] {
        ["from=" + (from ?? "beginning"), "to=" + (to ?? "end"), "partition=" + (partition.map { String($0) } ?? "all"),
         "grep=" + (grep ?? ""), "key=" + (key ?? "")] + headers.map { "header=" + $0 }
    }
}

/// What `ReplayCopier.run` found or did.
public struct ReplayCopySummary: Sendable {
    /// The copy id (`replay.HEX` or `replay.NAME`, then `.2`, `.3`... for `--again` runs).
    public var id: String
    public var destination: String
    /// Records copied by this run.
    public var copied: Int64 = 0
    /// Records of the range found already copied (by an interrupted earlier run).
    public var alreadyCopied: Int64 = 0
    /// Records the filters skipped.
    public var skipped: Int64 = 0
    /// Set when the replay was complete before this run: nothing was done.
    public var completeBefore: (copied: Int64, atMs: Int64)? = nil

    /// The line for standard error: always when the replay was complete
    /// before, else only when `verbose`.
    public func report(verbose: Bool) -> String? {
        if let done = completeBefore {
            return "\(id) already complete: \(done.copied) messages copied on \(formatTimestamp(done.atMs)); use --again for a new run"
        }
        return verbose ? "\(id): \(copied) messages copied into '\(destination)', \(alreadyCopied) copied before, \(skipped) skipped by the filters" : nil
    }
}

/// Copies a range of a topic into a topic (itself included), each source
/// record exactly once however often the replay is interrupted and run again.
///
/// A replay is a copy (`CopyJournal`, docs/FORMAT.md §16) whose id comes
/// from its identity: a hash of the source and destination topics, the
/// literal `--from`/`--to`, the partition selection, the filters and
/// `--restamp` (or `--name`). The first run resolves the range to offsets
/// and stores them in the copy's metadata; a later run with the same
/// identity uses the stored range (so `--from -1h` means the same records
/// after an interrupt) and copies only what is not settled. A complete run
/// is marked in the metadata; running it again copies nothing. Each copied
/// record keeps its key, headers and timestamp (unless `restamp`) and gains
/// the headers `mq.replay.topic`, `mq.replay.partition`, `mq.replay.offset`
/// and `mq.replay.id` (replacing any it had). Not thread-safe.
public final class ReplayCopier {
    public let options: ReplayOptions
    public let into: ReplayIntoOptions
    public let log: LogDirectory
    private var limiter: RateLimiter?

    public init(options: ReplayOptions, into: ReplayIntoOptions, log: LogDirectory) {
        self.options = options
        self.into = into
        self.log = log
        self.limiter = options.ratePerSecond.map { RateLimiter(perSecond: $0) }
    }

    /// The identity's id, without a run number.
    public func baseID(source: String) -> String {
        if let name = into.name { return "replay." + name }
        let words = ["mq-replay", source, into.destination, into.restamp ? "restamp" : "keep-timestamps"] + into.identityWords
        let h = FNV1a.hash64(words.joined(separator: "\u{0}").utf8)
        let hex = String(h, radix: 16)
        return "replay." + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// Copies the range, or finds it complete.
    /// - Throws: `MQError`: no such topic (noInput), bad arguments (usage),
    ///   the replay running elsewhere with `wait` false (tempFail), a stop
    ///   signal (interrupted/terminated, after settling what was written).
    public func run() throws -> ReplayCopySummary {
        try LogDirectory.validateTopicName(into.destination)
        if let name = into.name {
            guard LogDirectory.isValidTopicName(name), name.utf8.count <= 200 else {
                throw MQError.usage("invalid --name '\(name)': use 1 to 200 letters, digits, '.', '_' and '-'")
            }
        }
        let (source, _) = try Replayer.openRange(options, log: log)  // checks the topic and partition
        if !log.topicExists(into.destination) {
            guard into.create else {
                throw log.missingTopicError(into.destination, remedy: " (create it with 'mq-topic create \(into.destination)', or drop --no-create)")
            }
            try log.createTopic(into.destination, config: TopicConfig(partitions: source.partitions))
        }
        let base = baseID(source: source.name)
        // Runs of one identity are BASE, BASE.2, BASE.3...: the last one is resumed or found complete.
        var run = 1
        while FileSystem.isDirectory(CopyJournal.directory(log, id: runID(base, run + 1))) { run += 1 }
        var id = runID(base, run)
        if let state = try CopyJournal.snapshot(log, id: id), let done = ReplayCopier.completion(state) {
            guard into.again else { return ReplayCopySummary(id: id, destination: into.destination, completeBefore: done) }
            id = runID(base, run + 1)
        }
        // Signals keep their default action while waiting for another run of
        // this replay (nothing is changed yet), and are caught from here on.
        let journal = try CopyJournal.open(log, id: id, wait: into.wait)
        defer { journal.close() }
        StopSignals.install()
        if let done = ReplayCopier.completion(journal.state) {
            return ReplayCopySummary(id: id, destination: into.destination, completeBefore: done)  // finished by a run we waited for
        }
        let ranges = try storedOrResolvedRanges(journal, source: source)
        return try copy(ranges, from: source, journal: journal)
    }

    private func runID(_ base: String, _ run: Int) -> String { run == 1 ? base : base + ".\(run)" }

    /// (records copied, when) of a complete replay.
    static func completion(_ state: CopyState) -> (copied: Int64, atMs: Int64)? {
        guard let at = state.metadata["complete"].flatMap({ Int64($0) }) else { return nil }
        return (Int64(state.metadata["copied"] ?? "") ?? 0, at)
    }

    /// The range the first run resolved, or the range resolved now (and stored).
    private func storedOrResolvedRanges(_ journal: CopyJournal, source: Topic) throws -> [ReplayPartitionRange] {
        if let text = journal.metadata["ranges"] {
            guard let ranges = ReplayCopier.decodeRanges(text) else {
                throw MQError.corrupt("copy '\(journal.id)' has unreadable ranges '\(text)' in \(journal.directory)/state (remove that directory to start the replay over)")
            }
            return ranges
        }
        let (_, ranges) = try Replayer.openRange(options, log: log)
        journal.metadata["source"] = source.name
        journal.metadata["destination"] = into.destination
        journal.metadata["ranges"] = ReplayCopier.encodeRanges(ranges)
        journal.metadata["created"] = String(currentTimeMillis())
        try journal.saveMetadata()
        return ranges
    }

    /// `P:START-STOP,...` (STOP exclusive).
    static func encodeRanges(_ ranges: [ReplayPartitionRange]) -> String {
        ranges.map { "\($0.partition):\($0.start)-\($0.stop)" }.joined(separator: ",")
    }

    static func decodeRanges(_ text: String) -> [ReplayPartitionRange]? {
        if text.isEmpty { return [] }
        var out: [ReplayPartitionRange] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
            guard pieces.count == 2, let p = Int32(pieces[0]) else { return nil }
            let bounds = pieces[1].split(separator: "-", omittingEmptySubsequences: false)
            guard bounds.count == 2, let a = Int64(bounds[0]), let b = Int64(bounds[1]), a >= 0, b >= a else { return nil }
            out.append(ReplayPartitionRange(partition: p, start: a, stop: b))
        }
        return out
    }

    private func copy(_ ranges: [ReplayPartitionRange], from source: Topic, journal: CopyJournal) throws -> ReplayCopySummary {
        var summary = ReplayCopySummary(id: journal.id, destination: into.destination)
        let writer = CopyWriter(journal: journal, log: log)
        let destination = try writer.topic(into.destination)
        func settledInRange() -> Int64 {
            ranges.filter { $0.count > 0 }.reduce(0) { sum, r in
                sum + journal.settled(topic: source.name, partition: r.partition).count(in: r.start...(r.stop - 1))
            }
        }
        let settledBefore = settledInRange()
        let total = ranges.reduce(0) { $0 + $1.count }
        let progress = options.progress ? ProgressLine(total: total) : nil
        progress?.advance(by: settledBefore)
        defer { progress?.finish() }
        var lastFlush = monotonicNanos()
        for r in ranges where r.count > 0 {
            let start = journal.firstUnsettled(topic: source.name, partition: r.partition, from: r.start)
            guard start < r.stop else { continue }
            let cursor = try PartitionCursor(partition: r.partition, directory: source.partitionPath(r.partition), startOffset: start)
            while let record = try cursor.peek(), record.offset < r.stop {
                defer { cursor.advance() }
                if StopSignals.signal != 0 { try stop(writer) }
                if journal.isSettled(topic: source.name, partition: r.partition, offset: record.offset) { continue }
                progress?.advance()
                if let filter = options.filter, !(try filter.matches(record)) {
                    summary.skipped += 1
                    continue
                }
                if var l = limiter {
                    let wait = l.reserve(now: monotonicNanos())
                    limiter = l
                    if wait > 0 {
                        // At a slow rate, copies show up in DEST at least twice a second.
                        if writer.pendingRecords > 0 && monotonicNanos() &- lastFlush >= 500_000_000 {
                            try writer.flush()
                            lastFlush = monotonicNanos()
                        }
                        sleepNanos(wait)
                        if StopSignals.signal != 0 { try stop(writer) }
                    }
                }
                let copied = try copyRecord(record, partition: r.partition, source: source, journal: journal)
                let target = CopyJournal.destinationPartition(key: copied.key, sourcePartition: r.partition,
                                                              sourcePartitions: source.partitions, destinationPartitions: destination.partitions)
                try writer.add(copied, to: TopicPartition(into.destination, target))
            }
        }
        try writer.flush()
        summary.copied = Int64(writer.copied)
        summary.alreadyCopied = settledBefore
        // Everything in DEST from this replay, by whichever run copied it.
        journal.metadata["copied"] = String(settledInRange())
        journal.metadata["complete"] = String(currentTimeMillis())
        try journal.saveMetadata()
        return summary
    }

    /// The record as it goes into DEST: provenance headers replace any the record had.
    private func copyRecord(_ r: RecordView, partition: Int32, source: Topic, journal: CopyJournal) throws -> CopyRecord {
        var headers: [Header] = []
        for h in try r.headers() {
            let name = String(decoding: h.name, as: UTF8.self)
            if ReplayCopier.provenanceHeaders.contains(name) { continue }
            headers.append(Header(name: name, value: h.value.map { Array($0) }))
        }
        headers.append(Header(name: "mq.replay.topic", value: Array(source.name.utf8)))
        headers.append(Header(name: "mq.replay.partition", value: Array(String(partition).utf8)))
        headers.append(Header(name: "mq.replay.offset", value: Array(String(r.offset).utf8)))
        headers.append(Header(name: "mq.replay.id", value: Array(journal.id.utf8)))
        return CopyRecord(topic: source.name, partition: partition, offset: r.offset,
                          timestamp: into.restamp ? currentTimeMillis() : r.timestamp,
                          key: r.key.map { Array($0) }, value: r.value.map { Array($0) }, headers: headers)
    }

    static let provenanceHeaders: Set<String> = ["mq.replay.topic", "mq.replay.partition", "mq.replay.offset", "mq.replay.id"]

    /// Settles what was read so far and ends with the signal's status.
    private func stop(_ writer: CopyWriter) throws -> Never {
        try writer.flush()
        let name = StopSignals.name
        throw MQError(StopSignals.exitStatus, "stopped by \(name) after copying \(writer.copied) messages; run the same command again to copy the rest")
    }
}
