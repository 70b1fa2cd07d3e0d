import Glibc

/// How `mq-consume -- CMD` runs its handler.
public struct HandlerOptions: Sendable {
    public var command: [String]
    /// Attempts before a message is dead-lettered (the first run counts).
    public var maxAttempts = 3
    /// First retry delay; doubles each attempt up to `backoffMaxMs`, with jitter.
    public var backoffMs: Int64 = 1000
    public var backoffMaxMs: Int64 = 300_000
    /// A handler running longer gets SIGTERM, and SIGKILL `killGraceMs` later.
    public var timeoutMs: Int64? = nil
    public var killGraceMs: Int64 = 5000
    /// Exit statuses that mean "will never succeed": dead-lettered at once.
    public var permanentStatuses: Set<Int32> = []
    /// Messages per handler run.
    public var batch = 1
    /// Handlers running at once.
    public var parallelism = 1
    /// Dead-letter topic; nil means `TOPIC.dlq` of the message's topic.
    public var deadLetterTopic: String? = nil
    /// Messages older than this (by record timestamp) are dead-lettered as `expired`.
    public var maxAgeMs: Int64? = nil
    /// Trailing bytes of a handler's standard error kept for the dead letter.
    public var stderrTailBytes = 4096

    public init(command: [String]) { self.command = command }
}

/// A message taken from the log, waiting for or in the hands of a handler.
/// Its fields (`job.topic`, `job.key`, ...) are the record's.
@dynamicMemberLookup
final class Job {
    let record: StoredRecord
    /// The message as the output mode renders it, for `--batch` input.
    let rendered: [UInt8]
    var attempt = 1
    var lastOutcome: ChildProcess.Outcome?
    var lastTimedOut = false
    var stderrTail: [UInt8] = []
    /// Completed by a dead letter rather than by the handler.
    var deadLettered = false

    init(_ r: RecordView, topic: String, partition: Int32, rendered: [UInt8]) throws {
        record = try StoredRecord(r, topic: topic, partition: partition)
        self.rendered = rendered
    }

    subscript<T>(dynamicMember field: KeyPath<StoredRecord, T>) -> T { record[keyPath: field] }
}

/// Runs handlers for jobs under the delivery rules of `mq-consume`:
///
/// - Per-key order: a job waits while an earlier job with the same key is
///   running or waiting to be retried; jobs with other keys go on. Jobs
///   without a key are independent of each other (no order among them).
/// - Exit status 0 completes a job. Any other ending is a failure: the job is
///   retried after a backoff (exponential, "equal jitter": half fixed, half
///   random), and dead-lettered after `maxAttempts` or at once for a
///   permanent status. A job is complete once it succeeded or its dead
///   letter is durably written.
/// Not thread-safe; driven by the consumer's event loop.
final class HandlerDispatcher {
    struct Running {
        let child: ChildProcess
        let jobs: [Job]
        let started: UInt64
        var killAt: UInt64?
        var timedOut = false
    }

    let options: HandlerOptions
    let group: String?
    let log: LogDirectory
    let printer: RecordPrinter
    /// Called when a job is complete (acked or dead-lettered).
    var onComplete: (Job) -> Void = { _ in }
    /// When set, failures are handed to this instead of being retried here,
    /// and jobs are not ordered by key (the work queue decides both).
    var onFailure: ((Job) throws -> Void)? = nil
    private var ready: [Job] = []
    private var readyHead = 0
    private var blocked: [[UInt8]: [Job]] = [:]
    private var activeKeys = Set<[UInt8]>()
    private var retries: [(due: UInt64, job: Job)] = []
    private var running: [Running] = []
    private var deadLetters: [String: DeadLetterWriter] = [:]
    /// The dead-letter topics' writers (each letter is fsynced).
    private let deadLetterPool = WriterPool.forSyncedBatches()
    private var stopping = false
    /// Jobs handed to the dispatcher and not complete yet.
    private(set) var outstanding = 0

    init(options: HandlerOptions, group: String?, log: LogDirectory, printer: RecordPrinter) {
        self.options = options
        self.group = group
        self.log = log
        self.printer = printer
    }

    var isIdle: Bool { outstanding == 0 }

    func submit(_ job: Job) throws {
        outstanding += 1
        if let maxAge = options.maxAgeMs, currentTimeMillis() - job.timestamp > maxAge {
            try deadLetter(job, reason: "expired")
            return
        }
        if onFailure == nil, let key = job.key {
            if activeKeys.contains(key) {
                blocked[key, default: []].append(job)
                return
            }
            activeKeys.insert(key)
        }
        ready.append(job)
    }

