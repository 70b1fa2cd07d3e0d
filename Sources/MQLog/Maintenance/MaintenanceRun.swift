import Glibc

/// One run of `mq-compact`: the global lock, the topics, then either
/// compaction and retention (and group housekeeping with `--all`) or
/// `--check`/`--repair`. The command-line front end only parses arguments.
public struct MaintenanceRun {
    public enum Mode: Sendable { case compact, check, repair }

    public var log: LogDirectory
    public var topics: [String] = []
    public var all = false
    public var mode = Mode.compact
    public var options: Compactor.Options
    public var wait = true
    public var verbose = false
    /// Consumer-group state idle for longer than this is expired (with `all`).
    public var groupExpiryMs: Int64 = 7 * 86_400_000

    public static let lockName = "compact.lock"

    public init(log: LogDirectory, now: Int64) {
        self.log = log
        self.options = Compactor.Options(now: now)
    }

    /// Runs; returns the lines for standard output (the `--check` report,
    /// repairs, the `-v` summary). Problems found by `--check` throw
    /// `dataError` after their lines are written by `output`.
    public func run(output: (String) -> Void) throws {
        StopSignals.install()
        let started = monotonicNanos()
        guard FileSystem.isDirectory(log.root) else {
            if !all { try TopicSelection(topics).requireExact(in: log) }
            if verbose { output("mq-compact: \(log.root) does not exist: nothing to do") }
            return
        }
        let lock = try OpenFile.open(log.root + "/" + MaintenanceRun.lockName, O_RDONLY | O_CREAT, creating: true)
        defer { lock.close() }
        try takeLock(lock)
        let names: [String]
        if all {
            names = try log.listTopics()
        } else {
            let selection = try TopicSelection(topics)
            try selection.requireExact(in: log)
            names = try selection.existing(in: log)
        }
        let bar = ProgressBar()
        defer { bar.clear() }
        switch mode {
        case .check, .repair:
            let check = LogCheck(log: log, repair: mode == .repair)
            check.progress = bar.update
            try check.run(topics: names)
            bar.clear()
            for line in check.repairs { output(line) }
            for line in check.problems { output(line) }
            if verbose {
                let problems = check.problems.count
                output("mq-compact: checked \(names.count) topic\(names.count == 1 ? "" : "s"), \(check.partitions) partition\(check.partitions == 1 ? "" : "s"), \(check.segments) segments, \(check.batches) batches: \(problems == 0 ? "no problems" : "\(problems) problem\(problems == 1 ? "" : "s")")\(mode == .repair ? ", \(check.repairs.count) repair\(check.repairs.count == 1 ? "" : "s")" : "")")
            }
            if !check.problems.isEmpty {
                throw MQError(.dataError, "\(check.problems.count) problem\(check.problems.count == 1 ? "" : "s") found\(mode == .repair ? " that --repair cannot fix without losing data" : "")")
            }
        case .compact:
            let compactor = Compactor(log: log, options: options)
            compactor.progress = bar.update
            try compactor.run(topics: names)
            var groups: GroupHousekeeping.Report?
            if all {
                groups = try GroupHousekeeping.run(log: log, now: options.now, expireAfterMs: groupExpiryMs, dryRun: options.dryRun)
            }
            bar.clear()
            if verbose {
                let seconds = Double(monotonicNanos() - started) / 1e9
                output(compactor.report.summary(dryRun: options.dryRun, seconds: seconds, groups: groups))
            }
        }
    }

    /// Takes the global lock: blocking (while SIGINT/SIGTERM can still stop
    /// the wait) or, without `wait`, failing with status 75.
    func takeLock(_ lock: OpenFile) throws {
        while !(try lock.lock(exclusive: true, wait: false)) {
            if !wait { throw MQError(.tempFail, "another mq-compact is running on \(log.root) (it holds \(lock.path))") }
            try stopIfSignalled(while: "waiting for another mq-compact")
            usleep(50_000)
        }
    }
}

