import Glibc

public struct ConsumeOptions {
    public var topics: [String]
    /// The consumer group; nil reads like `mq-tail` (no commits, all partitions).
    public var group: String? = nil
    /// Where a partition with no committed offset starts; nil means
    /// `beginning` in a group and `end` without one.
    public var start: StartPosition? = nil
    /// Exit when every owned partition is read to its current end (`-e`).
    public var exitAtEnd = false
    /// Exit after delivering this many messages (`-c`).
    public var count: Int? = nil
    public var output: OutputMode = .values(delimiter: [10])
    public var outputFD: Int32 = 1
    /// Which records of transactions are delivered (`--read-uncommitted`).
    public var isolation: ReadIsolation = .readCommitted
    public var filter: MessageFilter? = nil
    /// Longest time delivered messages wait to be committed (they are also
    /// committed whenever the consumer is idle, rebalances or stops).
    public var commitIntervalMs: Int64 = 100
    /// How often membership and topics are re-checked.
    public var rebalanceIntervalMs: Int64 = 500
    /// Run this handler for each message instead of printing it.
    public var handler: HandlerOptions? = nil
    /// With a handler: most messages of one partition taken but not yet complete.
    public var windowPerPartition = 10_000
    /// `--dedup`: skip messages whose id (this header) the group processed within `dedupWindowMs`.
    public var dedupIDHeader: String? = nil
    public var dedupWindowMs: Int64 = 120_000

    public init(topics: [String]) { self.topics = topics }
}

/// `mq-consume` without a handler: delivers messages to standard output and,
/// in a group, commits what was delivered.
///
/// Contract: a message's offset is committed only after the message was
/// written to the output and the write returned (at least once). Within a
/// group each partition is read by at most one consumer process at a time:
/// the one holding its lease. Each consumer takes its fair share
/// (partitions / live members, rounded up) and gives back any excess, so
/// ownership rebalances as consumers come and go. It holds at most
/// `FileBudget.shared.leases` leases at once: with a larger share, it
/// rotates, giving back the partitions it has read to their end and taking
/// the next ones (docs/FORMAT.md §13, "Assignment"). Not thread-safe.
public final class Consumer {
    struct Owned {
        let topic: String
        let partition: Int32
        let lease: PartitionLease?
        let cursor: PartitionCursor
        /// With a lease: makes the log durable below a position before it is committed.
        let durable: DurableEnd?
        /// Next offset after the last message written to the output.
        var delivered: Int64
        /// Next offset after the last message printed or skipped (maybe still buffered).
        var pending: Int64
        /// With a handler: offsets handed to it and not complete, ascending.
        var outstanding: [Int64] = []

        var key: PartitionKey { PartitionKey(topic: topic, partition: partition) }

        /// Where the group may resume: before the first message not yet complete.
        var commitPosition: Int64 { outstanding.first ?? delivered }

        /// The commit of `commitPosition` still to write, once the records
        /// below it are durable (nil when there is nothing to commit).
        func dueCommit() throws -> (lease: PartitionLease, offset: Int64)? {
            guard let lease else { return nil }
            let position = commitPosition
            guard position != lease.committed?.offset else { return nil }
            try durable?.ensure(below: position)
            return (lease, position)
        }
    }

    public let options: ConsumeOptions
    public let log: LogDirectory
    private let printer: RecordPrinter
    private var group: GroupDirectory?
    private var membership: GroupMembership?
    private var owned: [Owned] = []
    /// The partitions in `owned`.
    private var ownedKeys = Set<PartitionKey>()
    /// Most leases held at once.
    private let leaseBudget = FileBudget.shared.leases
    /// True when the share is larger than `leaseBudget`: partitions rotate.
    private var rotating = false
    /// The partition list of the last rebalance, and where rotation goes on in it.
    private var listed: [(topic: String, partition: Int32)] = []
    private var rotationNext = 0
    /// With `exitAtEnd`, the partitions given back read to their end.
    private var finished = Set<PartitionKey>()
    /// Directories of held partitions that may have something to read: the
    /// others are parked at their end until the watcher reports a change.
    private var awake = Set<String>()
    private var topics: [String: Topic] = [:]
    private var selection = TopicSelection()
    private var emitted = 0
    private var lastCommitNanos: UInt64 = 0
    private let watcher = ChangeWatcher()
    private var watched = Set<String>()
    private var dispatcher: HandlerDispatcher?
    private var movers: [String: DelayMover] = [:]
    /// The topics that existed at the first assignment; others are new.
    private var initialTopics = Set<String>()
    private var startedUp = false
    private var nextMoverTick: UInt64 = 0
    /// `--dedup` state (Consume+Dedup.swift).
    var dedup: ConsumerDedup?

