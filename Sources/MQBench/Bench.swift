import Glibc
import Histogram
import MQLog

/// One benchmark result row.
public struct BenchResult: Sendable {
    public var scenario: String
    public var messages: Int
    public var bytes: Int
    public var seconds: Double
    public var userCPU: Double
    public var systemCPU: Double
    /// Largest resident set of any process of the run, in KiB.
    public var maxRSSKiB: Int
    /// Latency percentiles in µs (end-to-end scenario only).
    public var latency: [String: Double]? = nil

    public var messagesPerSecond: Double { seconds > 0 ? Double(messages) / seconds : 0 }
    public var megabytesPerSecond: Double { seconds > 0 ? Double(bytes) / seconds / 1e6 : 0 }
}

public struct BenchOptions: Sendable {
    public var messages = 1_000_000
    public var size = 100
    public var producers = 1
    public var codec = "none"
    public var sync = "exit"
    public var batchBytes: String? = nil
    public var partitions = 1
    /// consume: read with a group (commits) or plainly (mq-tail).
    public var group = true
    /// e2e: messages a second (`--rate`, parsed by `RateLimiter.parse`).
    public var rate = 1000.0
    /// queue: workers and handler batch size (1 = one run per message).
    public var workers = 4
    public var handlerBatch = 1000
    /// compact: distinct keys the messages cycle through.
    public var keys = 1000
    public var binDirectory: String
    public var directory: String? = nil
    public var progress = false

    public init(binDirectory: String) { self.binDirectory = binDirectory }
}

/// Runs the toolkit's own tools on generated data and measures them, like
/// kafka-producer-perf-test and `nats bench`.
public final class Bench {
    public let options: BenchOptions
    private(set) var workDirectory = ""
    private var ownsDirectory = false

    public init(options: BenchOptions) { self.options = options }

    public static let scenarios = ["produce", "consume", "e2e", "queue", "compact", "partitions", "mirror"]

    public func run(_ scenario: String) throws -> BenchResult {
        try prepareDirectory()
        defer { cleanUp() }
        switch scenario {
        case "produce": return try produce()
        case "consume": return try consume()
        case "e2e": return try endToEnd()
        case "queue": return try queue()
        case "compact": return try compact()
        case "mirror": return try mirror()
        case "partitions": throw MQError.usage("the 'partitions' scenario has rows of its own: run it with runPartitions(_:)")
        default: throw MQError.usage("unknown scenario '\(scenario)' (scenarios: \(Bench.scenarios.joined(separator: ", ")))")
        }
    }

    // MARK: Directory and data

    func prepareDirectory() throws {
        if let d = options.directory {
            workDirectory = d + "/mq-bench.\(getpid())"
            try FileSystem.makeDirectories(workDirectory)
        } else {
            let base = environment("TMPDIR") ?? "/var/tmp"
            var template = Array((base + "/mq-bench.XXXXXX").utf8CString)
            guard let p = template.withUnsafeMutableBufferPointer({ mkdtemp($0.baseAddress!) }) else {
                throw MQError.system("cannot create a temporary directory in", path: base, currentErrno(), creating: true)
            }
            workDirectory = String(cString: p)
        }
        ownsDirectory = true
    }

    func cleanUp() {
        if ownsDirectory { try? FileSystem.removeTree(workDirectory) }
    }

    var logDirectory: String { workDirectory + "/log" }

    func tool(_ name: String) -> String { options.binDirectory + "/" + name }

    /// Writes `count` messages of `size` bytes (newline included) to a file;
    /// with `keys`, each line starts with its key `kN ` (N = i mod keys).
    func makeInput(_ name: String, count: Int, first: Int = 0, keys: Int? = nil) throws -> String {
        let path = workDirectory + "/" + name
        let f = try OpenFile.open(path, O_WRONLY | O_CREAT | O_TRUNC, creating: true)
        defer { f.close() }
        let buffer = GrowableBytes(capacity: 1 << 20)
        var written: Int64 = 0
        let filler = max(0, options.size - 1)
        for i in first..<first + count {
            var line = keys.map { "k\(i % $0) m\(i) " } ?? "m\(i) "
            if line.utf8.count > filler { line = String(line.prefix(filler)) }
            buffer.append(line)
            for j in 0..<(filler - line.utf8.count) { buffer.append(byte: UInt8(97 + (i &+ j) % 26)) }
            buffer.append(byte: 10)
            if buffer.count >= 1 << 20 {
                try f.write(buffer.bytes, at: written)
                written += Int64(buffer.count)
                buffer.count = 0
            }
        }
        try f.write(buffer.bytes, at: written)
        return path
    }

