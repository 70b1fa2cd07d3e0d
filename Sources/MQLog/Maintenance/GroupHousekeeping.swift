import Glibc

/// Expires and tidies the state consumer groups, work queues and delay movers
/// keep (run by `mq-compact`; docs/FORMAT.md, "Group housekeeping"):
///
/// - member files whose process is gone (their flock was dropped) are removed;
/// - a group with no live member whose newest commit is older than the
///   expiry is removed whole, so it stops holding retention back (Kafka's
///   `offsets.retention.minutes`);
/// - offsets and work-queue state of topics that no longer exist are removed,
///   unless a live consumer holds them;
/// - a work queue's entries for offsets below the log start (deleted by
///   retention) that no one holds a lease on are dropped and its mark raised;
/// - a delay mover's journal is cut down to the entries at or above its
///   low-water mark, when no mover is running;
/// - temporary directories left by interrupted topic creation or deletion,
///   older than an hour, are removed.
///
/// Everything is done under the same locks the consumers use, so it is safe
/// while they run.
public enum GroupHousekeeping {
    public struct Report: Sendable, Equatable {
        public var expiredGroups: [String] = []
        public var deadMembers = 0
        public var orphanedTopicStates = 0
        public var trimmedQueueEntries = 0
        public var trimmedJournalEntries = 0
        public var removedTemporaries = 0
        /// Entries of dedup stores past their window (`DedupStore.housekeep`).
        public var trimmedDedupEntries = 0
        public var bytesReclaimed: Int64 = 0

        public var isEmpty: Bool { self == Report() }

        /// One phrase for the run's summary line, e.g. "1 group expired, 3 dead members removed".
        public var summary: String {
            var parts: [String] = []
            func add(_ n: Int, _ one: String, _ many: String) { if n > 0 { parts.append("\(n) \(n == 1 ? one : many)") } }
            add(expiredGroups.count, "group expired", "groups expired")
            add(deadMembers, "dead member removed", "dead members removed")
            add(orphanedTopicStates, "state of a deleted topic removed", "states of deleted topics removed")
            add(trimmedQueueEntries, "queue entry trimmed", "queue entries trimmed")
            add(trimmedJournalEntries, "mover journal entry trimmed", "mover journal entries trimmed")
            add(removedTemporaries, "leftover temporary removed", "leftover temporaries removed")
            add(trimmedDedupEntries, "expired dedup entry trimmed", "expired dedup entries trimmed")
            return parts.joined(separator: ", ")
        }
    }

    /// - Parameters:
    ///   - now: milliseconds since the epoch.
    ///   - expireAfterMs: how long a group without live members and without
    ///     commits is kept; nil never expires groups.
    ///   - dryRun: report what would be done and change nothing.
    public static func run(log: LogDirectory, now: Int64, expireAfterMs: Int64?, dryRun: Bool) throws -> Report {
        var report = Report()
        let groupsRoot = log.groupsPath
        if FileSystem.isDirectory(groupsRoot) {
            for name in try FileSystem.list(groupsRoot).sorted() {
                let path = groupsRoot + "/" + name
                if name.hasPrefix("~") {
                    _ = try removeIfStale(path, now: now, dryRun: dryRun, report: &report)
                    continue
                }
                guard LogDirectory.isValidTopicName(name), FileSystem.isDirectory(path) else { continue }
                try tidyGroup(log: log, name: name, now: now, expireAfterMs: expireAfterMs, dryRun: dryRun, report: &report)
                try trimDedup(path + "/dedup", now: now, dryRun: dryRun, report: &report)
            }
        }
        if FileSystem.isDirectory(log.topicsPath) {
            for name in try FileSystem.list(log.topicsPath) where name.hasPrefix("~") {
                _ = try removeIfStale(log.topicsPath + "/" + name, now: now, dryRun: dryRun, report: &report)
            }
            for topic in try log.listTopics() {
                if DerivedTopics.isDelayTopic(topic) { try trimMoverJournal(log.topicPath(topic), dryRun: dryRun, report: &report) }
                try trimDedup(log.topicPath(topic) + "/dedup", now: now, dryRun: dryRun, report: &report)
            }
        }
        return report
    }

