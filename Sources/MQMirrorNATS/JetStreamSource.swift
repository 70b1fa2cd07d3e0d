import CNats
import Glibc
import MQLog

/// Pulls a JetStream stream into a local topic (docs/MIRROR.md, "Pulling
/// from NATS"):
///
/// - a durable pull consumer `mq-mirror-NAME` with explicit acks; a chunk's
///   messages are acked only after `PullMirror` wrote and fsynced them;
/// - the stream sequence is the source offset in the copy journal, so a
///   message delivered again is found settled and not written twice;
/// - on start, the messages the consumer delivered but has no ack for
///   (a mirror killed between its fetch and its acks) are read first, by
///   sequence, so that they are written before anything newer: the server
///   would redeliver them only after the ack wait, behind newer messages.
///   When the server redelivers them later, they are found settled and acked.
///
/// Not thread-safe.
public final class JetStreamSource: MirrorSource {
    public let endpoint: NATSEndpoint
    /// The durable consumer's name.
    public let consumer: String
    /// How long the server waits for an ack before it delivers a message
    /// again: far longer than writing a chunk takes.
    public var ackWaitMs: Int64 = 60_000
    public var maxAckPending: Int64 = 20_000

    public var defaultPartitions: Int32 { 1 }
    public var sourcePartitions: Int32? { nil }

    private var connection: OpaquePointer?   // natsConnection *
    private var js: OpaquePointer?           // jsCtx *
    private var subscription: OpaquePointer? // natsSubscription *
    /// Messages fetched and not acked yet.
    private var unacked: [OpaquePointer] = []
    /// Sequences to read by number before fetching (see the type's comment).
    private var catchUp: ClosedRange<UInt64>?
    /// The last first delivery: its consumer and stream sequences (gaps).
    private var lastConsumerSequence: UInt64 = 0
    private var lastStreamSequence: UInt64 = 0

    /// The durable consumer's name for a mirror named `name` (NATS names take no '.').
    public static func consumerName(_ name: String) -> String {
        "mq-mirror-" + String(name.map { $0 == "." ? "_" : $0 })
    }

    /// Connects and checks that the stream exists.
    /// - Throws: 66 without the stream; 69 when no server answers; 77 when refused.
    public init(endpoint: NATSEndpoint, name: String, auth: NATSAuth, connectTimeoutMs: Int64) throws {
        self.endpoint = endpoint
        self.consumer = Self.consumerName(name)
        let nc = try connectNATS(endpoint, auth: auth, connectTimeoutMs: connectTimeoutMs)
        connection = nc
        var ctx: OpaquePointer?
        try check(natsConnection_JetStream(&ctx, nc, nil), "cannot use JetStream on \(servers)")
        js = ctx
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var jerr = jsErrCode(0)
        let s = js_GetStreamInfo(&info, js, endpoint.stream, nil, &jerr)
        guard s != NATS_NOT_FOUND else {
            throw MQError(.noInput, "stream '\(endpoint.stream)' does not exist on \(servers)")
        }
        try check(s, "cannot look up stream '\(endpoint.stream)'")
        jsStreamInfo_Destroy(info)
    }

    deinit {
        for m in unacked { natsMsg_Destroy(m) }
        if let subscription { natsSubscription_Destroy(subscription) }
        if let js { jsCtx_Destroy(js) }
        if let connection {
            natsConnection_Close(connection)
            natsConnection_Destroy(connection)
        }
    }

    private var servers: String { endpoint.servers.joined(separator: ",") }
    private var source: TopicPartition { TopicPartition(endpoint.stream, 0) }

    private func check(_ status: natsStatus, _ what: String) throws {
        guard status == NATS_OK else { throw natsError(what, status) }
    }

    // MARK: MirrorSource