    /// Creates a topic with `partitions` (default: `options.partitions`) partitions.
    func createTopic(_ name: String, partitions: Int? = nil, configs: [String] = []) throws {
        let count = partitions ?? options.partitions
        let p = try ToolProcess([tool("mq-topic"), "create", "--dir", logDirectory, name, "--partitions", String(count)]
                                + configs.flatMap { ["--config", $0] })
        guard p.wait().status == 0 else { throw MQError.internalError("mq-topic create failed") }
    }

    func produceArguments(_ topic: String) -> [String] {
        var args = [tool("mq-produce"), "--dir", logDirectory, "-z", options.codec, "--sync", options.sync, topic]
        if let b = options.batchBytes { args += ["--batch-bytes", b] }
        return args
    }

    /// Runs processes to completion; the time is from the first start to the last exit.
    func timed(_ start: () throws -> [ToolProcess]) throws -> (seconds: Double, user: Double, system: Double, rss: Int) {
        let t0 = monotonicNanos()
        let procs = try start()
        var user = 0.0, system = 0.0, rss = 0
        for p in procs {
            let (status, usage) = p.wait()
            guard status == 0 else { throw MQError.internalError("a benchmarked tool failed with status \(status)") }
            user += seconds(usage.ru_utime)
            system += seconds(usage.ru_stime)
            rss = max(rss, Int(usage.ru_maxrss))
        }
        return (Double(monotonicNanos() - t0) / 1e9, user, system, rss)
    }

    // MARK: Scenarios

    private func produce() throws -> BenchResult {
        try createTopic("bench")
        let per = options.messages / options.producers
        var inputs: [String] = []
        for i in 0..<options.producers { inputs.append(try makeInput("input\(i)", count: per, first: i * per)) }
        let t = try timed { try inputs.map { try ToolProcess(produceArguments("bench"), stdinPath: $0) } }
        let n = per * options.producers
        return BenchResult(scenario: "produce", messages: n, bytes: n * options.size, seconds: t.seconds,
                           userCPU: t.user, systemCPU: t.system, maxRSSKiB: t.rss)
    }

    private func consume() throws -> BenchResult {
        try createTopic("bench")
        let input = try makeInput("input", count: options.messages)
        _ = try timed { [try ToolProcess(produceArguments("bench"), stdinPath: input)] }
        let argv = options.group
            ? [tool("mq-consume"), "--dir", logDirectory, "-g", "bench", "-e", "bench"]
            : [tool("mq-tail"), "--dir", logDirectory, "-n", "+0", "bench"]
        let t = try timed { [try ToolProcess(argv)] }
        return BenchResult(scenario: options.group ? "consume (group)" : "consume (plain)", messages: options.messages,
                           bytes: options.messages * options.size, seconds: t.seconds, userCPU: t.user, systemCPU: t.system, maxRSSKiB: t.rss)
    }

    private func queue() throws -> BenchResult {
        try createTopic("bench")
        let input = try makeInput("input", count: options.messages)
        _ = try timed { [try ToolProcess(produceArguments("bench"), stdinPath: input)] }
        var argv = [tool("mq-consume"), "--dir", logDirectory, "--queue", "-g", "bench", "-e"]
        if options.handlerBatch > 1 { argv += ["--batch", String(options.handlerBatch), "bench", "--", "sh", "-c", "cat > /dev/null"] } else { argv += ["bench", "--", "true"] }
        let t = try timed { try (0..<options.workers).map { _ in try ToolProcess(argv) } }
        return BenchResult(scenario: "queue (\(options.workers) workers, batch \(options.handlerBatch))", messages: options.messages,
                           bytes: options.messages * options.size, seconds: t.seconds, userCPU: t.user, systemCPU: t.system, maxRSSKiB: t.rss)
    }

