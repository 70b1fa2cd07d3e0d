import Glibc

/// Holds `mq-produce` back before it accepts each message: to `--rate` (a
/// token bucket, as mq-replay's) and to its topic's backlog bound
/// (`BacklogBound`, docs/FORMAT.md §2).
///
/// The bound costs no file reads per message: the backlog measured last,
/// plus what was accepted since (each message counted with a batch header of
/// its own, so never fewer bytes than it adds), is an upper bound of the
/// backlog now (consumers only lower it; other producers are seen at the
/// next measure).
/// Only when that estimate would pass the bound, and otherwise at most every
/// `remeasureNanos`, does it write what is pending (so that consumers can
/// read it and the measure counts it) and measure again. Blocked, it
/// measures with a backoff from 1 ms to `longestPollMs`, and a stop signal
/// ends the wait at once. With one producer the backlog it leaves is never
/// past the bound; producers that race each check alone.
///
/// Not thread-safe.
final class ProduceAdmission {
    static let remeasureNanos: UInt64 = 100_000_000
    /// Messages between two looks at the clock for `remeasureNanos`.
    static let messagesPerClockRead = 64
    static let longestPollMs: Int32 = 100
    /// `-v`: at most one line about waiting per this long.
    static let reportIntervalNanos: UInt64 = 1_000_000_000

    /// What the admission needs of its producer.
    struct Hooks {
        /// Writes every pending message, written when it returns (the
        /// measure that follows must count it).
        var flush: () throws -> Void
        /// When the oldest pending message was accepted (monotonic ns), nil when none is.
        var oldestPendingNanos: () -> UInt64?
        /// The error a stop signal ends the run with.
        var stopError: () -> MQError
        /// `-v`: reports a wait on standard error.
        var report: ((String) -> Void)?
    }

    let topic: String
    /// The bound enforced (policy block or reject), if any.
    private var bound: BacklogBound?
    private let meter: BacklogMeter?
    /// `--rate`, paid a chunk of tokens at a time (`ChunkPacer.chunkLimit`).
    private var pacer: ChunkPacer
    private let chunk: Int?
    private let lingerNanos: UInt64
    private let hooks: Hooks
    /// `--atomic` with `block`: a transaction cannot wait for readers that
    /// cannot read it, so only its first message waits.
    private let onlyFirst: Bool

    // The fast path: messages, and bytes, that may be accepted before any
    // other check; both from the components below, as of the last slow path.
    private var untilCheck = 0
    private var roomBytes: Int64 = 0
    /// Accepted by the fast path since the last slow path, and their bytes.
    private var fastMessages = 0
    private var fastBytes: Int64 = 0
    /// Messages left in the current chunk of `--rate`, whose tokens are taken
    /// (and waited for) when it is used up: a chunk goes out at once, the
    /// wait comes before the next one.
    private var leftInChunk = 0
    /// Messages until the clock is read for `remeasureNanos`.
    private var untilClockRead = 0
    /// The last measure plus what was accepted since (nil: none yet).
    private var estimate: BacklogMeter.Reading?
    private var measuredAt: UInt64 = 0
    /// `-v`: when the last line was printed, and the waits not reported since.
    private var reportedAt: UInt64?
    private var unreported = 0

    /// Nil when there is nothing to hold back: no rate, and no bound enforced.
    init?(log: LogDirectory, topic: Topic, ratePerSecond: Double?, lingerMs: Int64, atomic: Bool, hooks: Hooks) {
        let bound = topic.config.backlogBound.flatMap { $0.policy == .none ? nil : $0 }
        guard bound != nil || ratePerSecond != nil else { return nil }
        self.topic = topic.name
        self.bound = bound
        meter = bound.map { BacklogMeter(log: log, topic: topic.name, partitions: topic.partitions, group: $0.group) }
        pacer = ChunkPacer(perSecond: ratePerSecond)
        chunk = pacer.chunkLimit
        leftInChunk = chunk ?? 0
        lingerNanos = UInt64(max(lingerMs, 0)) &* 1_000_000
        onlyFirst = atomic && bound?.policy == .block
        self.hooks = hooks
    }

    /// Waits until one more message of `size` bytes may be accepted, and
    /// counts it as accepted. Per message only two counters are looked at;
    /// the rest happens when one of them runs out.
    /// - Returns: nil when it may; with the `reject` policy, why not.
    /// - Throws: the stop error when a stop signal ends a wait; `MQError`
    ///   when pending messages cannot be written or the groups read.
    @inline(__always)
    func admit(size: Int) throws -> String? {
        // As if each message were a batch of its own: the estimate is never
        // below what the message adds to the log, whatever batches it goes in.
        let cost = Int64(size) &+ Int64(BatchLayout.headerSize)
        if untilCheck > 0 && cost <= roomBytes {
            untilCheck -= 1
            roomBytes -= cost
            fastMessages &+= 1  // at most untilCheck: no wrap while a bound or rate counts them
            fastBytes &+= cost
            return nil
        }
        return try admitChecking(cost: cost)
    }

