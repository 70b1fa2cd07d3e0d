import Glibc

/// `mq-consume --queue -g GROUP TOPIC -- CMD`: any number of consumers of a
/// group share every partition, message by message, as SQS or Kafka share
/// groups do.
///
/// Each message is leased to one consumer at a time (`QueueState` in
/// `groups/GROUP/queue/TOPIC/P/`). A lease ends when the handler exits, when
/// it runs out (`--lease`: the handler is stopped before that, so no message
/// runs in two consumers at once), or when its consumer dies (its member
/// file's lock is gone): then the message can be claimed again. Every
/// delivery counts as an attempt, in the shared state, so the retry and
/// dead-letter rules hold across consumers and restarts. Failed messages
/// wait out their backoff in the state, visible to no one until due.
/// Messages are not ordered by key in this mode. Not thread-safe.
public final class QueueConsumer {
    struct Partition {
        let topic: String
        let partition: Int32
        let queue: QueuePartition
        let reader: PartitionReader
        let directory: String
        let durable: DurableEnd
    }

    public let options: ConsumeOptions
    public let log: LogDirectory
    public var leaseMs: Int64 = 30_000
    private let printer: RecordPrinter
    private var group: GroupDirectory!
    private var membership: GroupMembership!
    private var dispatcher: HandlerDispatcher!
    private var partitions: [Partition] = []
    private var topics: [String: Topic] = [:]
    private var selection = TopicSelection()
    private let watcher = ChangeWatcher()
    private var watched = Set<String>()
    private var nextPartition = 0
    private var completions: [String: [Int64]] = [:]
    /// Per partition ("topic/p"): the offset of the first record found after
    /// the last claimed offset. Offsets below it with no record (a gap left
    /// by compaction, aborted transactions, a foreign writer) are passed in
    /// one step instead of being claimed one by one.
    private var nextRecord: [String: Int64] = [:]
    private var emitted = 0
    private var nextWakeMs: Int64 = .max
    private var lastSync: UInt64 = 0
    /// Partitions whose queue state may have been written since the last
    /// sync (each partition visited by a claim, a failure or a completion).
    private var unsynced = Set<Int>()
    /// Each partition's index in `partitions`, by its log directory, its
    /// queue directory and "topic/p".
    private var partitionIndex: [String: Int] = [:]
    /// Partitions found with nothing to claim and nothing pending: skipped
    /// until inotify reports a change in their log or queue state, or the
    /// next sweep (`sweepIntervalNanos`), which also catches what another
    /// member left behind (a lease of a member that died). Without it, every
    /// round visited every partition: a queue of 1,000 partitions read 1,000
    /// log ends and queue states per message.
    private var idle = Set<Int>()
    /// Delayed messages of each topic worked on (`T.delay`), moved into it
    /// when due: every consumer of a topic offers to move them, queue or not.
    private var movers: [String: DelayMover] = [:]
    private var nextMoverTick: UInt64 = 0
    private var nextSweep: UInt64 = 0
    private static let sweepIntervalNanos: UInt64 = 1_000_000_000

    public init(options: ConsumeOptions, log: LogDirectory) {
        self.options = options
        self.log = log
        self.printer = RecordPrinter(mode: options.output, fd: options.outputFD)
    }