    /// Finds (or creates) the durable consumer, notes what it delivered
    /// without an ack, and binds a pull subscription to it.
    public func start(journal: CopyJournal) throws {
        guard subscription == nil else { return }
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var jerr = jsErrCode(0)
        var s = js_GetConsumerInfo(&info, js, endpoint.stream, consumer, nil, &jerr)
        if s == NATS_NOT_FOUND {
            // A new consumer starts after what the journal holds (a consumer
            // deleted by hand does not make the mirror read everything again).
            let settled = journal.settled(topic: source.topic, partition: 0)
            let resume = settled.ranges.first.map { settled.firstMissing(atOrAfter: $0.lowerBound) }
            s = addConsumer(&info, startAt: resume.flatMap { $0 >= 1 ? UInt64($0) : nil }, &jerr)
            try check(s, "cannot create consumer '\(consumer)' on stream '\(endpoint.stream)' (JetStream error \(jerr.rawValue))")
        } else {
            try check(s, "cannot look up consumer '\(consumer)' of stream '\(endpoint.stream)'")
        }
        guard let info else { throw MQError(.unavailable, "no consumer information for '\(consumer)' from \(servers)") }
        defer { jsConsumerInfo_Destroy(info) }
        if let config = info.pointee.Config, config.pointee.AckPolicy != js_AckExplicit || config.pointee.DeliverSubject != nil {
            throw MQError(.config, "consumer '\(consumer)' of stream '\(endpoint.stream)' is not a pull consumer with explicit acks (made by something else?): delete it, or give the mirror another --name")
        }
        let floor = info.pointee.AckFloor.Stream, delivered = info.pointee.Delivered.Stream
        catchUp = delivered > floor ? (floor + 1)...delivered : nil
        lastConsumerSequence = info.pointee.Delivered.Consumer
        lastStreamSequence = delivered
        var sub: OpaquePointer?
        var subOpts = jsSubOptions()
        jsSubOptions_Init(&subOpts)
        let stream = strdup(endpoint.stream), name = strdup(consumer)
        defer { free(stream); free(name) }
        subOpts.Stream = UnsafePointer(stream)
        subOpts.Consumer = UnsafePointer(name)
        s = js_PullSubscribe(&sub, js, nil, UnsafePointer(name), nil, &subOpts, &jerr)
        try check(s, "cannot subscribe to consumer '\(consumer)' of stream '\(endpoint.stream)' (JetStream error \(jerr.rawValue))")
        subscription = sub
    }

    private func addConsumer(_ info: inout UnsafeMutablePointer<jsConsumerInfo>?, startAt: UInt64?, _ jerr: inout jsErrCode) -> natsStatus {
        var config = jsConsumerConfig()
        jsConsumerConfig_Init(&config)
        let name = strdup(consumer)
        defer { free(name) }
        config.Durable = UnsafePointer(name)
        config.AckPolicy = js_AckExplicit
        config.AckWait = ackWaitMs * 1_000_000
        config.MaxAckPending = maxAckPending
        config.MaxDeliver = -1
        if let startAt {
            config.DeliverPolicy = js_DeliverByStartSequence
            config.OptStartSeq = startAt
        }
        return js_AddConsumer(&info, js, endpoint.stream, &config, nil, &jerr)
    }

