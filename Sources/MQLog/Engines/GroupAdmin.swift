import Glibc

/// Consumer groups seen and managed as a whole (`mq-group`), as Kafka's
/// `kafka-consumer-groups --list / --describe / --delete` do; resets are
/// `OffsetReset`'s. Everything is read without locks, as `mq-stat` reads.
public enum GroupAdmin {
    /// A live member of a group: a consumer process (docs/FORMAT.md §13).
    public struct Member: Equatable, Sendable {
        public var id: String
        public var pid: Int32?
    }

    /// One line of `mq-group list`.
    public struct Summary: Sendable {
        public var group: String
        public var members: [Member]
        /// Topics with committed offsets or work-queue state, sorted.
        public var topics: [String]
        /// Some topic is consumed as a work queue.
        public var queue: Bool
        /// Messages not consumed yet, over every partition of every topic.
        public var lagMessages: Int64
        /// The newest commit (or work-queue change), wall clock ms.
        public var lastCommitMs: Int64?
    }

    /// `mq-group describe` of one group.
    public struct Description: Sendable {
        public var group: String
        public var members: [Member]
        public var partitions: [LogStats.GroupPartitionStats]
    }

    /// What `delete` removed, or would remove.
    public struct Deletion: Sendable {
        public var group: String
        /// Live members and held leases found (only with `force`).
        public var inUse: [String]
        public var bytes: Int64
        public var removed: Bool
    }

    /// The live members of `group`.
    public static func members(_ group: GroupDirectory) -> [Member] {
        group.liveMemberIDs().map { Member(id: $0, pid: GroupDirectory.pid(ofMember: $0)) }
    }

    /// Every group of `log`, with its members, topics, lag and last commit.
    public static func list(_ log: LogDirectory) throws -> [Summary] {
        let names = try LogStats.listGroups(log)
        guard !names.isEmpty else { return [] }
        let rows = try LogStats.collect(log, groups: names).groups
        return try names.map { name in
            let g = try GroupDirectory(log: log, group: name)
            let mine = rows.filter { $0.group == name }
            return Summary(group: name, members: members(g), topics: g.consumedTopics(), queue: mine.contains(where: \.queue),
                           lagMessages: mine.reduce(0) { saturatingSum($0, $1.lagMessages) }, lastCommitMs: mine.compactMap(\.committedMs).max())
        }
    }

    /// Per partition: committed offset, log end, lag in messages and time,
    /// lease owners, and for work queues the messages in flight and waiting
    /// for a retry.
    /// - Parameters:
    ///   - groups: the groups (all when empty).
    ///   - topics: only these topics or patterns (all the groups consume when empty).
    /// - Throws: `MQError` noInput for a group or topic that does not exist.
    public static func describe(_ log: LogDirectory, groups: [String], topics: [String]) throws -> [Description] {
        let names = groups.isEmpty ? try LogStats.listGroups(log) : groups
        guard !names.isEmpty else { return [] }
        let rows = try LogStats.collect(log, topics: topics, groups: names).groups
        return try names.map { name in
            Description(group: name, members: members(try GroupDirectory(log: log, group: name)), partitions: rows.filter { $0.group == name })
        }
    }

    /// Removes a group: its committed offsets, work-queue state, dedup
    /// store and member files. Refused while it is in use (a live member, a
    /// held lease or work-queue lock) unless `force`; the consumers then keep
    /// running on what they hold, and their commits are lost.
    /// - Throws: `MQError` noInput (no such group), tempFail (in use, or a
    ///   consumer joined during the removal).
    public static func delete(_ log: LogDirectory, group name: String, force: Bool, dryRun: Bool) throws -> Deletion {
        let group = try GroupDirectory(log: log, group: name)
        _ = try LogStats.requireGroups([name], in: log)
        let busy = try inUse(group)
        if !busy.isEmpty && !force {
            throw MQError(.tempFail, "group '\(name)' is in use: \(busy.joined(separator: "; ")); stop its consumers first, or use --force")
        }
        guard !dryRun else { return Deletion(group: name, inUse: busy, bytes: FileSystem.treeSize(group.path), removed: false) }
        guard let bytes = try GroupHousekeeping.removeGroup(group, force: force) else {
            throw MQError(.tempFail, "group '\(name)' is in use: a consumer joined it while it was being deleted; stop its consumers first, or use --force")
        }
        return Deletion(group: name, inUse: busy, bytes: bytes, removed: true)
    }

    /// What uses `group` now, one phrase each (empty: nothing).
    static func inUse(_ group: GroupDirectory) throws -> [String] {
        var busy: [String] = []
        let live = members(group)
        if !live.isEmpty {
            let pids = live.map { $0.pid.map(String.init) ?? $0.id }.joined(separator: ", ")
            busy.append("\(live.count) live member\(live.count == 1 ? "" : "s") (pid \(pids))")
        }
        var leased: [String] = []
        for topic in group.committedTopics() {
            guard let f = try OpenFile.openIfExists(group.commitsPath(topic), O_RDONLY) else { continue }
            defer { f.close() }
            if f.isRangeLocked(start: 0, length: 0) { leased.append(topic) }
        }
        if !leased.isEmpty { busy.append("partition leases held on \(leased.joined(separator: ", "))") }
        let held = try group.queueTopics().filter { try GroupHousekeeping.isQueueHeld(group.queueTopicPath($0)) }
        if !held.isEmpty { busy.append("work queues locked on \(held.joined(separator: ", "))") }
        return busy
    }
}

