import CRdKafka
import Glibc
import MQLog
import Synchronization

/// The headers `KafkaSink` appends to each record, after the record's own
/// (docs/MIRROR.md, "Kafka"): the mirror's name and where the record comes
/// from. A reader that wants the record's own headers drops the last four.
public enum KafkaMirrorHeaders {
    public static let name = "mq.mirror.name"
    public static let topic = "mq.mirror.topic"
    public static let partition = "mq.mirror.partition"
    public static let offset = "mq.mirror.offset"
}

/// What `KafkaSink` does, from `mq-mirror`'s command line.
public struct KafkaSinkOptions: Sendable {
    public var endpoint: KafkaEndpoint
    /// The mirror's name: `transactional.id` is `mq-mirror.NAME`, and the
    /// records carry it in `mq.mirror.name`.
    public var mirrorName: String
    /// `-F` and `-X`, applied after mq's own settings (so they win).
    public var properties = KafkaProperties()
    /// `compression.codec`, unless a property sets it.
    public var compression: CompressionCodec = .none
    public var partitioning: KafkaPartitioning = .auto
    /// Create the topic (`partitions`, `replicas`) when it does not exist.
    public var create = false
    public var partitions: Int32 = 1
    public var replicas: Int16 = 1
    /// How long one request (connecting, a commit, a read back) may take
    /// before the attempt fails with 69 and is made again.
    public var requestTimeoutMs: Int32 = 10_000

    public init(endpoint: KafkaEndpoint, mirrorName: String) {
        self.endpoint = endpoint
        self.mirrorName = mirrorName
    }

    public var transactionalID: String { properties["transactional.id"] ?? "mq-mirror." + mirrorName }
}

/// Pushes records into a Kafka topic, each exactly once (docs/MIRROR.md,
/// "Kafka"):
///
/// - one transaction of an idempotent, transactional producer per chunk, so a
///   chunk is visible to `read_committed` readers whole or not at all;
/// - each record keeps its key, value (null kept), headers (order,
///   duplicates, null values) and timestamp (CreateTime), and gains the
///   provenance headers `KafkaMirrorHeaders`;
/// - on start, `init_transactions` aborts what a killed predecessor left
///   open, then the last committed records of the destination partitions
///   (read back `read_committed`) say where each local partition resumes.
///
/// Not thread-safe; librdkafka's callbacks run on the calling thread (poll).
public final class KafkaSink: MirrorSink {
    public let options: KafkaSinkOptions
    /// The partitions of a local topic (for `auto` and the null-key rule).
    public var localPartitions: (String) throws -> Int32 = { _ in 1 }
    /// The Kafka topic's partition count, read when the sink connected.
    public private(set) var destinationPartitions: Int32 = 0

    private var producer: OpaquePointer?   // rd_kafka_t *
    private var topicHandle: OpaquePointer? // rd_kafka_topic_t *
    private let events = Events()
    private var state = TransactionState.idle
    private var modes: [String: KafkaPartitioning] = [:]
    private lazy var readBack = ReadBack(sink: self)

    enum TransactionState: Equatable {
        case idle
        /// A commit that did not finish in time; sending the same chunk
        /// again waits for it instead of starting over.
        case committing(ChunkID)
        /// An abort that did not finish in time.
        case aborting
    }

    struct ChunkID: Equatable {
        var count: Int
        var first: String
        var last: String
        init(_ records: [StoredRecord]) {
            count = records.count
            first = records.first.map { "\($0.topic)/\($0.partition)/\($0.offset)" } ?? ""
            last = records.last.map { "\($0.topic)/\($0.partition)/\($0.offset)" } ?? ""
        }
    }

    /// What librdkafka's callbacks report.
    final class Events: Sendable {
        struct State {
            /// The first record of the chunk that failed: its index and error.
            var failure: (index: Int, code: Int32)?
            var lastError: String?
        }
        let state = Mutex(State())
        func fail(index: Int, code: Int32) { state.withLock { if $0.failure == nil { $0.failure = (index, code) } } }
        func takeFailure() -> (index: Int, code: Int32)? { state.withLock { s in defer { s.failure = nil }; return s.failure } }
        func error(_ text: String) { state.withLock { $0.lastError = text } }
        var lastError: String? { state.withLock { $0.lastError } }
        /// `error` with the last error librdkafka reported (the broker's address and why).
        func withLastError(_ error: MQError) -> MQError {
            guard let last = lastError, !error.message.contains(last) else { return error }
            return MQError(error.status, "\(error.message) (\(last))", cause: error.cause)
        }
    }

