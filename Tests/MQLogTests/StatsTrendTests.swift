import Testing
@testable import MQLog

@Suite struct StatsTrendTests {
    func snapshot(at ms: Int64, ends: [Int64], lag: Int64?) -> LogStats {
        let parts = ends.enumerated().map { p, end in
            LogStats.PartitionStats(topic: "t", partition: Int32(p), bytes: 0, segments: 1, startOffset: 0, endOffset: end, oldestAgeMs: nil, ratePerSecond: 0)
        }
        let groups = lag.map { l in
            [LogStats.GroupPartitionStats(group: "g", topic: "t", partition: 0, committed: 0, endOffset: 0, committedMs: nil, lagMessages: l,
                                          lagMs: 0, ownerPIDs: [], inFlight: 0, retrying: 0, queue: false)]
        } ?? []
        return LogStats(takenMs: ms, topics: [LogStats.TopicStats(name: "t", partitions: parts)], groups: groups)
    }

    @Test func ratesComeFromConsecutiveEndOffsetsAndLagsFromEachSnapshot() {
        var trend = StatsTrend(capacity: 3)
        trend.add(snapshot(at: 1_000, ends: [0, 0], lag: 0))
        #expect(trend.rates["t"] == nil)  // one snapshot: no rate yet
        trend.add(snapshot(at: 3_000, ends: [10, 30], lag: 40))  // 40 in 2 s
        trend.add(snapshot(at: 4_000, ends: [10, 30], lag: 10))
        trend.add(snapshot(at: 5_000, ends: [110, 30], lag: 80))
        #expect(trend.rates["t"] == [20, 0, 100])
        #expect(trend.lags[.init(group: "g", topic: "t")] == [40, 10, 80])  // the oldest (0) dropped at capacity 3
        let lines = trend.text(intervalMs: 1000).split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines == ["TREND (last 2s, every 1s; lowest bar: 0, highest: the line's largest)",
                          "t appends/s ▂▁█ 100/s", "g on t lag ▅▂█ 80"])
    }

    @Test func goneGroupsAndRecreatedTopicsDropTheirLines() {
        var trend = StatsTrend()
        trend.add(snapshot(at: 1_000, ends: [50], lag: 5))
        trend.add(snapshot(at: 2_000, ends: [60], lag: 5))
        trend.add(snapshot(at: 3_000, ends: [3], lag: nil))  // the topic was deleted and made again; the group is gone
        #expect(trend.rates["t"] == [10])
        #expect(trend.lags.isEmpty)
    }

    @Test func sparklinesAndFiguresNeverTrap() {
        #expect(StatsTrend.sparkline([]) == "")
        #expect(StatsTrend.sparkline([0, 0]) == "▁▁")
        #expect(StatsTrend.sparkline([1, .infinity, .nan, -3, 2]) == "▁▁▁▁▁")
        #expect(StatsTrend.sparkline([0, 7, 3.5]) == "▁█▅")
        #expect(StatsTrend.figure(Double(Int64.max)) == "\(Double(Int64.max))")
        #expect(StatsTrend.figure(2.25) == "2.3" || StatsTrend.figure(2.25) == "2.2")
        #expect(StatsTrend.figure(150.6) == "151")
        #expect(StatsTrend.text(StatsTrend())(0) == "")
    }
}

extension StatsTrend {
    static func text(_ t: StatsTrend) -> (Int64) -> String { { t.text(intervalMs: $0) } }
}
