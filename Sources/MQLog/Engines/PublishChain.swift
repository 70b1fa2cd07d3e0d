/// Keeps each partition's order in a stream when a burst of publishes fails
/// part way (a leader change, a lost connection), so that a resend never
/// stores an earlier record after a later one (docs/MIRROR.md, "Order").
///
/// Invariant: a message the mirror publishes can be stored only directly
/// after the message it follows in the mirror's own order. The first
/// message of a run, and the first after any failure, names the stream's
/// last sequence as read just before (`Link.sequence`, NATS's
/// `Nats-Expected-Last-Sequence`); every other one names the id of the
/// message published just before it (`Link.messageID`,
/// `Nats-Expected-Last-Msg-Id`), which the mirror sets itself and so knows
/// without waiting for an acknowledgement. When one message is not stored,
/// nothing published after it is: what the stream lacks of each partition
/// is a suffix, found by reading the stream's last message of each subject
/// (`ChainedStream.resumeOffset`) and sent again under a new anchor.
///
/// The stream checks a duplicate id before the chain, so a message stored
/// already is acknowledged as a duplicate, not refused. The chain is
/// stream-wide: another publisher's message (another mirror's included)
/// stored between two of the mirror's breaks it like a failure, and the
/// resend, anchored after it, keeps the order. Only when that happens to
/// `interruptionLimit` sends in a row does the mirror give up (76): a
/// stream with a busy other publisher needs `--shared-stream`.
///
/// Not thread-safe.
public struct PublishChain: Sendable {
    /// What a publish requires the stream to hold last.
    public enum Link: Equatable, Sendable {
        /// The stream's last sequence (0: nothing was ever stored).
        case sequence(UInt64)
        /// The id of the stream's last message.
        case messageID(String)
    }

    /// What the stream holds last, as far as the mirror knows: nil at the
    /// start and after any failure, when the stream is read before the
    /// next publish.
    public private(set) var last: Link?
    /// The stream's last sequence when the chain was last anchored.
    public private(set) var anchoredAt: UInt64?
    /// Anchors in a row that found another publisher's message last.
    public private(set) var interruptions = 0
    public static let interruptionLimit = 8

    public init() {}

    /// Publishes the records of `records` that `stream` lacks, chained, and
    /// returns once every one is stored.
    /// - Throws: `stream`'s publish error (the chain is then read anew before
    ///   the next send); 76 when another publisher wrote to the stream since
    ///   the chain was anchored; `stream`'s read errors.
    public mutating func send(_ records: [StoredRecord], to stream: some ChainedStream) throws {
        var pending = records[...]
        if last == nil {
            pending = try realign(records, with: stream)[...]
        }
        guard let tail = pending.last, let after = last else { return }
        do {
            try stream.publish(pending, after: after)
        } catch {
            last = nil
            throw error
        }
        last = .messageID(stream.messageID(of: tail))
        interruptions = 0
    }

    /// Reads the stream's last sequence, then what it holds of each
    /// partition of `records`, and anchors the chain there.
    /// - Returns: the records the stream lacks, in their order.
    private mutating func realign(_ records: [StoredRecord], with stream: some ChainedStream) throws -> [StoredRecord] {
        // The sequence first: a message stored after this read makes the
        // anchor fail, so the reads below cannot miss one the anchor allows.
        let (sequence, ours) = try stream.lastMessage()
        if let anchoredAt, sequence != anchoredAt, ours == false {
            interruptions += 1
            if interruptions >= Self.interruptionLimit {
                throw MQError(.protocolError, "another publisher keeps writing to stream '\(stream.name)' between this mirror's messages (\(interruptions) sends in a row; its last message, sequence \(sequence), is not this mirror's): the mirror chains its messages to keep each partition's order; pass --shared-stream, or give the mirror a stream of its own")
            }
        }
        var resume: [PartitionKey: Int64] = [:]
        var lacking: [StoredRecord] = []
        lacking.reserveCapacity(records.count)
        for r in records {
            let key = PartitionKey(topic: r.topic, partition: r.partition)
            let next: Int64
            if let known = resume[key] {
                next = known
            } else {
                next = try stream.resumeOffset(topic: r.topic, partition: r.partition) ?? .min
                resume[key] = next
            }
            if r.offset >= next { lacking.append(r) }
        }
        anchoredAt = sequence
        last = .sequence(sequence)
        return lacking
    }

    private struct PartitionKey: Hashable {
        let topic: String
        let partition: Int32
    }
}

/// A stream that a `PublishChain` publishes to: NATS JetStream's checks
/// (`JetStreamSink`), or a model of them in tests.
public protocol ChainedStream: AnyObject {
    /// The stream's name, for messages.
    var name: String { get }
    /// The id the message of `record` carries (NATS: `Nats-Msg-Id`).
    func messageID(of record: StoredRecord) -> String
    /// The stream's last sequence (0 when nothing was ever stored), and
    /// whether the message there is one this mirror could have sent (nil:
    /// there is none, or it is deleted).
    func lastMessage() throws -> (sequence: UInt64, ours: Bool?)
    /// As `MirrorSink.resumeOffset`: the offset after the last one of the
    /// partition the stream holds, nil for none.
    func resumeOffset(topic: String, partition: Int32) throws -> Int64?
    /// Publishes `records` in one burst, in order: the first stored only if
    /// the stream holds `after` last, each other only directly after the
    /// one before it (nil: each as it comes, unchained). Returns once every
    /// one is acknowledged (a duplicate included).
    /// - Throws: 69 when any is refused or not acknowledged.
    func publish(_ records: ArraySlice<StoredRecord>, after: PublishChain.Link?) throws
}
