import Glibc
import MQLog

/// The times of the `partitions` scenario for one partition count.
public struct PartitionScalingRow: Sendable {
    /// How one step of the scenario ended.
    public enum Outcome: Sendable, Equatable {
        case seconds(Double)
        /// The tool exited with this status (128 + N for signal N).
        case failed(status: Int32)
        /// Not run, because producing failed.
        case skipped

        public var seconds: Double? {
            if case .seconds(let s) = self { return s }
            return nil
        }
    }

    public var partitions: Int
    public var messages: Int
    public var produce: Outcome
    public var tail: Outcome
    public var consume: Outcome
}

extension Bench {
    /// Partition counts the `partitions` scenario runs when none are given.
    public static let defaultPartitionCounts = [1, 10, 100, 1000]

    /// The `partitions` scenario (issue 12): for each count, a fresh topic
    /// with that many partitions; the same `messages` keyed messages (each
    /// its own key, so murmur2 spreads them evenly) are produced by one
    /// `mq-produce -K`, then read to the end by `mq-tail -n +0` and by
    /// `mq-consume -g -e`, each timed from start to exit. A tool that fails
    /// is recorded with its exit status and the next count still runs.
    public func runPartitions(_ counts: [Int]) throws -> [PartitionScalingRow] {
        try prepareDirectory()
        defer { cleanUp() }
        let input = try makeInput("input", count: options.messages, keys: options.messages)
        var rows: [PartitionScalingRow] = []
        for count in counts {
            if FileSystem.exists(logDirectory) { try FileSystem.removeTree(logDirectory) }
            try createTopic("bench", partitions: count)
            let step = { (name: String, argv: [String], stdin: String) -> PartitionScalingRow.Outcome in
                if self.options.progress { progress("\r\u{1B}[Kpartitions: \(count): \(name)") }
                return try self.timedStep(argv, stdinPath: stdin)
            }
            let produce = try step("produce", produceArguments("bench") + ["-K", " "], input)
            var tail = PartitionScalingRow.Outcome.skipped, consume = tail
            if produce.seconds != nil {
                tail = try step("tail", [tool("mq-tail"), "--dir", logDirectory, "-n", "+0", "bench"], "/dev/null")
                consume = try step("consume", [tool("mq-consume"), "--dir", logDirectory, "-g", "bench", "-e", "bench"], "/dev/null")
            }
            rows.append(PartitionScalingRow(partitions: count, messages: options.messages, produce: produce, tail: tail, consume: consume))
        }
        if options.progress { progress("\r\u{1B}[K") }
        return rows
    }

    /// Runs one tool to completion: its time, or its exit status if it failed.
    private func timedStep(_ argv: [String], stdinPath: String) throws -> PartitionScalingRow.Outcome {
        let t0 = monotonicNanos()
        let (status, _) = try ToolProcess(argv, stdinPath: stdinPath).wait()
        guard status == 0 else { return .failed(status: status) }
        return .seconds(Double(monotonicNanos() - t0) / 1e9)
    }

    /// Parses `--partitions`: one count or a comma-separated list, each from
    /// 1 to the largest partition count a topic may have; nil if malformed.
    public static func parsePartitionCounts(_ text: String) -> [Int]? {
        let counts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
        guard !counts.isEmpty, counts.allSatisfy({ $0 != nil && $0! >= 1 && $0! <= Int(TopicConfig.maximumPartitions) }) else { return nil }
        return counts.map { $0! }
    }
}
