import CRdKafka
import Glibc
import MQLog

/// Where each local partition resumes, as the Kafka topic's committed
/// records say (docs/MIRROR.md, "Kafka: where a restart resumes").
///
/// Each destination partition is read backwards from its end, a window at a
/// time (1,000 offsets, then 4 times more each step up to 100,000), with a
/// `read_committed` consumer (no group: partitions are read where asked).
/// The window's records with this mirror's provenance headers raise the
/// highest source offset known per local topic and partition; a partition
/// is read further back only while a local partition asked about is not
/// found in it yet, down to its beginning. What was read is remembered, so
/// later questions about other local partitions cost nothing more.
///
/// The sink's producer has run `init_transactions` first: a transaction a
/// killed mirror left open is aborted, so the end is stable. Not thread-safe.
final class ReadBack {
    private unowned let sink: KafkaSink
    private var consumer: OpaquePointer?    // rd_kafka_t *
    private var topicHandle: OpaquePointer? // rd_kafka_topic_t *
    private var scans: [Int32: Scan] = [:]

    struct Source: Hashable {
        var topic: String
        var partition: Int32
    }

    /// What is known of one destination partition.
    struct Scan {
        /// Offsets [low, end) are read; [start, low) not yet.
        var start: Int64
        var low: Int64
        var window: Int64 = 1_000
        /// The highest source offset seen per local partition.
        var last: [Source: Int64] = [:]
        var exhausted: Bool { low <= start }
    }

    init(sink: KafkaSink) { self.sink = sink }

    func close() {
        if let topicHandle { rd_kafka_topic_destroy(topicHandle) }
        if let consumer { rd_kafka_destroy(consumer) }
        topicHandle = nil
        consumer = nil
    }

    private var topic: String { sink.options.endpoint.topic }
    private var timeoutMs: Int32 { sink.options.requestTimeoutMs }

    /// The offset after the highest one of `topic`/`partition` that the
    /// destination partitions `candidates` hold, nil when none holds any.
    func resumeOffset(topic localTopic: String, partition: Int32, in candidates: [Int32]) throws -> Int64? {
        let source = Source(topic: localTopic, partition: partition)
        var best: Int64?
        for d in candidates {
            var scan = try scans[d] ?? begin(d)
            while scan.last[source] == nil && !scan.exhausted { try step(d, &scan) }
            scans[d] = scan
            if let o = scan.last[source] { best = max(best ?? o, o) }
        }
        guard let best else { return nil }
        guard best < Int64.max else { throw MQError.data("Kafka topic '\(topic)' names offset \(best) of '\(localTopic)' partition \(partition): no offset follows it") }
        return best + 1
    }

    private func open() throws -> OpaquePointer {
        if let topicHandle { return topicHandle }
        let conf = try sink.makeConf(producer: false)
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw MQError.usage("cannot make a Kafka consumer: \(cText(errstr))")
        }
        consumer = rk
        topicHandle = rd_kafka_topic_new(rk, topic, nil)
        return topicHandle!
    }

    /// The partition's offsets, before anything is read.
    private func begin(_ d: Int32) throws -> Scan {
        _ = try open()
        var low: Int64 = 0, high: Int64 = 0
        let err = rd_kafka_query_watermark_offsets(consumer, topic, d, &low, &high, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaStatus.error("cannot read the offsets of partition \(d) of Kafka topic '\(topic)'", err)
        }
        guard low >= 0, high >= low else {
            throw MQError.data("Kafka topic '\(topic)' partition \(d) reports offsets \(low) to \(high)")
        }
        return Scan(start: low, low: high)
    }

    /// Reads the window below what is read of partition `d`.
    private func step(_ d: Int32, _ scan: inout Scan) throws {
        let rkt = try open()
        let from = max(scan.start, scan.low - scan.window)
        let upTo = scan.low
        guard rd_kafka_consume_start(rkt, d, from) == 0 else {
            throw KafkaStatus.error("cannot read partition \(d) of Kafka topic '\(topic)'", rd_kafka_last_error())
        }
        defer { _ = rd_kafka_consume_stop(rkt, d) }
        let deadline = monotonicNanos() + UInt64(timeoutMs) * 3_000_000
        var lastProblem: String?
        reading: while true {
            guard monotonicNanos() < deadline else {
                throw MQError(.unavailable, "cannot read back partition \(d) of Kafka topic '\(topic)' from offset \(from) within \(timeoutMs * 3 / 1000) s\(lastProblem.map { " (\($0))" } ?? "")")
            }
            guard let m = rd_kafka_consume(rkt, d, 500) else { continue }
            defer { rd_kafka_message_destroy(m) }
            let msg = m.pointee
            if msg.err == RD_KAFKA_RESP_ERR__PARTITION_EOF { break reading }
            if msg.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                if KafkaStatus.status(msg.err) != .unavailable {
                    throw KafkaStatus.error("cannot read partition \(d) of Kafka topic '\(topic)'", msg.err)
                }
                lastProblem = KafkaStatus.text(msg.err)
                continue
            }
            if msg.offset >= upTo { break reading }
            if let (source, offset) = provenance(m) { scan.last[source] = max(scan.last[source] ?? offset, offset) }
        }
        scan.low = from
        scan.window = min(scan.window * 4, 100_000)
    }

    /// The source of a record this mirror wrote: the last of each
    /// provenance header; nil for a record without them (another producer's)
    /// or of another mirror.
    private func provenance(_ m: UnsafeMutablePointer<rd_kafka_message_t>) -> (Source, Int64)? {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(m, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return nil }
        var name: String?, topic: String?, partition: String?, offset: String?
        var i = 0
        var namep: UnsafePointer<CChar>?
        var valuep: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(headers, i, &namep, &valuep, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            i += 1
            guard let namep else { continue }
            let value = valuep.map { String(decoding: UnsafeRawBufferPointer(start: $0, count: size), as: UTF8.self) }
            switch String(cString: namep) {
            case KafkaMirrorHeaders.name: name = value
            case KafkaMirrorHeaders.topic: topic = value
            case KafkaMirrorHeaders.partition: partition = value
            case KafkaMirrorHeaders.offset: offset = value
            default: break
            }
        }
        guard name == sink.options.mirrorName, let topic, let p = partition.flatMap({ Int32($0) }), p >= 0,
              let o = offset.flatMap({ Int64($0) }), o >= 0 else { return nil }
        return (Source(topic: topic, partition: p), o)
    }
}