    /// Everything that can move without blocking: reap, pump pipes, enforce
    /// timeouts, start due retries and new handlers.
    /// - Returns: whether a handler run ended (jobs completed or were rescheduled),
    ///   which may let the caller hand over more jobs.
    @discardableResult
    func service() throws -> Bool {
        let now = monotonicNanos()
        var ended = false
        var i = 0
        while i < running.count {
            running[i].child.pump()
            if let outcome = running[i].child.reap() {
                let r = running.remove(at: i)
                try finished(r, outcome)
                ended = true
                continue
            }
            if let timeout = options.timeoutMs, !running[i].timedOut, now &- running[i].started >= UInt64(timeout) * 1_000_000 {
                running[i].timedOut = true
                running[i].child.signal(SIGTERM)
                running[i].killAt = now + UInt64(options.killGraceMs) * 1_000_000
            } else if let killAt = running[i].killAt, now >= killAt {
                running[i].child.signal(SIGKILL)
                running[i].killAt = nil
            }
            i += 1
        }
        while let first = retries.first, first.due <= now {
            retries.removeFirst()
            ready.append(first.job)
        }
        if stopping { return ended }
        while running.count < options.parallelism && readyHead < ready.count {
            let take = min(options.batch, ready.count - readyHead)
            let jobs = Array(ready[readyHead..<readyHead + take])
            readyHead += take
            if readyHead > 1024 && readyHead * 2 > ready.count {
                ready.removeFirst(readyHead)
                readyHead = 0
            }
            try start(jobs)
        }
        return ended
    }

    /// When `service` next has something to do by the clock (ms from now), or nil.
    func nextDeadlineMs() -> Int64? {
        let now = monotonicNanos()
        var next: UInt64? = retries.first?.due
        for r in running {
            if let timeout = options.timeoutMs, !r.timedOut { next = min(next ?? .max, r.started + UInt64(timeout) * 1_000_000) }
            if let k = r.killAt { next = min(next ?? .max, k) }
        }
        if !running.isEmpty { next = min(next ?? .max, now + 50_000_000) }  // reap even if a SIGCHLD was missed
        guard let next else { return nil }
        return max(0, Int64(bitPattern: next &- now) / 1_000_000)
    }

    var pollRequests: [(fd: Int32, events: Int16)] { running.flatMap { $0.child.pollRequests } }

    /// Stops starting handlers, asks running ones to stop, and waits for them
    /// (up to the kill grace, then SIGKILL). Their jobs are not completed.
    func stop() {
        stopping = true
        for r in running { r.child.signal(SIGTERM) }
        let deadline = monotonicNanos() + UInt64(options.killGraceMs) * 1_000_000
        while !running.isEmpty {
            running.removeAll { $0.child.reap() != nil }
            if monotonicNanos() >= deadline { for r in running { r.child.signal(SIGKILL) } }
            if !running.isEmpty { _ = waitReady(pollRequests, timeoutMs: 20) }
            running.forEach { $0.child.pump() }
        }
    }

    // MARK: Running handlers

    private func start(_ jobs: [Job]) throws {
        let first = jobs[0]
        var input: [UInt8]
        if options.batch == 1 {
            input = first.value ?? []
        } else {
            input = []
            for j in jobs { input.append(contentsOf: j.rendered) }
        }
        var env = inheritedEnvironment()
        env.append("MQ_TOPIC=\(first.topic)")
        env.append("MQ_PARTITION=\(first.partition)")
        env.append("MQ_OFFSET=\(first.offset)")
        env.append("MQ_TIMESTAMP=\(first.timestamp)")
        env.append("MQ_ATTEMPT=\(first.attempt)")
        env.append("MQ_COUNT=\(jobs.count)")
        if let group { env.append("MQ_GROUP=\(group)") }
        if let key = first.key {
            if key.contains(0) || !key.withUnsafeBytes(isValidUTF8) {
                env.append("MQ_KEY_BASE64=\(Base64.encode(key))")
            } else {
                env.append("MQ_KEY=" + String(decoding: key, as: UTF8.self))
            }
        }
        for h in first.headers {
            let name = "MQ_HEADER_" + String(h.name.uppercased().map { $0.isLetter || $0.isNumber ? $0 : "_" })
            if let v = h.value, !v.contains(0) { env.append(name + "=" + String(decoding: v, as: UTF8.self)) }
        }
        let child = try ChildProcess(argv: options.command, environment: env, input: input, stderrLimit: options.stderrTailBytes)
        running.append(Running(child: child, jobs: jobs, started: monotonicNanos()))
    }

