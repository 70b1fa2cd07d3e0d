import Glibc

// Pulling (docs/MIRROR.md, "Pulling"): a cluster's stream or topic copied
// into a local topic, each record exactly once, with the copy machinery of
// mq-replay --into (CopyJournal, CopyWriter; docs/FORMAT.md §16).
//
// The copy's id is `mirror.NAME`. Its source partitions are the cluster's:
// the stream (partition 0) with stream sequences as source offsets for NATS,
// the Kafka topic's partitions with their offsets for Kafka. Each chunk is
// written and fsynced through CopyWriter (which records the source positions
// in the journal and in the batches' producer fields), and only then does the
// source acknowledge it to the cluster (NATS acks, Kafka offset commits). A
// record the cluster delivers again (killed between the fsync and the
// acknowledgement) is found settled in the journal and not written twice.

/// A record fetched from a cluster, with its position there.
public struct PulledRecord: Sendable {
    /// The source partition: for NATS the stream (partition 0), for Kafka
    /// the topic and partition.
    public var source: TopicPartition
    /// The position in the source: the stream sequence, or the Kafka offset.
    public var position: Int64
    /// When the positions from `gapFrom` up to `position - 1` hold nothing
    /// that will ever be delivered (deleted messages, transaction markers),
    /// the first of them: they are settled with this record.
    public var gapFrom: Int64? = nil
    public var timestamp: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
    /// The record's own headers, then the provenance headers (`PullProvenance`).
    public var headers: [Header]
    /// The local partition the source suggests (a Kafka partition, or the
    /// `Mq-Partition` of a message an mq push sent to NATS), nil for none.
    public var partition: Int32?

    public init(source: TopicPartition, position: Int64, timestamp: Int64, key: [UInt8]?, value: [UInt8]?,
                headers: [Header], partition: Int32?) {
        self.source = source
        self.position = position
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
    }
}

/// The provenance headers a pulled record carries at the end of its headers
/// (docs/MIRROR.md): `mq.mirror.from.` followed by `stream`, `subject`,
/// `sequence` (NATS) or `topic`, `partition`, `offset` (Kafka); decimal text.
/// A record that had headers of these names loses them (as mq-replay --into
/// replaces its own), so a record carries one provenance.
public enum PullProvenance {
    public static let prefix = "mq.mirror.from."

    /// `headers` without provenance, then `(name, value)` of `fields` as `mq.mirror.from.NAME`.
    public static func append(_ fields: [(String, String)], to headers: [Header]) -> [Header] {
        var out = headers.filter { !$0.name.hasPrefix(prefix) }
        for (name, value) in fields { out.append(Header(name: prefix + name, value: Array(value.utf8))) }
        return out
    }
}

/// What a `MirrorSource` fetched.
public struct PulledChunk: Sendable {
    public var records: [PulledRecord] = []
    /// Nothing more is there now (`-e` stops when fetching finds this).
    public var caughtUp = false
    public init(records: [PulledRecord] = [], caughtUp: Bool = false) {
        self.records = records
        self.caughtUp = caughtUp
    }
}

/// Where a pull mirror reads: one implementation per engine, in the engine's
/// own target, so that only `mq-mirror` links its client library.
public protocol MirrorSource: AnyObject {
    /// The partitions a local topic created for this source gets by default.
    var defaultPartitions: Int32 { get }
    /// The source partitions, for `--partitioner same` (nil: not known, or
    /// the records say, as for NATS).
    var sourcePartitions: Int32? { get }
    /// Positions the source where the journal (what is durable locally) and
    /// the cluster's own record of this mirror (acks, committed offsets) say.
    func start(journal: CopyJournal) throws
    /// Up to `maxRecords` records, in source order within each source
    /// partition, waiting up to `timeoutMs` when none is there.
    func fetch(maxRecords: Int, timeoutMs: Int32) throws -> PulledChunk
    /// Every record fetched so far is durable locally (or was found
    /// settled): tells the cluster (NATS acks, Kafka offset commit). May be
    /// called again after it threw.
    func acknowledge() throws
}

public struct PullMirrorOptions: Sendable {
    /// The local topic.
    public var topic: String
    /// The mirror's identity: its copy is `mirror.NAME`.
    public var name: String
    /// Stop when the source is caught up.
    public var exitAtEnd = false
    /// Create the local topic when missing, with `partitions` (nil: the
    /// source's default).
    public var create = false
    public var partitions: Int32? = nil
    public var partitioning: MirrorPartitioning = .auto
    /// Most records fetched, written and acknowledged at once.
    public var chunkRecords = 1000
    /// Give up with 69 after the cluster failed for this long (nil: keep trying).
    public var giveUpAfterMs: Int64? = nil
    /// At most this many records a second (`--rate`), nil: as fast as they come.
    public var ratePerSecond: Double? = nil
    /// Draw a progress line on standard error (set when it is a terminal).
    public var progress = false

    public init(topic: String, name: String) {
        self.topic = topic
        self.name = name
    }
}

public struct PullMirrorSummary: Sendable {
    /// Records written locally by this run.
    public var copied = 0
    /// Records delivered again and found written before.
    public var skipped = 0
}