    public init(options: ConsumeOptions, log: LogDirectory) {
        self.options = options
        self.log = log
        self.printer = RecordPrinter(mode: options.output, fd: options.outputFD)
    }

    /// Runs until `count` messages, the end of the log with `exitAtEnd`, a
    /// closed output (a quiet end), or SIGINT/SIGTERM (after committing what was delivered).
    public func run() throws {
        StopSignals.install()
        signal(SIGPIPE, SIG_IGN)
        selection = try TopicSelection(options.topics)
        if !options.exitAtEnd {
            try FileSystem.makeDirectoriesDurably(log.topicsPath)
            watcher.watch(log.topicsPath)
        } else {
            try selection.requireExact(in: log)
        }
        if let name = options.group {
            let g = try GroupDirectory(log: log, group: name)
            group = g
            membership = try GroupMembership(g)
            try openDedup(g)
        }
        if let handler = options.handler {
            let d = HandlerDispatcher(options: handler, group: options.group, log: log, printer: printer)
            d.onComplete = { [unowned self] job in self.completed(job) }
            dispatcher = d
        }
        defer { try? commit(force: true) }
        var nextRebalance: UInt64 = 0
        while true {
            if StopSignals.signal != 0 { try stop() }
            let now = monotonicNanos()
            if now >= nextRebalance {
                try rebalance()
                startedUp = true
                nextRebalance = now + UInt64(options.rebalanceIntervalMs) * 1_000_000
            }
            if now >= nextMoverTick { nextMoverTick = try DelayMover.tickAll(movers.values) }
            var progressed: Bool
            do {
                progressed = try deliverAvailable()
            } catch is OutputClosed {
                return  // the reader of our output went away
            }
            if let dispatcher {
                // A run that ended may have opened the window: go round again at once.
                if try dispatcher.service() { progressed = true }
                if dispatcher.isIdle, let limit = options.count, emitted >= limit { return }
            } else if let limit = options.count, emitted >= limit {
                return
            }
            if !progressed {
                try commit(force: dispatcher == nil)
                let idle = dispatcher?.isIdle ?? true
                if rotating && idle && atEnd, try rotate() { continue }
                if options.exitAtEnd && idle && atEnd { return }
                var remainingMs = Int64(bitPattern: nextRebalance &- monotonicNanos()) / 1_000_000
                if let d = dispatcher?.nextDeadlineMs() { remainingMs = min(remainingMs, d) }
                if !movers.isEmpty { remainingMs = min(remainingMs, Int64(bitPattern: nextMoverTick &- monotonicNanos()) / 1_000_000) }
                let wait = Int32(max(0, min(remainingMs, 1000)))
                let extra = dispatcher?.pollRequests ?? []
                wake(watcher.wait(timeoutMs: wait, alsoWake: [StopSignals.fd], alsoWatch: extra))
                StopSignals.drain()
            } else {
                try commit(force: false)
                // Partitions parked while others are busy are not left behind.
                if watcher.hasPendingEvents || !watcher.usesInotify || !watcher.unwatched.isEmpty { wake(watcher.wait(timeoutMs: 0)) }
            }
        }
    }

