import CRdKafka
import Glibc
import MQLog

/// Pulls a Kafka topic into a local topic (docs/MIRROR.md, "Pulling from
/// Kafka"):
///
/// - a consumer of the group `mq-mirror.NAME` (`isolation.level`
///   `read_committed`, no automatic commits) reads every partition, assigned
///   by the mirror itself (no group rebalancing: a mirror of one name runs
///   once, which the copy journal's lock ensures);
/// - each partition starts at the first offset the copy journal has not
///   settled (what is durable locally), else at its beginning: the local topic is the
///   truth, as the stream or Kafka topic is when pushing;
/// - after `PullMirror` wrote and fsynced a chunk, the group's offsets are
///   committed, so that Kafka's tools show the mirror's lag; a commit the
///   cluster refuses is reported and does not stop the mirror (the journal,
///   not the commit, says where a restart resumes), except for a refused
///   authorization (77).
///
/// Not thread-safe.
public final class KafkaSource: MirrorSource {
    public let options: KafkaSinkOptions
    /// Called with a line for standard error (refused commits).
    public var warn: (String) -> Void = { _ in }
    public private(set) var partitions: Int32 = 0

    public var defaultPartitions: Int32 { partitions }
    public var sourcePartitions: Int32? { partitions }

    private var consumer: OpaquePointer? // rd_kafka_t *
    private let events = KafkaSink.Events()
    /// Per partition: the offset after the last record fetched (gaps), the
    /// offset to commit, and whether the end was reached since.
    private var next: [Int32: Int64] = [:]
    private var toCommit: [Int32: Int64] = [:]
    private var atEnd = Set<Int32>()
    private var lastCommitWarning: String?

    /// The consumer group of a mirror named `name`.
    public static func groupID(_ name: String) -> String { "mq-mirror." + name }

