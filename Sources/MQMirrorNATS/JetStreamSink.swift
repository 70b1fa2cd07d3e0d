import CNats
import Glibc
import MQLog
import Synchronization

/// How `mq-mirror` reaches a NATS server: `nats://HOST:PORT,HOST:PORT/STREAM`.
public struct NATSEndpoint: Sendable, Equatable {
    public var servers: [String]
    public var stream: String

    /// Parses a `nats://` URL; nil when `text` is not one.
    /// - Throws: a usage error for a `nats://` URL without hosts or stream.
    public static func parse(_ text: String) throws -> NATSEndpoint? {
        guard text.hasPrefix("nats://") || text.hasPrefix("tls://") else { return nil }
        let scheme = text.hasPrefix("tls://") ? "tls://" : "nats://"
        let rest = text.dropFirst(scheme.count)
        guard let slash = rest.firstIndex(of: "/") else {
            throw MQError.usage("'\(text)': a NATS destination is nats://HOST[:PORT][,HOST[:PORT]...]/STREAM (no stream given)")
        }
        let hosts = rest[..<slash].split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        let stream = String(rest[rest.index(after: slash)...])
        guard !hosts.isEmpty, hosts.allSatisfy({ !$0.isEmpty && !$0.contains(where: { $0 == " " || $0 == "/" }) }) else {
            throw MQError.usage("'\(text)': a NATS destination is nats://HOST[:PORT][,HOST[:PORT]...]/STREAM (bad host list)")
        }
        guard !stream.isEmpty, stream.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == "-") }) else {
            throw MQError.usage("'\(text)': the stream name must be letters, digits, '_' or '-'")
        }
        return NATSEndpoint(servers: hosts.map { scheme + $0 }, stream: stream)
    }
}

/// Credentials and TLS for a NATS connection; nothing secret on the command line.
public struct NATSAuth: Sendable {
    /// A `.creds` file (user JWT and NKey seed).
    public var credsFile: String?
    /// A token, read from a file or `$NATS_TOKEN`.
    public var token: String?
    public var caFile: String?
    public var certFile: String?
    public var keyFile: String?
    public init() {}
}

/// The error libnats reports for `status`, with the last error text.
func natsError(_ what: String, _ status: natsStatus) -> MQError {
    let text = String(cString: natsStatus_GetText(status))
    var detail = ""
    if let last = nats_GetLastError(nil) { detail = String(cString: last) }
    let message = "\(what): \(text)\(detail.isEmpty || detail == text ? "" : " (\(detail))")"
    // Credentials refused: 77. Anything else (no server, a timeout, a
    // refusal) means the destination cannot take the records now: 69.
    let refused = status == NATS_NOT_PERMITTED || status == NATS_CONNECTION_AUTH_FAILED
    return MQError(refused ? .noPermission : .unavailable, message)
}

/// A connection to the servers of `endpoint` (reconnecting without end),
/// with `auth`.
/// - Throws: 77 when the credentials are refused, 69 when no server answers
///   within `connectTimeoutMs`.
func connectNATS(_ endpoint: NATSEndpoint, auth: NATSAuth, connectTimeoutMs: Int64) throws -> OpaquePointer {
    func check(_ status: natsStatus, _ what: String) throws {
        guard status == NATS_OK else { throw natsError(what, status) }
    }
    var opts: OpaquePointer?
    try check(natsOptions_Create(&opts), "cannot set up the NATS connection")
    defer { natsOptions_Destroy(opts) }
    var servers = endpoint.servers.map { strdup($0) }
    defer { servers.forEach { free($0) } }
    try servers.withUnsafeMutableBufferPointer { buffer in
        try buffer.withMemoryRebound(to: UnsafePointer<CChar>?.self) { p in
            try check(natsOptions_SetServers(opts, p.baseAddress, Int32(p.count)), "bad NATS server list")
        }
    }
    _ = natsOptions_SetTimeout(opts, connectTimeoutMs)
    _ = natsOptions_SetMaxReconnect(opts, -1)
    _ = natsOptions_SetName(opts, "mq-mirror")
    if let creds = auth.credsFile { try check(natsOptions_SetUserCredentialsFromFiles(opts, creds, nil), "cannot use the credentials file \(creds)") }
    if let token = auth.token { try check(natsOptions_SetToken(opts, token), "cannot use the NATS token") }
    if let ca = auth.caFile { try check(natsOptions_LoadCATrustedCertificates(opts, ca), "cannot load the CA certificates \(ca)") }
    if let cert = auth.certFile {
        try check(natsOptions_LoadCertificatesChain(opts, cert, auth.keyFile), "cannot load the certificate \(cert)")
    }
    var nc: OpaquePointer?
    let s = natsConnection_Connect(&nc, opts)
    guard s == NATS_OK, let nc else { throw natsError("cannot connect to \(endpoint.servers.joined(separator: ","))", s) }
    return nc
}

