import ArgumentParser
import Glibc
import MQCommandSupport
import MQLog
import MQMirrorKafka
import MQMirrorNATS

@main
struct MQMirror: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-mirror",
        abstract: "Forward local topics to a NATS JetStream stream or a Kafka topic, or pull one into a local topic, each message exactly once.",
        usage: """
            mq-mirror [<options>] <topic>... nats://HOST[:PORT][,HOST[:PORT]...]/STREAM
            mq-mirror [<options>] <topic>... kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC
            mq-mirror [<options>] nats://HOST[:PORT][,HOST[:PORT]...]/STREAM <topic>
            mq-mirror [<options>] kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC <topic>
            """,
        discussion: "Pushing: topics are names or patterns. Pulling: the cluster first, then one local topic. See mq-mirror(1) and docs/MIRROR.md.",
        version: mqVersion)

    static func main() { runMain("mq-mirror") }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: ArgumentHelp("Local topics (names or patterns), then the destination; or the source, then a local topic.", valueName: "topic-or-url"))
    var arguments: [String] = []

    @Flag(name: [.customShort("e"), .customLong("exit")], help: "Stop when every message there now is forwarded (or pulled), instead of following.")
    var exitAtEnd = false
    @Option(name: .long, help: ArgumentHelp("The mirror's name: its consumer group (pushing) or copy (pulling) is mirror.NAME (default: derived from the topics and the cluster).", valueName: "name"))
    var name: String?
    @Option(name: .customLong("subject-prefix"), help: ArgumentHelp("Subjects are PREFIX.TOPIC.PARTITION.", valueName: "prefix"))
    var subjectPrefix = "mq"
    @Flag(name: .long, help: "Create the stream (subjects PREFIX.>) or the Kafka topic when it does not exist; pulling: the local topic.")
    var create = false
    @Flag(name: .customLong("shared-stream"), help: "NATS push: other publishers write to the stream too; publish without chaining each message to the one before (a partition's order then holds only while the stream's leader does not change mid-chunk).")
    var sharedStream = false
    @Option(name: .long, help: ArgumentHelp("With --create: the stream's or Kafka topic's replicas (default: 1 for NATS, the cluster's default for Kafka).", valueName: "n"))
    var replicas: Int?
    @Option(name: .long, help: ArgumentHelp("With --create, Kafka: the topic's partitions (default: the most of the topics named, else 1); pulling: the local topic's (default: the Kafka topic's, 1 for NATS).", valueName: "n"))
    var partitions: Int32?
    @Option(name: .long, help: ArgumentHelp("Partition P to partition P (same), by murmur2 of the key (murmur2), or same when the destination has enough partitions, else murmur2 (auto).", valueName: "how"))
    var partitioner: MirrorPartitioning = .auto
    @Option(name: [.customShort("z"), .customLong("compression")], help: "Kafka: the producer's compression codec (compression.codec; default: none).")
    var compressionCodec: CompressionCodec?
    var compression: CompressionCodec { compressionCodec ?? .none }
    @Option(name: .customShort("X"), help: ArgumentHelp("Kafka: a librdkafka property (repeatable; after -F, so it wins).", valueName: "key=value"))
    var kafkaProperties: [String] = []
    @Option(name: .customShort("F"), help: ArgumentHelp("Kafka: librdkafka properties from a file of key=value lines (# comments).", valueName: "file"))
    var propertiesFile: String?
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
    @Option(name: .long, help: ArgumentHelp("At most this many messages a second: N, N/s, N/m or N/h.", valueName: "rate"))
    var rate: String?
    @Flag(name: [.customShort("v"), .long], help: "Print a summary line on standard error.")
    var verbose = false

    /// `--rate` in messages a second, checked.
    func ratePerSecond() throws -> Double? { try rate.map { r in try usageValue { try RateLimiter.parse(r) } } }

    func validate() throws {
        guard arguments.count >= 2 else { throw ValidationError("give one or more topics, then the destination (nats://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC)") }
        if let replicas, replicas < 1 || replicas > 32767 { throw ValidationError("--replicas must be at least 1") }
        if let partitions, partitions < 1 { throw ValidationError("--partitions must be at least 1") }
        if tlsKey != nil && tlsCert == nil { throw ValidationError("'--tls-key' needs '--tls-cert'") }
        let prefixOK = !subjectPrefix.isEmpty && !subjectPrefix.hasPrefix(".") && !subjectPrefix.hasSuffix(".")
            && subjectPrefix.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        if !prefixOK { throw ValidationError("--subject-prefix must be dot-separated tokens of letters, digits, '_' or '-'") }
    }

    func run() throws {
        let giveUpMs = try timeout.map { t in try usageValue { try Durations.parseDuration(t) } }
        _ = try ratePerSecond()  // a bad --rate is a usage error before anything connects
        if arguments[0].contains("://") { return try runPull(giveUpMs: giveUpMs) }
        let destination = arguments.last!
        let topics = Array(arguments.dropLast())
        if let from = topics.first(where: { $0.contains("://") }) {
            throw ValidationError("'\(from)': give local topics, then the destination (pushing), or the source, then one local topic (pulling)")
        }
        if let endpoint = try usageValue({ try KafkaEndpoint.parse(destination) }) {
            return try runKafka(endpoint, topics: topics, giveUpMs: giveUpMs)
        }
        guard let endpoint = try usageValue({ try NATSEndpoint.parse(destination) }) else {
            throw ValidationError("'\(destination)' is not a destination: expected nats://HOST[:PORT][,HOST[:PORT]...]/STREAM or kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC")
        }
        let kafkaOnly = [("-X", !kafkaProperties.isEmpty), ("-F", propertiesFile != nil), ("--partitions", partitions != nil),
                         ("--partitioner", partitioner != .auto), ("-z", compression != .none)]
        if let flag = kafkaOnly.first(where: { $0.1 }) { throw ValidationError("'\(flag.0)' applies to Kafka destinations only") }
        if let replicas, replicas > 5 { throw ValidationError("--replicas must be from 1 to 5 for a NATS stream") }
        try runReportingErrors("mq-mirror") {
            signal(SIGPIPE, SIG_IGN)
            let auth = try natsAuth()
            let sink = try connect(giveUpMs: giveUpMs) {
                try JetStreamSink(endpoint: endpoint, subjectPrefix: subjectPrefix, auth: auth, create: create,
                                  replicas: replicas ?? 1, connectTimeoutMs: min(giveUpMs ?? 5_000, 5_000))
            }
            sink.chained = !sharedStream
            let name = name ?? Self.defaultName(topics: topics, words: ["nats", endpoint.stream, subjectPrefix], destination: endpoint.stream)
            try mirror(topics, name: name, sink: sink, giveUpMs: giveUpMs, to: "stream '\(endpoint.stream)'")
        }
    }

    func runKafka(_ endpoint: KafkaEndpoint, topics: [String], giveUpMs: Int64?) throws {
        let natsOnly = [("--creds", credsFile != nil), ("--token-file", tokenFile != nil), ("--tls-ca", tlsCA != nil),
                        ("--tls-cert", tlsCert != nil), ("--subject-prefix", subjectPrefix != "mq"), ("--shared-stream", sharedStream)]
        if let flag = natsOnly.first(where: { $0.1 }) {
            throw ValidationError("'\(flag.0)' applies to NATS destinations only; for Kafka, give TLS and SASL settings with -X or -F")
        }
        try runReportingErrors("mq-mirror") {
            signal(SIGPIPE, SIG_IGN)
            let log = logOptions.log
            let name = name ?? Self.defaultName(topics: topics, words: ["kafka", endpoint.topic], destination: endpoint.topic)
            var options = KafkaSinkOptions(endpoint: endpoint, mirrorName: name)
            if let propertiesFile { try options.properties.add(file: propertiesFile) }
            for p in kafkaProperties { try options.properties.add(option: p) }
            options.compression = compression
            options.partitioning = partitioner
            options.create = create
            options.partitions = try partitions ?? topics.filter { LogDirectory.isValidTopicName($0) && log.topicExists($0) }
                .map { try log.openTopic($0).partitions }.max() ?? 1
            options.replicas = replicas.map { Int16($0) } ?? -1
            options.requestTimeoutMs = Int32(max(1_000, min(giveUpMs ?? 10_000, 10_000)))
            let sink = try connect(giveUpMs: giveUpMs) { try KafkaSink(options: options) }
            sink.localPartitions = { try log.openTopic($0).partitions }
            try mirror(topics, name: name, sink: sink, giveUpMs: giveUpMs, to: "Kafka topic '\(endpoint.topic)'")
        }
    }

    /// Credentials and TLS files for NATS, the token from its file or `$NATS_TOKEN`.
    func natsAuth() throws -> NATSAuth {
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
        return auth
    }

    /// `mq-mirror nats://.../STREAM TOPIC` or `mq-mirror kafka://.../KTOPIC TOPIC`.
    func runPull(giveUpMs: Int64?) throws {
        guard arguments.count == 2 else {
            throw ValidationError("pulling takes the source (nats://HOST:PORT/STREAM or kafka://HOST:PORT/TOPIC), then one local topic")
        }
        let url = arguments[0], topic = arguments[1]
        let pushOnly = [("--subject-prefix", subjectPrefix != "mq"), ("--replicas", replicas != nil), ("-z", compression != .none),
                        ("--shared-stream", sharedStream)]
        if let flag = pushOnly.first(where: { $0.1 }) { throw ValidationError("'\(flag.0)' applies to pushing only") }
        let kafka = try usageValue { try KafkaEndpoint.parse(url) }
        let nats = kafka == nil ? try usageValue({ try NATSEndpoint.parse(url) }) : nil
        guard kafka != nil || nats != nil else {
            throw ValidationError("'\(url)' is not a source: expected nats://HOST[:PORT][,HOST[:PORT]...]/STREAM or kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC")
        }
        let wrongEngine = kafka != nil
            ? [("--creds", credsFile != nil), ("--token-file", tokenFile != nil), ("--tls-ca", tlsCA != nil), ("--tls-cert", tlsCert != nil)]
            : [("-X", !kafkaProperties.isEmpty), ("-F", propertiesFile != nil)]
        if let flag = wrongEngine.first(where: { $0.1 }) { throw ValidationError("'\(flag.0)' applies to \(kafka != nil ? "NATS" : "Kafka") only") }
        try runReportingErrors("mq-mirror") {
            signal(SIGPIPE, SIG_IGN)
            let source: MirrorSource
            let name: String
            if let nats {
                name = self.name ?? Self.defaultName(topics: [topic], words: ["pull", "nats", nats.stream], destination: nats.stream)
                try CopyJournal.validateID(PullMirror.copyID(name))
                let auth = try natsAuth()
                source = try connect(giveUpMs: giveUpMs) {
                    try JetStreamSource(endpoint: nats, name: name, auth: auth, connectTimeoutMs: min(giveUpMs ?? 5_000, 5_000))
                }
            } else if let kafka {
                name = self.name ?? Self.defaultName(topics: [topic], words: ["pull", "kafka", kafka.topic], destination: kafka.topic)
                try CopyJournal.validateID(PullMirror.copyID(name))
                var options = KafkaSinkOptions(endpoint: kafka, mirrorName: name)
                if let propertiesFile { try options.properties.add(file: propertiesFile) }
                for p in kafkaProperties { try options.properties.add(option: p) }
                options.requestTimeoutMs = Int32(max(1_000, min(giveUpMs ?? 10_000, 10_000)))
                let kafkaSource = try connect(giveUpMs: giveUpMs) { try KafkaSource(options: options) }
                kafkaSource.warn = { printError("mq-mirror", $0) }
                source = kafkaSource
            } else {
                throw MQError.internalError("no source")
            }
            var options = PullMirrorOptions(topic: topic, name: name)
            options.exitAtEnd = exitAtEnd
            options.create = create
            options.partitions = partitions
            options.partitioning = partitioner
            options.giveUpAfterMs = giveUpMs
            options.ratePerSecond = try ratePerSecond()
            options.progress = isatty(2) != 0
            let mirror = PullMirror(options: options, log: logOptions.log, source: source)
            mirror.warn = { printError("mq-mirror", $0) }
            let summary = try mirror.run()
            if verbose {
                printError("mq-mirror", "\(summary.copied) message\(summary.copied == 1 ? "" : "s") copied into '\(topic)' from \(url), \(summary.skipped) found copied before")
            }
        }
    }

    /// Runs the mirror into `sink` until stopped (or the end, with -e).
    func mirror(_ topics: [String], name: String, sink: MirrorSink, giveUpMs: Int64?, to what: String) throws {
        var options = PushMirrorOptions(topics: topics, name: name)
        options.exitAtEnd = exitAtEnd
        options.giveUpAfterMs = giveUpMs
        options.ratePerSecond = try ratePerSecond()
        options.progress = isatty(2) != 0
        let mirror = PushMirror(options: options, log: logOptions.log, sink: sink)
        mirror.warn = { printError("mq-mirror", $0) }
        let summary = try mirror.run()
        if verbose {
            printError("mq-mirror", "\(summary.forwarded) message\(summary.forwarded == 1 ? "" : "s") forwarded from \(summary.partitions) partition\(summary.partitions == 1 ? "" : "s") to \(what)")
        }
    }

    /// The sink, once the server answers: while it does not, tries again
    /// as the mirror retries a chunk, until `giveUpMs`.
    func connect<Sink>(giveUpMs: Int64?, _ make: () throws -> Sink) throws -> Sink {
        StopSignals.install()
        return try retryingWhileUnavailable(giveUpAfterMs: giveUpMs, warn: { printError("mq-mirror", $0) },
                                            stopped: { MQError(StopSignals.exitStatus, "stopped by \(StopSignals.name) before the server answered; nothing forwarded") },
                                            make)
    }

    /// A name from what the mirror does: the topics and `words` (the engine,
    /// the stream or Kafka topic, the subject prefix).
    static func defaultName(topics: [String], words: [String], destination: String) -> String {
        let hash = FNV1a.hash64((topics + words).flatMap { Array($0.utf8) + [0] })
        let readable = (topics.count == 1 && topics[0].allSatisfy { $0.isLetter || $0.isNumber || "._-".contains($0) }) ? topics[0] + "." : ""
        return readable + destination + "." + String(hash, radix: 16)
    }
}

extension MirrorPartitioning: ExpressibleByArgument {
    public static var allValueDescriptions: [String: String] {
        ["auto": "same when the destination has enough partitions, else murmur2 (default)",
         "same": "partition P to partition P", "murmur2": "murmur2 of the key, as Kafka's default partitioner"]
    }
}
