/// What `mq-stat --watch` shows under its tables at a terminal: each topic's
/// append rate and each group's lag over the last refreshes, as sparklines
/// (a person reads a trend faster than a column of numbers).
///
/// Rates come from the end offsets of consecutive snapshots, so the first
/// snapshot gives a lag point but no rate. At most `capacity` points are
/// kept per line. Not thread-safe.
public struct StatsTrend: Sendable {
    /// Points kept per line (the sparkline's width).
    public let capacity: Int
    private var last: LogStats?
    /// Appends per second of each topic, oldest first.
    private(set) var rates: [String: [Double]] = [:]
    /// Messages not consumed of each group on each topic, oldest first.
    private(set) var lags: [GroupTopic: [Double]] = [:]
    /// Snapshots added.
    public private(set) var snapshots = 0

    struct GroupTopic: Hashable, Comparable, Sendable {
        var group: String
        var topic: String
        static func < (a: GroupTopic, b: GroupTopic) -> Bool { (a.group, a.topic) < (b.group, b.topic) }
    }

    public init(capacity: Int = 60) { self.capacity = max(capacity, 2) }

    /// Takes the figures of a new snapshot.
    public mutating func add(_ stats: LogStats) {
        snapshots += 1
        if let last, stats.takenMs > last.takenMs {
            let seconds = Double(stats.takenMs - last.takenMs) / 1000
            let before = Dictionary(last.topics.map { ($0.name, $0.endOffsets) }, uniquingKeysWith: { a, _ in a })
            for t in stats.topics {
                // A topic new since the last snapshot, or recreated (ends went back): no rate yet.
                guard let old = before[t.name], old <= t.endOffsets else { continue }
                append(&rates[t.name, default: []], Double(t.endOffsets - old) / seconds)
            }
        }
        var sums: [GroupTopic: Int64] = [:]
        for g in stats.groups {
            let key = GroupTopic(group: g.group, topic: g.topic)
            sums[key] = saturatingSum(sums[key, default: 0], g.lagMessages)
        }
        for (key, lag) in sums { append(&lags[key, default: []], Double(lag)) }
        // Lines of topics and groups gone from the log go too.
        let names = Set(stats.topics.map(\.name))
        rates = rates.filter { names.contains($0.key) }
        lags = lags.filter { sums[$0.key] != nil }
        last = stats
    }

    private func append(_ series: inout [Double], _ value: Double) {
        series.append(value)
        if series.count > capacity { series.removeFirst(series.count - capacity) }
    }

    /// The sparkline characters, lowest first.
    static let bars: [Character] = ["▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"]

    /// `values` as a sparkline: from zero (the lowest bar) to the largest value (the highest).
    static func sparkline(_ values: [Double]) -> String {
        let top = values.max() ?? 0
        return String(values.map { v -> Character in
            guard top > 0, v.isFinite, v > 0 else { return bars[0] }
            return bars[min(bars.count - 1, Int((v / top * Double(bars.count - 1)).rounded()))]
        })
    }

    /// The trend lines, or "" while there is nothing to draw.
    /// - Parameter intervalMs: the time between snapshots, for the heading.
    public func text(intervalMs: Int64) -> String {
        var rows: [[String]] = []
        for (topic, series) in rates.sorted(by: { $0.key < $1.key }) where !series.isEmpty {
            rows.append([topic, "appends/s", StatsTrend.sparkline(series), StatsTrend.figure(series.last ?? 0) + "/s"])
        }
        for (key, series) in lags.sorted(by: { $0.key < $1.key }) where !series.isEmpty {
            rows.append([key.group + " on " + key.topic, "lag", StatsTrend.sparkline(series), StatsTrend.figure(series.last ?? 0)])
        }
        guard !rows.isEmpty else { return "" }
        let points = max(rates.values.map(\.count).max() ?? 0, lags.values.map(\.count).max() ?? 0)
        let span = Int64(max(points - 1, 0)) * intervalMs
        return "\nTREND (last \(LogStats.seconds(span)), every \(LogStats.seconds(intervalMs)); lowest bar: 0, highest: the line's largest)\n"
            + LogStats.pad(rows)
    }

    /// A figure for a person: whole above 100, else to a tenth.
    static func figure(_ v: Double) -> String {
        guard v.isFinite, abs(v) < 1e15 else { return "\(v)" }
        return v >= 100 || v == v.rounded() ? String(Int64(v.rounded())) : String(Double(Int64((v * 10).rounded())) / 10)
    }
}

extension LogStats.TopicStats {
    /// The sum of the partitions' end offsets (saturating).
    var endOffsets: Int64 { partitions.reduce(0) { saturatingSum($0, $1.endOffset) } }
}
