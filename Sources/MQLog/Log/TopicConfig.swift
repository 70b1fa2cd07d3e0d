/// A topic's configuration: the partition count, fixed at creation, and
/// overrides of Kafka's topic-level settings, under Kafka's names.
///
/// Stored as `topic.properties` (Java properties syntax: `name=value` lines,
/// `#` comments) in the topic directory. Keys not set take Kafka's defaults.
public struct TopicConfig: Sendable, Equatable {
    public var partitions: Int32
    /// The most partitions a topic may have (`mq-topic create` refuses more,
    /// and a `topic.properties` naming more is a configuration error).
    public static let maximumPartitions: Int32 = 100_000
    /// Explicitly set keys, by Kafka name.
    public var overrides: [String: String]

    public init(partitions: Int32 = 1, overrides: [String: String] = [:]) {
        self.partitions = partitions
        self.overrides = overrides
    }

    /// A setting mq understands: its default and how a value is checked.
    public struct Key: Sendable {
        public let name: String
        public let defaultValue: String
        public let help: String
        let check: @Sendable (String) -> String?  // nil = valid, else the reason
    }

    static func long(min: Int64, max: Int64 = .max, allowMinusOne: Bool = false) -> @Sendable (String) -> String? {
        { s in
            guard let v = Int64(s) else { return "not an integer" }
            if allowMinusOne && v == -1 { return nil }
            if v < min || v > max { return "must be between \(min) and \(max)\(allowMinusOne ? " (or -1 for no limit)" : "")" }
            return nil
        }
    }

    static func oneOf(_ values: [String]) -> @Sendable (String) -> String? {
        { s in values.contains(s) ? nil : "must be one of: \(values.joined(separator: ", "))" }
    }

    /// Every setting mq accepts. Others are rejected, so that a typo is not silently ignored.
    public static let keys: [Key] = [
        Key(name: "cleanup.policy", defaultValue: "delete", help: "delete old segments (delete), keep the latest record per key (compact), or both",
            check: { s in
                let parts = s.split(separator: ",").map { $0.trimmingSpaces }
                return !parts.isEmpty && parts.allSatisfy({ $0 == "delete" || $0 == "compact" }) ? nil : "must be delete, compact, or delete,compact"
            }),
        Key(name: "compression.type", defaultValue: "producer", help: "codec of batches written: producer (as mq-produce -z says, none by default), uncompressed, gzip, snappy, lz4, zstd",
            check: oneOf(["producer", "uncompressed", "none", "gzip", "snappy", "lz4", "zstd"])),
        Key(name: "delete.retention.ms", defaultValue: "86400000", help: "how long tombstones are kept in compacted topics", check: long(min: 0)),
        Key(name: "file.delete.delay.ms", defaultValue: "60000", help: "delay before a deleted segment's files are removed", check: long(min: 0)),
        Key(name: "flush.messages", defaultValue: "9223372036854775807", help: "accepted for compatibility; mq-produce --sync sets durability", check: long(min: 1)),
        Key(name: "flush.ms", defaultValue: "9223372036854775807", help: "accepted for compatibility; mq-produce --sync sets durability", check: long(min: 0)),
        Key(name: "index.interval.bytes", defaultValue: "4096", help: "bytes between offset-index entries", check: long(min: 0, max: Int64(Int32.max))),
        Key(name: "max.compaction.lag.ms", defaultValue: "9223372036854775807", help: "longest a record may stay uncompacted", check: long(min: 1)),
        Key(name: "max.message.bytes", defaultValue: "1048588", help: "largest record batch, and so largest message, accepted", check: long(min: 64, max: Int64(Int32.max))),
        Key(name: "message.timestamp.type", defaultValue: "CreateTime", help: "CreateTime (the producer's) or LogAppendTime",
            check: oneOf(["CreateTime", "LogAppendTime"])),
        Key(name: "min.cleanable.dirty.ratio", defaultValue: "0.5", help: "dirty fraction that makes a compacted log eligible for cleaning",
            check: { s in Double(s).map { $0 >= 0 && $0 <= 1 } == true ? nil : "must be a number from 0 to 1" }),
        Key(name: "min.compaction.lag.ms", defaultValue: "0", help: "shortest time a record stays uncompacted", check: long(min: 0)),
        // mq's own: the backlog bound (BacklogBound; docs/FORMAT.md §2).
        Key(name: "mq.backlog.group", defaultValue: "", help: "the consumer group the backlog is counted behind (empty: the slowest group of the topic)",
            check: { s in s.isEmpty || LogDirectory.isValidTopicName(s) ? nil : "must be empty or a group name: 1 to 249 of letters, digits, '.', '_' and '-'" }),
        Key(name: "mq.backlog.policy", defaultValue: "block", help: "what mq-produce does at a backlog bound: block (waits, reading no input), reject (exits 75), none (mq-stat only)",
            check: oneOf(BacklogBound.Policy.allCases.map(\.rawValue))),
        Key(name: "mq.max.backlog.bytes", defaultValue: "-1", help: "most bytes of the log a group may have left to consume before mq-produce holds back", check: long(min: 1, allowMinusOne: true)),
        Key(name: "mq.max.backlog.messages", defaultValue: "-1", help: "most messages a group may have left to consume before mq-produce holds back", check: long(min: 1, allowMinusOne: true)),
        Key(name: "retention.bytes", defaultValue: "-1", help: "largest size of a partition before old segments are deleted", check: long(min: 0, allowMinusOne: true)),
        Key(name: "retention.ms", defaultValue: "604800000", help: "age after which segments are deleted", check: long(min: 0, allowMinusOne: true)),
        Key(name: "segment.bytes", defaultValue: "1073741824", help: "size at which a new segment is started", check: long(min: 1024, max: Int64(Int32.max))),
        Key(name: "segment.index.bytes", defaultValue: "10485760", help: "accepted for compatibility; mq's indexes grow as needed", check: long(min: 4)),
        Key(name: "segment.jitter.ms", defaultValue: "0", help: "accepted for compatibility", check: long(min: 0)),
        Key(name: "segment.ms", defaultValue: "604800000", help: "age at which a new segment is started", check: long(min: 1)),
    ]