    /// Keyed messages cycling through `keys` keys in a compacted topic with
    /// 1 MiB segments are produced (untimed), then one `mq-compact --force`
    /// is timed: the bytes are those of the segments it read and rewrote.
    private func compact() throws -> BenchResult {
        try createTopic("bench", configs: ["cleanup.policy=compact", "segment.bytes=1048576"])
        let input = try makeInput("input", count: options.messages, keys: options.keys)
        _ = try timed { [try ToolProcess(produceArguments("bench") + ["-K", " "], stdinPath: input)] }
        let topicPath = LogDirectory(root: logDirectory).topicPath("bench")
        var rewritten = 0
        for p in 0..<options.partitions {
            let dir = topicPath + "/\(p)"
            for base in try LogSegments.baseOffsets(in: dir).dropLast() {
                rewritten += Int(FileSystem.size(Segment(dir, base).logPath) ?? 0)
            }
        }
        let t = try timed { [try ToolProcess([tool("mq-compact"), "--dir", logDirectory, "--force", "bench"])] }
        return BenchResult(scenario: "compact (\(options.keys) keys)", messages: options.messages, bytes: rewritten,
                           seconds: t.seconds, userCPU: t.user, systemCPU: t.system, maxRSSKiB: t.rss)
    }

    /// Appends one message at a time, each carrying its monotonic send time,
    /// and measures when a following `mq-tail -f` prints it. With several
    /// partitions, message i goes to partition i mod P, so that the follower
    /// watches them all and finds each message in a different one.
    ///
    /// A thread of its own waits on the follower's output and takes the time
    /// as soon as a line arrives, so the figure is the follower's delivery,
    /// not when this process gets round to looking after its own append.
    private func endToEnd() throws -> BenchResult {
        try createTopic("bench")
        let follower = try ToolProcess([tool("mq-tail"), "--dir", logDirectory, "-f", "-n", "0", "bench"], pipeStdout: true)
        let topicPath = LogDirectory(root: logDirectory).topicPath("bench")
        let writers = RoundRobinWriters(topicPath: topicPath, partitions: options.partitions)
        let builder = RecordBatchBuilder(codec: .none, capacity: 4096)
        let noHeaders = RecordBatchBuilder.encodeHeaders([])
        func append(_ text: String, to writer: PartitionWriter) throws {
            builder.reset()
            var value = text
            value.withUTF8 { v in noHeaders.withUnsafeBytes { h in
                builder.append(timestamp: currentTimeMillis(), key: nil, value: UnsafeRawBufferPointer(v), headers: h)
            } }
            _ = try builder.finish()
            try writer.append(builder.output)
        }
        if options.partitions == 1 {
            usleep(200_000)  // let the follower start watching
        } else {
            try awaitFollower(follower, writers) { try append($0, to: $1) }
        }
        let interval = UInt64(1e9 / options.rate)
        let t0 = monotonicNanos()
        let receiver = LatencyReceiver(fd: follower.stdoutFD!, expected: options.messages,
                                       deadline: t0 + UInt64(options.messages) * interval + 10_000_000_000)
        try receiver.start()
        for i in 0..<options.messages {
            sleepUntil(t0 + UInt64(i) * interval)
            let writer = try writers.writer(i % options.partitions)
            try append(String(monotonicNanos()), to: writer)
            if options.progress && i % max(1, Int(options.rate)) == 0 {
                progress("\re2e: \(i)/\(options.messages)")
            }
        }
        receiver.join()
        if options.progress { progress("\r\u{1B}[K") }
        let elapsed = Double(monotonicNanos() - t0) / 1e9
        kill(follower.pid, SIGTERM)
        let (_, usage) = follower.wait()
        if let problem = receiver.problem { throw MQError.internalError(problem) }
        guard receiver.received == options.messages else {
            throw MQError.internalError("the follower delivered \(receiver.received) of \(options.messages) messages")
        }
        let histogram = receiver.histogram
        let us = { (p: Double) in Double(histogram.valueAtPercentile(p)) / 1000 }
        return BenchResult(scenario: "e2e (\(BenchReport.rate(options.rate))/s)", messages: options.messages, bytes: options.messages * options.size,
                           seconds: elapsed, userCPU: seconds(usage.ru_utime), systemCPU: seconds(usage.ru_stime),
                           maxRSSKiB: Int(usage.ru_maxrss),
                           latency: ["p50": us(50), "p90": us(90), "p99": us(99), "p99.9": us(99.9), "max": Double(histogram.max) / 1000])
    }