    public func fetch(maxRecords: Int, timeoutMs: Int32) throws -> PulledChunk {
        if let range = catchUp { return try readCatchUp(range, maxRecords: maxRecords) }
        var list = natsMsgList()
        var request = jsFetchRequest()
        jsFetchRequest_Init(&request)
        request.Batch = Int32(clamping: max(1, maxRecords))
        request.Expires = Int64(max(100, timeoutMs)) * 1_000_000
        let s = natsSubscription_FetchRequest(&list, subscription, &request)
        defer { natsMsgList_Destroy(&list) }
        if s == NATS_TIMEOUT || (s == NATS_OK && list.Count == 0) {
            return PulledChunk(caughtUp: try pendingCount() == 0)
        }
        try check(s, "cannot fetch from consumer '\(consumer)' of stream '\(endpoint.stream)'")
        var chunk = PulledChunk()
        guard let msgs = list.Msgs, list.Count > 0 else { return chunk }
        for i in 0..<Int(list.Count) {
            guard let msg = msgs[i] else { continue }
            var meta: UnsafeMutablePointer<jsMsgMetaData>?
            try check(natsMsg_GetMetaData(&meta, msg), "a message from consumer '\(consumer)' has no JetStream metadata")
            guard let meta else { continue }
            defer { jsMsgMetaData_Destroy(meta) }
            let seq = meta.pointee.Sequence.Stream, cseq = meta.pointee.Sequence.Consumer
            var r = try record(msg, sequence: seq, storedNanos: meta.pointee.Timestamp)
            if meta.pointee.NumDelivered == 1 {
                // The consumer passed over the sequences between two first
                // deliveries in a row: deleted messages, not to come again.
                if lastConsumerSequence > 0, cseq == lastConsumerSequence &+ 1, seq > lastStreamSequence &+ 1 {
                    r.gapFrom = Int64(lastStreamSequence + 1)
                }
                lastConsumerSequence = cseq
                lastStreamSequence = max(lastStreamSequence, seq)
            } else {
                lastConsumerSequence = 0
            }
            chunk.records.append(r)
            // Kept until acknowledged; the list must not destroy it.
            unacked.append(msg)
            msgs[i] = nil
            chunk.caughtUp = meta.pointee.NumPending == 0
        }
        return chunk
    }

    /// Messages the consumer is waiting for acks of, read by sequence (deleted ones skipped).
    private func readCatchUp(_ range: ClosedRange<UInt64>, maxRecords: Int) throws -> PulledChunk {
        var chunk = PulledChunk()
        var seq = range.lowerBound
        var gapFrom: UInt64?
        while seq <= range.upperBound && chunk.records.count < maxRecords {
            var msg: OpaquePointer?
            var jerr = jsErrCode(0)
            let s = js_GetMsg(&msg, js, endpoint.stream, seq, nil, &jerr)
            if s == NATS_NOT_FOUND {
                gapFrom = gapFrom ?? seq
            } else {
                try check(s, "cannot read sequence \(seq) of stream '\(endpoint.stream)'")
                guard let msg else { throw MQError(.unavailable, "no message for sequence \(seq) of stream '\(endpoint.stream)'") }
                defer { natsMsg_Destroy(msg) }
                var r = try record(msg, sequence: seq, storedNanos: natsMsg_GetTime(msg))
                r.gapFrom = gapFrom.map { Int64($0) }
                gapFrom = nil
                chunk.records.append(r)
            }
            if seq == UInt64.max { break }
            seq += 1
        }
        catchUp = seq <= range.upperBound ? seq...range.upperBound : nil
        return chunk
    }

    /// Messages of the stream the consumer has not delivered yet.
    private func pendingCount() throws -> UInt64 {
        var info: UnsafeMutablePointer<jsConsumerInfo>?
        var jerr = jsErrCode(0)
        try check(js_GetConsumerInfo(&info, js, endpoint.stream, consumer, nil, &jerr),
                  "cannot look up consumer '\(consumer)' of stream '\(endpoint.stream)'")
        guard let info else { return 0 }
        defer { jsConsumerInfo_Destroy(info) }
        return info.pointee.NumPending
    }

    public func acknowledge() throws {
        while let msg = unacked.first {
            try check(natsMsg_Ack(msg, nil), "cannot acknowledge a message to stream '\(endpoint.stream)'")
            natsMsg_Destroy(msg)
            unacked.removeFirst()
        }
        // The acks are on their way once the server answered a ping after them.
        try check(natsConnection_FlushTimeout(connection, 10_000), "stream '\(endpoint.stream)' did not take the acknowledgements")
    }

    // MARK: Mapping

