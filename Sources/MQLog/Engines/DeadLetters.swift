import Glibc

/// One dead letter as `mq-consume` writes it (HandlerDispatcher.deadLetter):
/// the failed message's key, value, timestamp and headers, plus the failure
/// headers `mq.dlq.reason`, `mq.original.*`, `mq.attempts`, `mq.exit.status`
/// or `mq.exit.signal`, `mq.stderr`, `mq.group` and `mq.dlq.time`.
@dynamicMemberLookup
public struct DeadLetter: Sendable {
    /// The letter as stored: `letter.topic`, `letter.offset`, `letter.key`, ... are its fields.
    public var record: StoredRecord

    public init(_ r: RecordView, topic: String, partition: Int32) throws {
        record = try StoredRecord(r, topic: topic, partition: partition)
    }

    public subscript<T>(dynamicMember field: KeyPath<StoredRecord, T>) -> T { record[keyPath: field] }

    /// The last value of header `name`, as text.
    public func header(_ name: String) -> String? {
        record.headers.last { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
    }

    public var reason: String? { header("mq.dlq.reason") }
    public var originalTopic: String? { header("mq.original.topic") }
    public var originalPartition: Int32? { header("mq.original.partition").flatMap { Int32($0) } }
    public var originalOffset: Int64? { header("mq.original.offset").flatMap { Int64($0) } }
    public var attempts: Int? { header("mq.attempts").flatMap { Int($0) } }
    public var exitStatus: Int32? { header("mq.exit.status").flatMap { Int32($0) } }
    public var exitSignal: Int32? { header("mq.exit.signal").flatMap { Int32($0) } }
    public var group: String? { header("mq.group") }
    public var stderr: [UInt8]? { record.headers.last { $0.name == "mq.stderr" }?.value }
    /// When the message was dead-lettered: `mq.dlq.time`, else the record timestamp.
    public var failedAt: Int64 { header("mq.dlq.time").flatMap { Int64($0) } ?? record.timestamp }

    /// "status 3", "signal 9", or nil when the handler never ran.
    public var exitDescription: String? {
        if let s = exitStatus { return "status \(s)" }
        if let s = exitSignal { return "signal \(s)" }
        return nil
    }

    /// True for the headers mq-consume adds when it dead-letters a message.
    public static func isFailureHeader(_ name: String) -> Bool {
        name.hasPrefix("mq.dlq.") || name.hasPrefix("mq.original.") || name.hasPrefix("mq.exit.")
            || name == "mq.attempts" || name == "mq.stderr" || name == "mq.group"
    }

    /// The message to send back: the user's headers without the failure
    /// headers, then `mq.redrive.from` (TOPIC/PARTITION/OFFSET of this letter)
    /// and `mq.redrive.count` (one more than the message had).
    public func redrivenHeaders() -> [Header] {
        let count = (header("mq.redrive.count").flatMap { Int($0) } ?? 0) + 1
        var out = record.headers.filter { !DeadLetter.isFailureHeader($0.name) && $0.name != "mq.redrive.from" && $0.name != "mq.redrive.count" }
        out.append(Header(name: "mq.redrive.from", value: Array("\(record.topic)/\(record.partition)/\(record.offset)".utf8)))
        out.append(Header(name: "mq.redrive.count", value: Array(String(count).utf8)))
        return out
    }
}

/// Which dead letters a command acts on.
public struct DeadLetterQuery {
    /// The reasons `mq.dlq.reason` takes: a handler failed, failed with a
    /// permanent-failure status, timed out, or the message expired.
    public static let reasons = ["failed", "permanent", "timeout", "expired"]

    public var reason: String? = nil
    public var exitStatus: Int32? = nil
    public var originalTopic: String? = nil
    /// `--key`, `--grep`, `--header`, as mq-consume filters.
    public var message: MessageFilter? = nil
    /// Dead-lettered at least this long ago (ms).
    public var olderThanMs: Int64? = nil
    /// Dead-lettered at most this long ago (ms).
    public var newerThanMs: Int64? = nil
    /// Settled letters too (redriven or purged).
    public var includeSettled = false
    public var limit: Int? = nil

    public init() {}

    func matches(_ r: RecordView, _ letter: DeadLetter, now: Int64) throws -> Bool {
        if let reason, letter.reason != reason { return false }
        if let exitStatus, letter.exitStatus != exitStatus { return false }
        if let originalTopic, letter.originalTopic != originalTopic { return false }
        let age = now - letter.failedAt
        if let olderThanMs, age < olderThanMs { return false }
        if let newerThanMs, age > newerThanMs { return false }
        if let message, !(try message.matches(r)) { return false }
        return true
    }
}

/// Dead-letter topics, and what `mq-dlq` reads and does with them.
public enum DeadLetters {
    /// The copy every redrive and purge of `topic` shares (CopyJournal).
    public static func copyID(for topic: String) -> String { "dlq." + topic }