    /// The slow path: pays for the rate, measures the backlog when due or
    /// when the message would pass the bound, waits or refuses, then sets
    /// the fast path up again.
    @inline(never)
    private func admitChecking(cost: Int64) throws -> String? {
        // The fast path took at most what each component allowed.
        if let chunk {
            leftInChunk -= fastMessages
            if leftInChunk <= 0 {
                try pace(chunk)
                leftInChunk = chunk
            }
        }
        if let bound, let meter {
            untilClockRead -= fastMessages
            if estimate != nil {
                estimate!.messages = saturatingSum(estimate!.messages, Int64(fastMessages))
                estimate!.bytes = saturatingSum(estimate!.bytes, fastBytes)
            }
            (fastMessages, fastBytes) = (0, 0)
            if estimate == nil { try measure(meter) }
            if untilClockRead <= 0 {
                untilClockRead = Self.messagesPerClockRead
                if monotonicNanos() &- measuredAt >= Self.remeasureNanos { try measure(meter) }
            }
            if !fits(bound, cost) {
                try measure(meter)
                if !fits(bound, cost) {
                    if bound.policy == .reject { return describe(estimate!, bound) }
                    try waitForRoom(bound, meter, cost)
                }
            }
            estimate!.messages = saturatingSum(estimate!.messages, 1)
            estimate!.bytes = saturatingSum(estimate!.bytes, cost)
            untilClockRead -= 1
            if onlyFirst { self.bound = nil }
        }
        (fastMessages, fastBytes) = (0, 0)
        // What the next messages may take without a check.
        untilCheck = .max
        roomBytes = .max
        if chunk != nil {
            leftInChunk -= 1
            untilCheck = max(leftInChunk, 0)
        }
        if let bound = self.bound, let estimate {
            untilCheck = min(untilCheck, max(untilClockRead, 0))
            if let m = bound.maxMessages { untilCheck = min(untilCheck, Int(clamping: max(m - estimate.messages, 0))) }
            if let b = bound.maxBytes { roomBytes = b - estimate.bytes }
        }
        return nil
    }

    private func fits(_ bound: BacklogBound, _ size: Int64) -> Bool {
        bound.admits(messages: estimate!.messages, bytes: estimate!.bytes, size: size)
    }

    /// Writes what is pending, then measures.
    private func measure(_ meter: BacklogMeter) throws {
        try hooks.flush()
        estimate = try meter.measure()
        measuredAt = monotonicNanos()
    }

    /// Blocks, reading no input, until the message fits.
    private func waitForRoom(_ bound: BacklogBound, _ meter: BacklogMeter, _ size: Int64) throws {
        let started = monotonicNanos()
        let reported = report("\(describe(estimate!, bound)): waiting for consumers", at: started)
        var pollMs: Int32 = 1
        repeat {
            let ready = waitReadable([StopSignals.fd], timeoutMs: pollMs)
            if StopSignals.signal != 0 { throw hooks.stopError() }
            if !ready.isEmpty { StopSignals.drain() }  // a SIGCHLD of the --atomic command
            try measure(meter)
            pollMs = min(pollMs * 2, Self.longestPollMs)
        } while !fits(bound, size)
        if reported {
            let waited = Double((monotonicNanos() &- started) / 1_000_000) / 1000
            _ = report("backlog of topic '\(topic)' down to \(estimate!.messages) messages, \(estimate!.bytes) bytes: going on after \(waited) s", at: nil)
        }
    }

    /// `-v`: prints `line` unless a line was printed less than
    /// `reportIntervalNanos` before `now` (nil: print it anyway).
    /// - Returns: whether it printed.
    private func report(_ line: String, at now: UInt64?) -> Bool {
        guard let print = hooks.report else { return false }
        if let now, let last = reportedAt, now &- last < Self.reportIntervalNanos {
            unreported += 1
            return false
        }
        let also = unreported > 0 ? " (and \(unreported) shorter wait\(unreported == 1 ? "" : "s") since the last report)" : ""
        print(line + also)
        unreported = 0
        reportedAt = now ?? monotonicNanos()
        return true
    }

    /// "the backlog of topic 't' behind group 'g' is 1000 messages, 5000
    /// bytes, at mq.max.backlog.messages (1000)".
    private func describe(_ reading: BacklogMeter.Reading, _ bound: BacklogBound) -> String {
        let limit = bound.reachedLimit(messages: reading.messages)
        let whose = limit.hasPrefix("mq.max.backlog.messages") ? reading.messagesGroup : reading.bytesGroup
        let behind = whose.map { "behind group '\($0)'" } ?? "(no group reads it: the whole log counts)"
        return "the backlog of topic '\(topic)' \(behind) is \(reading.messages) messages, \(reading.bytes) bytes, at \(limit)"
    }

    /// `--rate`: takes the tokens of the `chunk` messages just accepted and
    /// waits for them, if they were not there yet. What is
    /// pending is written first when the wait would keep it past `--linger`,
    /// so that the rate never holds a message back longer than that.
    private func pace(_ chunk: Int) throws {
        let wait = pacer.reserve(chunk)
        guard wait > 0 else { return }
        if let oldest = hooks.oldestPendingNanos(), monotonicNanos() &+ wait &- oldest >= lingerNanos { try hooks.flush() }
        if !sleepUnlessStopped(wait) { throw hooks.stopError() }
    }
}