    /// Connects, aborts what a predecessor of the same name left open, and
    /// checks (or with `create`, makes) the topic.
    /// - Throws: 64 for a bad property; 66 without the topic; 69 when the
    ///   cluster does not answer in time; 76 when fenced; 77 when refused.
    public init(options: KafkaSinkOptions) throws {
        self.options = options
        let conf = try makeConf(producer: true)
        var errstr = [CChar](repeating: 0, count: 512)
        guard let rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, &errstr, errstr.count) else {
            rd_kafka_conf_destroy(conf)
            throw MQError.usage("cannot make a Kafka producer: \(cText(errstr))")
        }
        producer = rk
        if let error = rd_kafka_init_transactions(rk, options.requestTimeoutMs) {
            defer { rd_kafka_error_destroy(error) }
            throw withLastError(KafkaStatus.error("cannot start the transactional producer '\(options.transactionalID)' on \(servers)", error, producer: rk))
        }
        try ensureTopic()
        topicHandle = rd_kafka_topic_new(rk, options.endpoint.topic, nil)
    }

    deinit {
        if let topicHandle { rd_kafka_topic_destroy(topicHandle) }
        readBack.close()
        if let producer { rd_kafka_destroy(producer) }
    }

    private var servers: String { options.endpoint.servers.joined(separator: ",") }
    private var topic: String { options.endpoint.topic }

    /// A librdkafka configuration with mq's settings, then the user's.
    /// - Throws: 64 naming the property (and its file and line) that
    ///   librdkafka does not know or refuses.
    func makeConf(producer: Bool) throws -> OpaquePointer {
        try Self.makeConf(options, events: events, producer: producer)
    }

    /// A librdkafka configuration with mq's settings, then the user's:
    /// for the producer, the read-back consumer (`group`nil), or a pull
    /// mirror's consumer of the group `group`.
    static func makeConf(_ options: KafkaSinkOptions, events: Events, producer: Bool, group: String? = nil) throws -> OpaquePointer {
        let conf = rd_kafka_conf_new()!
        var ok = false
        defer { if !ok { rd_kafka_conf_destroy(conf) } }
        var errstr = [CChar](repeating: 0, count: 512)
        func set(_ key: String, _ value: String, _ origin: String?) throws {
            let res = rd_kafka_conf_set(conf, key, value, &errstr, errstr.count)
            guard res != RD_KAFKA_CONF_OK else { return }
            let where_ = origin.map { "\($0): " } ?? ""
            if res == RD_KAFKA_CONF_UNKNOWN {
                throw MQError.usage("\(where_)unknown librdkafka property '\(key)' (see librdkafka's CONFIGURATION.md)")
            }
            throw MQError.usage("\(where_)bad value for librdkafka property '\(key)': \(cText(errstr))")
        }
        try set("bootstrap.servers", options.endpoint.servers.joined(separator: ","), nil)
        try set("client.id", "mq-mirror", nil)
        try set("allow.auto.create.topics", "false", nil)
        if producer {
            try set("transactional.id", "mq-mirror." + options.mirrorName, nil)
            try set("enable.idempotence", "true", nil)
            try set("compression.codec", options.compression.name, nil)
        }
        if let group {
            try set("group.id", group, nil)
            try set("auto.offset.reset", "earliest", nil)
            try set("enable.auto.offset.store", "false", nil)
        }
        for p in options.properties.list { try set(p.key, p.value, p.origin) }
        if !producer {
            try set("isolation.level", "read_committed", nil)
            try set("enable.partition.eof", "true", nil)
            try set("enable.auto.commit", "false", nil)
        }
        rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(events).toOpaque())
        rd_kafka_conf_set_error_cb(conf) { _, err, reason, opaque in
            guard let opaque else { return }
            let events = Unmanaged<Events>.fromOpaque(opaque).takeUnretainedValue()
            events.error(reason.map { String(cString: $0) } ?? String(cString: rd_kafka_err2str(rd_kafka_resp_err_t(err))))
        }
        if producer {
            rd_kafka_conf_set_dr_msg_cb(conf) { _, message, opaque in
                guard let message, let opaque, message.pointee.err != RD_KAFKA_RESP_ERR_NO_ERROR else { return }
                let events = Unmanaged<Events>.fromOpaque(opaque).takeUnretainedValue()
                events.fail(index: Int(bitPattern: message.pointee._private) - 1, code: message.pointee.err.rawValue)
            }
        }
        // librdkafka's own log lines (a broker down is one a second) stay
        // quiet unless asked for with -X debug=...; the mirror says what
        // matters, at most once per retry.
        if options.properties["debug"] == nil {
            rd_kafka_conf_set_log_cb(conf) { _, _, _, _ in }
        }
        ok = true
        return conf
    }

    /// `error` with the last error librdkafka reported (the broker's address and why).
    private func withLastError(_ error: MQError) -> MQError { events.withLastError(error) }

    // MARK: The topic

    /// Reads the topic's partition count; creates the topic with `create`.
    private func ensureTopic() throws {
        if let n = try partitionCount() {
            destinationPartitions = n
            return
        }
        guard options.create else {
            throw MQError(.noInput, "Kafka topic '\(topic)' does not exist on \(servers) (create it, or pass --create)")
        }
        try createTopic()
        // A new topic reaches every broker's metadata within moments.
        for _ in 0..<50 {
            if let n = try partitionCount() {
                destinationPartitions = n
                return
            }
            usleep(100_000)
        }
        throw MQError(.unavailable, "Kafka topic '\(topic)' was created on \(servers) but does not show in its metadata yet")
    }

    /// The topic's partitions as the cluster's metadata lists them (all
    /// topics are asked for, so that asking never creates one), nil when it
    /// is not there.
    private func partitionCount() throws -> Int32? {
        do {
            return try Self.partitionCount(producer, topic: topic, timeoutMs: options.requestTimeoutMs)
        } catch let e as MQError {
            throw withLastError(e)
        }
    }

    /// The partitions of `topic` as the metadata of the cluster `rk` talks
    /// to lists them (all topics are asked for, so that asking never
    /// creates one), nil when it is not there.
    static func partitionCount(_ rk: OpaquePointer?, topic: String, timeoutMs: Int32) throws -> Int32? {
        var md: UnsafePointer<rd_kafka_metadata>?
        let err = rd_kafka_metadata(rk, 1, nil, &md, timeoutMs)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR, let md else {
            throw KafkaStatus.error("cannot read the metadata of the Kafka cluster", err)
        }
        defer { rd_kafka_metadata_destroy(md) }
        let count = Int(md.pointee.topic_cnt)
        guard count >= 0, let topics = md.pointee.topics else { return nil }
        for i in 0..<count where String(cString: topics[i].topic) == topic {
            let t = topics[i]
            if t.err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART { return nil }
            guard t.err == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaStatus.error("Kafka topic '\(topic)'", t.err) }
            guard t.partition_cnt > 0 else { return nil }
            return t.partition_cnt
        }
        return nil
    }

    /// CreateTopics through the admin API.
    private func createTopic() throws {
        var errstr = [CChar](repeating: 0, count: 512)
        guard let newTopic = rd_kafka_NewTopic_new(topic, options.partitions, Int32(options.replicas), &errstr, errstr.count) else {
            throw MQError.usage("cannot create Kafka topic '\(topic)': \(cText(errstr))")
        }
        defer { rd_kafka_NewTopic_destroy(newTopic) }
        let adminOptions = rd_kafka_AdminOptions_new(producer, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(adminOptions) }
        _ = rd_kafka_AdminOptions_set_request_timeout(adminOptions, options.requestTimeoutMs, &errstr, errstr.count)
        _ = rd_kafka_AdminOptions_set_operation_timeout(adminOptions, options.requestTimeoutMs, &errstr, errstr.count)
        let queue = rd_kafka_queue_new(producer)
        defer { rd_kafka_queue_destroy(queue) }
        var topics: [OpaquePointer?] = [newTopic]
        rd_kafka_CreateTopics(producer, &topics, 1, adminOptions, queue)
        guard let event = rd_kafka_queue_poll(queue, options.requestTimeoutMs + 5_000) else {
            throw MQError(.unavailable, "cannot create Kafka topic '\(topic)': \(servers) did not answer (CreateTopics)")
        }
        defer { rd_kafka_event_destroy(event) }
        let err = rd_kafka_event_error(event)
        guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw withLastError(KafkaStatus.error("cannot create Kafka topic '\(topic)'", err, detail: rd_kafka_event_error_string(event).map { String(cString: $0) }))
        }
        var n = 0
        guard let result = rd_kafka_event_CreateTopics_result(event),
              let results = rd_kafka_CreateTopics_result_topics(result, &n), n == 1, let one = results[0] else {
            throw MQError(.unavailable, "cannot create Kafka topic '\(topic)': no answer for it from \(servers)")
        }
        let topicErr = rd_kafka_topic_result_error(one)
        switch topicErr {
        case RD_KAFKA_RESP_ERR_NO_ERROR, RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
            return
        case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS, RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR,
             RD_KAFKA_RESP_ERR_INVALID_CONFIG, RD_KAFKA_RESP_ERR_POLICY_VIOLATION, RD_KAFKA_RESP_ERR_INVALID_REPLICA_ASSIGNMENT:
            let detail = rd_kafka_topic_result_error_string(one).map { String(cString: $0) } ?? KafkaStatus.text(topicErr)
            throw MQError(.config, "the cluster refused to create Kafka topic '\(topic)' with \(options.partitions) partitions and \(options.replicas) replicas: \(detail)")
        default:
            throw KafkaStatus.error("cannot create Kafka topic '\(topic)'", topicErr,
                                    detail: rd_kafka_topic_result_error_string(one).map { String(cString: $0) })
        }
    }

    // MARK: Partitions

    /// How the records of local `topic` are spread (docs/MIRROR.md).
    /// - Throws: 78 for `same` when the Kafka topic has fewer partitions.
    func mode(_ localTopic: String) throws -> KafkaPartitioning {
        if let m = modes[localTopic] { return m }
        let local = try localPartitions(localTopic)
        let m: KafkaPartitioning
        switch options.partitioning {
        case .murmur2: m = .murmur2
        case .same:
            guard local <= destinationPartitions else {
                throw MQError(.config, "topic '\(localTopic)' has \(local) partitions but Kafka topic '\(topic)' only \(destinationPartitions): --partitioner same needs as many (add partitions, or use --partitioner murmur2)")
            }
            m = .same
        case .auto: m = local <= destinationPartitions ? .same : .murmur2
        }
        modes[localTopic] = m
        return m
    }

    /// The Kafka partition of `r`.
    func destination(of r: StoredRecord) throws -> Int32 {
        let n = destinationPartitions
        switch try mode(r.topic) {
        case .same, .auto: return r.partition
        case .murmur2:
            guard let key = r.key else { return r.partition % n }
            return key.withUnsafeBytes { Partitioner.partition(forKey: $0, partitions: n) }
        }
    }

    // MARK: MirrorSink

    public func resumeOffset(topic localTopic: String, partition: Int32) throws -> Int64? {
        let candidates: [Int32] = try mode(localTopic) == .same ? [partition] : Array(0..<destinationPartitions)
        return try readBack.resumeOffset(topic: localTopic, partition: partition, in: candidates)
    }

    public func send(_ records: [StoredRecord]) throws {
        guard !records.isEmpty else { return }
        let id = ChunkID(records)
        switch state {
        case .committing(let pending) where pending == id:
            return try commit(records)
        case .committing, .aborting:
            try abort()
        case .idle:
            break
        }
        _ = events.takeFailure()
        if let error = rd_kafka_begin_transaction(producer) {
            defer { rd_kafka_error_destroy(error) }
            throw KafkaStatus.error("cannot begin a transaction", error, producer: producer)
        }
        for (i, r) in records.enumerated() {
            let err = try produce(r, index: i)
            guard err == RD_KAFKA_RESP_ERR_NO_ERROR else {
                if KafkaStatus.status(err) == .dataError {
                    // The records before it are forwarded; this one never can be.
                    try? commit(Array(records[..<i]))
                    throw tooLarge(r, err)
                }
                try? abort()
                throw KafkaStatus.error("cannot send partition \(r.partition) offset \(r.offset) of '\(r.topic)' to Kafka topic '\(topic)'", err)
            }
            if i & 1023 == 1023 { rd_kafka_poll(producer, 0) }
        }
        try commit(records)
    }

    /// The message for a record the cluster refuses for its size.
    private func tooLarge(_ r: StoredRecord, _ err: rd_kafka_resp_err_t) -> MQError {
        let size = (r.value?.count ?? 0) + (r.key?.count ?? 0)
        return MQError(.dataError, "partition \(r.partition) offset \(r.offset) of '\(r.topic)' (\(size) bytes of key and value) is larger than Kafka topic '\(topic)' takes (\(KafkaStatus.text(err)); message.max.bytes, max.message.bytes): the messages before it are forwarded; remove it (mq-compact) or raise the limits, then run again")
    }

    /// Hands one record to librdkafka, waiting while its queue is full.
    private func produce(_ r: StoredRecord, index: Int) throws -> rd_kafka_resp_err_t {
        let partition = try destination(of: r)
        let empty: [UInt8] = [0]
        while true {
            guard let headers = rd_kafka_headers_new(r.headers.count + 4) else {
                throw MQError.internalError("cannot allocate Kafka headers")
            }
            for h in r.headers { add(headers, h.name, h.value) }
            add(headers, KafkaMirrorHeaders.name, Array(options.mirrorName.utf8))
            add(headers, KafkaMirrorHeaders.topic, Array(r.topic.utf8))
            add(headers, KafkaMirrorHeaders.partition, Array(String(r.partition).utf8))
            add(headers, KafkaMirrorHeaders.offset, Array(String(r.offset).utf8))
            // A null key or value is a NULL pointer; an empty one points at a byte.
            let err = withBytes(r.key, empty) { key, keyLen in
                withBytes(r.value, empty) { value, valueLen in
                    mq_rdkafka_produce(producer, topicHandle, partition, key, keyLen, value, valueLen, r.timestamp, headers,
                                       UnsafeMutableRawPointer(bitPattern: index + 1))
                }
            }
            if err == RD_KAFKA_RESP_ERR_NO_ERROR { return err }
            rd_kafka_headers_destroy(headers)
            guard err == RD_KAFKA_RESP_ERR__QUEUE_FULL else { return err }
            rd_kafka_poll(producer, 100)
        }
    }

    private func add(_ headers: OpaquePointer, _ name: String, _ value: [UInt8]?) {
        var nameBytes = Array(name.utf8)
        nameBytes.withUnsafeMutableBufferPointer { n in
            n.withMemoryRebound(to: CChar.self) { cname in
                if let value {
                    value.withUnsafeBytes { v in
                        _ = rd_kafka_header_add(headers, cname.baseAddress, cname.count, v.baseAddress ?? UnsafeRawPointer(cname.baseAddress), v.count)
                    }
                } else {
                    _ = rd_kafka_header_add(headers, cname.baseAddress, cname.count, nil, 0)
                }
            }
        }
    }

    private func withBytes<T>(_ bytes: [UInt8]?, _ placeholder: [UInt8], _ body: (UnsafeRawPointer?, Int) -> T) -> T {
        guard let bytes else { return body(nil, 0) }
        if bytes.isEmpty { return placeholder.withUnsafeBytes { body($0.baseAddress, 0) } }
        return bytes.withUnsafeBytes { body($0.baseAddress, $0.count) }
    }

    /// Commits the open transaction: returns once Kafka holds every record.
    private func commit(_ records: [StoredRecord]) throws {
        guard let error = rd_kafka_commit_transaction(producer, options.requestTimeoutMs) else {
            state = .idle
            _ = events.takeFailure()
            return
        }
        defer { rd_kafka_error_destroy(error) }
        if rd_kafka_error_is_fatal(error) != 0 {
            throw KafkaStatus.error("cannot commit a chunk to Kafka topic '\(topic)'", error, producer: producer)
        }
        if rd_kafka_error_txn_requires_abort(error) != 0 {
            let failure = events.takeFailure()
            try abort()
            if let failure, failure.index >= 0, failure.index < records.count,
               KafkaStatus.status(rd_kafka_resp_err_t(failure.code)) == .dataError {
                throw tooLarge(records[failure.index], rd_kafka_resp_err_t(failure.code))
            }
            throw withLastError(KafkaStatus.error("Kafka topic '\(topic)' did not take the chunk of \(records.count) messages (aborted; it is sent again)", error, producer: producer))
        }
        // Not committed in time (retriable): the same chunk sent again
        // waits for this commit instead of starting over.
        state = .committing(ChunkID(records))
        throw withLastError(KafkaStatus.error("the chunk of \(records.count) messages to Kafka topic '\(topic)' is not committed yet", error, producer: producer))
    }

    private func abort() throws {
        state = .aborting
        if let error = rd_kafka_abort_transaction(producer, options.requestTimeoutMs) {
            defer { rd_kafka_error_destroy(error) }
            throw withLastError(KafkaStatus.error("cannot abort a transaction on Kafka topic '\(topic)'", error, producer: producer))
        }
        state = .idle
    }
}
