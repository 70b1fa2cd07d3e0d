import ArgumentParser
import Glibc
import MQCommandSupport
import MQLog
import MQMirrorNATS

@main
struct MQMirror: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-mirror",
        abstract: "Forward local topics to a NATS JetStream stream, each message exactly once.",
        usage: """
            mq-mirror [<options>] <topic>... nats://HOST[:PORT][,HOST[:PORT]...]/STREAM
            """,
        discussion: "Topics are names or patterns. See mq-mirror(1) and docs/MIRROR.md.",
        version: mqVersion)

    static func main() { runMain("mq-mirror") }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: ArgumentHelp("Local topics (names or patterns), then the destination.", valueName: "topic-or-destination"))
    var arguments: [String] = []

    @Flag(name: [.customShort("e"), .customLong("exit")], help: "Stop when every message there now is forwarded, instead of following the topics.")
    var exitAtEnd = false
    @Option(name: .long, help: ArgumentHelp("The mirror's name: its consumer group is mirror.NAME (default: derived from the topics and the destination).", valueName: "name"))
    var name: String?
    @Option(name: .customLong("subject-prefix"), help: ArgumentHelp("Subjects are PREFIX.TOPIC.PARTITION.", valueName: "prefix"))
    var subjectPrefix = "mq"
    @Flag(name: .long, help: "Create the stream (subjects PREFIX.>) when it does not exist.")
    var create = false
    @Option(name: .long, help: ArgumentHelp("With --create: the stream's replicas.", valueName: "n"))
    var replicas = 1
    @Option(name: .long, help: ArgumentHelp("Give up with status 69 when the server does not accept a chunk for this long (e.g. 30s, 5m); default: keep trying.", valueName: "duration"))
    var timeout: String?
    @Option(name: .customLong("creds"), help: ArgumentHelp("NATS credentials file (user JWT and seed).", valueName: "file"))
    var credsFile: String?
    @Option(name: .customLong("token-file"), help: ArgumentHelp("Read the NATS token from this file (else $NATS_TOKEN, if set).", valueName: "file"))
    var tokenFile: String?
    @Option(name: .customLong("tls-ca"), help: ArgumentHelp("CA certificates to trust for TLS.", valueName: "file"))
    var tlsCA: String?
    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("Client certificate for TLS.", valueName: "file"))
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: ArgumentHelp("Client key for TLS.", valueName: "file"))
    var tlsKey: String?
    @Flag(name: [.customShort("v"), .long], help: "Print a summary line on standard error.")
    var verbose = false

    func validate() throws {
        guard arguments.count >= 2 else { throw ValidationError("give one or more topics, then the destination (nats://HOST:PORT/STREAM)") }
        if replicas < 1 || replicas > 5 { throw ValidationError("--replicas must be from 1 to 5") }
        if tlsKey != nil && tlsCert == nil { throw ValidationError("'--tls-key' needs '--tls-cert'") }
        let prefixOK = !subjectPrefix.isEmpty && !subjectPrefix.hasPrefix(".") && !subjectPrefix.hasSuffix(".")
            && subjectPrefix.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        if !prefixOK { throw ValidationError("--subject-prefix must be dot-separated tokens of letters, digits, '_' or '-'") }
    }

    func run() throws {
        let destination = arguments.last!
        let topics = Array(arguments.dropLast())
        guard let endpoint = try usageValue({ try NATSEndpoint.parse(destination) }) else {
            if destination.hasPrefix("kafka://") {
                throw ValidationError("'\(destination)': Kafka destinations are not supported yet; this mq-mirror forwards to NATS JetStream (nats://HOST:PORT/STREAM)")
            }
            throw ValidationError("'\(destination)' is not a destination: expected nats://HOST[:PORT][,HOST[:PORT]...]/STREAM")
        }
        if let from = topics.first(where: { $0.contains("://") }) {
            throw ValidationError("'\(from)': pulling from a cluster into a local topic is not supported yet; give local topics, then the destination")
        }
        let giveUpMs = try timeout.map { t in try usageValue { try Durations.parseDuration(t) } }
        try runReportingErrors("mq-mirror") {
            signal(SIGPIPE, SIG_IGN)
            var auth = NATSAuth()
            auth.credsFile = credsFile
            if let tokenFile {
                let bytes = try FileSystem.readAll(tokenFile)
                var token = String(decoding: bytes, as: UTF8.self)
                while let last = token.last, last == "\n" || last == "\r" || last == " " { token.removeLast() }
                auth.token = token
            } else if let token = getenv("NATS_TOKEN") {
                auth.token = String(cString: token)
            }
            auth.caFile = tlsCA
            auth.certFile = tlsCert
            auth.keyFile = tlsKey
            let sink = try connect(endpoint, auth: auth, giveUpMs: giveUpMs)
            var options = PushMirrorOptions(topics: topics, name: name ?? Self.defaultName(topics: topics, endpoint: endpoint, prefix: subjectPrefix))
            options.exitAtEnd = exitAtEnd
            options.giveUpAfterMs = giveUpMs
            let mirror = PushMirror(options: options, log: logOptions.log, sink: sink)
            mirror.warn = { printError("mq-mirror", $0) }
            let summary = try mirror.run()
            if verbose {
                printError("mq-mirror", "\(summary.forwarded) message\(summary.forwarded == 1 ? "" : "s") forwarded from \(summary.partitions) partition\(summary.partitions == 1 ? "" : "s") to stream '\(endpoint.stream)'")
            }
        }
    }

    /// The sink, once the server answers: while it does not, tries again
    /// as the mirror retries a chunk, until `giveUpMs`.
    func connect(_ endpoint: NATSEndpoint, auth: NATSAuth, giveUpMs: Int64?) throws -> JetStreamSink {
        StopSignals.install()
        return try retryingWhileUnavailable(giveUpAfterMs: giveUpMs, warn: { printError("mq-mirror", $0) },
                                            stopped: { MQError(StopSignals.exitStatus, "stopped by \(StopSignals.name) before the server answered; nothing forwarded") }) {
            try JetStreamSink(endpoint: endpoint, subjectPrefix: subjectPrefix, auth: auth, create: create,
                              replicas: replicas, connectTimeoutMs: min(giveUpMs ?? 5_000, 5_000))
        }
    }

    /// A name from what the mirror does: the topics, the stream and the prefix.
    static func defaultName(topics: [String], endpoint: NATSEndpoint, prefix: String) -> String {
        let words = topics + ["nats", endpoint.stream, prefix]
        let hash = FNV1a.hash64(words.flatMap { Array($0.utf8) + [0] })
        let readable = (topics.count == 1 && topics[0].allSatisfy { $0.isLetter || $0.isNumber || "._-".contains($0) }) ? topics[0] + "." : ""
        return readable + endpoint.stream + "." + String(hash, radix: 16)
    }
}
