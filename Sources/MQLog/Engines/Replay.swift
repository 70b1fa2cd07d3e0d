import Glibc

public struct ReplayOptions {
    public var topic: String
    public var from: ReplayBound = .beginning
    public var to: ReplayBound = .end
    /// Only this partition; nil for all.
    public var partition: Int32? = nil
    public var filter: MessageFilter? = nil
    /// Most records per second; nil for no limit.
    public var ratePerSecond: Double? = nil
    /// Standard-output mode: how records are printed.
    public var output: OutputMode = .values(delimiter: [10])
    public var outputFD: Int32 = 1
    /// Which records of transactions are printed (`--read-uncommitted`).
    public var isolation: ReadIsolation = .readCommitted
    /// Draw a progress line on standard error (set when it is a terminal).
    public var progress = false
    /// Print a summary line on standard error at the end.
    public var verbose = false

    public init(topic: String) { self.topic = topic }
}

/// What a replay did.
public struct ReplaySummary: Sendable, Equatable {
    /// Records written (printed or copied).
    public var written: Int64 = 0
    /// Records in the range that the filters skipped.
    public var skipped: Int64 = 0

    /// The `-v` line for standard error.
    public var report: String { "\(written) messages printed, \(skipped) skipped by the filters" }
}

/// `mq-replay TOPIC` without `--into`: prints a range of a topic in the
/// output formats of `mq-tail`, partitions merged by timestamp as `mq-tail`
/// merges them (ties to the lower partition), each partition in offset
/// order. The range's end is resolved once, at the start. Not thread-safe.
public final class Replayer {
    public let options: ReplayOptions
    public let log: LogDirectory
    private let printer: RecordPrinter
    private var limiter: RateLimiter?
    private var progress: ProgressLine?

    public init(options: ReplayOptions, log: LogDirectory) {
        self.options = options
        self.log = log
        self.printer = RecordPrinter(mode: options.output, fd: options.outputFD)
        self.limiter = options.ratePerSecond.map { RateLimiter(perSecond: $0) }
    }

    /// Opens the topic and resolves the range.
    /// - Throws: `MQError`: no such topic (noInput), a bad partition (usage).
    public static func openRange(_ options: ReplayOptions, log: LogDirectory) throws -> (Topic, [ReplayPartitionRange]) {
        try log.requireTopic(options.topic)
        let topic = try log.openTopic(options.topic)
        let partitions: [Int32]
        if let p = options.partition {
            guard p >= 0 && p < topic.partitions else {
                throw MQError.usage("partition \(p) does not exist: topic '\(topic.name)' has \(topic.partitions) partition\(topic.partitions == 1 ? "" : "s")")
            }
            partitions = [p]
        } else {
            partitions = Array(0..<topic.partitions)
        }
        return (topic, try resolveReplayRange(topic: topic, partitions: partitions, from: options.from, to: options.to, isolation: options.isolation))
    }

    /// Prints the range. A closed output ends the run quietly (as `mq-tail`).
    public func run() throws -> ReplaySummary {
        let (topic, ranges) = try Replayer.openRange(options, log: log)
        var summary = ReplaySummary()
        if options.progress { progress = ProgressLine(total: ranges.reduce(0) { $0 + $1.count }) }
        defer { progress?.finish() }
        var merge = try RangeMerge(topic: topic, ranges: ranges, isolation: options.isolation)
        while let (cursor, record) = try merge.next() {
            progress?.advance()
            if let filter = options.filter, !(try filter.matches(record)) {
                summary.skipped += 1
                merge.advance(cursor)
                continue
            }
            if var l = limiter {
                let wait = l.reserve(now: monotonicNanos())
                limiter = l
                if wait > 0 {
                    try printer.flush()
                    sleepNanos(wait)
                }
            }
            try printer.print(record, topic: topic.name, partition: merge.partition(cursor))
            summary.written += 1
            merge.advance(cursor)
        }
        try printer.flush()
        return summary
    }
}

/// Reads the ranges of several partitions as one stream, merged by
/// timestamp as `mq-tail` prints several partitions (ties to the first
/// range), each partition in offset order and only up to its `stop`.
/// Not thread-safe.
struct RangeMerge {
    private var cursors: [PartitionCursor] = []
    private var stops: [Int64] = []
    private var active: [Int] = []

    init(topic: Topic, ranges: [ReplayPartitionRange], isolation: ReadIsolation = .readCommitted) throws {
        for r in ranges where r.count > 0 {
            cursors.append(try PartitionCursor(partition: r.partition, directory: topic.partitionPath(r.partition), startOffset: r.start, isolation: isolation))
            stops.append(r.stop)
            active.append(cursors.count - 1)
        }
    }

    func partition(_ cursor: Int) -> Int32 { cursors[cursor].partition }

    /// The next record in merge order and its cursor, or nil at the end of every range.
    /// The record is valid until `advance`.
    mutating func next() throws -> (Int, RecordView)? {
        while true {
            var best: (Int, RecordView)? = nil
            var exhausted: Int? = nil
            for (k, i) in active.enumerated() {
                guard let r = try cursors[i].peek(), r.offset < stops[i] else { exhausted = k; break }
                if best == nil || r.timestamp < best!.1.timestamp { best = (i, r) }
            }
            if let k = exhausted {
                active.remove(at: k)
                continue
            }
            return best
        }
    }