/// Copies a cluster's stream or topic into a local topic, each record exactly
/// once however often the mirror is stopped or killed (see the top of this
/// file). Not thread-safe.
public final class PullMirror {
    public let options: PullMirrorOptions
    public let log: LogDirectory
    public let source: MirrorSource
    /// Called with a line for standard error (retries, no trailing newline).
    public var warn: (String) -> Void = { _ in }

    private var summary = PullMirrorSummary()
    private var roundRobin: Int32 = 0
    private var keepPartitions = true

    public init(options: PullMirrorOptions, log: LogDirectory, source: MirrorSource) {
        self.options = options
        self.log = log
        self.source = source
    }

    /// The copy id of a pull mirror named `name`.
    public static func copyID(_ name: String) -> String { "mirror." + name }

    /// Runs until stopped (or, with `exitAtEnd`, until caught up).
    /// - Throws: 66 without the local topic (and no `create`), 75 when a
    ///   mirror of this name runs, 78 for `same` with too few local
    ///   partitions, 130/143 on a signal (after writing and acknowledging
    ///   what was fetched), the source's errors.
    public func run() throws -> PullMirrorSummary {
        try LogDirectory.validateTopicName(options.topic)
        if !log.topicExists(options.topic) {
            guard options.create else {
                throw log.missingTopicError(options.topic, remedy: " (create it with 'mq-topic create \(options.topic)', or pass --create)")
            }
            _ = try log.createTopic(options.topic, config: TopicConfig(partitions: options.partitions ?? source.defaultPartitions))
        }
        let journal = try CopyJournal.open(log, id: Self.copyID(options.name), wait: false)
        defer { journal.close() }
        StopSignals.install()
        let writer = CopyWriter(journal: journal, log: log)
        writer.maxChunkRecords = max(writer.maxChunkRecords, options.chunkRecords)
        let partitions = try writer.topic(options.topic).partitions
        if options.partitioning == .same, let n = source.sourcePartitions, n > partitions {
            throw MQError(.config, "the source has \(n) partitions but topic '\(options.topic)' only \(partitions): --partitioner same needs as many (use --partitioner murmur2, or a topic with more partitions)")
        }
        // auto: same for a source with no more partitions than the topic
        // (NATS: decided per message, by its Mq-Partition).
        keepPartitions = options.partitioning == .same
            || (options.partitioning == .auto && (source.sourcePartitions.map { $0 <= partitions } ?? true))
        if journal.metadata["topic"] != options.topic {
            journal.metadata["topic"] = options.topic
            try journal.saveMetadata()
        }
        try retrying { try source.start(journal: journal) }
        var pacer = ChunkPacer(perSecond: options.ratePerSecond)
        let most = min(options.chunkRecords, pacer.chunkLimit ?? .max)
        let progress = options.progress ? ProgressLine(total: nil, tool: "mq-mirror", unit: "copied") : nil
        defer { progress?.finish() }
        while true {
            if StopSignals.signal != 0 { throw stopped() }
            let chunk = try retrying { try source.fetch(maxRecords: most, timeoutMs: 1000) }
            // Fetched records wait for their tokens before they are written: on
            // a stop signal here they are not acknowledged and come again.
            guard pacer.wait(for: chunk.records.count) else { throw stopped() }
            for r in chunk.records {
                if let from = r.gapFrom, from < r.position { writer.settleWithChunk(r.source, from...(r.position - 1)) }
                let target = try destination(r, partitions: partitions)
                let copy = CopyRecord(topic: r.source.topic, partition: r.source.partition, offset: r.position,
                                      timestamp: r.timestamp, key: r.key, value: r.value, headers: r.headers)
                if try writer.add(copy, to: TopicPartition(options.topic, target)) { summary.copied += 1 } else { summary.skipped += 1 }
            }
            try writer.flush()
            if !chunk.records.isEmpty { try retrying { try source.acknowledge() } }
            progress?.advance(by: Int64(chunk.records.count))
            if chunk.caughtUp && options.exitAtEnd { return summary }
        }
    }

    /// The local partition of `r` (docs/MIRROR.md): the source's partition
    /// when it fits (`auto`, `same`), else murmur2 of the key, else the
    /// source's partition modulo the count, else round robin.
    func destination(_ r: PulledRecord, partitions n: Int32) throws -> Int32 {
        if keepPartitions, let p = r.partition, p >= 0, p < n { return p }
        if options.partitioning == .same {
            throw MQError(.config, "position \(r.position) of \(r.source) names no partition of topic '\(options.topic)' (\(n) partitions): --partitioner same needs one (use auto or murmur2)")
        }
        if let key = r.key { return key.withUnsafeBytes { Partitioner.partition(forKey: $0, partitions: n) } }
        if let p = r.partition, p >= 0 { return p % n }
        defer { roundRobin = (roundRobin + 1) % n }
        return roundRobin % n
    }

    private func retrying<T>(_ body: () throws -> T) throws -> T {
        try retryingWhileUnavailable(giveUpAfterMs: options.giveUpAfterMs, warn: warn, stopped: stopped, body)
    }

    private func stopped() -> MQError {
        MQError(StopSignals.exitStatus, "stopped by \(StopSignals.name); \(summary.copied) message\(summary.copied == 1 ? "" : "s") copied into '\(options.topic)' and acknowledged")
    }
}