// MARK: Rendering

extension GroupAdmin {
    static func membersJSON(_ members: [Member]) -> String {
        "[" + members.map { "{\"id\":\(jsonQuoted($0.id)),\"pid\":\($0.pid.map(String.init) ?? "null")}" }.joined(separator: ",") + "]"
    }

    /// How long ago `ms` was, for a person ("-" for never).
    static func ago(_ ms: Int64?, now: Int64) -> String {
        guard let ms else { return "-" }
        return LogStats.seconds(LogStats.age(now, ms)) + " ago"
    }

    /// `mq-group list` as a table.
    public static func text(_ summaries: [Summary], now: Int64) -> String {
        var rows = [["GROUP", "MEMBERS", "TOPICS", "LAG", "LAST-COMMIT"]]
        for s in summaries {
            rows.append([s.group + (s.queue ? " (queue)" : ""), "\(s.members.count)", s.topics.isEmpty ? "-" : s.topics.joined(separator: ","),
                         "\(s.lagMessages)", ago(s.lastCommitMs, now: now)])
        }
        return LogStats.pad(rows)
    }

    /// `mq-group list --json`: one object.
    public static func json(_ summaries: [Summary], now: Int64) -> String {
        let items = summaries.map { s in
            "{\"group\":\(jsonQuoted(s.group)),\"members\":\(membersJSON(s.members)),\"topics\":[\(s.topics.map(jsonQuoted).joined(separator: ","))],\"queue\":\(s.queue),\"lag_messages\":\(s.lagMessages),\"last_commit_ms\":\(s.lastCommitMs.map(String.init) ?? "null")}"
        }
        return "{\"time_ms\":\(now),\"groups\":[\(items.joined(separator: ","))]}"
    }

    /// `mq-group describe` of one group, for a person.
    public static func text(_ d: Description, now: Int64) -> String {
        let pids = d.members.map { $0.pid.map(String.init) ?? $0.id }
        var out = "GROUP \(d.group): \(d.members.count) live member\(d.members.count == 1 ? "" : "s")"
        out += pids.isEmpty ? "\n" : " (pid \(pids.joined(separator: ", ")))\n"
        guard !d.partitions.isEmpty else { return out + "no committed offsets\n" }
        var rows = [["TOPIC", "PART", "MODE", "COMMITTED", "END", "LAG", "LAG-AGE", "OWNER", "IN-FLIGHT", "RETRYING", "LAST-COMMIT"]]
        for s in d.partitions {
            rows.append([s.topic, "\(s.partition)", s.queue ? "queue" : "group", s.committed.map(String.init) ?? "-", "\(s.endOffset)",
                         "\(s.lagMessages)", LogStats.seconds(s.lagMs), s.ownerPIDs.isEmpty ? "-" : s.ownerPIDs.map(String.init).joined(separator: ","),
                         s.queue ? "\(s.inFlight)" : "-", s.queue ? "\(s.retrying)" : "-", ago(s.committedMs, now: now)])
        }
        return out + LogStats.pad(rows)
    }

    /// `mq-group describe --json` of one group: one object.
    public static func json(_ d: Description, now: Int64) -> String {
        let parts = d.partitions.map { s in
            "{\"topic\":\(jsonQuoted(s.topic)),\"partition\":\(s.partition),\"mode\":\(s.queue ? "\"queue\"" : "\"group\""),\"committed\":\(s.committed.map(String.init) ?? "null"),\"end_offset\":\(s.endOffset),\"lag_messages\":\(s.lagMessages),\"lag_ms\":\(s.lagMs),\"owner_pids\":[\(s.ownerPIDs.map(String.init).joined(separator: ","))],\"in_flight\":\(s.inFlight),\"retrying\":\(s.retrying),\"last_commit_ms\":\(s.committedMs.map(String.init) ?? "null")}"
        }
        return "{\"time_ms\":\(now),\"group\":\(jsonQuoted(d.group)),\"members\":\(membersJSON(d.members)),\"partitions\":[\(parts.joined(separator: ","))]}"
    }

    /// `mq-group delete --json` of one group: one object.
    public static func json(_ d: Deletion) -> String {
        "{\"group\":\(jsonQuoted(d.group)),\"deleted\":\(d.removed),\"bytes\":\(d.bytes),\"in_use\":[\(d.inUse.map(jsonQuoted).joined(separator: ","))]}"
    }

    /// A reset's rows as one JSON object.
    public static func json(_ rows: [ResetRow], group: String, applied: Bool) -> String {
        let items = rows.map { r in
            "{\"topic\":\(jsonQuoted(r.topic)),\"partition\":\(r.partition),\"mode\":\(r.queue ? "\"queue\"" : "\"group\""),\"current\":\(r.current.map(String.init) ?? "null"),\"new\":\(r.new),\"end_offset\":\(r.logEnd),\"lag_messages\":\(r.lag)}"
        }
        return "{\"group\":\(jsonQuoted(group)),\"applied\":\(applied),\"partitions\":[\(items.joined(separator: ","))]}"
    }
}