    /// A dedup store (`mq-produce --id-header`, `mq-consume --dedup`) without
    /// the ids past its declared window.
    private static func trimDedup(_ dir: String, now: Int64, dryRun: Bool, report: inout Report) throws {
        guard FileSystem.isDirectory(dir) else { return }
        let before = FileSystem.size(dir + "/ids") ?? 0
        let n = try DedupStore.housekeep(directory: dir, now: now, dryRun: dryRun)
        report.trimmedDedupEntries += n
        if n > 0 && !dryRun { report.bytesReclaimed += before - (FileSystem.size(dir + "/ids") ?? before) }
    }

    // MARK: Groups

    private static func tidyGroup(log: LogDirectory, name: String, now: Int64, expireAfterMs: Int64?, dryRun: Bool, report: inout Report) throws {
        let group = try GroupDirectory(log: log, group: name)
        var liveMembers = 0
        if FileSystem.isDirectory(group.membersPath) {
            for member in try FileSystem.list(group.membersPath) where !member.hasPrefix("~") {
                let path = group.membersPath + "/" + member
                guard let f = try OpenFile.openIfExists(path, O_RDONLY) else { continue }
                defer { f.close() }
                if try f.lock(exclusive: true, wait: false) {
                    // Its owner is gone. Removed while holding the lock, so a
                    // member just renamed into place (created locked) is never taken.
                    report.deadMembers += 1
                    if !dryRun { try? FileSystem.remove(path) }
                } else {
                    liveMembers += 1
                }
            }
        }
        let newest = try newestActivity(group)
        if liveMembers == 0, let expiry = expireAfterMs, now - newest > expiry {
            if dryRun {
                report.expiredGroups.append(name)
                return
            }
            if try expire(group, report: &report) { return }
        }
        // Committed offsets of topics that are gone.
        if FileSystem.isDirectory(group.committedPath) {
            for topic in try FileSystem.list(group.committedPath) where !topic.hasPrefix("~") && !log.topicExists(topic) {
                let path = group.commitsPath(topic)
                guard let f = try OpenFile.openIfExists(path, O_RDWR) else { continue }
                defer { f.close() }
                // Removed while holding a lock on the whole file: no lease can be taken meanwhile.
                guard try f.lockRange(start: 0, length: 0) else { continue }
                report.orphanedTopicStates += 1
                if !dryRun {
                    report.bytesReclaimed += try f.size()
                    try FileSystem.remove(path)
                }
            }
        }
        // The earlier layout's offset files, of topics that are gone, and of
        // partitions whose commits are now in committed/TOPIC.
        try tidyLegacyOffsets(log: log, group: group, dryRun: dryRun, report: &report)
        // Queue state of topics that are gone.
        let queues = group.queuesPath
        if FileSystem.isDirectory(queues) {
            for topic in try FileSystem.list(queues) {
                if !log.topicExists(topic) {
                    if try !isQueueHeld(queues + "/" + topic) {
                        report.orphanedTopicStates += 1
                        if !dryRun { report.bytesReclaimed += try removeTreeCounting(queues + "/" + topic) }
                    }
                    continue
                }
                try trimQueue(log: log, topic: topic, dir: queues + "/" + topic, now: now, dryRun: dryRun, report: &report)
            }
        }
    }

    /// Removes the earlier layout's offset files (`offsets/TOPIC/P`, one per
    /// partition) that no consumer of that layout holds: all of a topic that
    /// is gone, and those of a partition whose commit is in `committed/TOPIC`
    /// (which readers prefer); then the directories left empty.
    private static func tidyLegacyOffsets(log: LogDirectory, group: GroupDirectory, dryRun: Bool, report: inout Report) throws {
        let root = group.path + "/offsets"
        guard FileSystem.isDirectory(root) else { return }
        for topic in try FileSystem.list(root) {
            let dir = root + "/" + topic
            guard FileSystem.isDirectory(dir) else { continue }
            let gone = !log.topicExists(topic)
            let names = try FileSystem.list(dir)
            let slots: [CommittedOffsetFile.Slot?]
            if gone {
                slots = []
            } else if let f = try OpenFile.openIfExists(group.commitsPath(topic), O_RDONLY) {
                defer { f.close() }
                // The topic's partitions: a file name is not trusted for a count.
                slots = try CommittedOffsetFile.readAll(f, partitions: try log.openTopic(topic).partitions).map(\.slot)
            } else {
                continue
            }
            var removed = 0
            for name in names {
                let obsolete = gone || (Int32(name).map { $0 >= 0 && Int($0) < slots.count && slots[Int($0)] != nil } ?? false)
                guard obsolete, let f = try OpenFile.openIfExists(dir + "/" + name, O_RDONLY) else { continue }
                defer { f.close() }
                guard try f.lock(exclusive: true, wait: false) else { continue }
                report.bytesReclaimed += try f.size()
                if !dryRun { try FileSystem.remove(dir + "/" + name) }
                removed += 1
            }
            if gone && removed > 0 { report.orphanedTopicStates += 1 }
            if !dryRun && removed == names.count { try? FileSystem.removeDirectory(dir) }
        }
        if !dryRun, (try? FileSystem.list(root))?.isEmpty == true { try? FileSystem.removeDirectory(root) }
    }

