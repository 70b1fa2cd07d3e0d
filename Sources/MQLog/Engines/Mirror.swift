import Glibc

/// Where a push mirror sends records: one implementation per engine, in the
/// engine's own target (`MQMirrorNATS`), so that only `mq-mirror` links its
/// client library.
public protocol MirrorSink: AnyObject {
    /// The next offset of `partition` of `topic` to send, as the
    /// destination's own content says (the source offset after the last one
    /// it holds), or nil when it holds nothing of that partition.
    func resumeOffset(topic: String, partition: Int32) throws -> Int64?
    /// Sends `records` (in partition order within each partition) and
    /// returns once the destination has durably accepted every one of them.
    /// A throw means some may have been accepted: sending the same records
    /// again must not duplicate them (the sink's own idempotence).
    func send(_ records: [StoredRecord]) throws
}

/// How records are spread over the partitions of the destination, when
/// pushing (local partitions to Kafka partitions) and when pulling (Kafka
/// partitions, or the `Mq-Partition` of a message an mq push sent to NATS,
/// to local partitions).
public enum MirrorPartitioning: String, Sendable, CaseIterable {
    /// `same` when the destination has at least as many partitions as the
    /// source, else `murmur2`; decided per topic when the mirror starts.
    case auto
    /// Source partition P goes to destination partition P.
    case same
    /// Kafka's default partitioner: murmur2 of the key, modulo the
    /// partitions; a record with a null key goes to its source partition
    /// modulo the partitions.
    case murmur2
}

public struct PushMirrorOptions {
    /// The local topics: names, or patterns (while following, topics created
    /// later that match are picked up).
    public var topics: [String]
    /// The mirror's identity: its consumer group is `mirror.NAME`.
    public var name: String
    /// Stop when every partition is forwarded to its end.
    public var exitAtEnd = false
    /// Most records (and bytes of values) in one chunk sent at once.
    public var chunkRecords = 10_000
    public var chunkBytes = 8 << 20
    /// Attempts at a chunk that the destination refused or did not
    /// acknowledge, with growing pauses between them, before giving up
    /// (nil: keep trying).
    public var giveUpAfterMs: Int64? = nil
    /// At most this many records a second (`--rate`), nil: as fast as the destination takes them.
    public var ratePerSecond: Double? = nil
    /// Draw a progress line on standard error (set when it is a terminal).
    public var progress = false

    public init(topics: [String], name: String) {
        self.topics = topics
        self.name = name
    }
}

/// Runs `body` until it does not fail for want of a destination (status 69
/// or 75): after each such failure `warn` is told, and the next attempt
/// waits a pause that doubles from 100 ms up to 10 s (with jitter), never
/// past `giveUpAfterMs` (nil: keep trying), after which the failure is
/// thrown as 69. A stop signal during a pause throws `stopped()`.
/// StopSignals must be installed.
public func retryingWhileUnavailable<T>(giveUpAfterMs: Int64?, warn: (String) -> Void, stopped: () -> MQError,
                                        _ body: () throws -> T) throws -> T {
    var pauseMs: Int64 = 100
    let started = monotonicNanos()
    while true {
        do {
            return try body()
        } catch let error as MQError where error.status == .unavailable || error.status == .tempFail {
            let waited = Int64((monotonicNanos() &- started) / 1_000_000)
            if let limit = giveUpAfterMs, waited >= limit {
                throw MQError(.unavailable, "\(error.description); gave up after \(limit / 1000) s (--timeout)")
            }
            warn("\(error.description); retrying in \(pauseMs) ms")
            let pause = giveUpAfterMs.map { min(pauseMs, max(0, $0 - waited)) } ?? pauseMs
            if !waitReadable([StopSignals.fd], timeoutMs: Int32(pause)).isEmpty || StopSignals.signal != 0 { throw stopped() }
            pauseMs = min(pauseMs * 2, 10_000) + Int64.random(in: 0...(pauseMs / 4))
        }
    }
}

public struct PushMirrorSummary: Sendable {
    public var forwarded = 0
    public var partitions = 0
}

/// Forwards local topics to a `MirrorSink`, each committed record exactly
/// once however often the mirror is stopped or killed (docs/MIRROR.md).
///
/// It reads as the consumer group `mirror.NAME`, so `mq-stat` shows its lag
/// and retention keeps what it has not forwarded. Each partition resumes at
/// the later of the group's commit and what the destination says it holds
/// (a mirror killed after the destination accepted a chunk and before the
/// commit). A chunk's records are made durable locally before they are sent
/// (`DurableEnd`), and the group commits after the destination acknowledged
/// them. Not thread-safe.
public final class PushMirror {
    public let options: PushMirrorOptions
    public let log: LogDirectory
    public let sink: MirrorSink
    /// Called with a line for standard error (retries, no trailing newline).
    public var warn: (String) -> Void = { _ in }

    private struct Source {
        let topic: String
        let lease: PartitionLease
        let cursor: PartitionCursor
        let durable: DurableEnd
    }

    private var sources: [Source] = []
    private var selection = TopicSelection()
    private var group: GroupDirectory!
    /// The topics read, by name.
    private var mirrored = Set<String>()
    private var nextDiscoveryNanos: UInt64 = 0
    private let watcher = ChangeWatcher()
    private var summary = PushMirrorSummary()
    private var pacer = ChunkPacer(perSecond: nil)
    private var progress: ProgressLine?

    public init(options: PushMirrorOptions, log: LogDirectory, sink: MirrorSink) {
        self.options = options
        self.log = log
        self.sink = sink
    }

    /// The consumer group of a mirror named `name`.
    public static func groupName(_ name: String) -> String { "mirror." + name }

