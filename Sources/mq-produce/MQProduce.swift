import ArgumentParser
import MQCommandSupport
import MQLog

@main
struct MQProduce: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-produce",
        abstract: "Append standard input to a topic, one message per line.",
        usage: "mq-produce [<options>] <topic> [-- <command> [<argument> ...]]",
        discussion: "Exit status 0 means every accepted message is written and, unless --sync none, fsynced. See mq-produce(1).",
        version: mqVersion)

    /// The command of `--atomic -- COMMAND`: everything after `--`, split off before parsing.
    nonisolated(unsafe) static var generatorCommand: [String] = []

    static func main() {
        let (own, command) = splitAtTerminator(Array(CommandLine.arguments.dropFirst()))
        generatorCommand = command
        runMain("mq-produce", arguments: own)
    }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: "The topic to append to (created with defaults when missing).", completion: LogCompletion.topics)
    var topic: String

    @Option(name: [.customShort("d"), .customShort("D"), .long], help: ArgumentHelp("Message delimiter, -D as kcat (escapes: \\n \\t \\r \\0 \\\\ \\xHH).", valueName: "delim"))
    var delimiter: String?
    @Flag(name: [.customShort("0"), .customLong("null")], help: "Messages are NUL-separated, as with xargs -0.")
    var nullSeparated = false
    @Flag(name: .long, help: "All of standard input is one message.")
    var whole = false
    @Flag(name: [.customShort("J"), .long], help: "Read one JSON envelope per line: key, value, headers, partition, timestamp.")
    var json = false
    @Option(name: [.customShort("K"), .customLong("key-delimiter")], help: ArgumentHelp("Split each message into key and value at the first DELIM.", valueName: "delim"))
    var keyDelimiter: String?
    @Option(name: [.customShort("k"), .long], help: "Give every message this key.")
    var key: String?
    @Option(name: [.customShort("H"), .customLong("header")], help: ArgumentHelp("Add a header to every message (repeatable).", valueName: "name=value"))
    var headers: [String] = []
    @Option(name: [.customShort("p"), .long], help: "Write every message to this partition.")
    var partition: Int32?
    @Option(name: .long, help: "Partition count when the topic is created (default 1).")
    var partitions: Int32?
    @Flag(name: .customLong("no-create"), help: "Fail if the topic does not exist instead of creating it.")
    var noCreate = false
    @Option(name: [.customShort("z"), .long], help: "Compression codec (default: the topic's compression.type, else none).")
    var compression: CompressionCodec?
    @Option(name: .customLong("batch-messages"), help: "Most messages in one batch.")
    var batchMessages: Int = 100_000
    @Option(name: .customLong("batch-bytes"), help: ArgumentHelp("Most bytes in one batch before compression (default 1MiB, at most max.message.bytes).", valueName: "size"))
    var batchBytes: String?
    @Option(name: .long, help: ArgumentHelp("Longest a message waits for its batch to fill when input pauses.", valueName: "duration"))
    var linger: String = "5ms"
    @Option(name: .long, help: "When to fsync: exit (before exiting), batch (every batch), none.")
    var sync: SyncPolicy = .exit
    @Flag(name: .customLong("print-offsets"), help: "Print 'partition offset' for each message once it is written.")
    var printOffsets = false
    @Flag(name: .customLong("skip-bad"), help: "Report bad input lines on standard error and go on.")
    var skipBad = false
    @Option(name: .long, help: ArgumentHelp("Accept at most this many messages a second: N, N/s, N/m or N/h.", valueName: "rate"))
    var rate: String?
    @Flag(name: [.customShort("v"), .long], help: "Print a summary line on standard error at the end, and report waits for the topic's backlog bound (mq.max.backlog.*).")
    var verbose = false
    @Option(name: .long, help: ArgumentHelp("Make each message visible to consumers this long after it is accepted (kept in TOPIC.delay until then).", valueName: "duration"))
    var delay: String?
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Make every message visible to consumers at this time (ISO-8601, or @epoch-ms).", valueName: "time"))
    var at: String?

    @Option(name: .customLong("id-header"), help: ArgumentHelp("Write each message id once: the id is this header of each JSON envelope (--json), or the key (-K, also stored in the header).", valueName: "name"))
    var idHeader: String?
    @Option(name: .customLong("dedup-window"), help: ArgumentHelp("With --id-header: how long an id is remembered (default 2m).", valueName: "duration"))
    var dedupWindow: String?
    @Option(name: .long, help: ArgumentHelp("A named producer: a rerun with the same input writes only the records the last run did not.", valueName: "name"))
    var producer: String?
    @Flag(name: .long, help: "Write all of the input as one transaction: visible to readers only if it all went in (clean end of input, and with '-- COMMAND' its success).")
    var atomic = false
    @Option(name: .customLong("abort-on-status"), help: ArgumentHelp("With '--atomic -- COMMAND': the command's exit statuses that abort (default: any but 0).", valueName: "list"))
    var abortOnStatus: String?
    @Option(name: .customLong("transaction-timeout"), help: ArgumentHelp("With --atomic: how long others wait for this transaction before they may abort it (default 15m).", valueName: "duration"))
    var transactionTimeout: String?

    func validate() throws {
        let command = MQProduce.generatorCommand
        if !command.isEmpty && !atomic { throw ValidationError("'-- COMMAND' needs --atomic") }
        if abortOnStatus != nil && command.isEmpty { throw ValidationError("'--abort-on-status' needs '--atomic -- COMMAND'") }
        if transactionTimeout != nil && !atomic { throw ValidationError("'--transaction-timeout' needs --atomic") }
        if atomic && (delay != nil || at != nil) { throw ValidationError("'--atomic' cannot be used with '--delay' or '--at'") }
        if [delimiter != nil, nullSeparated, whole, json].filter({ $0 }).count > 1 {
            throw ValidationError("'--delimiter', '--null', '--whole' and '--json' are mutually exclusive")
        }
        if keyDelimiter != nil && key != nil { throw ValidationError("'--key-delimiter' and '--key' are mutually exclusive") }
        if delay != nil && at != nil { throw ValidationError("'--delay' and '--at' are mutually exclusive") }
        if (delay != nil || at != nil) && partition != nil { throw ValidationError("'--partition' cannot be used with '--delay' or '--at' (the partition is chosen when the message is moved)") }
        if batchMessages < 1 { throw ValidationError("'--batch-messages' must be at least 1") }
        if let p = partitions, p < 1 { throw ValidationError("'--partitions' must be at least 1") }
        if let p = partition, p < 0 { throw ValidationError("'--partition' cannot be negative") }
        try validateExactlyOnce()
    }

    /// `--id-header`, `--dedup-window` and `--producer`.
    func validateExactlyOnce() throws {
        if idHeader != nil && producer != nil { throw ValidationError("'--id-header' and '--producer' are mutually exclusive") }
        if dedupWindow != nil && idHeader == nil { throw ValidationError("'--dedup-window' needs '--id-header'") }
        if let h = idHeader {
            if h.isEmpty { throw ValidationError("'--id-header' needs a header name") }
            if !json && keyDelimiter == nil { throw ValidationError("'--id-header' needs ids: use --json (the envelope's header NAME) or -K DELIM (the key)") }
        }
        if idHeader != nil || producer != nil {
            let flag = idHeader != nil ? "--id-header" : "--producer"
            if delay != nil || at != nil { throw ValidationError("'\(flag)' cannot be used with '--delay' or '--at'") }
            if atomic { throw ValidationError("'\(flag)' cannot be used with '--atomic'") }
        }
        if producer != nil && printOffsets { throw ValidationError("'--print-offsets' cannot be used with '--producer'") }
    }

    func run() throws {
        var options = ProduceOptions(topic: topic)
        if let delimiter { options.framing = .delimited(try usageValue { try parseDelimiter(delimiter) }) }
        if nullSeparated { options.framing = .delimited([0]) }
        if whole { options.framing = .whole }
        if json { options.framing = .json }
        options.keyDelimiter = try keyDelimiter.map { d in try usageValue { try parseDelimiter(d) } }
        options.fixedKey = key.map { Array($0.utf8) }
        options.headers = try headers.map(parseHeaderOption)
        options.partition = partition
        options.createPartitions = partitions
        options.create = !noCreate
        options.codec = compression
        options.batchMessages = batchMessages
        options.batchBytes = try batchBytes.map { b in try usageValue { Int(try Sizes.parseByteCount(b)) } }
        options.lingerMs = try usageValue { try Durations.parseDuration(linger) }
        options.sync = sync
        options.delayMs = try delay.map { d in try usageValue { try Durations.parseDuration(d) } }
        options.deliverAtMs = try at.map { t in try usageValue { try TimeSpec.parseTime(t, nowMs: currentTimeMillis()) } }
        options.printOffsets = printOffsets
        options.skipBad = skipBad
        options.ratePerSecond = try rate.map { r in try usageValue { try RateLimiter.parse(r) } }
        options.verbose = verbose
        options.idHeader = idHeader
        if let dedupWindow {
            options.dedupWindowMs = try usageValue { try Durations.parseDuration(dedupWindow) }
            if options.dedupWindowMs < 1 { throw ValidationError("'--dedup-window' must be positive") }
        }
        if let producer {
            try usageValue { try CopyJournal.validateID(Producer.producerCopyID(name: producer, topic: topic)) }
            options.producerName = producer
        }
        options.atomic = atomic
        if !MQProduce.generatorCommand.isEmpty { options.command = MQProduce.generatorCommand }
        options.abortOnStatus = try abortOnStatus.map { list in try usageValue { try ProduceOptions.parseStatusList(list) } }
        if let transactionTimeout {
            options.transactionTimeoutMs = try usageValue { try Durations.parseDuration(transactionTimeout) }
            if options.transactionTimeoutMs < 1 { throw ValidationError("'--transaction-timeout' must be positive") }
        }
        try runReportingErrors("mq-produce") {
            let producer = Producer(options: options, log: logOptions.log)
            producer.warn = { printError("mq-produce", $0) }
            let summary = try producer.run()
            if verbose { printError("mq-produce", summary.line(topic: topic)) }
        }
    }
}

