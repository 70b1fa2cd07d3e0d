import ArgumentParser
import Glibc
import MQCommandSupport
import MQLog

@main
struct MQGroup: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-group",
        abstract: "List, describe, delete and reset consumer groups.",
        discussion: "Reads the log directory without taking any lock, except to delete or reset. See mq-group(1).",
        version: mqVersion,
        subcommands: [List.self, Describe.self, Delete.self, Reset.self])

    static func main() { runMain("mq-group") }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List groups: members, topics, lag and last commit.")
        @OptionGroup var logOptions: LogOptions
        @Flag(name: [.customShort("J"), .long], help: "Print one JSON object.") var json = false
        @Flag(name: [.customShort("q"), .long], help: "Print the group names alone, one per line.") var quiet = false

        func validate() throws {
            if json && quiet { throw ValidationError("'--json' and '--quiet' cannot be used together") }
        }

        func run() throws {
            try runReportingErrors("mq-group") {
                let log = logOptions.log
                if quiet {
                    for name in try LogStats.listGroups(log) { print(name) }
                    return
                }
                let now = currentTimeMillis()
                let groups = try GroupAdmin.list(log)
                print(json ? GroupAdmin.json(groups, now: now) : GroupAdmin.text(groups, now: now), terminator: json ? "\n" : "")
            }
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Show groups per partition: committed offset, log end, lag, owners, in-flight and retrying messages.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "Groups to describe (default: all).", completion: LogCompletion.groups) var groups: [String] = []
        @Option(name: [.customShort("t"), .long], help: ArgumentHelp("Only this topic or topic pattern (repeatable).", valueName: "topic"), completion: LogCompletion.topics)
        var topic: [String] = []
        @Flag(name: [.customShort("J"), .long], help: "Print one JSON object per group, one per line.") var json = false

        func run() throws {
            try runReportingErrors("mq-group") {
                let now = currentTimeMillis()
                let descriptions = try GroupAdmin.describe(logOptions.log, groups: groups, topics: topic)
                for (i, d) in descriptions.enumerated() {
                    if json {
                        print(GroupAdmin.json(d, now: now))
                    } else {
                        print((i > 0 ? "\n" : "") + GroupAdmin.text(d, now: now), terminator: "")
                    }
                }
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete groups: their committed offsets, work-queue state and member files.",
            discussion: "Refused (status 75) while a group has a live member or a held lease, unless --force.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "The groups to delete.", completion: LogCompletion.groups) var groups: [String]
        @Flag(name: .long, help: "Delete even while consumers run: they go on with what they hold, and their commits are lost.")
        var force = false
        @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "Say what would be deleted, change nothing.") var dryRun = false
        @Flag(name: [.customShort("q"), .long], help: "Print nothing on success.") var quiet = false
        @Flag(name: [.customShort("J"), .long], help: "Print one JSON object per group deleted, one per line.") var json = false

        func validate() throws {
            if json && quiet { throw ValidationError("'--json' and '--quiet' cannot be used together") }
        }

        func run() throws {
            try runReportingErrors("mq-group") {
                for name in groups {
                    let d = try GroupAdmin.delete(logOptions.log, group: name, force: force, dryRun: dryRun)
                    if !d.inUse.isEmpty { printError("mq-group", "group '\(name)' was in use: \(d.inUse.joined(separator: "; "))") }
                    if json {
                        print(GroupAdmin.json(d))
                        fflush(nil)
                    } else if !quiet {
                        printError("mq-group", "\(dryRun ? "would delete" : "deleted") group '\(name)' (\(Sizes.format(d.bytes)))")
                    }
                }
            }
        }
    }

    struct Reset: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move a group's committed offsets on a topic.",
            discussion: """
                Shows the plan, then asks at a terminal; elsewhere it resets only with --yes \
                (without, it prints the plan and exits with status 64). Refused (status 75) while \
                a consumer of the group holds a partition of the topic.
                """)
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "The group.", completion: LogCompletion.groups) var group: String
        @Argument(help: "The topic.", completion: LogCompletion.topics) var topic: String
        @Option(name: .customLong("to"), parsing: .unconditional,
                help: ArgumentHelp("Where to: beginning, end, an offset, +N, -N, or a time (ISO-8601 or relative, e.g. -10m).", valueName: "position"))
        var to: String
        @Option(name: [.customShort("p"), .long], help: "Only this partition.") var partition: Int32?
        @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "Print the plan, change nothing.") var dryRun = false
        @Flag(name: [.customShort("y"), .long], help: "Reset without asking.") var yes = false
        @Flag(name: [.customShort("J"), .long], help: "Print the plan (or what was done) as one JSON object.") var json = false

        func run() throws {
            let target = try usageValue { try ResetTarget.parse(to, nowMs: currentTimeMillis()) }
            try runReportingErrors("mq-group") {
                let reset = try OffsetReset(log: logOptions.log, group: group, topic: topic, partition: partition, target: target)
                let planned = try reset.plan()
                func show(_ rows: [ResetRow], applied: Bool) {
                    print(json ? GroupAdmin.json(rows, group: group, applied: applied) : renderResetTable(rows), terminator: json ? "\n" : "")
                    fflush(nil)
                }
                if dryRun {
                    show(planned, applied: false)
                    return
                }
                if !yes {
                    show(planned, applied: false)
                    guard isatty(0) != 0 else {
                        throw MQError.usage("group '\(group)' not reset: standard input is not a terminal to ask; add --yes to reset without asking")
                    }
                    printRaw("reset group '\(group)' on topic '\(topic)' as shown? [y/N] ")
                    let answer = (readLine() ?? "").filter { !$0.isWhitespace }.lowercased()
                    guard answer == "y" || answer == "yes" else {
                        printError("mq-group", "nothing changed")
                        return
                    }
                }
                let rows = try reset.apply(planned)
                if yes { show(rows, applied: true) } else { printError("mq-group", "reset group '\(group)' on topic '\(topic)'") }
            }
        }
    }
}
