/// How far consumers may fall behind a topic before its producers hold back
/// (docs/FORMAT.md §2, "Backlog bound"): the topic configs
/// `mq.max.backlog.messages`, `mq.max.backlog.bytes`, `mq.backlog.group` and
/// `mq.backlog.policy`, read by `TopicConfig.backlogBound`.
///
/// The backlog of a group is, summed over the topic's partitions, the log end
/// offset less the group's committed offset (messages), and the bytes of the
/// segments from the batch holding that offset to the end (bytes); see
/// `BacklogMeter`. The bound holds for the named group, or for every group
/// that reads the topic (the slowest one decides).
public struct BacklogBound: Sendable, Equatable {
    /// What `mq-produce` does when the next message would pass the bound.
    public enum Policy: String, Sendable, CaseIterable {
        /// Stop reading the input until the backlog drops (Unix backpressure).
        case block
        /// Write and sync what was accepted, then exit 75 (`EX_TEMPFAIL`).
        case reject
        /// Nothing: the bound is only shown (`mq-stat`).
        case none
    }

    /// At most this many messages behind, or nil.
    public var maxMessages: Int64?
    /// At most this many bytes behind, or nil.
    public var maxBytes: Int64?
    /// The group counted, or nil for the slowest group of the topic.
    public var group: String?
    public var policy: Policy

    public init(maxMessages: Int64?, maxBytes: Int64?, group: String? = nil, policy: Policy = .block) {
        self.maxMessages = maxMessages
        self.maxBytes = maxBytes
        self.group = group
        self.policy = policy
    }

    /// True when one more message of `size` bytes fits behind a backlog of
    /// `messages` and `bytes`: both stay within their maximums, or the
    /// backlog is empty (a message larger than `maxBytes` still goes, alone).
    @inline(__always)
    public func admits(messages: Int64, bytes: Int64, size: Int64) -> Bool {
        if messages <= 0 { return true }
        if let maxMessages, messages >= maxMessages { return false }
        if let maxBytes, bytes > maxBytes &- size { return false }
        return true
    }

    /// How much of the bound a backlog uses: the larger of its two
    /// fractions (1 at the bound; more when others pushed it past).
    public func used(messages: Int64, bytes: Int64) -> Double {
        var used = 0.0
        if let maxMessages { used = max(used, Double(messages) / Double(maxMessages)) }
        if let maxBytes { used = max(used, Double(bytes) / Double(maxBytes)) }
        return used
    }

    /// The maximum a backlog of `messages` that `admits` refused has
    /// reached, for messages: "mq.max.backlog.messages (1000)", else the
    /// bytes one.
    public func reachedLimit(messages: Int64) -> String {
        if let maxMessages, messages >= maxMessages || maxBytes == nil { return "mq.max.backlog.messages (\(maxMessages))" }
        return "mq.max.backlog.bytes (\(maxBytes ?? 0))"
    }
}