    /// Connects and reads the topic's partition count.
    /// - Throws: 64 for a bad property; 66 without the topic; 69 when the
    ///   cluster does not answer in time; 77 when refused.
    public init(options: KafkaSinkOptions) throws {
        self.options = options
        let conf = try KafkaSink.makeConf(options, events: events, producer: false, group: Self.groupID(options.mirrorName))
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw MQError.usage("cannot make a Kafka consumer: \(cText(errstr))")
        }
        consumer = rk
        do {
            guard let n = try KafkaSink.partitionCount(rk, topic: topic, timeoutMs: options.requestTimeoutMs) else {
                throw MQError(.noInput, "Kafka topic '\(topic)' does not exist on \(servers)")
            }
            partitions = n
        } catch let e as MQError {
            throw events.withLastError(e)
        }
    }

    deinit {
        if let consumer {
            _ = rd_kafka_consumer_close(consumer)
            rd_kafka_destroy(consumer)
        }
    }

    private var servers: String { options.endpoint.servers.joined(separator: ",") }
    private var topic: String { options.endpoint.topic }

    // MARK: MirrorSource

    public func start(journal: CopyJournal) throws {
        guard next.isEmpty else { return }
        guard let list = rd_kafka_topic_partition_list_new(partitions) else { throw MQError.internalError("cannot allocate a Kafka partition list") }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for p in 0..<partitions {
            // The first offset not settled: a chunk cut short by a kill may
            // have written some destinations and not others.
            let settled = journal.settled(topic: topic, partition: p)
            let resume = settled.ranges.first.map { settled.firstMissing(atOrAfter: $0.lowerBound) }
            let from = resume ?? Int64(RD_KAFKA_OFFSET_BEGINNING)
            next[p] = resume ?? -1
            _ = rd_kafka_topic_partition_list_add(list, topic, p)
            _ = rd_kafka_topic_partition_list_set_offset(list, topic, p, from)
        }
        let err = rd_kafka_assign(consumer, list)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw events.withLastError(KafkaStatus.error("cannot read Kafka topic '\(topic)'", err)) }
    }

    public func fetch(maxRecords: Int, timeoutMs: Int32) throws -> PulledChunk {
        var chunk = PulledChunk()
        var wait = timeoutMs
        while chunk.records.count < maxRecords {
            guard let message = rd_kafka_consumer_poll(consumer, wait) else { break }
            defer { rd_kafka_message_destroy(message) }
            wait = 0
            let m = message.pointee
            if m.err == RD_KAFKA_RESP_ERR__PARTITION_EOF {
                atEnd.insert(m.partition)
                continue
            }
            guard m.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                let e = KafkaStatus.error("cannot read Kafka topic '\(topic)' partition \(m.partition)", m.err)
                // What was fetched before it is handed on; the error comes again.
                if chunk.records.isEmpty { throw events.withLastError(e) }
                break
            }
            chunk.records.append(try record(message))
        }
        chunk.caughtUp = chunk.records.isEmpty && atEnd.count >= Int(partitions)
        return chunk
    }

    public func acknowledge() throws {
        guard !toCommit.isEmpty, let list = rd_kafka_topic_partition_list_new(Int32(toCommit.count)) else { return }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        for (p, offset) in toCommit.sorted(by: { $0.key < $1.key }) {
            _ = rd_kafka_topic_partition_list_add(list, topic, p)
            _ = rd_kafka_topic_partition_list_set_offset(list, topic, p, offset)
        }
        let err = rd_kafka_commit(consumer, list, 0)
        if err == RD_KAFKA_RESP_ERR_NO_ERROR {
            toCommit = [:]
            return
        }
        let e = events.withLastError(KafkaStatus.error("cannot commit the offsets of group '\(Self.groupID(options.mirrorName))' on Kafka topic '\(topic)'", err))
        if e.status == .noPermission { throw e }
        // Reported once per kind; the next chunk's commit tries again.
        if e.message != lastCommitWarning {
            warn("\(e.message) (the copy goes on: the local copy journal says where it resumes)")
            lastCommitWarning = e.message
        }
    }

    // MARK: Mapping

    /// The record of a Kafka message (docs/MIRROR.md, "Kafka to mq").
    private func record(_ message: UnsafeMutablePointer<rd_kafka_message_t>) throws -> PulledRecord {
        let m = message.pointee
        let p = m.partition
        guard p >= 0, p < partitions, m.offset >= 0 else {
            throw MQError.data("Kafka topic '\(topic)' returned partition \(p) offset \(m.offset), which it does not have")
        }
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let ts = rd_kafka_message_timestamp(message, &type)
        var r = PulledRecord(source: TopicPartition(topic, p), position: m.offset,
                             timestamp: type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? currentTimeMillis() : ts,
                             key: bytes(m.key, m.key_len), value: bytes(m.payload, m.len),
                             headers: try headers(message), partition: p)
        if let expected = next[p], expected >= 0, m.offset > expected { r.gapFrom = expected }
        next[p] = m.offset + 1
        toCommit[p] = m.offset + 1
        atEnd.remove(p)
        r.headers = PullProvenance.append([("topic", topic), ("partition", String(p)), ("offset", String(m.offset))], to: r.headers)
        return r
    }

    private func bytes(_ pointer: UnsafeRawPointer?, _ count: Int) -> [UInt8]? {
        guard let pointer else { return nil }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }

    private func bytes(_ pointer: UnsafeMutableRawPointer?, _ count: Int) -> [UInt8]? {
        bytes(pointer.map { UnsafeRawPointer($0) }, count)
    }

    /// The message's headers, without the four an mq push appended
    /// (`KafkaMirrorHeaders`), so that a pushed and pulled record has the
    /// headers it had.
    private func headers(_ message: UnsafeMutablePointer<rd_kafka_message_t>) throws -> [Header] {
        var hdrs: OpaquePointer?
        guard rd_kafka_message_headers(message, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR, let hdrs else { return [] }
        var out: [Header] = []
        var i = 0
        while true {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            guard rd_kafka_header_get_all(hdrs, i, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { break }
            out.append(Header(name: name.map { String(cString: $0) } ?? "", value: bytes(value, size)))
            i += 1
        }
        let pushed = [KafkaMirrorHeaders.name, KafkaMirrorHeaders.topic, KafkaMirrorHeaders.partition, KafkaMirrorHeaders.offset]
        if out.count >= 4, out.suffix(4).map(\.name) == pushed { out.removeLast(4) }
        return out
    }
}
