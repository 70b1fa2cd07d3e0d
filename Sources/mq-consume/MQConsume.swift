import ArgumentParser
import MQCommandSupport
import MQLog

@main
struct MQConsume: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-consume",
        abstract: "Consume topics, alone or as a member of a consumer group.",
        usage: "mq-consume [<options>] <topics> ... [-- <command> [<argument> ...]]",
        discussion: """
            With '-- COMMAND', runs COMMAND once per message (the value on its standard input, metadata in MQ_* \
            variables): exit status 0 acknowledges the message; other statuses are retried, then dead-lettered. \
            With -g, the group's committed offsets say where to resume; each partition is read by one \
            member at a time, and a message is committed once it was written out. A TOPIC with characters \
            other than letters, digits, '.', '_' and '-' is an extended regular expression over topic names. \
            See mq-consume(1).
            """,
        version: mqVersion)

    /// The handler command: everything after `--`, split off before parsing.
    nonisolated(unsafe) static var handlerCommand: [String] = []

    static func main() {
        let (own, command) = splitAtTerminator(Array(CommandLine.arguments.dropFirst()))
        handlerCommand = command
        runMain("mq-consume", arguments: own)
    }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: "Topics or topic patterns to consume.", completion: LogCompletion.topics)
    var topics: [String]

    @Option(name: [.customShort("g"), .long], help: "The consumer group: resume from its committed offsets and share partitions with its other members.", completion: LogCompletion.groups)
    var group: String?
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Where a partition without a committed offset starts: beginning (default with -g), end (default without), an offset, or a time.", valueName: "position"))
    var from: String?
    @Flag(name: [.customShort("e"), .customLong("exit")], help: "Exit at the current end of the log instead of waiting for more.")
    var exitAtEnd = false
    @Flag(name: .customLong("read-uncommitted"), help: "Also show records of transactions still open or aborted (default: committed only).")
    var readUncommitted = false
    @Option(name: [.customShort("c"), .long], help: "Exit after delivering N messages.")
    var count: Int?
    @OptionGroup var filterOptions: FilterOptions
    @Option(name: .customLong("commit-interval"), help: ArgumentHelp("Longest time delivered messages wait to be committed.", valueName: "duration"))
    var commitInterval: String = "100ms"

    @OptionGroup var outputOptions: OutputOptions

    @Option(name: .customLong("max-attempts"), help: "With a handler: runs before a failing message is dead-lettered.")
    var maxAttempts: Int = 3
    @Option(name: .long, help: ArgumentHelp("With a handler: first retry delay, doubled each attempt, with jitter.", valueName: "duration"))
    var backoff: String = "1s"
    @Option(name: .customLong("backoff-max"), help: ArgumentHelp("With a handler: longest retry delay.", valueName: "duration"))
    var backoffMax: String = "5m"
    @Option(name: .long, help: ArgumentHelp("With a handler: stop a run after this long (SIGTERM, then SIGKILL 5 s later); it counts as a failure.", valueName: "duration"))
    var timeout: String?
    @Option(name: .customLong("dlq-on"), help: ArgumentHelp("With a handler: an exit status that is permanent, dead-lettered without retries (repeatable).", valueName: "status"))
    var dlqOn: [Int32] = []
    @Option(name: .long, help: ArgumentHelp("With a handler: the dead-letter topic (default: TOPIC.dlq).", valueName: "topic"))
    var dlq: String?
    @Option(name: .customLong("max-age"), help: ArgumentHelp("With a handler: dead-letter messages older than this as expired, without running them.", valueName: "duration"))
    var maxAge: String?
    @Option(name: .long, help: "With a handler: feed up to N messages to one run, formatted as on output; acked or failed together.")
    var batch: Int = 1
    @Flag(name: .long, help: "Work-queue mode: all consumers of the group share every partition message by message (needs -g and a handler).")
    var queue = false
    @Option(name: .long, help: ArgumentHelp("Work-queue mode: how long a consumer holds a message; a run is stopped before its lease ends, and the message is delivered again.", valueName: "duration"))
    var lease: String = "30s"
    @Option(name: [.customShort("P"), .customLong("parallel")], help: "With a handler: run up to N at once (messages with one key never run at once or out of order).")
    var parallel: Int = 1

    @Flag(name: .long, help: "Skip messages whose id (--id-header) the group already processed within --dedup-window (needs -g).")
    var dedup = false
    @Option(name: .customLong("id-header"), help: ArgumentHelp("With --dedup: the header that holds a message's id.", valueName: "name"))
    var idHeader: String?
    @Option(name: .customLong("dedup-window"), help: ArgumentHelp("With --dedup: how long the group remembers an id (default 2m).", valueName: "duration"))
    var dedupWindow: String?

    var command: [String] { MQConsume.handlerCommand }

    func validate() throws {
        if let count, count < 0 { throw ValidationError("'--count' cannot be negative") }
        if maxAttempts < 1 { throw ValidationError("'--max-attempts' must be at least 1") }
        if batch < 1 { throw ValidationError("'--batch' must be at least 1") }
        if parallel < 1 { throw ValidationError("'--parallel' must be at least 1") }
        if queue && (group == nil || command.isEmpty) {
            throw ValidationError("'--queue' needs '-g GROUP' and a handler command after '--'")
        }
        try validateDedup()
        if command.isEmpty {
            let handlerOnly = [("--timeout", timeout != nil), ("--dlq-on", !dlqOn.isEmpty), ("--dlq", dlq != nil), ("--max-age", maxAge != nil),
                               ("--batch", batch != 1), ("--parallel", parallel != 1), ("--max-attempts", maxAttempts != 3)]
            if let (flag, _) = handlerOnly.first(where: { $0.1 }) {
                throw ValidationError("'\(flag)' needs a handler command after '--'")
            }
        }
    }

    /// `--dedup`, `--id-header`, `--dedup-window`.
    func validateDedup() throws {
        if !dedup {
            if idHeader != nil { throw ValidationError("'--id-header' needs '--dedup'") }
            if dedupWindow != nil { throw ValidationError("'--dedup-window' needs '--dedup'") }
            return
        }
        if group == nil { throw ValidationError("'--dedup' needs '-g GROUP' (the group remembers the ids it processed)") }
        if queue { throw ValidationError("'--dedup' cannot be used with '--queue'") }
        guard let idHeader, !idHeader.isEmpty else { throw ValidationError("'--dedup' needs '--id-header NAME', the header that holds each message's id") }
    }

    func run() throws {
        var options = ConsumeOptions(topics: topics)
        options.group = group
        if let from { options.start = try usageValue { try StartPosition.parse(from, nowMs: currentTimeMillis()) } }
        options.exitAtEnd = exitAtEnd
        options.isolation = readUncommitted ? .readUncommitted : .readCommitted
        options.count = count
        options.output = try outputOptions.mode()
        if dedup {
            options.dedupIDHeader = idHeader
            if let dedupWindow {
                options.dedupWindowMs = try usageValue { try Durations.parseDuration(dedupWindow) }
                if options.dedupWindowMs < 1 { throw ValidationError("'--dedup-window' must be positive") }
            }
        }
        options.commitIntervalMs = try usageValue { try Durations.parseDuration(commitInterval) }
        if !command.isEmpty {
            var h = HandlerOptions(command: command)
            h.maxAttempts = maxAttempts
            h.backoffMs = try usageValue { try Durations.parseDuration(backoff) }
            h.backoffMaxMs = try usageValue { try Durations.parseDuration(backoffMax) }
            h.timeoutMs = try timeout.map { t in try usageValue { try Durations.parseDuration(t) } }
            h.permanentStatuses = Set(dlqOn)
            h.deadLetterTopic = dlq
            h.maxAgeMs = try maxAge.map { t in try usageValue { try Durations.parseDuration(t) } }
            h.batch = batch
            h.parallelism = parallel
            options.handler = h
        }
        try runReportingErrors("mq-consume") {
            options.filter = try filterOptions.filter()
            if options.count == 0 { return }
            if queue {
                let consumer = QueueConsumer(options: options, log: logOptions.log)
                consumer.leaseMs = try usageValue { try Durations.parseDuration(lease) }
                try consumer.run()
            } else {
                try Consumer(options: options, log: logOptions.log).run()
            }
        }
    }
}