    /// The topics named `*.dlq`, plus `explicit` ones (which must exist), sorted, without repeats.
    public static func topics(_ log: LogDirectory, explicit: [String]) throws -> [String] {
        for name in explicit { try log.requireTopic(name) }
        let found = explicit.isEmpty ? try log.listTopics().filter(DerivedTopics.isDeadLetterTopic) : explicit
        var seen = Set<String>()
        return found.filter { seen.insert($0).inserted }
    }

    /// Calls `body` with each dead letter of `topic` that `query` selects, in
    /// partition and offset order, until it returns false or `query.limit` is reached.
    /// - Parameter settled: whether an offset is settled already (from the
    ///   copy's journal when held, else its saved state).
    public static func scan(_ log: LogDirectory, topic name: String, query: DeadLetterQuery, now: Int64,
                            settled: (TopicPartition, Int64) -> Bool,
                            _ body: (RecordView, DeadLetter) throws -> Bool) throws {
        try log.requireTopic(name)
        let topic = try log.openTopic(name)
        var found = 0
        for p in 0..<topic.partitions {
            let dir = topic.partitionPath(p)
            let cursor = try PartitionCursor(partition: p, directory: dir, startOffset: try PartitionReader(directory: dir).logStartOffset())
            while let r = try cursor.peek() {
                defer { cursor.advance() }
                if !query.includeSettled && settled(TopicPartition(name, p), r.offset) { continue }
                let letter = try DeadLetter(r, topic: name, partition: p)
                guard try query.matches(r, letter, now: now) else { continue }
                if !(try body(r, letter)) { return }
                found += 1
                if let limit = query.limit, found >= limit { return }
            }
        }
    }

    /// One line of a dry run: where the letter is, where it would go (a
    /// redrive's `topic/partition`; nil for a purge), its reason and key.
    public static func planLine(_ letter: DeadLetter, destination: String?) -> String {
        let key = letter.key.map { preview($0, max: 40) } ?? "(null)"
        return "\(letter.topic)/\(letter.partition)/\(letter.offset)\(destination.map { " -> " + $0 } ?? "")  \(letter.reason ?? "unknown")  key=\(key)"
    }

    /// Settled offsets as the copy's last saved state has them (no lock).
    public static func savedSettled(_ log: LogDirectory, topic: String) throws -> (TopicPartition, Int64) -> Bool {
        let state = try CopyJournal.snapshot(log, id: copyID(for: topic)) ?? CopyState()
        return { tp, offset in state.settled[tp]?.contains(offset) ?? false }
    }

    /// Letters in `topic` not settled by a redrive or purge, from offsets and
    /// the copy's saved state alone (no records are read).
    public static func unsettledCount(_ log: LogDirectory, topic: String) throws -> Int64 {
        let config = try log.readConfig(topic)
        let state = try CopyJournal.snapshot(log, id: copyID(for: topic))
        var n: Int64 = 0
        for p in 0..<config.partitions {
            let reader = PartitionReader(directory: log.topicPath(topic) + "/\(p)")
            let start = try reader.logStartOffset(), end = try reader.logEndOffset()
            guard end > start else { continue }
            n += end - start - (state?.settled[TopicPartition(topic, p)]?.count(in: start...(end - 1)) ?? 0)
        }
        return n
    }

    // MARK: list

    /// What `mq-dlq list` shows for one topic: its dead letters not settled yet.
    public struct Summary: Sendable {
        public var topic: String
        public var count = 0
        public var reasons: [String: Int] = [:]
        /// "status N" / "signal N" / "none" (never ran: expired) → count.
        public var exits: [String: Int] = [:]
        public var oldestMs: Int64? = nil
        public var newestMs: Int64? = nil
    }

    public static func summarize(_ log: LogDirectory, topics: [String], now: Int64) throws -> [Summary] {
        try topics.map { name in
            var s = Summary(topic: name)
            try scan(log, topic: name, query: DeadLetterQuery(), now: now, settled: try savedSettled(log, topic: name)) { _, letter in
                s.count += 1
                s.reasons[letter.reason ?? "unknown", default: 0] += 1
                s.exits[letter.exitDescription ?? "none", default: 0] += 1
                s.oldestMs = min(s.oldestMs ?? .max, letter.failedAt)
                s.newestMs = max(s.newestMs ?? .min, letter.failedAt)
                return true
            }
            return s
        }
    }

    static func counts(_ d: [String: Int]) -> String {
        d.isEmpty ? "-" : d.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }

    public static func listText(_ summaries: [Summary], now: Int64) -> String {
        var rows = [["TOPIC", "LETTERS", "OLDEST", "NEWEST", "REASONS", "EXITS"]]
        for s in summaries {
            rows.append([s.topic, "\(s.count)", LogStats.seconds(s.oldestMs.map { max(0, now - $0) }),
                         LogStats.seconds(s.newestMs.map { max(0, now - $0) }), counts(s.reasons),
                         counts(s.exits.filter { $0.key != "none" })])
        }
        return LogStats.pad(rows)
    }

