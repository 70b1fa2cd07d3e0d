import Glibc

/// What `mq-compact` does to a log: per partition, finish or undo an
/// interrupted swap, delete old segments (retention), and compact keyed
/// topics. docs/FORMAT.md, "Compaction and retention", states the rules.
///
/// It never touches a partition's active segment and never takes a writer's
/// lock: it only deletes and replaces segments that no writer appends to
/// any more, under the global `ROOT/compact.lock` (taken by the caller).
public final class Compactor {
    public struct Options: Sendable {
        /// Wall-clock ms the run's age rules are measured against.
        public var now: Int64
        /// Report what would be done; change nothing.
        public var dryRun = false
        /// Compact whatever the dirty ratio says.
        public var force = false
        /// Let retention delete segments that consumer groups still need.
        public var ignoreConsumers = false

        public init(now: Int64) { self.now = now }
    }

    /// Totals of a run.
    public struct Report: Sendable, Equatable {
        public var topics = 0
        public var partitions = 0
        public var segmentsDeleted = 0
        public var bytesDeleted: Int64 = 0
        /// Segments retention would have deleted but a consumer group still needs.
        public var segmentsHeld = 0
        /// Old segments replaced by compaction, and the new ones that replaced them.
        public var segmentsCompacted = 0
        public var segmentsWritten = 0
        public var recordsRemoved: Int64 = 0
        public var bytesCompacted: Int64 = 0
        public var swapsFinished = 0
        public var rewritesUndone = 0

        public init() {}

        public var bytesReclaimed: Int64 { bytesDeleted + bytesCompacted }
    }

    /// A non-active segment as a header scan sees it.
    struct SegmentInfo {
        let base: Int64
        /// Base of the next segment: every offset here is below it.
        let nextBase: Int64
        let size: Int64
        var maxTimestamp: Int64 = -1
        var firstTimestamp: Int64 = -1
    }

    public let log: LogDirectory
    public let options: Options
    /// Called before each partition: topic, partition, index and count of partitions in the run.
    public var progress: ((String, Int32, Int, Int) -> Void)?
    public private(set) var report = Report()
    private let rewriter = BatchRewriter()

    public init(log: LogDirectory, options: Options) {
        self.log = log
        self.options = options
    }

    /// Processes `topics` (existing topic names).
    public func run(topics: [String]) throws {
        try forEachPartition(log, topics, progress: progress) { topic, p in
            try compactPartition(topic, p)
            report.partitions += 1
        } topicDone: { report.topics += 1 }
    }

    // MARK: One partition

    func compactPartition(_ topic: Topic, _ p: Int32) throws {
        let dir = topic.partitionPath(p)
        guard FileSystem.isDirectory(dir) else { return }
        switch try SwapJournal.recover(in: dir, dryRun: options.dryRun) {
        case .rolledForward: report.swapsFinished += 1
        case .rolledBack: report.rewritesUndone += 1
        case .nothing: break
        }
        var bases = try LogSegments.baseOffsets(in: dir)
        let active = Compactor.activeBase(dir, bases)
        var sizes: [Int64: Int64] = [:]
        for b in bases { sizes[b] = FileSystem.size(Segment(dir, b).logPath) ?? 0 }
        let config = topic.config
        let policies = config.value("cleanup.policy").split(separator: ",").map { $0.trimmingSpaces }
        if policies.contains("delete") {
            try applyRetention(topic, p, dir, &bases, active: active, sizes: sizes)
        }
        if policies.contains("compact") {
            try compact(topic, dir, bases, active: active, sizes: sizes)
        }
    }

    /// The active segment: the `head` state's, or the last one when the state cannot be read.
    static func activeBase(_ dir: String, _ bases: [Int64]) -> Int64 {
        let last = bases.last ?? 0
        guard let bytes = try? FileSystem.readAll(LogSegments.headPath(dir)),
              let state = bytes.withUnsafeBytes({ HeadState.decode($0) }) else { return last }
        return min(state.activeBase, last)
    }

    /// Timestamps of a segment from its batch headers.
    func scan(_ dir: String, base: Int64, nextBase: Int64, size: Int64) throws -> SegmentInfo {
        var info = SegmentInfo(base: base, nextBase: nextBase, size: size)
        guard let scanner = try SegmentScanner.open(Segment(dir, base).logPath) else { return info }
        while true {
            switch try scanner.nextHeader() {
            case .batch(_, let h, _):
                if info.firstTimestamp < 0 { info.firstTimestamp = h.isLogAppendTime ? h.maxTimestamp : h.baseTimestamp }
                info.maxTimestamp = max(info.maxTimestamp, h.maxTimestamp)
            case .end:
                return info
            case .problem(let position, let problem, _):
                throw Compactor.corrupt(scanner.path, position, problem)
            }
        }
    }

