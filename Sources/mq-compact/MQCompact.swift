import ArgumentParser
import Glibc
import MQCommandSupport
import MQLog

@main
struct MQCompact: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-compact",
        abstract: "Apply retention and key compaction to topics; check and repair segments.",
        discussion: "Silent on success; meant for cron. See mq-compact(1).",
        version: mqVersion)

    static func main() { runMain("mq-compact") }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: "Topics or topic patterns to process.", completion: LogCompletion.topics)
    var topics: [String] = []

    @Flag(name: [.customShort("a"), .long], help: "Process every topic, and expire idle consumer-group state.")
    var all = false
    @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "Change nothing; print the summary line of what would be done.")
    var dryRun = false
    @Flag(name: [.customShort("v"), .long], help: "Print one summary line.")
    var verbose = false
    @Flag(name: .customLong("no-wait"), help: "Exit with status 75 instead of waiting when another mq-compact is running.")
    var noWait = false
    @Flag(name: .long, help: "Compact regardless of min.cleanable.dirty.ratio.")
    var force = false
    @Flag(name: .customLong("ignore-consumers"), help: "Let retention delete segments that consumer groups have not read yet.")
    var ignoreConsumers = false
    @Flag(name: .long, help: "Only validate every batch and index; change nothing; exit 65 on problems.")
    var check = false
    @Flag(name: .long, help: "Validate, cut torn tails, rebuild indexes; exit 65 on damage it cannot fix.")
    var repair = false
    @Option(name: .customLong("group-expiry"), help: ArgumentHelp("With --all: expire consumer-group state idle for this long.", valueName: "duration"))
    var groupExpiry: String = "7d"

    func validate() throws {
        if all && !topics.isEmpty { throw ValidationError("give topics or --all, not both") }
        if !all && topics.isEmpty { throw ValidationError("name the topics to process, or use --all") }
        if check && repair { throw ValidationError("'--check' and '--repair' are mutually exclusive") }
        if (check || repair) && (dryRun || force || ignoreConsumers) {
            throw ValidationError("'--dry-run', '--force' and '--ignore-consumers' apply to compaction, not to '--check' or '--repair'")
        }
    }

    func run() throws {
        let expiryMs = try usageValue { try Durations.parseDuration(groupExpiry) }
        try runReportingErrors("mq-compact") {
            var run = MaintenanceRun(log: logOptions.log, now: currentTimeMillis())
            run.topics = topics
            run.all = all
            run.mode = check ? .check : repair ? .repair : .compact
            run.options.dryRun = dryRun
            run.options.force = force
            run.options.ignoreConsumers = ignoreConsumers
            run.wait = !noWait
            run.verbose = verbose || dryRun
            run.groupExpiryMs = expiryMs
            try run.run { line in print(line) }
            fflush(nil)
        }
    }
}
