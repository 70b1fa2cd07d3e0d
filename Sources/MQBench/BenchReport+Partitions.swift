/// Renders the `partitions` scenario: each step's seconds, and its ratio to
/// the same step with the fewest partitions measured.
extension BenchReport {
    private static var steps: [(name: String, outcome: (PartitionScalingRow) -> PartitionScalingRow.Outcome)] {
        [("produce", \.produce), ("tail", \.tail), ("consume", \.consume)]
    }

    /// The ratio of `row`'s step to the base row's, when both ran.
    private static func ratio(_ row: PartitionScalingRow, _ base: PartitionScalingRow?, _ outcome: (PartitionScalingRow) -> PartitionScalingRow.Outcome) -> Double? {
        guard let s = outcome(row).seconds, let b = base.flatMap({ outcome($0).seconds }), b > 0 else { return nil }
        return s / b
    }

    private static func base(_ rows: [PartitionScalingRow]) -> PartitionScalingRow? {
        rows.min { $0.partitions < $1.partitions }
    }

    private static func cell(_ o: PartitionScalingRow.Outcome) -> String {
        switch o {
        case .seconds(let s): return fixed(s, 3)
        case .failed(let status): return "exit \(status)"
        case .skipped: return "-"
        }
    }

    public static func partitionsTable(_ rows: [PartitionScalingRow]) -> String {
        let b = base(rows)
        var lines = [["PARTITIONS", "MESSAGES", "PRODUCE S", "TAIL S", "CONSUME S", "PRODUCE ×", "TAIL ×", "CONSUME ×"]]
        for r in rows {
            lines.append([String(r.partitions), String(r.messages)] + steps.map { cell($0.outcome(r)) }
                         + steps.map { s in ratio(r, b, s.outcome).map { fixed($0, 2) } ?? "-" })
        }
        var widths = [Int](repeating: 0, count: lines[0].count)
        for l in lines { for (i, c) in l.enumerated() { widths[i] = max(widths[i], c.count) } }
        return lines.map { l in l.enumerated().map { i, c in String(repeating: " ", count: widths[i] - c.count) + c }
            .joined(separator: "  ") }.joined(separator: "\n") + "\n"
    }

    /// One JSON object per partition count: `<step>_seconds` and `<step>_ratio`
    /// (null when the step did not complete), and `<step>_exit_status` when it failed.
    public static func partitionsJSON(_ row: PartitionScalingRow, rows: [PartitionScalingRow]) -> String {
        let b = base(rows)
        var s = "{\"scenario\":\"partitions\",\"partitions\":\(row.partitions),\"messages\":\(row.messages)"
        for step in steps {
            let o = step.outcome(row)
            s += ",\"\(step.name)_seconds\":\(o.seconds.map { String($0) } ?? "null")"
            s += ",\"\(step.name)_ratio\":\(ratio(row, b, step.outcome).map { String($0) } ?? "null")"
            if case .failed(let status) = o { s += ",\"\(step.name)_exit_status\":\(status)" }
        }
        return s + "}"
    }

    public static func partitionsCSV(_ rows: [PartitionScalingRow]) -> String {
        let b = base(rows)
        var s = "partitions,messages," + steps.map { "\($0.name)_seconds" }.joined(separator: ",") + ","
            + steps.map { "\($0.name)_ratio" }.joined(separator: ",") + ","
            + steps.map { "\($0.name)_exit_status" }.joined(separator: ",") + "\n"
        for r in rows {
            var fields = [String(r.partitions), String(r.messages)]
            fields += steps.map { $0.outcome(r).seconds.map { String($0) } ?? "" }
            fields += steps.map { step in ratio(r, b, step.outcome).map { String($0) } ?? "" }
            fields += steps.map { step in
                if case .failed(let status) = step.outcome(r) { return String(status) }
                return ""
            }
            s += fields.joined(separator: ",") + "\n"
        }
        return s
    }
}