    /// Waits until the follower prints a marker from every partition, so that
    /// it has opened them all: appends `ready P` to each partition not seen
    /// yet, reads what the follower printed for 200 ms, and again, for at
    /// most two minutes. Markers arriving later are ignored by the receiver,
    /// as any line that is not a number is.
    private func awaitFollower(_ follower: ToolProcess, _ writers: RoundRobinWriters,
                               append: (String, PartitionWriter) throws -> Void) throws {
        let fd = follower.stdoutFD!
        var unseen = Set(0..<writers.partitions)
        var pending: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = monotonicNanos() + 120_000_000_000
        while !unseen.isEmpty {
            guard monotonicNanos() < deadline else {
                throw MQError.internalError("the follower printed markers from \(writers.partitions - unseen.count) of \(writers.partitions) partitions in 2 minutes")
            }
            for p in unseen.sorted() { try append("ready \(p)", writers.writer(p)) }
            while !waitReadable([fd], timeoutMs: 200).isEmpty {
                let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
                guard n > 0 else { throw MQError.internalError("the follower stopped") }
                pending.append(contentsOf: chunk[0..<n])
                while let nl = pending.firstIndex(of: 10) {
                    let line = String(decoding: pending[..<nl], as: UTF8.self)
                    if line.hasPrefix("ready "), let p = Int(line.dropFirst(6)) { unseen.remove(p) }
                    pending.removeSubrange(...nl)
                }
                if unseen.isEmpty { break }
            }
        }
    }
}

/// The writers `e2e` appends through, one per partition, opened when first
/// used. The first ones stay open, as many as a tool's budget allows
/// (`FileBudget.writers`); a writer for any other partition is used once and
/// closed. (Messages go round the partitions in order, and such a cycle
/// would make a cache that evicts the oldest miss on every append.)
private final class RoundRobinWriters {
    let topicPath: String
    let partitions: Int
    private let capacity: Int
    private var open: [Int: PartitionWriter] = [:]

    init(topicPath: String, partitions: Int) {
        self.topicPath = topicPath
        self.partitions = partitions
        capacity = max(1, min(partitions, FileBudget.current().writers))
    }

    func writer(_ partition: Int) throws -> PartitionWriter {
        if let w = open[partition] { return w }
        let w = try PartitionWriter(directory: topicPath + "/\(partition)", settings: .init())
        if open.count < capacity { open[partition] = w }
        return w
    }
}

/// Sleeps until the monotonic clock reads `due` (ns).
private func sleepUntil(_ due: UInt64) {
    var t = timespec(tv_sec: Int(due / 1_000_000_000), tv_nsec: Int(due % 1_000_000_000))
    while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &t, nil) == EINTR {}
}

/// Reads the follower's lines (each a send time in monotonic ns) on a thread
/// of its own and records each one's latency. Its fields belong to that
/// thread until `join` returns.
private final class LatencyReceiver: @unchecked Sendable {
    let fd: Int32
    let expected: Int
    let deadline: UInt64
    private(set) var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000)
    private(set) var received = 0
    private(set) var problem: String?
    private var thread: pthread_t?

    init(fd: Int32, expected: Int, deadline: UInt64) {
        self.fd = fd
        self.expected = expected
        self.deadline = deadline
    }

    func start() throws {
        var t = pthread_t()
        let rc = pthread_create(&t, nil, { arg in
            Unmanaged<LatencyReceiver>.fromOpaque(arg!).takeRetainedValue().run()
            return nil
        }, Unmanaged.passRetained(self).toOpaque())
        guard rc == 0 else { throw MQError.internalError("cannot start a thread: \(String(cString: strerror(rc)))") }
        thread = t
    }

    func join() {
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }

    private func run() {
        var chunk = [UInt8](repeating: 0, count: 65536)
        var pending: [UInt8] = []
        while received < expected && monotonicNanos() < deadline {
            if waitReadable([fd], timeoutMs: 100).isEmpty { continue }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            let now = monotonicNanos()
            guard n > 0 else { problem = "the follower stopped"; return }
            pending.append(contentsOf: chunk[0..<n])
            while let nl = pending.firstIndex(of: 10) {
                if let sent = UInt64(String(decoding: pending[..<nl], as: UTF8.self)), now >= sent {
                    _ = histogram.record(now - sent)
                    received += 1
                }
                pending.removeSubrange(...nl)
            }
        }
    }
}

/// Writes to standard error (progress at a terminal).
func progress(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