    private func stop() throws -> Never {
        dispatcher?.stop()
        try commit(force: true)
        let name = StopSignals.name
        throw MQError(StopSignals.exitStatus, group == nil ? "stopped by \(name)" : "stopped by \(name); delivered messages are committed")
    }

    /// Marks the partitions in `changed` (directories) to be read. When
    /// nothing changed (a timeout), so are those an open transaction holds
    /// back: one whose producer died ends with no write to report.
    private func wake(_ changed: Set<String>) {
        awake.formUnion(changed)
        if changed.isEmpty {
            for o in owned where o.cursor.isHeldByTransaction { awake.insert(o.cursor.reader.directory) }
        }
    }

    /// Prints what the owned partitions have now, a bounded slice of each in
    /// turn so that one busy partition does not starve the others. Only the
    /// partitions in `awake` are read; those found at their end are parked
    /// (the watch set up when they were taken reports what comes after).
    /// - Returns: whether anything was read.
    private func deliverAvailable() throws -> Bool {
        try dedup?.refresh()
        if let dispatcher { return try dispatchAvailable(dispatcher) }
        var progressed = false
        let filter = options.filter, limit = options.count ?? .max
        var stillAwake = Set<String>()
        defer { awake = stillAwake }
        for i in owned.indices where !awake.isEmpty {
            let directory = owned[i].cursor.reader.directory
            guard awake.remove(directory) != nil else { continue }
            // The per-message loop works on locals: the partition's entry in
            // `owned` is read once and written back once.
            let cursor = owned[i].cursor, topic = owned[i].topic, partition = owned[i].partition
            var pending = owned[i].pending
            var n = 0
            var drained = false
            while true {
                guard n < 4096, emitted < limit else { break }
                guard let r = try cursor.peek() else { drained = true; break }
                if try filter?.matches(r) ?? true, try isNew(r, topic: topic, partition: partition, handled: false) {
                    try printer.print(r, topic: topic, partition: partition)
                    emitted += 1
                }
                pending = r.offset + 1
                cursor.advance()
                n += 1
            }
            // Skipped control batches and the like move the position too.
            owned[i].pending = max(pending, cursor.nextOffset)
            if n > 0 { progressed = true }
            if !drained { stillAwake.insert(directory) }
            if emitted >= limit { break }
        }
        if progressed || printer.pendingBytes > 0 {
            try printer.flush()
            for i in owned.indices { owned[i].delivered = owned[i].pending }
        }
        return progressed
    }

    /// True when every owned partition was read to its end (and parked there).
    private var atEnd: Bool {
        !owned.contains { awake.contains($0.cursor.reader.directory) }
    }

    /// Hands messages to the handler dispatcher, up to the window of each
    /// partition. Only the partitions in `awake` are read; those found at
    /// their end are parked, as in `deliverAvailable`.
    private func dispatchAvailable(_ dispatcher: HandlerDispatcher) throws -> Bool {
        var progressed = false
        for i in owned.indices {
            let cursor = owned[i].cursor
            guard awake.contains(cursor.reader.directory) else { continue }
            while owned[i].outstanding.count < options.windowPerPartition {
                if let limit = options.count, emitted >= limit { break }
                guard let r = try cursor.peek() else {
                    awake.remove(cursor.reader.directory)
                    break
                }
                if try options.filter?.matches(r) ?? true, try isNew(r, topic: owned[i].topic, partition: owned[i].partition, handled: true) {
                    let rendered = options.handler!.batch > 1 ? try printer.rendered(r, topic: owned[i].topic, partition: owned[i].partition) : []
                    let job = try Job(r, topic: owned[i].topic, partition: owned[i].partition, rendered: rendered)
                    owned[i].outstanding.append(r.offset)
                    owned[i].pending = r.offset + 1
                    cursor.advance()
                    emitted += 1
                    try dispatcher.submit(job)
                } else {
                    owned[i].pending = r.offset + 1
                    cursor.advance()
                }
                progressed = true
            }
            owned[i].pending = max(owned[i].pending, cursor.nextOffset)
            owned[i].delivered = owned[i].pending
        }
        return progressed
    }

