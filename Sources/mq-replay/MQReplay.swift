import ArgumentParser
import Glibc
import MQCommandSupport
import MQLog

@main
struct MQReplay: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-replay",
        abstract: "Print a range of a topic again, copy it into a topic exactly once, or move a consumer group's offsets.",
        usage: """
            mq-replay [<options>] <topic> [--from <position>] [--to <position>]
            mq-replay [<options>] <topic> --into <dest> [--restamp] [--name <name>] [--again]
            mq-replay -g <group> <topic> --reset-to <position> [--dry-run]
            """,
        discussion: "--from and --to take beginning, end, an offset, PARTITION:OFFSET,... or a time; --to is inclusive. See mq-replay(1).",
        version: mqVersion)

    static func main() { runMain("mq-replay") }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: "The topic to replay.", completion: LogCompletion.topics)
    var topic: String

    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("First message: beginning (default), end, an offset, PARTITION:OFFSET,..., or a time.", valueName: "position"))
    var from: String?
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Last message, included: end (default, as it is at the start), an offset, PARTITION:OFFSET,..., or a time.", valueName: "position"))
    var to: String?
    @Option(name: [.customShort("p"), .long], help: "Only this partition.")
    var partition: Int32?
    @OptionGroup var filterOptions: FilterOptions
    @Option(name: .long, help: ArgumentHelp("At most this many messages a second: N, N/s, N/m or N/h.", valueName: "rate"))
    var rate: String?
    @Flag(name: [.customShort("v"), .long], help: "Print a summary on standard error.")
    var verbose = false
    @OptionGroup var outputOptions: OutputOptions

    @Option(name: .long, help: ArgumentHelp("Copy the range into this topic (TOPIC itself included) instead of printing it, each message exactly once however often the replay is interrupted and run again.", valueName: "topic"), completion: LogCompletion.topics)
    var into: String?
    @Flag(name: .long, help: "With --into: give the copies the time of the copy instead of their original timestamps.")
    var restamp = false
    @Option(name: .long, help: ArgumentHelp("With --into: name the replay instead of identifying it by its arguments.", valueName: "name"))
    var name: String?
    @Flag(name: .long, help: "With --into: copy again a replay that is complete.")
    var again = false
    @Flag(name: .customLong("no-create"), help: "With --into: fail when the destination topic does not exist instead of creating it.")
    var noCreate = false
    @Flag(name: .customLong("no-wait"), help: "With --into: fail with status 75 when the same replay runs elsewhere, instead of waiting for it.")
    var noWait = false

    @Option(name: [.customShort("g"), .long], help: "With --reset-to: the consumer group whose offsets move.", completion: LogCompletion.groups)
    var group: String?
    @Option(name: .customLong("reset-to"), parsing: .unconditional, help: ArgumentHelp("Move the group's committed offsets: beginning, end, an offset, +N, -N, or a time.", valueName: "position"))
    var resetTo: String?
    @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "With --reset-to: print the offsets before and after, change nothing.")
    var dryRun = false
    @Flag(name: .customLong("read-uncommitted"), help: "Also show records of transactions still open or aborted (default: committed only).")
    var readUncommitted = false

    func validate() throws {
        if (group == nil) != (resetTo == nil) { throw ValidationError("'-g GROUP' and '--reset-to' go together") }
        if resetTo != nil {
            let replayOnly = [("--from", from != nil), ("--to", to != nil), ("--rate", rate != nil),
                              ("--grep", filterOptions.grep != nil), ("--key", filterOptions.key != nil), ("--header", !filterOptions.header.isEmpty)]
            if let (flag, _) = replayOnly.first(where: { $0.1 }) { throw ValidationError("'\(flag)' cannot be used with '--reset-to'") }
        } else if dryRun {
            throw ValidationError("'--dry-run' needs '--reset-to'")
        }
        if into == nil {
            let intoOnly = [("--restamp", restamp), ("--name", name != nil), ("--again", again), ("--no-create", noCreate), ("--no-wait", noWait)]
            if let (flag, _) = intoOnly.first(where: { $0.1 }) { throw ValidationError("'\(flag)' needs '--into'") }
        } else {
            if resetTo != nil { throw ValidationError("'--into' cannot be used with '--reset-to'") }
            if outputOptions.delimiter != nil || outputOptions.nullSeparated || outputOptions.format != nil || outputOptions.json {
                throw ValidationError("'--into' writes to a topic: '--delimiter', '--null', '--format' and '--json' are for standard output")
            }
        }
    }

    func run() throws {
        let now = currentTimeMillis()
        if let group, let resetTo {
            let target = try usageValue { try ResetTarget.parse(resetTo, nowMs: now) }
            try runReportingErrors("mq-replay") {
                let reset = try OffsetReset(log: logOptions.log, group: group, topic: topic, partition: partition, target: target)
                let planned = try reset.plan()
                let rows = dryRun ? planned : try reset.apply(planned)
                print(renderResetTable(rows), terminator: "")
            }
            return
        }
        var options = ReplayOptions(topic: topic)
        options.from = try usageValue { try ReplayBound.parse(from ?? "beginning", isTo: false, nowMs: now) }
        options.to = try usageValue { try ReplayBound.parse(to ?? "end", isTo: true, nowMs: now) }
        try usageValue { try ReplayBound.validate(from: options.from, to: options.to) }
        options.partition = partition
        options.ratePerSecond = try rate.map { r in try usageValue { try RateLimiter.parse(r) } }
        options.output = try outputOptions.mode()
        // A progress line at a terminal, unless the messages go to the same one.
        options.progress = isatty(2) != 0 && (into != nil || isatty(1) == 0)
        options.verbose = verbose
        options.isolation = readUncommitted ? .readUncommitted : .readCommitted
        try runReportingErrors("mq-replay") {
            options.filter = try filterOptions.filter()
            if let into {
                var copy = ReplayIntoOptions(destination: into)
                copy.restamp = restamp
                copy.name = name
                copy.again = again
                copy.create = !noCreate
                copy.wait = !noWait
                copy.identityWords = ReplayIntoOptions.identityWords(from: from, to: to, partition: partition, grep: filterOptions.grep,
                                                                     key: filterOptions.key, headers: filterOptions.header)
                let summary = try ReplayCopier(options: options, into: copy, log: logOptions.log).run()
                if let line = summary.report(verbose: verbose) { printError("mq-replay", line) }
                return
            }
            let summary = try Replayer(options: options, log: logOptions.log).run()
            if verbose { printError("mq-replay", summary.report) }
        }
    }
}