    public func run() throws {
        guard let groupName = options.group, var handler = options.handler else {
            throw MQError.usage("'--queue' needs '-g GROUP' and a handler command after '--'")
        }
        StopSignals.install()
        signal(SIGPIPE, SIG_IGN)
        selection = try TopicSelection(options.topics)
        if options.exitAtEnd { try selection.requireExact(in: log) }
        group = try GroupDirectory(log: log, group: groupName)
        membership = try GroupMembership(group)
        // Stop a run before its lease can run out, so that no message runs twice at once.
        let margin = max(100, min(1000, leaseMs / 10))
        handler.timeoutMs = min(handler.timeoutMs ?? .max, max(1, leaseMs - margin))
        handler.parallelism = max(1, handler.parallelism)
        dispatcher = HandlerDispatcher(options: handler, group: groupName, log: log, printer: printer)
        dispatcher.onComplete = { [unowned self] job in
            self.completions[job.topic + "/\(job.partition)", default: []].append(job.offset)
        }
        dispatcher.onFailure = { [unowned self] job in try self.failed(job) }
        try FileSystem.makeDirectoriesDurably(log.topicsPath)
        watcher.watch(log.topicsPath)
        defer { try? flushCompletions(); try? syncCompletions(force: true) }
        var nextRefresh: UInt64 = 0
        while true {
            if StopSignals.signal != 0 {
                dispatcher.stop()
                try flushCompletions()
                try syncCompletions(force: true)
                throw MQError(StopSignals.exitStatus, "stopped by \(StopSignals.name); completed messages are acknowledged, the others will be delivered again")
            }
            if monotonicNanos() >= nextRefresh {
                try refreshPartitions()
                nextRefresh = monotonicNanos() + 500_000_000
            }
            if monotonicNanos() >= nextMoverTick { nextMoverTick = try DelayMover.tickAll(movers.values) }
            let claimed = try claim()
            let ended = try dispatcher.service()
            try flushCompletions()
            if let limit = options.count, emitted >= limit, dispatcher.isIdle { return }
            if claimed > 0 || ended {
                if watcher.hasPendingEvents { wake(watcher.drain()) }
                continue
            }
            if options.exitAtEnd, dispatcher.isIdle {
                if try drained() { return }
                // What is left is other members' to finish: their completions
                // in the queue state are what this member waits for now.
                for p in partitions where watched.insert(p.queue.directory).inserted {
                    watcher.watchWrites(p.queue.directory)
                }
            }
            var wait = Int64(1000)
            if let d = dispatcher.nextDeadlineMs() { wait = min(wait, d) }
            if nextWakeMs != .max { wait = min(wait, max(0, nextWakeMs - currentTimeMillis())) }
            if !movers.isEmpty { wait = min(wait, Int64(bitPattern: nextMoverTick &- monotonicNanos()) / 1_000_000) }
            wake(watcher.wait(timeoutMs: Int32(max(1, wait)), alsoWake: [StopSignals.fd], alsoWatch: dispatcher.pollRequests))
            StopSignals.drain()
        }
    }

    // MARK: Partitions

    /// Partitions whose log or queue state changed are looked at again.
    private func wake(_ changed: Set<String>) {
        for directory in changed { if let i = partitionIndex[directory] { idle.remove(i) } }
    }

    private func refreshPartitions() throws {
        for name in try selection.existing(in: log) where topics[name] == nil {
            let topic = try log.openTopic(name)
            topics[name] = topic
            if !DerivedTopics.isDelayTopic(name) { movers[name] = DelayMover(log: log, target: name) }
            for p in 0..<topic.partitions {
                let dir = topic.partitionPath(p)
                let queue = try QueuePartition(directory: group.queuePath(name, p))
                // A new queue starts where --from says (default: the beginning).
                let reader = PartitionReader(directory: dir)
                let durable = DurableEnd(directory: dir)
                try queue.update(durable: true) { state in
                    if state.generation == 0 {
                        let start = try (options.start ?? .beginning).offset(in: reader)
                        try durable.ensure(below: start)
                        state.low = start
                        state.next = start
                    }
                }
                let i = partitions.count
                partitions.append(Partition(topic: name, partition: p, queue: queue, reader: reader, directory: dir,
                                            durable: durable))
                partitionIndex[dir] = i
                partitionIndex[queue.directory] = i
                partitionIndex[name + "/\(p)"] = i
                if !watched.contains(dir) { watched.insert(dir); watcher.watch(dir) }
            }
        }
    }

    // MARK: Claiming

