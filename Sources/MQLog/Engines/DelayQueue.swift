/// Names and headers of delayed messages.
///
/// A delayed message for topic T is first written to the topic `T.delay`
/// with a header `mq.deliver.at` (its due time, ms since the epoch, in
/// decimal) and `mq.delay.target` (T). A consumer of T moves it into T once
/// due (see `DelayMover`). The delay topic is an ordinary topic: `mq-tail
/// T.delay` shows what is waiting.
public enum DelayQueue {
    public static let deliverAtHeader = "mq.deliver.at"
    public static let targetHeader = "mq.delay.target"

    public static func topicName(for topic: String) -> String { DerivedTopics.delayTopic(of: topic) }

    static func headers(target: String, due: Int64) -> [Header] {
        [Header(name: deliverAtHeader, value: Array(String(due).utf8)), Header(name: targetHeader, value: Array(target.utf8))]
    }
}