    static func corrupt(_ path: String, _ position: Int64, _ problem: any Error) -> MQError {
        MQError(.dataError, "corrupt log: \(path) at byte \(position): \(problem) (the segment is left as it was; mq-compact --check lists every problem, --repair cuts a torn tail)")
    }

    // MARK: Retention

    /// Deletes the oldest non-active segments while they are older than
    /// `retention.ms` or the partition is larger than `retention.bytes`
    /// without them, and no consumer group needs them.
    func applyRetention(_ topic: Topic, _ p: Int32, _ dir: String, _ bases: inout [Int64], active: Int64, sizes: [Int64: Int64]) throws {
        let retentionMs = topic.config.long("retention.ms")
        let retentionBytes = topic.config.long("retention.bytes")
        guard retentionMs >= 0 || retentionBytes >= 0 else { return }
        var total = bases.reduce(Int64(0)) { $0 + (sizes[$1] ?? 0) }
        var floorLoaded = false
        var floor: Int64?
        var deleted = 0
        var openFloor: Int64?
        var openLoaded = false
        while bases.count >= 2, bases[0] < active {
            let base = bases[0], nextBase = bases[1], size = sizes[base] ?? 0
            let bySize = retentionBytes >= 0 && total - size >= retentionBytes
            var byTime = false
            if !bySize && retentionMs >= 0 {
                let info = try scan(dir, base: base, nextBase: nextBase, size: size)
                byTime = info.maxTimestamp < options.now - retentionMs
            }
            guard bySize || byTime else { break }
            // Never a segment holding records of a transaction still open.
            if !openLoaded {
                openFloor = try OpenTransactions.read(partition: dir).firstOpenOffset
                openLoaded = true
            }
            if let openFloor, nextBase > openFloor {
                report.segmentsHeld += 1
                break
            }
            if !options.ignoreConsumers {
                if !floorLoaded {
                    floor = try RetentionGuard.firstNeededOffset(log: log, topic: topic.name, partition: p)
                    floorLoaded = true
                }
                if let floor, nextBase > floor {
                    report.segmentsHeld += 1
                    break
                }
            }
            try stopIfSignalled()
            if !options.dryRun {
                // The .log first: readers and writers know segments by their .log names.
                let segment = Segment(dir, base)
                try segment.removeFiles()
                try FileSystem.remove(segment.txnIndexPath)
            }
            deleted += 1
            report.segmentsDeleted += 1
            report.bytesDeleted += size
            total -= size
            bases.removeFirst()
        }
        if deleted > 0 && !options.dryRun { try FileSystem.syncDirectory(dir) }
    }

    // MARK: Key compaction

    /// Kafka's log cleaner on the cleanable range (non-active segments from
    /// the first, up to the first one with a record younger than
    /// `min.compaction.lag.ms`), when the dirty ratio, `max.compaction.lag.ms`
    /// or `force` says so.
    func compact(_ topic: Topic, _ dir: String, _ bases: [Int64], active: Int64, sizes: [Int64: Int64]) throws {
        let config = topic.config
        let now = options.now
        let minLag = config.long("min.compaction.lag.ms")
        let maxLag = config.long("max.compaction.lag.ms")
        let minRatio = Double(config.value("min.cleanable.dirty.ratio")) ?? 0.5
        let tombstoneHorizon = now - config.long("delete.retention.ms")
        var cleanable: [SegmentInfo] = []
        for (i, base) in bases.enumerated() where i + 1 < bases.count && base < active {
            let info = try scan(dir, base: base, nextBase: bases[i + 1], size: sizes[base] ?? 0)
            if minLag > 0 && info.maxTimestamp > now - minLag { break }
            cleanable.append(info)
        }
        guard let end = cleanable.last?.nextBase else { return }
        var checkpoint = CleanerCheckpoint.read(dir)
        if checkpoint > active { checkpoint = 0 }  // not from this log: all dirty
        let dirty = cleanable.filter { $0.nextBase > checkpoint }
        let dirtyBytes = dirty.reduce(Int64(0)) { $0 + $1.size }
        let totalBytes = cleanable.reduce(Int64(0)) { $0 + $1.size }
        let ratio = totalBytes > 0 ? Double(dirtyBytes) / Double(totalBytes) : 0
        let overdue = dirty.contains { $0.firstTimestamp >= 0 && $0.firstTimestamp < now &- maxLag }
        guard options.force || (!dirty.isEmpty && (ratio >= minRatio || overdue)) else { return }

        // Pass 1: the latest offset of every key in the range.
        var latest: [KeyDigest: Int64] = [:]
        let decoder = BatchDecoder()
        // Records point into its buffer: it lives as long as this scope.
        defer { withExtendedLifetime(decoder) {} }
        let fates = TransactionFates(directory: dir)
        for info in cleanable {
            try stopIfSignalled()
            guard let scanner = try SegmentScanner.open(Segment(dir, info.base).logPath) else { continue }
            scan: while true {
                switch try scanner.next() {
                case .batch(let position, let h, let bytes):
                    if h.isControl { continue }
                    // Records of aborted or open transactions supersede nothing.
                    if h.isTransactional, try fates.fate(producerId: h.producerId, offset: h.baseOffset) != .committed { continue }
                    do {
                        var records = RecordIterator(records: try decoder.records(of: bytes, header: h), header: h)
                        while let r = try records.next() {
                            if let key = r.key { latest[KeyDigest(key)] = r.offset }
                        }
                    } catch {
                        throw Compactor.corrupt(scanner.path, position, error)
                    }
                case .end:
                    break scan
                case .problem(let position, let problem, _):
                    throw Compactor.corrupt(scanner.path, position, problem)
                }
            }
        }
        let keep: (RecordView) -> Bool = { r in
            guard let key = r.key else { return true }  // null keys are never compacted away
            if let l = latest[KeyDigest(key)], l > r.offset { return false }
            if r.value == nil && r.timestamp < tombstoneHorizon { return false }
            return true
        }

        // Pass 2: rewrite, merging neighbours into groups that fit segment.bytes.
        var group: Group?
        do {
            for info in cleanable {
                try stopIfSignalled()
                if let g = group, info.nextBase - 1 - g.builder.base > Int64(Int32.max) {
                    try close(g, dir)
                    group = nil
                }
                if group == nil { group = try Group(dir, info.base, config, countOnly: options.dryRun) }
                var g = group!
                let mark = g.builder.mark
                var result = try clean(info, dir, into: g.builder, keep: keep)
                if !g.segments.isEmpty && g.builder.size > config.segmentBytes {
                    try g.builder.rollBack(to: mark)
                    try close(g, dir)
                    g = try Group(dir, info.base, config, countOnly: options.dryRun)
                    result = try clean(info, dir, into: g.builder, keep: keep)
                }
                g.segments.append(info)
                g.changed = g.changed || result.changed
                g.recordsRemoved += result.removed
                group = g
            }
            if let g = group {
                group = nil
                try close(g, dir)
            }
        } catch {
            group?.builder.discard()
            throw error
        }
        if !options.dryRun { try CleanerCheckpoint.write(dir, end) }
    }