    /// Claims work while fewer jobs are in hand than the handlers can take.
    /// - Returns: how many messages were claimed.
    private func claim() throws -> Int {
        guard !partitions.isEmpty else { return 0 }
        // Claim only what can start now: a claim counts as a delivery attempt.
        let capacity = dispatcher.options.parallelism * dispatcher.options.batch
        var claimedTotal = 0
        nextWakeMs = .max
        let now = monotonicNanos()
        if now >= nextSweep {
            idle.removeAll()
            nextSweep = now + Self.sweepIntervalNanos
        }
        for k in 0..<partitions.count {
            var want = capacity - dispatcher.outstanding
            if let limit = options.count { want = min(want, limit - emitted) }
            if want <= 0 { break }
            let index = (nextPartition + k) % partitions.count
            if idle.contains(index) { continue }
            let p = partitions[index]
            let end = try stableEnd(p)
            // Claims record offsets as handed out (and, once acked, as done):
            // only ever for records that survive a crash of the machine.
            try p.durable.ensure(below: end)
            let me = membership.id
            let lease = leaseMs
            var nothingLeft = false
            unsynced.insert(index)
            let claimed: [(offset: Int64, attempts: UInt32)] = try p.queue.update(durable: false) { state in
                // A state whose low mark lags its entries (written by an older
                // version, or damaged and repaired by hand) is brought in line,
                // or -e would wait for offsets that are already done.
                state.advanceLow()
                let now = currentTimeMillis()
                var out: [(Int64, UInt32)] = []
                var alive: [String: Bool] = [:]
                for i in state.entries.indices where out.count < want && !state.entries[i].done {
                    var e = state.entries[i]
                    if e.leaseUntil > 0 {
                        let ownerAlive = alive[e.owner] ?? membership.isAlive(e.owner)
                        alive[e.owner] = ownerAlive
                        if e.leaseUntil > now && ownerAlive {
                            nextWakeMs = min(nextWakeMs, e.leaseUntil)
                            continue
                        }
                    }
                    if e.visibleAt > now {
                        nextWakeMs = min(nextWakeMs, e.visibleAt)
                        continue
                    }
                    e.leaseUntil = now + lease
                    e.owner = me
                    e.attempts += 1
                    state.entries[i] = e
                    out.append((e.offset, e.attempts))
                }
                if let skip = nextRecord[p.topic + "/\(p.partition)"], skip > state.next {
                    state.next = min(skip, end)
                    state.advanceLow()
                }
                while out.count < want && state.next < end {
                    var e = QueueState.Entry(offset: state.next)
                    e.leaseUntil = now + lease
                    e.owner = me
                    e.attempts = 1
                    state.entries.append(e)
                    out.append((state.next, 1))
                    state.next += 1
                }
                nothingLeft = out.isEmpty && state.next >= end && state.entries.allSatisfy(\.done)
                return out
            }
            if nothingLeft { idle.insert(index) }
            if !claimed.isEmpty { try fetchAndSubmit(p, claimed) }
            claimedTotal += claimed.count
        }
        nextPartition = (nextPartition + 1) % partitions.count
        return claimedTotal
    }

    /// Where claims stop: the log end, or read committed the last stable offset.
    private func stableEnd(_ p: Partition) throws -> Int64 {
        let end = try p.reader.logEndOffset()
        guard options.isolation == .readCommitted else { return end }
        return try TransactionRecovery.lastStableOffset(partitionDir: p.directory, logEnd: end)
    }