/// Pushes records into a JetStream stream, each exactly once
/// (docs/MIRROR.md, "NATS JetStream"):
///
/// - subject `PREFIX.TOPIC.PARTITION`; payload the value;
/// - `Nats-Msg-Id: SUBJECT:OFFSET`, so the stream drops a record sent again
///   within its duplicate window;
/// - on start, the last message of each subject names the last offset the
///   stream holds (`Mq-Offset`), so a mirror resumes after it whatever its
///   window and whatever its local state;
/// - unless `chained` is off, each message names the one before it
///   (`PublishChain`), so that a burst that fails part way stores nothing
///   after the failure and a resend keeps each subject's order.
public final class JetStreamSink: MirrorSink, ChainedStream {
    public let endpoint: NATSEndpoint
    public let subjectPrefix: String
    /// How long to wait for the acknowledgements of one chunk; then the
    /// chunk fails, the mirror says so and sends it again (duplicates are
    /// dropped by `Nats-Msg-Id`), so that a user sees an outage within seconds.
    public var ackTimeoutMs: Int64 = 10_000
    /// Chain the publishes (`PublishChain`); off for a stream that other
    /// publishers write to as well (`--shared-stream`).
    public var chained = true

    public var name: String { endpoint.stream }
    private var chain = PublishChain()
    /// The subjects of the partitions mirrored: a last message on another
    /// subject is another publisher's.
    private var ownSubjects = Set<String>()

    private var connection: OpaquePointer?  // natsConnection *
    private var js: OpaquePointer?          // jsCtx *
    /// Failures reported by libnats's threads for the chunk being sent.
    private let failures = Failures()

    final class Failures: Sendable {
        let state = Mutex<(count: Int, first: String?)>((0, nil))
        func record(_ text: String) { state.withLock { $0.count += 1; if $0.first == nil { $0.first = text } } }
        func take() -> (count: Int, first: String?) { state.withLock { s in defer { s = (0, nil) }; return s } }
    }

    /// Connects and checks that the stream exists.
    /// - Parameter create: create the stream (subjects `PREFIX.>`, `replicas`) when it does not exist.
    public init(endpoint: NATSEndpoint, subjectPrefix: String, auth: NATSAuth, create: Bool, replicas: Int, connectTimeoutMs: Int64) throws {
        self.endpoint = endpoint
        self.subjectPrefix = subjectPrefix
        let nc = try connectNATS(endpoint, auth: auth, connectTimeoutMs: connectTimeoutMs)
        connection = nc
        var jsOpts = jsOptions()
        jsOptions_Init(&jsOpts)
        jsOpts.PublishAsync.MaxPending = 65_536
        jsOpts.PublishAsync.ErrHandler = { _, pae, closure in
            guard let pae, let closure else { return }
            let failures = Unmanaged<Failures>.fromOpaque(closure).takeUnretainedValue()
            let text = pae.pointee.ErrText.map { String(cString: $0) } ?? String(cString: natsStatus_GetText(pae.pointee.Err))
            failures.record(text)
        }
        jsOpts.PublishAsync.ErrHandlerClosure = Unmanaged.passUnretained(failures).toOpaque()
        var ctx: OpaquePointer?
        try check(natsConnection_JetStream(&ctx, nc, &jsOpts), "cannot use JetStream on \(endpoint.servers.joined(separator: ","))")
        js = ctx
        try ensureStream(create: create, replicas: replicas)
    }

    deinit {
        if let js { jsCtx_Destroy(js) }
        if let connection {
            natsConnection_Close(connection)
            natsConnection_Destroy(connection)
        }
    }

    private func check(_ status: natsStatus, _ what: String) throws {
        guard status == NATS_OK else { throw natsError(what, status) }
    }

