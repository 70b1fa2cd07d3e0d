import Glibc

/// A snapshot of a log's topics and consumer groups, for `mq-stat`.
/// Everything is read without locks, from the files alone.
public struct LogStats: Sendable {
    public struct PartitionStats: Sendable {
        public var topic: String
        public var partition: Int32
        public var bytes: Int64
        public var segments: Int
        public var startOffset: Int64
        public var endOffset: Int64
        /// Age in ms of the oldest record still in the log, or nil when empty.
        public var oldestAgeMs: Int64?
        /// Records appended during the last minute, per second.
        public var ratePerSecond: Double
    }

    public struct TopicStats: Sendable {
        public var name: String
        public var partitions: [PartitionStats]
        /// Messages in `NAME.dlq` not yet redriven or purged (mq-dlq), when it exists.
        public var deadLetters: Int64?
        /// Messages in `NAME.delay` not yet moved, when it exists.
        public var delayed: Int64?
        /// The backlog bound and how close the topic is to it, when it has one.
        public var backlog: BacklogStatus?
        /// Saturates at Int64.max: partitions near the offset limit could add past it.
        public var messages: Int64 {
            partitions.reduce(0) { saturatingSum($0, $1.endOffset - $1.startOffset) }
        }
    }

    public struct GroupPartitionStats: Sendable {
        public var group: String
        public var topic: String
        public var partition: Int32
        /// The committed offset (consumer groups) or the done-below mark (work queues).
        public var committed: Int64?
        /// The partition's log end offset.
        public var endOffset: Int64
        /// When the group last committed (consumer groups) or changed its
        /// queue state (work queues), wall clock ms; nil: never.
        public var committedMs: Int64?
        public var lagMessages: Int64
        /// How long the oldest unconsumed message has waited, in ms.
        public var lagMs: Int64
        /// Process ids holding the partition's lease (groups) right now.
        public var ownerPIDs: [Int32]
        public var inFlight: Int
        public var retrying: Int
        public var queue: Bool
    }

    /// A topic's backlog bound (`mq.max.backlog.*`) and the backlog now.
    public struct BacklogStatus: Sendable {
        public var bound: BacklogBound
        public var reading: BacklogMeter.Reading
        /// The larger fraction of a maximum the backlog uses (1: at the bound).
        public var used: Double { bound.used(messages: reading.messages, bytes: reading.bytes) }
    }

    public var takenMs: Int64
    public var topics: [TopicStats]
    public var groups: [GroupPartitionStats]

    /// Collects statistics for `topicFilter` (all topics when empty) and
    /// every group, or only the groups `groupFilter` names (and then, without
    /// `topicFilter`, only the topics they consume).
    /// - Throws: `MQError` noInput for a named topic or group that does not exist.
    public static func collect(_ log: LogDirectory, topics topicFilter: [String] = [], groups groupFilter: [String]? = nil) throws -> LogStats {
        let now = currentTimeMillis()
        let all = try log.listTopics()
        let existing = Set(all)
        let selection = try TopicSelection(topicFilter)
        try selection.requireExact(in: log)
        var names = topicFilter.isEmpty ? all.filter { !DerivedTopics.isDelayTopic($0) } : try selection.existing(in: log)
        let groupNames = try groupFilter.map { try requireGroups($0, in: log) } ?? listGroups(log)
        if groupFilter != nil && topicFilter.isEmpty {
            var consumed = Set<String>()
            for g in groupNames { consumed.formUnion(try GroupDirectory(log: log, group: g).consumedTopics()) }
            names = names.filter { consumed.contains($0) }
        }
        var topics: [TopicStats] = []
        var ends: [String: [Int64]] = [:]
        var listings: [String: [[Int64]]] = [:]
        for name in names {
            let config = try log.readConfig(name)
            var parts: [PartitionStats] = []
            for p in 0..<config.partitions {
                let (s, segments) = try partitionStats(log, name, p, now: now)
                parts.append(s)
                ends[name, default: []].append(s.endOffset)
                listings[name, default: []].append(segments)
            }
            var t = TopicStats(name: name, partitions: parts)
            let dlq = DerivedTopics.deadLetterTopic(of: name)
            if existing.contains(dlq) { t.deadLetters = try DeadLetters.unsettledCount(log, topic: dlq) }
            if existing.contains(DelayQueue.topicName(for: name)) { t.delayed = try delayedCount(log, name) }
            if let bound = config.backlogBound {
                let meter = BacklogMeter(log: log, topic: name, partitions: config.partitions, group: bound.group)
                t.backlog = BacklogStatus(bound: bound, reading: try meter.measure())
            }
            topics.append(t)
        }
        let groups = try groupStats(log, groups: groupNames, ends: ends, listings: listings, now: now)
        return LogStats(takenMs: now, topics: topics, groups: groups)
    }

    /// One partition's statistics, and its segments' base offsets as listed
    /// for them. The directory is listed once: one reader answers every
    /// question from that listing.
    static func partitionStats(_ log: LogDirectory, _ topic: String, _ p: Int32, now: Int64) throws -> (PartitionStats, [Int64]) {
        let dir = log.topicPath(topic) + "/\(p)"
        let bases = try LogSegments.baseOffsets(in: dir)
        var bytes: Int64 = 0
        for base in bases {
            bytes += FileSystem.size(Segment(dir, base).logPath) ?? 0
        }
        let reader = PartitionReader(directory: dir, segments: bases)
        let start = try reader.logStartOffset()
        // Read while the first batch is still in memory; none when the partition is empty.
        let first = try timestamp(reader, p, at: start)
        let end = try reader.logEndOffset()
        var oldest: Int64? = nil
        var appendedLastMinute: Int64 = 0
        if end > start {
            if let t = first { oldest = LogStats.age(now, t) }
            // An empty partition appended nothing: no need to look for the offset.
            let minuteAgo = try reader.offset(forTime: now - 60_000)
            appendedLastMinute = max(0, end - max(minuteAgo, start))
        }
        return (PartitionStats(topic: topic, partition: p, bytes: bytes, segments: bases.count, startOffset: start, endOffset: end,
                               oldestAgeMs: oldest, ratePerSecond: Double(appendedLastMinute) / 60), bases)
    }