    /// The newest commit time in the group, from the offset files' slots and
    /// the queue state files' modification times; 0 when there is none.
    private static func newestActivity(_ group: GroupDirectory) throws -> Int64 {
        var newest: Int64 = 0
        // Members joining and leaving change the members directory.
        if let ms = FileSystem.modifiedMs(group.membersPath) { newest = ms }
        if FileSystem.isDirectory(group.committedPath) {
            for topic in try FileSystem.list(group.committedPath) where !topic.hasPrefix("~") {
                guard let f = try OpenFile.openIfExists(group.commitsPath(topic), O_RDONLY) else { continue }
                defer { f.close() }
                // As many records as the file holds, up to the most partitions a topic may have.
                let records = min(try f.size() / Int64(CommittedOffsetFile.recordSize) + 1, Int64(TopicConfig.maximumPartitions))
                for record in try CommittedOffsetFile.readAll(f, partitions: Int32(records)) {
                    if let slot = record.slot { newest = max(newest, slot.committedMs) }
                }
            }
        }
        for partitionPath in try partitionPaths(under: group.path + "/offsets") {
            guard let f = try OpenFile.openIfExists(partitionPath, O_RDONLY) else { continue }
            defer { f.close() }
            if let slot = try CommittedOffsetFile.read(f) { newest = max(newest, slot.committedMs) }
        }
        for partitionDir in try partitionPaths(under: group.queuesPath) {
            for copy in ["a", "b"] {
                if let ms = FileSystem.modifiedMs(partitionDir + "/" + copy) { newest = max(newest, ms) }
            }
        }
        // A group that never had anything: as old as its directory.
        if newest == 0, let ms = FileSystem.modifiedMs(group.path) { newest = ms }
        return newest
    }

    /// The `TOPIC/P` paths two levels below `dir`.
    private static func partitionPaths(under dir: String) throws -> [String] {
        guard FileSystem.isDirectory(dir) else { return [] }
        var out: [String] = []
        for topic in try FileSystem.list(dir) where FileSystem.isDirectory(dir + "/" + topic) {
            for p in try FileSystem.list(dir + "/" + topic) { out.append(dir + "/" + topic + "/" + p) }
        }
        return out
    }

    /// Removes an expired group (`removeGroup`, never forced).
    private static func expire(_ group: GroupDirectory, report: inout Report) throws -> Bool {
        guard let bytes = try removeGroup(group, force: false) else { return false }
        report.bytesReclaimed += bytes
        report.expiredGroups.append(group.group)
        return true
    }

    /// Removes a group's directory: renamed out of the way first (a `~`
    /// name, which no listing takes for a group and which housekeeping
    /// removes an hour later if this removal is interrupted), then, unless a
    /// consumer joined at that very moment (a locked member file inside) and
    /// `force` is false, removed.
    /// - Returns: the bytes removed, or nil when a consumer joined (the group is put back).
    static func removeGroup(_ group: GroupDirectory, force: Bool) throws -> Int64? {
        let groupsRoot = group.log.groupsPath
        let grave = groupsRoot + "/~removed~\(group.group)~\(getpid())"
        do { try FileSystem.rename(group.path, to: grave) } catch { return nil }
        let members = grave + "/members"
        if !force && FileSystem.isDirectory(members) {
            for member in try FileSystem.list(members) {
                guard let f = try OpenFile.openIfExists(members + "/" + member, O_RDONLY) else { continue }
                defer { f.close() }
                if !(try f.lock(exclusive: true, wait: false)) {
                    // Someone joined while we looked: put the group back.
                    if (try? FileSystem.rename(grave, to: group.path)) != nil { return nil }
                }
            }
        }
        try FileSystem.syncDirectory(groupsRoot)
        return try removeTreeCounting(grave)
    }