    /// A handler finished with a job (acked or dead-lettered).
    private func completed(_ job: Job) {
        dedup?.completed(job)
        guard let i = owned.firstIndex(where: { $0.topic == job.topic && $0.partition == job.partition }) else { return }
        // Binary search: offsets are ascending.
        var lo = 0, hi = owned[i].outstanding.count - 1
        while lo <= hi {
            let mid = (lo + hi) / 2
            let v = owned[i].outstanding[mid]
            if v == job.offset { owned[i].outstanding.remove(at: mid); return }
            if v < job.offset { lo = mid + 1 } else { hi = mid - 1 }
        }
    }

    /// Commits delivered positions: all of them when `force`, else only when
    /// the commit interval has passed.
    private func commit(force: Bool) throws {
        let now = monotonicNanos()
        guard force || now &- lastCommitNanos >= UInt64(options.commitIntervalMs) * 1_000_000 else { return }
        lastCommitNanos = now
        try dedup?.record()
        try commitAll(owned)
    }

    /// Commits each of `entries` (together: `PartitionLease.commitAll`).
    private func commitAll(_ entries: some Collection<Owned>) throws {
        try PartitionLease.commitAll(entries.compactMap { try $0.dueCommit() })
    }

    // MARK: Membership and assignment

    /// The partitions this consumer may read: every partition of every
    /// subscribed topic that exists now.
    private func subscribedPartitions() throws -> [(topic: String, partition: Int32)] {
        let names = try selection.existing(in: log)
        if names.isEmpty && options.exitAtEnd && !selection.patterns.isEmpty {
            throw MQError(.noInput, "no topic in \(log.root) matches \(selection.patterns.map { "'\($0.source)'" }.joined(separator: ", "))")
        }
        var all: [(String, Int32)] = []
        for name in names {
            if topics[name] == nil { topics[name] = try log.openTopic(name) }
            if movers[name] == nil && !DerivedTopics.isDelayTopic(name) { movers[name] = DelayMover(log: log, target: name) }
            for p in 0..<topics[name]!.partitions { all.append((name, p)) }
        }
        return all
    }

    private func rebalance() throws {
        let all = try subscribedPartitions()
        if !startedUp { initialTopics = Set(all.map(\.topic)) }
        ReaderPool.expectReaders(min(all.count, group == nil ? all.count : leaseBudget))
        guard let group, let membership else {
            for (t, p) in all where !ownedKeys.contains(PartitionKey(topic: t, partition: p)) {
                try take(topic: t, partition: p, lease: nil)
            }
            return
        }
        let members = try membership.liveMembers()
        let share = all.isEmpty ? 0 : (all.count + max(members.count, 1) - 1) / max(members.count, 1)
        let limit = min(share, leaseBudget)
        rotating = share > limit
        listed = all
        if owned.count > limit { try dedup?.record() }
        while owned.count > limit {
            let victim = owned.removeLast()
            ownedKeys.remove(victim.key)
            try commitAll(CollectionOfOne(victim))
        }
        guard owned.count < limit else { return }
        // Start looking at a different place for each member, so that
        // consumers starting together do not all race for the same partitions.
        let index = members.firstIndex(of: membership.id) ?? 0
        let first = (index * share) % all.count
        _ = try takeFree(group, count: all.count, upTo: limit) { all[(first + $0) % all.count] }
    }

