import Glibc

/// The range `mq-replay` copies, as given on the command line and as
/// resolved to offsets.
///
/// `--from` and `--to` are each `beginning`, `end`, an offset (the same in
/// every partition), `P:N[,P:N...]` (offsets of named partitions; the others
/// keep the default), or a time (`TimeSpec`). A range resolves, per
/// partition, to `[start, stop)`:
///
///     --from beginning   start = log start offset
///     --from end         start = log end offset (nothing)
///     --from N           start = N, raised to the log start offset
///     --from TIME        start = first offset with a timestamp at or after TIME
///     --to beginning     stop = log start offset (nothing)
///     --to end           stop = log end offset, as it is when the range is resolved
///     --to N             stop = N + 1: the offset N is included
///     --to TIME          stop = first offset with a timestamp after TIME
///
/// `stop` is never beyond the log end offset at resolution time, so a replay
/// into its own topic never reads what it wrote; `start > stop` is an empty range.
public enum ReplayBound: Equatable, Sendable {
    case beginning
    case end
    case offset(Int64)
    case time(Int64)
    /// Offsets for the partitions named; `fallback` for the others.
    case partitions([Int32: Int64], fallback: ReplayBoundFallback)

    /// Parses a `--from` (`isTo` false) or `--to` argument.
    /// - Throws: `MQError` (usage) naming the bad argument.
    public static func parse(_ text: String, isTo: Bool, nowMs: Int64) throws -> ReplayBound {
        // Only digits, ':' and ',' (an ISO time has '-' and 'T' as well).
        if text.contains(":"), text.allSatisfy({ $0.isASCII && ($0.isNumber || $0 == ":" || $0 == ",") }) {
            var map: [Int32: Int64] = [:]
            for part in text.split(separator: ",", omittingEmptySubsequences: false) {
                let pieces = part.split(separator: ":", omittingEmptySubsequences: false)
                guard pieces.count == 2, let p = Int32(pieces[0]), p >= 0, let o = Int64(pieces[1]), o >= 0 else {
                    throw MQError.usage("invalid \(isTo ? "--to" : "--from") '\(text)': expected PARTITION:OFFSET[,PARTITION:OFFSET...], like 0:100,1:250")
                }
                if map[p] != nil { throw MQError.usage("invalid \(isTo ? "--to" : "--from") '\(text)': partition \(p) is given twice") }
                map[p] = o
            }
            return .partitions(map, fallback: isTo ? .end : .beginning)
        }
        switch try StartPosition.parse(text, nowMs: nowMs) {
        case .beginning: return .beginning
        case .end: return .end
        case .offset(let o): return .offset(o)
        case .time(let t): return .time(t)
        case .last, .nth, .lastOfEach: throw MQError.internalError("unexpected position '\(text)'")
        }
    }

    /// Checks that `to` does not lie before `from` where both are known
    /// without looking at the log (two offsets, or two times).
    /// - Throws: `MQError` (usage).
    public static func validate(from: ReplayBound, to: ReplayBound) throws {
        switch (from, to) {
        case let (.offset(a), .offset(b)) where b < a:
            throw MQError.usage("--to \(b) is before --from \(a)")
        case let (.time(a), .time(b)) where b < a:
            throw MQError.usage("--to is before --from: \(formatTimestamp(b)) < \(formatTimestamp(a))")
        case let (.partitions(a, _), .partitions(b, _)):
            for (p, start) in a { if let stop = b[p], stop < start { throw MQError.usage("--to \(p):\(stop) is before --from \(p):\(start)") } }
        case (.end, .beginning):
            throw MQError.usage("--to beginning is before --from end")
        default:
            break
        }
    }

    /// The offset this bound means in one partition: where to start for
    /// `--from`, where to stop (exclusive) for `--to`.
    public func resolve(in reader: PartitionReader, partition: Int32, isTo: Bool) throws -> Int64 {
        switch self {
        case .beginning: return try reader.logStartOffset()
        case .end: return try reader.logEndOffset()
        case .offset(let o):
            return isTo ? (o == .max ? o : o + 1) : max(o, try reader.logStartOffset())
        case .time(let t):
            // The first offset after TIME is the first at or after TIME + 1 ms.
            return try reader.offset(forTime: isTo ? (t == .max ? t : t + 1) : t)
        case .partitions(let map, let fallback):
            if let o = map[partition] { return try ReplayBound.offset(o).resolve(in: reader, partition: partition, isTo: isTo) }
            return try (fallback == .end ? ReplayBound.end : ReplayBound.beginning).resolve(in: reader, partition: partition, isTo: isTo)
        }
    }

    /// Partitions a `P:N` bound names (to check them against the topic).
    public var namedPartitions: [Int32] {
        if case .partitions(let map, _) = self { return map.keys.sorted() }
        return []
    }
}

/// What a `P:N` bound means for partitions it does not name.
public enum ReplayBoundFallback: Equatable, Sendable { case beginning, end }

/// One partition's resolved range: offsets `start ..< stop`.
public struct ReplayPartitionRange: Equatable, Sendable, Codable {
    public var partition: Int32
    public var start: Int64
    public var stop: Int64

    public init(partition: Int32, start: Int64, stop: Int64) {
        self.partition = partition
        self.start = start
        self.stop = stop
    }

    /// Offsets in the range (records, at most: compaction may leave gaps).
    public var count: Int64 { max(0, stop - start) }
}

/// Resolves `from ... to` in the partitions of a topic against the log as it
/// is now.
/// - Parameters:
///   - partitions: the partitions to resolve, each below `topic.partitions`.
/// - Throws: `MQError` (usage) for a `P:N` naming a partition the topic lacks.
/// Read committed, the end is the last stable offset (docs/FORMAT.md §18).
public func resolveReplayRange(topic: Topic, partitions: [Int32], from: ReplayBound, to: ReplayBound, isolation: ReadIsolation = .readCommitted) throws -> [ReplayPartitionRange] {
    for p in from.namedPartitions + to.namedPartitions where p >= topic.partitions {
        throw MQError.usage("partition \(p) does not exist: topic '\(topic.name)' has \(topic.partitions) partition\(topic.partitions == 1 ? "" : "s")")
    }
    var ranges: [ReplayPartitionRange] = []
    for p in partitions {
        let reader = PartitionReader(directory: topic.partitionPath(p))
        var end = try reader.logEndOffset()
        if isolation == .readCommitted { end = try TransactionRecovery.lastStableOffset(partitionDir: topic.partitionPath(p), logEnd: end) }
        let start = min(try from.resolve(in: reader, partition: p, isTo: false), end)
        let stop = min(try to.resolve(in: reader, partition: p, isTo: true), end)
        ranges.append(ReplayPartitionRange(partition: p, start: start, stop: max(start, stop)))
    }
    return ranges
}

/// `2026-11-21T10:00:00.000Z` for a timestamp in ms since the epoch (UTC).
public func formatTimestamp(_ ms: Int64) -> String {
    var seconds = time_t(ms / 1000)
    var parts = tm()
    gmtime_r(&seconds, &parts)
    func pad(_ v: Int32, _ width: Int) -> String {
        let s = String(v)
        return String(repeating: "0", count: max(0, width - s.count)) + s
    }
    return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(ms % 1000), 3))Z"
}