extension Compactor.Report {
    /// The `-v` line: `mq-compact: 3 topics, 5 partitions: 4 segments
    /// deleted, 6 compacted into 2 (12,345 records removed), 1.2 MiB reclaimed in 0.8 s`.
    public func summary(dryRun: Bool, seconds: Double, groups: GroupHousekeeping.Report?) -> String {
        func plural(_ n: Int, _ word: String) -> String { "\(grouped(Int64(n))) \(word)\(n == 1 ? "" : "s")" }
        var parts: [String] = []
        let would = dryRun ? "would be " : ""
        parts.append("\(plural(segmentsDeleted, "segment")) \(would)deleted")
        parts.append("\(grouped(Int64(segmentsCompacted))) \(would)compacted into \(grouped(Int64(segmentsWritten))) (\(plural(Int(recordsRemoved), "record")) removed)")
        if segmentsHeld > 0 { parts.append("\(plural(segmentsHeld, "segment")) kept for consumer groups") }
        if swapsFinished > 0 { parts.append("\(plural(swapsFinished, "interrupted swap")) \(dryRun ? "to finish" : "finished")") }
        if rewritesUndone > 0 { parts.append("\(plural(rewritesUndone, "interrupted rewrite")) \(dryRun ? "to undo" : "undone")") }
        if let groups, !groups.summary.isEmpty { parts.append(groups.summary) }
        let reclaimed = bytesReclaimed + (groups?.bytesReclaimed ?? 0)
        let time = String(Int(seconds * 10) / 10) + "." + String(Int(seconds * 10) % 10)
        return "mq-compact: \(plural(topics, "topic")), \(plural(partitions, "partition")): \(parts.joined(separator: ", ")), \(Sizes.format(reclaimed)) \(dryRun ? "would be " : "")reclaimed in \(time) s"
    }
}

/// Throws the signal's status when SIGINT or SIGTERM arrived: maintenance
/// stops between two steps, each of which leaves the log consistent.
func stopIfSignalled(while doing: String? = nil) throws {
    guard StopSignals.signal != 0 else { return }
    throw MQError(StopSignals.exitStatus, "stopped by \(StopSignals.name)\(doing.map { " while " + $0 } ?? ""); the log is consistent")
}

/// Opens `topics` (each with its shared "in use" lock, held until the end)
/// and calls `body` for each partition in order, reporting progress and
/// stopping between partitions on SIGINT/SIGTERM.
func forEachPartition(_ log: LogDirectory, _ topics: [String], progress: ((String, Int32, Int, Int) -> Void)?,
                      _ body: (Topic, Int32) throws -> Void, topicDone: () -> Void) throws {
    var opened: [Topic] = []
    for name in topics { opened.append(try log.openTopic(name)) }
    let total = opened.reduce(0) { $0 + Int($1.partitions) }
    var done = 0
    for topic in opened {
        for p in 0..<topic.partitions {
            try stopIfSignalled()
            progress?(topic.name, p, done, total)
            try body(topic, p)
            done += 1
        }
        topicDone()
    }
}

/// `12,345`.
func grouped(_ n: Int64) -> String {
    let digits = String(n.magnitude)
    var out = ""
    for (i, c) in digits.enumerated() {
        if i > 0 && (digits.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

/// A one-line progress display on standard error, only when it is a terminal.
final class ProgressBar {
    private let enabled = isatty(2) != 0
    private var shown = false

    func update(_ topic: String, _ partition: Int32, _ done: Int, _ total: Int) {
        guard enabled, total > 0 else { return }
        let width = 30
        let filled = width * done / total
        let line = "\r\u{1B}[Kmq-compact [" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
            + "] \(done)/\(total) \(topic)/\(partition)"
        printError(line)
        shown = true
    }

    func clear() {
        guard shown else { return }
        printError("\r\u{1B}[K")
        shown = false
    }

    private func printError(_ s: String) {
        var bytes = Array(s.utf8)
        _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }
}
