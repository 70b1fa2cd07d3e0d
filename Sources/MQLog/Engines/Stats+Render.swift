extension LogStats {
    static func seconds(_ ms: Int64?) -> String {
        guard let ms else { return "-" }
        if ms < 1000 { return "\(ms)ms" }
        if ms < 120_000 { return "\(ms / 1000)s" }
        if ms < 7_200_000 { return "\(ms / 60_000)m" }
        if ms < 172_800_000 { return "\(ms / 3_600_000)h" }
        return "\(ms / 86_400_000)d"
    }

    /// "42%" for 0.42, rounded down; at most "999999%" (sizes come from disk).
    static func percent(_ fraction: Double) -> String {
        "\(Int(min(max(fraction, 0), 9999.99) * 100))%"
    }

    static func pad(_ rows: [[String]]) -> String {
        guard let first = rows.first else { return "" }
        var widths = [Int](repeating: 0, count: first.count)
        for r in rows { for (i, c) in r.enumerated() { widths[i] = max(widths[i], c.count) } }
        return rows.map { r in
            r.enumerated().map { i, c in i == r.count - 1 ? c : c + String(repeating: " ", count: widths[i] - c.count) }.joined(separator: "  ")
        }.joined(separator: "\n") + "\n"
    }

    /// Two tables, partitions and groups, for a person.
    public func text() -> String {
        var rows = [["TOPIC", "PART", "START", "END", "MESSAGES", "SIZE", "SEGS", "RATE/S", "OLDEST", "DLQ", "DELAYED"]]
        for t in topics {
            for p in t.partitions {
                rows.append([t.name, "\(p.partition)", "\(p.startOffset)", "\(p.endOffset)", "\(p.endOffset - p.startOffset)",
                             Sizes.format(p.bytes), "\(p.segments)", String(Int(p.ratePerSecond.rounded())),
                             LogStats.seconds(p.oldestAgeMs), t.deadLetters.map(String.init) ?? "-", t.delayed.map(String.init) ?? "-"])
            }
        }
        var out = LogStats.pad(rows)
        if !groups.isEmpty {
            var g = [["GROUP", "TOPIC", "PART", "COMMITTED", "LAG", "LAG-AGE", "OWNER", "IN-FLIGHT", "RETRYING"]]
            for s in groups {
                g.append([s.group + (s.queue ? " (queue)" : ""), s.topic, "\(s.partition)", s.committed.map(String.init) ?? "-",
                          "\(s.lagMessages)", LogStats.seconds(s.lagMs), s.ownerPIDs.isEmpty ? "-" : s.ownerPIDs.map(String.init).joined(separator: ","),
                          s.queue ? "\(s.inFlight)" : "-", s.queue ? "\(s.retrying)" : "-"])
            }
            out += "\n" + LogStats.pad(g)
        }
        let bounded = topics.filter { $0.backlog != nil }
        if !bounded.isEmpty {
            var b = [["TOPIC", "POLICY", "BEHIND", "BACKLOG", "MAX", "BACKLOG-SIZE", "MAX-SIZE", "USED"]]
            for t in bounded {
                let s = t.backlog!, r = s.reading
                b.append([t.name, s.bound.policy.rawValue, r.messagesGroup ?? "(no group)",
                          "\(r.messages)", s.bound.maxMessages.map(String.init) ?? "-",
                          Sizes.format(r.bytes), s.bound.maxBytes.map(Sizes.format) ?? "-", LogStats.percent(s.used)])
            }
            out += "\n" + LogStats.pad(b)
        }
        return out
    }

    static func quote(_ s: String) -> String { jsonQuoted(s) }

    /// One JSON object.
    public func json() -> String {
        let q = LogStats.quote
        let topicJSON = topics.map { t in
            let parts = t.partitions.map { p in
                "{\"partition\":\(p.partition),\"start_offset\":\(p.startOffset),\"end_offset\":\(p.endOffset),\"bytes\":\(p.bytes),\"segments\":\(p.segments),\"rate_per_second\":\(p.ratePerSecond),\"oldest_age_ms\":\(p.oldestAgeMs.map(String.init) ?? "null")}"
            }.joined(separator: ",")
            return "{\"topic\":\(q(t.name)),\"messages\":\(t.messages),\"dead_letters\":\(t.deadLetters.map(String.init) ?? "null"),\"delayed\":\(t.delayed.map(String.init) ?? "null"),\"backlog\":\(t.backlog.map(LogStats.json) ?? "null"),\"partitions\":[\(parts)]}"
        }.joined(separator: ",")
        let groupJSON = groups.map { s in
            "{\"group\":\(q(s.group)),\"mode\":\(s.queue ? "\"queue\"" : "\"group\""),\"topic\":\(q(s.topic)),\"partition\":\(s.partition),\"committed\":\(s.committed.map(String.init) ?? "null"),\"end_offset\":\(s.endOffset),\"last_commit_ms\":\(s.committedMs.map(String.init) ?? "null"),\"lag_messages\":\(s.lagMessages),\"lag_ms\":\(s.lagMs),\"owner_pids\":[\(s.ownerPIDs.map(String.init).joined(separator: ","))],\"in_flight\":\(s.inFlight),\"retrying\":\(s.retrying)}"
        }.joined(separator: ",")
        return "{\"time_ms\":\(takenMs),\"topics\":[\(topicJSON)],\"groups\":[\(groupJSON)]}"
    }

    /// A topic's `backlog` object.
    static func json(_ s: BacklogStatus) -> String {
        let q = LogStats.quote, r = s.reading
        func optional(_ v: Int64?) -> String { v.map(String.init) ?? "null" }
        return "{\"policy\":\(q(s.bound.policy.rawValue)),\"group\":\(s.bound.group.map(q) ?? "null"),"
            + "\"messages\":\(r.messages),\"messages_group\":\(r.messagesGroup.map(q) ?? "null"),\"max_messages\":\(optional(s.bound.maxMessages)),"
            + "\"bytes\":\(r.bytes),\"bytes_group\":\(r.bytesGroup.map(q) ?? "null"),\"max_bytes\":\(optional(s.bound.maxBytes)),\"used\":\(s.used)}"
    }

    /// The Prometheus text exposition format (node_exporter's textfile collector reads it).
    public func prometheus() -> String {
        var out = ""
        func family(_ name: String, _ type: String, _ help: String, _ samples: [(String, String)]) {
            guard !samples.isEmpty else { return }
            out += "# HELP \(name) \(help)\n# TYPE \(name) \(type)\n"
            for (labels, value) in samples { out += "\(name){\(labels)} \(value)\n" }
        }
        func labels(_ pairs: [(String, String)]) -> String {
            pairs.map { "\($0.0)=\(LogStats.quote($0.1))" }.joined(separator: ",")
        }
        let parts = topics.flatMap { t in t.partitions.map { (t, $0) } }
        let pl: ((TopicStats, PartitionStats)) -> String = { labels([("topic", $0.0.name), ("partition", String($0.1.partition))]) }
        family("mq_messages_total", "counter", "Messages ever appended to the partition (its end offset).", parts.map { (pl($0), "\($0.1.endOffset)") })
        family("mq_log_start_offset", "gauge", "Offset of the oldest message still in the partition.", parts.map { (pl($0), "\($0.1.startOffset)") })
        family("mq_partition_messages", "gauge", "Messages currently in the partition.", parts.map { (pl($0), "\($0.1.endOffset - $0.1.startOffset)") })
        family("mq_partition_size_bytes", "gauge", "Bytes of segment files.", parts.map { (pl($0), "\($0.1.bytes)") })
        family("mq_partition_segments", "gauge", "Segment files.", parts.map { (pl($0), "\($0.1.segments)") })
        family("mq_messages_per_second", "gauge", "Messages appended per second over the last minute.", parts.map { (pl($0), "\($0.1.ratePerSecond)") })
        family("mq_oldest_message_age_seconds", "gauge", "Age of the oldest message in the partition.",
               parts.compactMap { x in x.1.oldestAgeMs.map { (pl(x), "\(Double($0) / 1000)") } })
        family("mq_dead_letter_messages", "gauge", "Messages in the topic's dead-letter topic not yet redriven or purged.",
               topics.compactMap { t in t.deadLetters.map { (labels([("topic", t.name)]), "\($0)") } })
        family("mq_delayed_messages", "gauge", "Delayed messages waiting to be moved into the topic.",
               topics.compactMap { t in t.delayed.map { (labels([("topic", t.name)]), "\($0)") } })
        family("mq_backlog_messages", "gauge", "Messages the group furthest behind has left to consume, for topics with a backlog bound.",
               topics.compactMap { t in t.backlog.map { (labels([("topic", t.name)]), "\($0.reading.messages)") } })
        family("mq_backlog_bytes", "gauge", "Bytes the group furthest behind has left to consume, for topics with a backlog bound.",
               topics.compactMap { t in t.backlog.map { (labels([("topic", t.name)]), "\($0.reading.bytes)") } })
        family("mq_backlog_used_ratio", "gauge", "Fraction of the backlog bound in use (1: at the bound).",
               topics.compactMap { t in t.backlog.map { (labels([("topic", t.name)]), "\($0.used)") } })
        let gl: (GroupPartitionStats) -> String = { labels([("group", $0.group), ("topic", $0.topic), ("partition", String($0.partition)), ("mode", $0.queue ? "queue" : "group")]) }
        family("mq_consumer_committed_offset", "gauge", "Committed offset of the group (work queues: every offset below is done).",
               groups.compactMap { g in g.committed.map { (gl(g), "\($0)") } })
        family("mq_consumer_lag_messages", "gauge", "Messages the group has not consumed yet.", groups.map { (gl($0), "\($0.lagMessages)") })
        family("mq_consumer_lag_seconds", "gauge", "How long the oldest unconsumed message has waited.", groups.map { (gl($0), "\(Double($0.lagMs) / 1000)") })
        family("mq_consumer_owners", "gauge", "Processes holding the partition's lease.", groups.filter { !$0.queue }.map { (gl($0), "\($0.ownerPIDs.count)") })
        family("mq_queue_in_flight_messages", "gauge", "Work-queue messages leased to a consumer.", groups.filter(\.queue).map { (gl($0), "\($0.inFlight)") })
        family("mq_queue_retrying_messages", "gauge", "Work-queue messages waiting for a retry.", groups.filter(\.queue).map { (gl($0), "\($0.retrying)") })
        return out
    }
}