    /// True when a live consumer holds a queue lock under `dir`.
    static func isQueueHeld(_ dir: String) throws -> Bool {
        for p in try FileSystem.list(dir) {
            let path = dir + "/" + p + "/lock"
            guard let f = try OpenFile.openIfExists(path, O_RDONLY) else { continue }
            defer { f.close() }
            if !(try f.lock(exclusive: true, wait: false)) { return true }
        }
        return false
    }

    /// Drops queue entries below the partition's log start that no lease holds.
    private static func trimQueue(log: LogDirectory, topic: String, dir: String, now: Int64, dryRun: Bool, report: inout Report) throws {
        for p in try FileSystem.list(dir) {
            guard let partition = Int32(p), FileSystem.exists(dir + "/" + p + "/a") else { continue }
            let start = try PartitionReader(directory: log.topicPath(topic) + "/\(partition)").logStartOffset()
            let queue = try QueuePartition(directory: dir + "/" + p)
            let state = try queue.read()
            guard state.low < start else { continue }
            let gone = state.entries.filter { $0.offset < start && !$0.done && $0.leaseUntil <= now }.count
            if dryRun { report.trimmedQueueEntries += gone; continue }
            report.trimmedQueueEntries += try queue.update(durable: true) { s -> Int in
                let before = s.entries.count
                s.entries.removeAll { $0.offset < start && $0.leaseUntil <= now }
                if s.next < start { s.next = start }
                // Entries still below the start are leased: the mark stays at the first of them.
                s.low = s.entries.first.map { min($0.offset, start) } ?? start
                return before - s.entries.count
            }
        }
    }

    // MARK: Delay movers

    /// Rewrites `mover.journal` without the entries below the low-water mark,
    /// unless a mover holds `mover.lock`.
    private static func trimMoverJournal(_ dir: String, dryRun: Bool, report: inout Report) throws {
        let journalPath = DelayMoverFiles.journalPath(dir)
        guard let journal = try OpenFile.openIfExists(journalPath, O_RDONLY) else { return }
        defer { journal.close() }
        guard try journal.size() > 0 else { return }
        let lock = try OpenFile.open(DelayMoverFiles.lockPath(dir), O_RDWR | O_CREAT, creating: true)
        defer { lock.close() }
        guard try lock.lock(exclusive: true, wait: false) else { return }
        let lowWater = try DelayMoverFiles.lowWaterMark(dir)
        let raw = try FileSystem.readAll(journalPath)
        var kept: [UInt8] = []
        var dropped = 0
        for (i, offset) in DelayMoverFiles.journalEntries(raw).offsets.enumerated() {
            if offset >= lowWater { kept += raw[i * DelayMoverFiles.journalEntrySize..<(i + 1) * DelayMoverFiles.journalEntrySize] } else { dropped += 1 }
        }
        guard dropped > 0 else { return }
        report.trimmedJournalEntries += dropped
        report.bytesReclaimed += Int64(raw.count - kept.count)
        if !dryRun { try FileSystem.writeAtomically(journalPath, kept) }
    }

    // MARK: Files

    /// Removes a `~` temporary left by an interrupted creation or deletion once it is an hour old.
    private static func removeIfStale(_ path: String, now: Int64, dryRun: Bool, report: inout Report) throws -> Bool {
        var st = stat()
        guard stat(path, &st) == 0, now - Int64(st.st_mtim.tv_sec) * 1000 > 3_600_000 else { return false }
        report.removedTemporaries += 1
        if !dryRun { report.bytesReclaimed += try removeTreeCounting(path) }
        return true
    }

    private static func removeTreeCounting(_ path: String) throws -> Int64 {
        let bytes = FileSystem.treeSize(path)
        try FileSystem.removeTree(path)
        return bytes
    }
}