    /// One JSON object per topic, one per line.
    public static func listJSON(_ summaries: [Summary], now: Int64) -> String {
        func object(_ d: [String: Int]) -> String {
            "{" + d.sorted { $0.key < $1.key }.map { "\(jsonQuoted($0.key)):\($0.value)" }.joined(separator: ",") + "}"
        }
        func opt(_ v: Int64?) -> String { v.map(String.init) ?? "null" }
        return summaries.map { s in
            let statuses = Dictionary(uniqueKeysWithValues: s.exits.compactMap { k, v in k.hasPrefix("status ") ? (String(k.dropFirst(7)), v) : nil })
            let signals = Dictionary(uniqueKeysWithValues: s.exits.compactMap { k, v in k.hasPrefix("signal ") ? (String(k.dropFirst(7)), v) : nil })
            return "{\"topic\":\(jsonQuoted(s.topic)),\"letters\":\(s.count),\"reasons\":\(object(s.reasons)),\"exit_statuses\":\(object(statuses)),\"exit_signals\":\(object(signals)),\"oldest_ms\":\(opt(s.oldestMs)),\"newest_ms\":\(opt(s.newestMs)),\"oldest_age_ms\":\(opt(s.oldestMs.map { max(0, now - $0) })),\"newest_age_ms\":\(opt(s.newestMs.map { max(0, now - $0) }))}\n"
        }.joined()
    }

    // MARK: show

    /// The human-readable block of one dead letter.
    public static func block(_ l: DeadLetter, now: Int64, settled: Bool) -> String {
        var lines = ["\(l.topic)/\(l.partition) offset \(l.offset)" + (settled ? " (settled)" : "")]
        func field(_ name: String, _ value: String) {
            lines.append("  " + name + String(repeating: " ", count: max(1, 11 - name.count)) + value)
        }
        if let t = l.originalTopic {
            field("original", "\(t)/\(l.originalPartition.map(String.init) ?? "?") offset \(l.originalOffset.map(String.init) ?? "?")")
        }
        var reason = l.reason ?? "unknown"
        if let a = l.attempts { reason += ", \(a) attempt\(a == 1 ? "" : "s")" }
        if let e = l.exitDescription { reason += ", exit \(e)" }
        field("reason", reason)
        if let g = l.group { field("group", g) }
        field("failed", LogStats.seconds(max(0, now - l.failedAt)) + " ago (" + isoTime(l.failedAt) + ")")
        if let count = l.header("mq.redrive.count") { field("redriven", count + "×, last from " + (l.header("mq.redrive.from") ?? "?")) }
        field("key", l.key.map { preview($0, max: 200) } ?? "(null)")
        field("value", l.value.map { preview($0, max: 200) } ?? "(null)")
        if let e = l.stderr, !e.isEmpty {
            let tail = Array(e.suffix(400))
            let text = String(decoding: tail, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).suffix(5)
            for (i, line) in text.enumerated() { field(i == 0 ? "stderr" : "", preview(Array(line.utf8), max: 160)) }
        }
        let user = l.headers.filter { !DeadLetter.isFailureHeader($0.name) && !$0.name.hasPrefix("mq.redrive.") }
        if !user.isEmpty {
            field("headers", user.map { $0.name + "=" + ($0.value.map { preview($0, max: 60) } ?? "(null)") }.joined(separator: " "))
        }
        return lines.joined(separator: "\n") + "\n\n"
    }

    /// Text for a person: printable UTF-8 as it is, control characters
    /// escaped, cut at `max` bytes; other bytes as a count and hex.
    public static func preview(_ bytes: [UInt8], max: Int) -> String {
        let cut = Array(bytes.prefix(max))
        let more = bytes.count > max ? "… (\(bytes.count) bytes)" : ""
        guard bytes.withUnsafeBytes(isValidUTF8) else {
            return "(\(bytes.count) bytes, not UTF-8) " + cut.prefix(32).map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() + (bytes.count > 32 ? "…" : "")
        }
        var out = ""
        for scalar in String(decoding: cut, as: UTF8.self).unicodeScalars {
            switch scalar {
            case "\n": out += "\\n"
            case "\t": out += "\\t"
            case "\r": out += "\\r"
            case _ where scalar.value < 0x20 || scalar.value == 0x7f: out += "\\x" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + more
    }

    /// `2026-11-21T10:00:00Z` for ms since the epoch.
    public static func isoTime(_ ms: Int64) -> String {
        var t = time_t(ms / 1000)
        var parts = tm()
        gmtime_r(&t, &parts)
        func two(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec))Z"
    }
}