    /// Tries the partitions `candidate(0..<count)`, in that order, until
    /// this member holds `limit`: takes each that it does not hold, has not
    /// finished (`exitAtEnd`), and whose lease is free. It tries as many at
    /// a time as it still wants, so that the leases of consecutive
    /// partitions are taken together (`PartitionLease.tryAcquireAll`).
    /// - Returns: how many candidates it tried.
    private func takeFree(_ group: GroupDirectory, count: Int, upTo limit: Int,
                          _ candidate: (Int) -> (topic: String, partition: Int32)) throws -> Int {
        var prepared = Set<String>()
        var tried = 0
        while tried < count && owned.count < limit {
            let chunk = (tried..<min(count, tried + limit - owned.count)).map(candidate)
            tried += chunk.count
            // The chunk's partitions by topic, topics in their first appearance's order.
            var topics: [String] = []
            var partitions: [String: [Int32]] = [:]
            for (t, p) in chunk {
                let key = PartitionKey(topic: t, partition: p)
                if ownedKeys.contains(key) || finished.contains(key) { continue }
                if partitions[t] == nil { topics.append(t) }
                partitions[t, default: []].append(p)
            }
            for t in topics {
                if prepared.insert(t).inserted { try group.prepare(topic: t) }
                let leases = try PartitionLease.tryAcquireAll(group, topic: t, partitions: partitions[t]!, member: membership?.id ?? "")
                for lease in leases { try take(topic: t, partition: lease.partition, lease: lease) }
            }
        }
        return tried
    }

    /// With more partitions in its share than leases in its budget, once
    /// every partition held is read to its end: gives them all back
    /// (committed) and takes the next ones in the list, skipping those
    /// another member holds and, with `exitAtEnd`, those already read.
    /// - Returns: true when it took partitions and should read them at once;
    ///   false when there is nothing left to take (`exitAtEnd`), or, when
    ///   following, once it has gone round the whole list (so that it waits
    ///   before the next round).
    private func rotate() throws -> Bool {
        guard let group, !listed.isEmpty else { return false }
        try dedup?.record()
        try commitAll(owned)
        if options.exitAtEnd { finished.formUnion(ownedKeys) }
        PartitionLease.releaseAll(owned.compactMap(\.lease))
        owned.removeAll()
        ownedKeys.removeAll()
        var wrapped = false
        var untried = listed.count
        while untried > 0 && owned.count < leaseBudget {
            if rotationNext >= listed.count {
                rotationNext = 0
                wrapped = true
            }
            // Up to the end of the list, then round again.
            let start = rotationNext
            let tried = try takeFree(group, count: min(untried, listed.count - start), upTo: leaseBudget) { listed[start + $0] }
            rotationNext += tried
            untried -= tried
        }
        return !owned.isEmpty && (options.exitAtEnd || !wrapped)
    }

    private func take(topic: String, partition: Int32, lease: PartitionLease?) throws {
        let dir = topics[topic]!.partitionPath(partition)
        let cursor = try PartitionCursor.positioned(partition: partition, directory: dir, isolation: options.isolation,
                                                    stopsAtEnd: options.exitAtEnd) { reader in
            let start: Int64
            let mayPassEnd: Bool
            if let committed = lease?.committed?.offset {
                let first = try reader.logStartOffset()
                start = max(committed, first)
                mayPassEnd = start > first
            } else {
                // A topic that appears while we run is read from its beginning, as
                // mq-tail -f does; --from applies to what exists at the start.
                let position: StartPosition = initialTopics.contains(topic) ? (options.start ?? (group == nil ? .end : .beginning)) : .beginning
                start = try position.offset(in: reader)
                if case .offset = position { mayPassEnd = true } else { mayPassEnd = false }
            }
            // A commit or an offset past the end (a log cut since) starts at the end.
            return mayPassEnd ? min(start, try reader.logEndOffset()) : start
        }
        let start = cursor.nextOffset
        owned.append(Owned(topic: topic, partition: partition, lease: lease, cursor: cursor,
                           durable: lease == nil ? nil : DurableEnd(reader: cursor.reader), delivered: start, pending: start))
        ownedKeys.insert(PartitionKey(topic: topic, partition: partition))
        awake.insert(dir)
        // With `exitAtEnd`, what is appended after a partition's end is not
        // waited for: no watch.
        if !options.exitAtEnd && !watched.contains(dir) {
            watched.insert(dir)
            watcher.watch(dir) { cursor.reader.activeSegmentBase() }
        }
    }
}

/// A partition of a topic, as a set element.
struct PartitionKey: Hashable {
    let topic: String
    let partition: Int32
}