    func advance(_ cursor: Int) { cursors[cursor].advance() }
}

/// A token bucket: `perSecond` records a second on average, in bursts of at
/// most a twentieth of a second's worth (at least one record).
public struct RateLimiter: Sendable {
    public let perSecond: Double
    public let burst: Double
    private var tokens: Double
    private var last: UInt64?

    public init(perSecond: Double) {
        precondition(perSecond > 0)
        self.perSecond = perSecond
        self.burst = max(1, perSecond / 20)
        self.tokens = 1
    }

    /// Takes `count` tokens at monotonic time `now`.
    /// - Returns: how long to wait (ns) before using them; 0 when they are there.
    public mutating func reserve(_ count: Int = 1, now: UInt64) -> UInt64 {
        if let last, now > last {
            tokens = min(burst, tokens + Double(now - last) * perSecond / 1e9)
        }
        last = max(last ?? now, now)
        tokens -= Double(count)
        if tokens >= 0 { return 0 }
        // In debt: wait until the balance is back to zero, and count that time as spent.
        let wait = UInt64((-tokens / perSecond * 1e9).rounded(.up))
        last = last! + wait
        tokens = 0
        return wait
    }

    /// Parses `--rate`: `N`, `N/s`, `N/m` or `N/h` (N > 0, may have a fraction).
    public static func parse(_ text: String) throws -> Double {
        var number = Substring(text)
        var per = 1.0
        if let slash = text.firstIndex(of: "/") {
            number = text[..<slash]
            switch text[text.index(after: slash)...] {
            case "s": per = 1
            case "m": per = 60
            case "h": per = 3600
            default: throw MQError.usage("invalid --rate '\(text)': the unit after '/' must be s, m or h")
            }
        }
        guard let n = Double(number), n.isFinite, n > 0 else {
            throw MQError.usage("invalid --rate '\(text)': expected a positive number of records per second, like 100/s")
        }
        return n / per
    }
}

/// Holds a mirror to `--rate`: before a chunk of `n` records goes out,
/// waits for their tokens (in steps of at most 100 ms, so that a stop
/// signal is seen at once).
struct ChunkPacer {
    private var limiter: RateLimiter?

    init(perSecond: Double?) { limiter = perSecond.map { RateLimiter(perSecond: $0) } }

    /// Most records in one chunk: a twentieth of a second's worth, so that
    /// the rate holds over short spans too (nil: no rate).
    var chunkLimit: Int? { limiter.map { max(1, Int(min($0.perSecond / 20, 1e9))) } }

    /// Waits until `n` more records may go. False when a stop signal came first.
    mutating func wait(for n: Int) -> Bool {
        sleepUnlessStopped(reserve(n))
    }

    /// Takes the tokens of `n` more records.
    /// - Returns: how long to wait (ns) before they may go.
    mutating func reserve(_ n: Int) -> UInt64 {
        guard n > 0, limiter != nil else { return 0 }
        return limiter!.reserve(n, now: monotonicNanos())
    }
}

/// Sleeps for `nanos` in steps of at most 100 ms, so that a stop signal is
/// seen at once. False when a stop signal came (before or during the sleep).
func sleepUnlessStopped(_ nanos: UInt64) -> Bool {
    var left = nanos
    while left > 0 {
        if StopSignals.signal != 0 { return false }
        let step = min(left, 100_000_000)
        sleepNanos(step)
        left -= step
    }
    return StopSignals.signal == 0
}

/// Sleeps for `nanos`, resuming after signal handlers run.
func sleepNanos(_ nanos: UInt64) {
    var request = timespec(tv_sec: Int(nanos / 1_000_000_000), tv_nsec: Int(nanos % 1_000_000_000))
    var remaining = timespec()
    while nanosleep(&request, &remaining) != 0 && errno == EINTR {
        if StopSignals.signal != 0 { return }
        request = remaining
    }
}

/// A progress line on standard error, redrawn at most five times a second
/// and erased at the end. Only for terminals: callers create it when
/// `isatty(2)`.
final class ProgressLine {
    private let tool: String
    /// Nil: a count with no end (`unit` says of what).
    private let total: Int64?
    private let unit: String
    private var done: Int64 = 0
    private var drawnAt: UInt64 = 0
    private var drawn = false

    init(total: Int64?, tool: String = "mq-replay", unit: String = "") {
        self.total = total
        self.tool = tool
        self.unit = unit
    }

    func advance(by n: Int64 = 1) {
        done += n
        let now = monotonicNanos()
        guard now &- drawnAt >= 200_000_000 else { return }
        drawnAt = now
        if let total {
            let percent = total > 0 ? min(100, done * 100 / total) : 100
            write("\r\(tool): \(done) of \(total) (\(percent)%)\u{1B}[K")
        } else {
            write("\r\(tool): \(done) \(unit)\u{1B}[K")
        }
        drawn = true
    }

    func finish() {
        if drawn { write("\r\u{1B}[K") }
        drawn = false
    }

    private func write(_ text: String) {
        var bytes = Array(text.utf8)
        _ = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