    private func ensureStream(create: Bool, replicas: Int) throws {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var jerr = jsErrCode(0)
        let s = js_GetStreamInfo(&info, js, endpoint.stream, nil, &jerr)
        if s == NATS_OK {
            jsStreamInfo_Destroy(info)
            return
        }
        guard s == NATS_NOT_FOUND else { throw natsError("cannot look up stream '\(endpoint.stream)'", s) }
        guard create else {
            throw MQError(.noInput, "stream '\(endpoint.stream)' does not exist on \(endpoint.servers.joined(separator: ",")) (create it, or pass --create)")
        }
        var config = jsStreamConfig()
        jsStreamConfig_Init(&config)
        let name = strdup(endpoint.stream), subject = strdup(subjectPrefix + ".>")
        defer { free(name); free(subject) }
        config.Name = UnsafePointer(name)
        var subjects: [UnsafePointer<CChar>?] = [UnsafePointer(subject)]
        config.Replicas = Int64(replicas)
        config.Storage = js_FileStorage
        let added = subjects.withUnsafeMutableBufferPointer { buffer -> natsStatus in
            config.Subjects = buffer.baseAddress
            config.SubjectsLen = 1
            return js_AddStream(&info, js, &config, nil, &jerr)
        }
        guard added == NATS_OK else {
            let e = natsError("cannot create stream '\(endpoint.stream)' (JetStream error \(jerr.rawValue))", added)
            // The server's answer to the stream's settings (replicas beyond the cluster, ...).
            throw added == NATS_ERR ? MQError(.config, e.description) : e
        }
        jsStreamInfo_Destroy(info)
    }

    /// The subject of a partition: `PREFIX.TOPIC.PARTITION`.
    public func subject(topic: String, partition: Int32) -> String { "\(subjectPrefix).\(topic).\(partition)" }

    public func resumeOffset(topic: String, partition: Int32) throws -> Int64? {
        var msg: OpaquePointer?
        var jerr = jsErrCode(0)
        ownSubjects.insert(subject(topic: topic, partition: partition))
        let s = js_GetLastMsg(&msg, js, endpoint.stream, subject(topic: topic, partition: partition), nil, &jerr)
        if s == NATS_NOT_FOUND { return nil }
        guard s == NATS_OK else { throw natsError("cannot read the last message of \(subject(topic: topic, partition: partition))", s) }
        defer { natsMsg_Destroy(msg) }
        var value: UnsafePointer<CChar>?
        guard natsMsgHeader_Get(msg, MirrorHeaders.offset, &value) == NATS_OK, let value,
              let offset = Int64(String(cString: value)), offset >= 0, offset < Int64.max else {
            throw MQError.data("the last message of \(subject(topic: topic, partition: partition)) in stream '\(endpoint.stream)' has no valid \(MirrorHeaders.offset) header: it was not written by mq-mirror")
        }
        return offset + 1
    }

    public func send(_ records: [StoredRecord]) throws {
        if chained {
            try chain.send(records, to: self)
        } else {
            try publish(records[...], after: nil)
        }
    }

    public func messageID(of record: StoredRecord) -> String {
        MirrorHeaders.messageID(subject: subject(topic: record.topic, partition: record.partition), offset: record.offset)
    }

    public func lastMessage() throws -> (sequence: UInt64, ours: Bool?) {
        var info: UnsafeMutablePointer<jsStreamInfo>?
        var jerr = jsErrCode(0)
        try check(js_GetStreamInfo(&info, js, endpoint.stream, nil, &jerr), "cannot look up stream '\(endpoint.stream)'")
        let sequence = info?.pointee.State.LastSeq ?? 0
        jsStreamInfo_Destroy(info)
        guard sequence > 0 else { return (0, nil) }
        var msg: OpaquePointer?
        let s = js_GetMsg(&msg, js, endpoint.stream, sequence, nil, &jerr)
        if s == NATS_NOT_FOUND { return (sequence, nil) }
        try check(s, "cannot read message \(sequence) of stream '\(endpoint.stream)'")
        defer { natsMsg_Destroy(msg) }
        let subject = natsMsg_GetSubject(msg).map { String(cString: $0) }
        return (sequence, subject.map { ownSubjects.contains($0) })
    }

