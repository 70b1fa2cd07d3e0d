import ArgumentParser
import Glibc
import MQCommandSupport
import MQLog

@main
struct MQStat: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-stat",
        abstract: "Show the state of topics and consumer groups: sizes, offsets, rates, lag.",
        discussion: "Reads the log directory without taking any lock. See mq-stat(1).",
        version: mqVersion)

    static func main() { runMain("mq-stat") }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: "Topics or topic patterns to show (default: all but delay topics).", completion: LogCompletion.topics)
    var topics: [String] = []

    @Option(name: [.customShort("g"), .long], help: ArgumentHelp("Only this consumer group, and the topics it consumes unless topics are given (repeatable).", valueName: "group"), completion: LogCompletion.groups)
    var group: [String] = []
    @Flag(name: [.customShort("J"), .long], help: "Print one JSON object (one per refresh with --watch).")
    var json = false
    @Option(name: .long, help: ArgumentHelp("Write the metrics in Prometheus text format to FILE, atomically (write, then rename).", valueName: "file"))
    var prometheus: String?
    @Flag(name: [.customShort("w"), .long], help: "Refresh until interrupted.")
    var watch = false
    @Option(name: .long, help: ArgumentHelp("Time between refreshes with --watch.", valueName: "duration"))
    var interval: String = "2s"

    /// `NO_COLOR` set (not empty) or a dumb terminal: tables only.
    var plainTerminal: Bool {
        let noColor = getenv("NO_COLOR").map { String(cString: $0) } ?? ""
        let term = getenv("TERM").map { String(cString: $0) } ?? ""
        return !noColor.isEmpty || term == "dumb"
    }

    func run() throws {
        let intervalMs = try usageValue { try Durations.parseDuration(interval) }
        guard intervalMs > 0 else { throw ValidationError("'--interval' must be positive") }
        try runReportingErrors("mq-stat") {
            let log = logOptions.log
            let clear = watch && isatty(1) != 0 && !json
            // Sparklines at a terminal that has not asked for plain text.
            var trend = clear && !plainTerminal ? StatsTrend() : nil
            repeat {
                let stats = try LogStats.collect(log, topics: topics, groups: group.isEmpty ? nil : group)
                if let prometheus {
                    try FileSystem.writeAtomically(prometheus, Array(stats.prometheus().utf8))
                }
                if json {
                    print(stats.json())
                } else if prometheus == nil || watch {
                    if clear { print("\u{1B}[H\u{1B}[2J", terminator: "") }
                    print(stats.text(), terminator: "")
                    if trend != nil {
                        trend!.add(stats)
                        print(trend!.text(intervalMs: intervalMs), terminator: "")
                    }
                }
                fflush(nil)
                if watch { usleep(useconds_t(intervalMs * 1000)) }
            } while watch
        }
    }
}
