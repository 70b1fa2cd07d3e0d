/// The topics mq derives from a topic T, named in one place: `T.delay` holds
/// T's delayed messages until they are due (docs/FORMAT.md §15), `T.dlq` its
/// dead letters. Both are ordinary topics.
public enum DerivedTopics {
    public static let delaySuffix = ".delay"
    public static let deadLetterSuffix = ".dlq"

    /// `T.delay`.
    public static func delayTopic(of topic: String) -> String { topic + delaySuffix }
    /// `T.dlq`.
    public static func deadLetterTopic(of topic: String) -> String { topic + deadLetterSuffix }

    public static func isDelayTopic(_ name: String) -> Bool { name.hasSuffix(delaySuffix) }
    public static func isDeadLetterTopic(_ name: String) -> Bool { name.hasSuffix(deadLetterSuffix) }
}