    /// Runs until stopped (or, with `exitAtEnd`, until every partition is forwarded).
    public func run() throws -> PushMirrorSummary {
        StopSignals.install()
        pacer = ChunkPacer(perSecond: options.ratePerSecond)
        if options.progress { progress = ProgressLine(total: nil, tool: "mq-mirror", unit: "forwarded") }
        defer { progress?.finish() }
        try open()
        while true {
            if StopSignals.signal != 0 { throw stopped() }
            try discover()
            let chunk = try collect()
            if chunk.records.isEmpty && chunk.ends.isEmpty {
                if options.exitAtEnd { return summary }
                _ = watcher.wait(timeoutMs: 1000, alsoWake: [StopSignals.fd])
                StopSignals.drain()
                continue
            }
            try forward(chunk)
        }
    }

    private func retrying<T>(_ body: () throws -> T) throws -> T {
        try retryingWhileUnavailable(giveUpAfterMs: options.giveUpAfterMs, warn: warn, stopped: stopped, body)
    }

    private func stopped() -> MQError {
        return MQError(StopSignals.exitStatus, "stopped by \(StopSignals.name); \(summary.forwarded) message\(summary.forwarded == 1 ? "" : "s") forwarded and committed")
    }

    /// Takes every partition's lease (another mirror of the same name
    /// running is an error) and positions it.
    private func open() throws {
        selection = try TopicSelection(options.topics)
        try selection.requireExact(in: log)
        let names = try selection.existing(in: log)
        // A follower of patterns waits for matching topics to appear.
        if names.isEmpty && (options.exitAtEnd || selection.patterns.isEmpty) {
            throw MQError(.noInput, "no topic in \(log.root) matches \(options.topics.map { "'\($0)'" }.joined(separator: ", "))")
        }
        group = try GroupDirectory(log: log, group: Self.groupName(options.name))
        if !options.exitAtEnd && !selection.patterns.isEmpty {
            try FileSystem.makeDirectoriesDurably(log.topicsPath)
            watcher.watch(log.topicsPath)
        }
        try add(names)
    }

    /// Following patterns: topics created since the last look that match
    /// one are mirrored from their beginning (a look at most once a second).
    private func discover() throws {
        guard !options.exitAtEnd, !selection.patterns.isEmpty else { return }
        let now = monotonicNanos()
        guard now >= nextDiscoveryNanos else { return }
        nextDiscoveryNanos = now + 1_000_000_000
        let new = try selection.existing(in: log).filter { !mirrored.contains($0) }
        if !new.isEmpty { try add(new) }
    }

    /// Takes the leases of every partition of `names` and positions them.
    private func add(_ names: [String]) throws {
        for name in names {
            mirrored.insert(name)
            let topic = try log.openTopic(name)
            try group.prepare(topic: name)
            ReaderPool.expectReaders(sources.count + Int(topic.partitions))
            // Consecutive partitions' leases together: one lock, one read and one write per run.
            let partitions = Array(0..<topic.partitions)
            let leases = try PartitionLease.tryAcquireAll(group, topic: name, partitions: partitions)
            if leases.count < partitions.count {
                let taken = Set(leases.map(\.partition))
                let p = partitions.first { !taken.contains($0) }!
                throw MQError(.tempFail, "mirror '\(options.name)' is already running (partition \(p) of '\(name)' is held by another process)")
            }
            for lease in leases {
                let p = lease.partition
                let dir = topic.partitionPath(p)
                let committed = lease.committed?.offset
                let there = try retrying { try sink.resumeOffset(topic: name, partition: p) }
                let cursor = try PartitionCursor.positioned(partition: p, directory: dir, isolation: .readCommitted) { reader in
                    let first = try reader.logStartOffset()
                    let wanted = max(committed ?? first, there ?? first, first)
                    return min(wanted, try reader.logEndOffset())
                }
                sources.append(Source(topic: name, lease: lease, cursor: cursor, durable: DurableEnd(reader: cursor.reader)))
                if !options.exitAtEnd { watcher.watch(dir) { cursor.reader.activeSegmentBase() } }
            }
        }
        summary.partitions = sources.count
    }

    private struct Chunk {
        var records: [StoredRecord] = []
        /// Per source index: the offset after the chunk's last record (or skipped control batch).
        var ends: [Int: Int64] = [:]
    }

    /// The next records, a slice of each partition in turn.
    private func collect() throws -> Chunk {
        var chunk = Chunk()
        var bytes = 0
        let most = min(options.chunkRecords, pacer.chunkLimit ?? .max)
        let share = max(1, most / max(1, sources.count))
        for (i, s) in sources.enumerated() {
            var n = 0
            while n < share, chunk.records.count < most, bytes < options.chunkBytes, let r = try s.cursor.peek() {
                chunk.records.append(try StoredRecord(r, topic: s.topic, partition: s.cursor.partition))
                bytes += (r.value?.count ?? 0) + (r.key?.count ?? 0) + r.headerBytes.count
                s.cursor.advance()
                n += 1
            }
            // Also a position the destination moved on (or control batches skipped).
            if s.cursor.nextOffset != s.lease.committed?.offset { chunk.ends[i] = s.cursor.nextOffset }
        }
        return chunk
    }

    /// Makes the chunk durable locally, sends it until the sink accepts it,
    /// then commits the group's positions.
    private func forward(_ chunk: Chunk) throws {
        guard pacer.wait(for: chunk.records.count) else { throw stopped() }
        for (i, end) in chunk.ends { try sources[i].durable.ensure(below: end) }
        if !chunk.records.isEmpty { try retrying { try sink.send(chunk.records) } }
        try PartitionLease.commitAll(chunk.ends.map { (sources[$0.key].lease, $0.value) })
        summary.forwarded += chunk.records.count
        progress?.advance(by: Int64(chunk.records.count))
    }
}