    /// Milliseconds from `timestamp` to `now`, 0 for a timestamp in the
    /// future; record timestamps come from disk, so any Int64 is possible.
    static func age(_ now: Int64, _ timestamp: Int64) -> Int64 {
        let (d, overflow) = now.subtractingReportingOverflow(timestamp)
        return overflow ? (timestamp < 0 ? .max : 0) : max(0, d)
    }

    /// The timestamp of the record at `offset` (or the first after it), read through `reader`.
    static func timestamp(_ reader: PartitionReader, _ p: Int32, at offset: Int64) throws -> Int64? {
        try PartitionCursor(partition: p, reader: reader, startOffset: offset).peek()?.timestamp
    }

    /// Messages of `TOPIC.delay` at or above the mover's low-water mark and not in its journal.
    static func delayedCount(_ log: LogDirectory, _ topic: String) throws -> Int64 {
        let delay = DelayQueue.topicName(for: topic)
        let dir = log.topicPath(delay)
        let end = try PartitionReader(directory: dir + "/0").logEndOffset()
        let mark = try DelayMoverFiles.lowWaterMark(dir)
        var journaled: Int64 = 0
        var st = stat()
        if stat(DelayMoverFiles.journalPath(dir), &st) == 0 { journaled = Int64(st.st_size) / Int64(DelayMoverFiles.journalEntrySize) }
        return max(0, end - mark - journaled)
    }

    /// The names of the groups in `log`, sorted.
    public static func listGroups(_ log: LogDirectory) throws -> [String] {
        let root = log.groupsPath
        guard FileSystem.isDirectory(root) else { return [] }
        return try FileSystem.list(root).filter { LogDirectory.isValidTopicName($0) && FileSystem.isDirectory(root + "/" + $0) }.sorted()
    }

    /// `names`, each checked to be a group of `log`.
    static func requireGroups(_ names: [String], in log: LogDirectory) throws -> [String] {
        for name in names where !FileSystem.isDirectory(try GroupDirectory(log: log, group: name).path) {
            throw MQError(.noInput, "group '\(name)' does not exist in \(log.root)")
        }
        return names
    }

    /// - Parameters:
    ///   - groups: the groups to show.
    ///   - ends: each topic's partitions' end offsets, by partition.
    ///   - listings: each topic's partitions' segments, as listed for `ends`.
    static func groupStats(_ log: LogDirectory, groups: [String], ends: [String: [Int64]], listings: [String: [[Int64]]], now: Int64) throws -> [GroupPartitionStats] {
        var out: [GroupPartitionStats] = []
        for group in groups {
            let g = try GroupDirectory(log: log, group: group)
            for topic in g.committedTopics() {
                guard let topicEnds = ends[topic], let segments = listings[topic] else { continue }
                for row in try GroupCommits.read(g, topic: topic, partitions: Int32(topicEnds.count)) {
                    let p = Int(row.partition), end = topicEnds[p]
                    let position = row.committed ?? 0
                    let lagMs = try position < end ? lag(log, topic, row.partition, segments[p], at: position, now: now) : 0
                    out.append(GroupPartitionStats(group: group, topic: topic, partition: row.partition, committed: row.committed,
                                                   endOffset: end, committedMs: row.committedMs,
                                                   lagMessages: max(0, end - position), lagMs: lagMs,
                                                   ownerPIDs: row.ownerPIDs, inFlight: 0, retrying: 0, queue: false))
                }
            }
            for topic in g.queueTopics() {
                guard let topicEnds = ends[topic], let segments = listings[topic] else { continue }
                for (p, end) in topicEnds.enumerated() {
                    let dir = g.queuePath(topic, Int32(p))
                    guard let aMs = FileSystem.modifiedMs(dir + "/a") else { continue }
                    let state = try QueuePartition(directory: dir).read()
                    let changedMs = max(aMs, FileSystem.modifiedMs(dir + "/b") ?? aMs)
                    let lagMs = try state.low < end ? lag(log, topic, Int32(p), segments[p], at: state.low, now: now) : 0
                    let inFlight = state.entries.filter { !$0.done && $0.leaseUntil > now }.count
                    let retrying = state.entries.filter { !$0.done && $0.leaseUntil <= now && $0.visibleAt > now }.count
                    out.append(GroupPartitionStats(group: group, topic: topic, partition: Int32(p), committed: state.low,
                                                   endOffset: end, committedMs: state.generation > 0 ? changedMs : nil,
                                                   lagMessages: max(0, end - state.low), lagMs: lagMs, ownerPIDs: [],
                                                   inFlight: inFlight, retrying: retrying, queue: true))
                }
            }
        }
        return out
    }

    /// How long the record at `offset` of partition `p` (or the first after
    /// it) has waited, in ms; 0 when there is none. `segments`: the
    /// partition's segments as listed for its statistics.
    static func lag(_ log: LogDirectory, _ topic: String, _ p: Int32, _ segments: [Int64], at offset: Int64, now: Int64) throws -> Int64 {
        let reader = PartitionReader(directory: log.topicPath(topic) + "/\(p)", segments: segments)
        return try timestamp(reader, p, at: offset).map { LogStats.age(now, $0) } ?? 0
    }
}
