/// Renders benchmark results.
public enum BenchReport {
    static func fixed(_ v: Double, _ digits: Int) -> String {
        if digits == 0 { return String(Int(v.rounded())) }
        var scale = 1.0
        for _ in 0..<digits { scale *= 10 }
        let r = (v * scale).rounded() / scale
        var s = String(r)
        if let dot = s.firstIndex(of: ".") {
            let decimals = s.distance(from: dot, to: s.endIndex) - 1
            if decimals < digits { s += String(repeating: "0", count: digits - decimals) }
        } else if digits > 0 {
            s += "." + String(repeating: "0", count: digits)
        }
        return s
    }

    /// A rate in messages a second as a scenario names it: `1000`, `0.5`.
    static func rate(_ perSecond: Double) -> String {
        perSecond == perSecond.rounded() && perSecond < 1e15 ? String(Int(perSecond)) : fixed(perSecond, 3)
    }

    public static func table(_ results: [BenchResult]) -> String {
        var rows = [["SCENARIO", "MESSAGES", "SECONDS", "MSG/S", "MB/S", "USER", "SYS", "MAX RSS", "P50 µs", "P90", "P99", "P99.9", "MAX"]]
        for r in results {
            let l = r.latency
            rows.append([r.scenario, String(r.messages), fixed(r.seconds, 3), String(Int(r.messagesPerSecond)), fixed(r.megabytesPerSecond, 1),
                         fixed(r.userCPU, 2), fixed(r.systemCPU, 2), "\(r.maxRSSKiB / 1024) MiB",
                         l.map { fixed($0["p50"]!, 0) } ?? "-", l.map { fixed($0["p90"]!, 0) } ?? "-", l.map { fixed($0["p99"]!, 0) } ?? "-",
                         l.map { fixed($0["p99.9"]!, 0) } ?? "-", l.map { fixed($0["max"]!, 0) } ?? "-"])
        }
        var widths = [Int](repeating: 0, count: rows[0].count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in r.enumerated().map { i, c in
            i == 0 ? c + String(repeating: " ", count: widths[i] - c.count) : String(repeating: " ", count: widths[i] - c.count) + c
        }.joined(separator: "  ") }.joined(separator: "\n") + "\n"
    }

    public static func json(_ r: BenchResult) -> String {
        var s = "{\"scenario\":\"\(r.scenario)\",\"messages\":\(r.messages),\"bytes\":\(r.bytes),\"seconds\":\(r.seconds),"
        s += "\"messages_per_second\":\(r.messagesPerSecond),\"megabytes_per_second\":\(r.megabytesPerSecond),"
        s += "\"user_cpu_seconds\":\(r.userCPU),\"system_cpu_seconds\":\(r.systemCPU),\"max_rss_kib\":\(r.maxRSSKiB)"
        if let l = r.latency {
            s += ",\"latency_us\":{" + ["p50", "p90", "p99", "p99.9", "max"].map { "\"\($0)\":\(l[$0]!)" }.joined(separator: ",") + "}"
        }
        return s + "}"
    }

    public static func csv(_ results: [BenchResult]) -> String {
        var s = "scenario,messages,bytes,seconds,messages_per_second,megabytes_per_second,user_cpu_seconds,system_cpu_seconds,max_rss_kib,p50_us,p90_us,p99_us,p999_us,max_us\n"
        for r in results {
            let l = r.latency
            let lat = ["p50", "p90", "p99", "p99.9", "max"].map { k in l.map { String($0[k]!) } ?? "" }.joined(separator: ",")
            s += "\"\(r.scenario)\",\(r.messages),\(r.bytes),\(r.seconds),\(r.messagesPerSecond),\(r.megabytesPerSecond),\(r.userCPU),\(r.systemCPU),\(r.maxRSSKiB),\(lat)\n"
        }
        return s
    }
}