    /// Reads the claimed messages and hands them to the dispatcher.
    private func fetchAndSubmit(_ p: Partition, _ claimed: [(offset: Int64, attempts: UInt32)]) throws {
        let wanted = Dictionary(uniqueKeysWithValues: claimed.map { ($0.offset, $0.attempts) })
        var cursor: PartitionCursor? = nil
        var found = Set<Int64>()
        let last = claimed.map(\.offset).max()!
        for (offset, _) in claimed.sorted(by: { $0.offset < $1.offset }) where !found.contains(offset) {
            if cursor == nil || cursor!.nextOffset > offset { cursor = try PartitionCursor(partition: p.partition, directory: p.directory, startOffset: offset, isolation: options.isolation) }
            while let r = try cursor!.peek(), r.offset <= last {
                if let attempts = wanted[r.offset], !found.contains(r.offset) {
                    found.insert(r.offset)
                    if try options.filter?.matches(r) ?? true {
                        let rendered = dispatcher.options.batch > 1 ? try printer.rendered(r, topic: p.topic, partition: p.partition) : []
                        let job = try Job(r, topic: p.topic, partition: p.partition, rendered: rendered)
                        job.attempt = Int(attempts)
                        emitted += 1
                        if job.attempt > dispatcher.options.maxAttempts {
                            // Delivered too often already (its consumers kept dying): stop here.
                            try dispatcher.deadLetterExternal(job, reason: "failed")
                        } else {
                            try dispatcher.submit(job)
                        }
                    } else {
                        completions[p.topic + "/\(p.partition)", default: []].append(r.offset)
                    }
                }
                cursor!.advance()
            }
            if let r = try cursor!.peek(), r.offset > last { nextRecord[p.topic + "/\(p.partition)"] = r.offset }
        }
        // Offsets with no record (removed by retention or compaction): nothing to do.
        for (offset, _) in claimed where !found.contains(offset) {
            completions[p.topic + "/\(p.partition)", default: []].append(offset)
        }
    }

    // MARK: Outcomes

    private func failed(_ job: Job) throws {
        if dispatcher.isPermanentFailure(job) || job.attempt >= dispatcher.options.maxAttempts {
            let reason = dispatcher.isPermanentFailure(job) ? "permanent" : (job.lastTimedOut ? "timeout" : "failed")
            try dispatcher.deadLetterExternal(job, reason: reason)
            return
        }
        let delay = dispatcher.backoffMs(beforeAttempt: job.attempt + 1)
        let me = membership.id
        guard let i = partitionIndex[job.topic + "/\(job.partition)"] else { return }
        let p = partitions[i]
        unsynced.insert(i)
        try p.queue.update(durable: false) { state in
            guard let i = state.entries.firstIndex(where: { $0.offset == job.offset }), state.entries[i].owner == me else { return }
            state.entries[i].leaseUntil = 0
            state.entries[i].owner = ""
            state.entries[i].visibleAt = currentTimeMillis() + delay
        }
    }

    /// Makes completions durable when the commit interval has passed (or `force`).
    private func syncCompletions(force: Bool) throws {
        guard !unsynced.isEmpty, force || monotonicNanos() &- lastSync >= UInt64(options.commitIntervalMs) * 1_000_000 else { return }
        for i in unsynced.sorted() { try partitions[i].queue.sync() }
        unsynced.removeAll()
        lastSync = monotonicNanos()
    }

    /// Marks completed messages done, one update per partition.
    private func flushCompletions() throws {
        defer { try? syncCompletions(force: false) }
        guard !completions.isEmpty else { return }
        let done = completions
        completions = [:]
        for (key, offsets) in done {
            guard let i = partitionIndex[key], !offsets.isEmpty else { continue }
            let p = partitions[i]
            unsynced.insert(i)
            let set = Set(offsets)
            try p.queue.update(durable: false) { state in
                for i in state.entries.indices where set.contains(state.entries[i].offset) { state.entries[i].done = true }
                state.advanceLow()
            }
        }
    }

    /// True when every partition's queue is done up to the end of its log.
    private func drained() throws -> Bool {
        for p in partitions {
            let state = try p.queue.read()
            if state.low < (try stableEnd(p)) { return false }
        }
        return !partitions.isEmpty || selection.isEmpty
    }
}