    public static func key(named name: String) -> Key? { keys.first { $0.name == name } }

    /// The values of the settings that take one of a few (for completions).
    public static let valueChoices: [String: [String]] = [
        "cleanup.policy": ["delete", "compact", "delete,compact"],
        "compression.type": ["producer", "uncompressed", "none", "gzip", "snappy", "lz4", "zstd"],
        "message.timestamp.type": ["CreateTime", "LogAppendTime"],
    ]

    /// Checks one `name=value` setting.
    /// - Throws: `MQError` with status `config` naming the key and the reason.
    public static func validate(name: String, value: String) throws {
        guard let key = key(named: name) else {
            throw MQError.config("unknown config '\(name)' (known: \(keys.map(\.name).joined(separator: ", ")))")
        }
        if let reason = key.check(value) { throw MQError.config("invalid value '\(value)' for \(name): \(reason)") }
    }

    /// Parses a command-line `name=value`.
    public static func parseAssignment(_ text: String) throws -> (String, String) {
        guard let eq = text.firstIndex(of: "=") else {
            throw MQError.config("invalid --config '\(text)': expected name=value")
        }
        let name = String(text[..<eq]).trimmingSpaces, value = String(text[text.index(after: eq)...]).trimmingSpaces
        try validate(name: name, value: value)
        return (name, value)
    }

    /// The effective value of a setting: the override, else the default.
    public func value(_ name: String) -> String {
        overrides[name] ?? TopicConfig.key(named: name)?.defaultValue ?? ""
    }

    public func long(_ name: String) -> Int64 { Int64(value(name)) ?? Int64(TopicConfig.key(named: name)!.defaultValue)! }

    public var segmentBytes: Int64 { long("segment.bytes") }
    public var segmentMs: Int64 { long("segment.ms") }
    public var maxMessageBytes: Int { Int(long("max.message.bytes")) }
    public var indexIntervalBytes: Int64 { long("index.interval.bytes") }
    public var logAppendTime: Bool { value("message.timestamp.type") == "LogAppendTime" }

    /// The backlog bound (`mq.max.backlog.*`), or nil when neither maximum is set.
    public var backlogBound: BacklogBound? {
        let messages = long("mq.max.backlog.messages"), bytes = long("mq.max.backlog.bytes")
        guard messages > 0 || bytes > 0 else { return nil }
        let group = value("mq.backlog.group")
        return BacklogBound(maxMessages: messages > 0 ? messages : nil, maxBytes: bytes > 0 ? bytes : nil,
                            group: group.isEmpty ? nil : group,
                            policy: BacklogBound.Policy(rawValue: value("mq.backlog.policy")) ?? .block)
    }

    /// The codec producers use when not told otherwise.
    public var defaultCodec: CompressionCodec {
        let v = value("compression.type")
        return v == "producer" ? .none : CompressionCodec(name: v) ?? .none
    }

    /// The `topic.properties` text.
    public func serialize() -> String {
        var text = "# mq topic configuration (Kafka topic-config names)\npartitions=\(partitions)\n"
        for (k, v) in overrides.sorted(by: { $0.key < $1.key }) { text += "\(k)=\(v)\n" }
        return text
    }

    /// Parses `topic.properties`.
    /// - Parameter path: for error messages.
    public static func parse(_ text: String, path: String) throws -> TopicConfig {
        var config = TopicConfig(partitions: 0)
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix("!") { continue }
            guard let eq = line.firstIndex(where: { $0 == "=" || $0 == ":" }) else {
                throw MQError.config("\(path):\(i + 1): expected name=value")
            }
            let name = String(line[..<eq]).trimmingSpaces, value = String(line[line.index(after: eq)...]).trimmingSpaces
            if name == "partitions" {
                guard let n = Int32(value), n >= 1, n <= TopicConfig.maximumPartitions else {
                    throw MQError.config("\(path):\(i + 1): partitions must be an integer from 1 to \(TopicConfig.maximumPartitions)")
                }
                config.partitions = n
                continue
            }
            do { try validate(name: name, value: value) } catch let e as MQError {
                throw MQError.config("\(path):\(i + 1): \(e.message)")
            }
            config.overrides[name] = value
        }
        guard config.partitions >= 1 else { throw MQError.config("\(path): missing partitions=N") }
        return config
    }
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" || f == "\r" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" || l == "\r" { s.removeLast() }
        return String(s)
    }
}