    /// Old segments being merged into one new one.
    struct Group {
        let builder: SegmentBuilder
        var segments: [SegmentInfo] = []
        var changed = false
        var recordsRemoved: Int64 = 0

        init(_ dir: String, _ base: Int64, _ config: TopicConfig, countOnly: Bool) throws {
            builder = try SegmentBuilder(directory: dir, base: base, indexInterval: config.indexIntervalBytes, countOnly: countOnly)
        }
    }

    /// Copies a segment's surviving records into `builder`.
    /// - Returns: whether anything differs from a plain copy, and the records dropped.
    func clean(_ info: SegmentInfo, _ dir: String, into builder: SegmentBuilder, keep: (RecordView) -> Bool) throws -> (changed: Bool, removed: Int64) {
        guard let scanner = try SegmentScanner.open(Segment(dir, info.base).logPath) else { return (true, 0) }
        var changed = false
        var removed: Int64 = 0
        while true {
            switch try scanner.next() {
            case .batch(let position, let h, let bytes):
                // Markers and transactional batches are kept as they are
                // (docs/FORMAT.md §18): their .txnindex entries stay valid.
                if h.isControl || h.isTransactional {
                    try builder.append(bytes)
                    continue
                }
                let outcome: BatchRewriter.Outcome, dropped: Int
                do {
                    (outcome, dropped) = try rewriter.rewrite(header: h, bytes: bytes, keep: keep)
                } catch {
                    throw Compactor.corrupt(scanner.path, position, error)
                }
                removed += Int64(dropped)
                switch outcome {
                case .verbatim: try builder.append(bytes)
                case .dropped: changed = true
                case .rewritten(let batch):
                    changed = true
                    try builder.append(batch)
                }
            case .end:
                return (changed, removed)
            case .problem(let position, let problem, _):
                throw Compactor.corrupt(scanner.path, position, problem)
            }
        }
    }

    /// Swaps a finished group in, or drops it when it changes nothing.
    func close(_ g: Group, _ dir: String) throws {
        if g.segments.count == 1 && !g.changed {
            g.builder.discard()
            return
        }
        try g.builder.finish()
        let oldBytes = g.segments.reduce(Int64(0)) { $0 + $1.size }
        if !options.dryRun {
            try SwapJournal.commit(SwapJournal(newBase: g.builder.base, oldBases: g.segments.map(\.base)), in: dir)
        }
        report.segmentsCompacted += g.segments.count
        report.segmentsWritten += 1
        report.recordsRemoved += g.recordsRemoved
        report.bytesCompacted += oldBytes - g.builder.size
    }
}