    /// The record of a stream message (docs/MIRROR.md, "NATS to mq").
    /// - Throws: 65 for a sequence too large to copy or a malformed `Mq-` header.
    func record(_ msg: OpaquePointer, sequence: UInt64, storedNanos: Int64) throws -> PulledRecord {
        let subject = natsMsg_GetSubject(msg).map { String(cString: $0) } ?? ""
        let at = "sequence \(sequence) of stream '\(endpoint.stream)' (subject \(subject))"
        guard sequence < 1 << 46 else {
            throw MQError.data("cannot copy \(at): a copy carries source positions below 2^46")
        }
        let length = Int(natsMsg_GetDataLength(msg))
        var value: [UInt8]? = []
        if length > 0, let data = natsMsg_GetData(msg) {
            value = Array(UnsafeRawBufferPointer(start: data, count: length))
        }
        let plain = NATSMessageHeaders(msg)
        let mq = MirroredFields(plain)
        if mq.get(MirrorHeaders.nullValue) == "true" { value = nil }
        var key: [UInt8]? = mq.isFromPush ? nil : Array(subject.utf8)
        if let k = mq.get(MirrorHeaders.key) {
            guard let bytes = Base64.decode(k) else { throw MQError.data("\(at): \(MirrorHeaders.key) is not base64") }
            key = bytes
        }
        var timestamp = storedNanos / 1_000_000
        if let t = mq.get(MirrorHeaders.timestamp) {
            guard let ms = Int64(t) else { throw MQError.data("\(at): \(MirrorHeaders.timestamp) '\(t.prefix(40))' is not a number of milliseconds") }
            timestamp = ms
        }
        var headers: [Header]
        if let h = mq.get(MirrorHeaders.headers) {
            guard let bytes = Base64.decode(h), let list = RecordBatchBuilder.decodeHeaders(bytes) else {
                throw MQError.data("\(at): \(MirrorHeaders.headers) is not base64 of Kafka's header encoding")
            }
            headers = list
        } else {
            headers = plain.list.filter { !MirrorHeaders.isReserved($0.name) }.map { Header(name: $0.name, value: Array($0.value.utf8)) }
        }
        var partition: Int32?
        if mq.isFromPush, let p = mq.get(MirrorHeaders.partition) {
            guard let n = Int32(p), n >= 0 else { throw MQError.data("\(at): \(MirrorHeaders.partition) '\(p.prefix(40))' is not a partition number") }
            partition = n
        }
        headers = PullProvenance.append([("stream", endpoint.stream), ("subject", subject), ("sequence", String(sequence))], to: headers)
        return PulledRecord(source: source, position: Int64(sequence), timestamp: timestamp, key: key, value: value,
                            headers: headers, partition: partition)
    }
}

/// A NATS message's headers: names in sorted order (libnats keeps no order
/// between names), the values of one name in their order.
struct NATSMessageHeaders {
    var list: [(name: String, value: String)] = []

    init(_ msg: OpaquePointer) {
        var keys: UnsafeMutablePointer<UnsafePointer<CChar>?>?
        var count: Int32 = 0
        guard natsMsgHeader_Keys(msg, &keys, &count) == NATS_OK, let keys else { return }
        defer { free(keys) }
        var names: [String] = []
        for i in 0..<Int(max(0, count)) { if let k = keys[i] { names.append(String(cString: k)) } }
        for name in names.sorted() {
            var values: UnsafeMutablePointer<UnsafePointer<CChar>?>?
            var n: Int32 = 0
            guard natsMsgHeader_Values(msg, name, &values, &n) == NATS_OK, let values else { continue }
            defer { free(values) }
            for i in 0..<Int(max(0, n)) { if let v = values[i] { list.append((name, String(cString: v))) } }
        }
    }
}

/// The `Mq-` headers of a message, looked up by name.
struct MirroredFields {
    let fields: [String: String]

    init(_ headers: NATSMessageHeaders) {
        var f: [String: String] = [:]
        for (name, value) in headers.list where name.hasPrefix("Mq-") && f[name] == nil { f[name] = value }
        fields = f
    }

    func get(_ name: String) -> String? { fields[name] }

    /// Sent by an mq push (it names its source).
    var isFromPush: Bool {
        fields[MirrorHeaders.topic] != nil && fields[MirrorHeaders.partition] != nil && fields[MirrorHeaders.offset] != nil
    }
}

extension MirrorHeaders {
    /// A name NATS or mq reserves, not a header of the record.
    static func isReserved(_ name: String) -> Bool {
        let lower = name.lowercased()
        return lower.hasPrefix("nats-") || lower.hasPrefix("mq-")
    }
}