    private func finished(_ r: Running, _ outcome: ChildProcess.Outcome) throws {
        if outcome == .exited(0) && !r.timedOut {
            for job in r.jobs { complete(job) }
            return
        }
        for job in r.jobs {
            job.lastOutcome = outcome
            job.lastTimedOut = r.timedOut
            job.stderrTail = r.child.stderrTail
            if let onFailure {
                outstanding -= 1
                try onFailure(job)
                continue
            }
            var permanent = false
            if case .exited(let status) = outcome, options.permanentStatuses.contains(status) { permanent = true }
            if permanent || job.attempt >= options.maxAttempts {
                try deadLetter(job, reason: permanent ? "permanent" : (r.timedOut ? "timeout" : "failed"))
            } else {
                job.attempt += 1
                let delay = backoffMs(beforeAttempt: job.attempt)
                let due = monotonicNanos() + UInt64(max(0, delay)) * 1_000_000
                let at = retries.firstIndex { $0.due > due } ?? retries.count
                retries.insert((due, job), at: at)
            }
        }
    }

    private func complete(_ job: Job) {
        outstanding -= 1
        onComplete(job)
        guard onFailure == nil, let key = job.key else { return }
        if var waiting = blocked[key], !waiting.isEmpty {
            ready.append(waiting.removeFirst())
            blocked[key] = waiting.isEmpty ? nil : waiting
        } else {
            activeKeys.remove(key)
        }
    }

    /// True when the job's last failure was an exit status marked permanent.
    func isPermanentFailure(_ job: Job) -> Bool {
        if case .exited(let status)? = job.lastOutcome { return options.permanentStatuses.contains(status) }
        return false
    }

    /// Backoff before attempt `attempt` (2 = first retry): exponential, equal jitter.
    func backoffMs(beforeAttempt attempt: Int) -> Int64 {
        let base = min(options.backoffMaxMs, options.backoffMs << min(max(attempt - 2, 0), 30))
        return base / 2 + Int64.random(in: 0...max(0, base - base / 2))
    }

    /// Writes a dead letter for a job the caller already counted as outstanding.
    func deadLetterExternal(_ job: Job, reason: String) throws {
        outstanding += 1
        try deadLetter(job, reason: reason)
    }

    private func deadLetter(_ job: Job, reason: String) throws {
        let topic = options.deadLetterTopic ?? DerivedTopics.deadLetterTopic(of: job.topic)
        if deadLetters[topic] == nil { deadLetters[topic] = try DeadLetterWriter(log: log, topic: topic, pool: deadLetterPool) }
        var headers = job.headers
        func add(_ name: String, _ value: String) { headers.append(Header(name: name, value: Array(value.utf8))) }
        add("mq.dlq.reason", reason)
        add("mq.original.topic", job.topic)
        add("mq.original.partition", String(job.partition))
        add("mq.original.offset", String(job.offset))
        add("mq.original.timestamp", String(job.timestamp))
        if let group { add("mq.group", group) }
        add("mq.attempts", String(reason == "expired" ? job.attempt - 1 : job.attempt))
        switch job.lastOutcome {
        case .exited(let s)?: add("mq.exit.status", String(s))
        case .signaled(let s)?: add("mq.exit.signal", String(s))
        case nil: break
        }
        if !job.stderrTail.isEmpty { headers.append(Header(name: "mq.stderr", value: job.stderrTail)) }
        add("mq.dlq.time", String(currentTimeMillis()))
        try deadLetters[topic]!.append(Message(key: job.key, value: job.value, headers: headers, timestamp: job.timestamp))
        job.deadLettered = true
        complete(job)
    }
}

/// Environment entries of this process, except mq's own MQ_ message variables.
func inheritedEnvironment() -> [String] {
    let reserved = ["MQ_TOPIC=", "MQ_PARTITION=", "MQ_OFFSET=", "MQ_TIMESTAMP=", "MQ_ATTEMPT=", "MQ_COUNT=", "MQ_GROUP=", "MQ_KEY=", "MQ_KEY_BASE64=", "MQ_HEADER_"]
    return processEnvironment().filter { entry in !reserved.contains(where: { entry.hasPrefix($0) }) }
}

/// Appends dead letters to a topic (created with one partition when
/// missing), each fsynced before it counts as written.
final class DeadLetterWriter {
    let topic: Topic
    private let appender: TopicAppender

    init(log: LogDirectory, topic name: String, pool: WriterPool) throws {
        try LogDirectory.validateTopicName(name)
        if !log.topicExists(name) { try log.createTopic(name, config: TopicConfig(partitions: 1)) }
        topic = try log.openTopic(name)
        appender = TopicAppender(topic: topic, pool: pool, sync: .batch, codec: .none, batchMessages: 1, batchBytes: 64 << 10,
                                 settings: .init(topic.config))
    }

    /// Appends one letter as a batch of its own: to its key's partition, or 0 without a key.
    func append(_ m: Message) throws {
        try appender.add(m, partition: m.key == nil ? 0 : nil, timestamp: m.timestamp ?? currentTimeMillis())
        try appender.flushAll()
    }
}