    public func publish(_ records: ArraySlice<StoredRecord>, after: PublishChain.Link?) throws {
        _ = failures.take()
        var previous = after
        for r in records {
            var msg: OpaquePointer?
            let subject = subject(topic: r.topic, partition: r.partition)
            let created: natsStatus = (r.value ?? []).withUnsafeBufferPointer { v in
                v.withMemoryRebound(to: CChar.self) { c in
                    natsMsg_Create(&msg, subject, nil, c.baseAddress, Int32(c.count))
                }
            }
            try check(created, "cannot make a NATS message")
            let id = MirrorHeaders.messageID(subject: subject, offset: r.offset)
            var headers = MirrorHeaders.nats(for: r, id: id)
            switch previous {
            case .sequence(let sequence): headers.append((MirrorHeaders.expectedLastSequence, String(sequence)))
            case .messageID(let last): headers.append((MirrorHeaders.expectedLastMsgID, last))
            case nil: break
            }
            if after != nil { previous = .messageID(id) }
            for (name, value) in headers {
                let added = natsMsgHeader_Add(msg, name, value)
                if added != NATS_OK {
                    natsMsg_Destroy(msg)
                    throw natsError("cannot set header \(name)", added)
                }
            }
            let s = js_PublishMsgAsync(js, &msg, nil)
            if msg != nil { natsMsg_Destroy(msg) }
            guard s == NATS_OK else { throw natsError("cannot publish to \(subject)", s) }
        }
        var opts = jsPubOptions()
        jsPubOptions_Init(&opts)
        opts.MaxWait = ackTimeoutMs
        let done = js_PublishAsyncComplete(js, &opts)
        let failed = failures.take()
        guard done == NATS_OK else { throw natsError("stream '\(endpoint.stream)' did not acknowledge the chunk", done) }
        if failed.count > 0 {
            throw MQError(.unavailable, "stream '\(endpoint.stream)' refused \(failed.count) of \(records.count) messages: \(failed.first ?? "")")
        }
    }
}

/// The headers a record carries in NATS (docs/MIRROR.md).
public enum MirrorHeaders {
    public static let msgID = "Nats-Msg-Id"
    public static let topic = "Mq-Topic"
    public static let partition = "Mq-Partition"
    public static let offset = "Mq-Offset"
    public static let timestamp = "Mq-Timestamp"
    public static let key = "Mq-Key"
    public static let nullValue = "Mq-Null-Value"
    public static let headers = "Mq-Headers"
    /// The chain (`PublishChain`): stored only after the message of this id ...
    public static let expectedLastMsgID = "Nats-Expected-Last-Msg-Id"
    /// ... or only when the stream's last sequence is this one.
    public static let expectedLastSequence = "Nats-Expected-Last-Sequence"

    /// The `Nats-Msg-Id` of the record at `offset` of the partition of `subject`.
    static func messageID(subject: String, offset: Int64) -> String { "\(subject):\(offset)" }

    /// A header name NATS carries as is: printable ASCII without ':' or
    /// space, and none of the names mq or NATS reserve.
    static func isPlain(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { $0 > 32 && $0 < 127 && $0 != 58 }
            && !name.lowercased().hasPrefix("nats-") && !name.lowercased().hasPrefix("mq-")
    }

    /// A value NATS carries as is: text without CR or LF.
    static func isPlain(_ value: [UInt8]?) -> Bool {
        guard let value else { return false }
        return !value.contains(10) && !value.contains(13) && value.allSatisfy { $0 >= 32 || $0 == 9 }
            && String(validating: value, as: UTF8.self) != nil
    }

    /// The NATS headers of `r`, whose message id is `id`, in order.
    static func nats(for r: StoredRecord, id: String) -> [(String, String)] {
        var h: [(String, String)] = [
            (msgID, id),
            (topic, r.topic), (partition, String(r.partition)), (offset, String(r.offset)),
            (timestamp, String(r.timestamp)),
        ]
        if let k = r.key { h.append((key, Base64.encode(k))) }
        if r.value == nil { h.append((nullValue, "true")) }
        if !r.headers.isEmpty {
            // The exact list (order, duplicates, null and binary values) ...
            h.append((headers, Base64.encode(RecordBatchBuilder.encodeHeaders(r.headers))))
            // ... and those NATS can show as they are, for its own consumers.
            for x in r.headers where isPlain(x.name) && isPlain(x.value) {
                h.append((x.name, String(decoding: x.value!, as: UTF8.self)))
            }
        }
        return h
    }
}
