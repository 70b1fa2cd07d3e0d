import ArgumentParser
import MQCommandSupport
import MQLog

@main
struct MQConsume: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-consume",
        abstract: "Consume topics, alone or as a member of a consumer group.",
        discussion: """
            With -g, the group's committed offsets say where to resume; each partition is read by one \
            member at a time, and a message is committed once it was written out. A TOPIC with characters \
            other than letters, digits, '.', '_' and '-' is an extended regular expression over topic names. \
            See mq-consume(1).
            """,
        version: mqVersion)

    static func main() { runMain("mq-consume") }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: "Topics or topic patterns to consume.")
    var topics: [String]

    @Option(name: [.customShort("g"), .long], help: "The consumer group: resume from its committed offsets and share partitions with its other members.")
    var group: String?
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Where a partition without a committed offset starts: beginning (default with -g), end (default without), an offset, or a time.", valueName: "position"))
    var from: String?
    @Flag(name: [.customShort("e"), .customLong("exit")], help: "Exit at the current end of the log instead of waiting for more.")
    var exitAtEnd = false
    @Option(name: [.customShort("c"), .long], help: "Exit after delivering N messages.")
    var count: Int?
    @Option(name: .long, help: ArgumentHelp("Deliver only messages whose value matches this extended regular expression.", valueName: "regex"))
    var grep: String?
    @Option(name: .long, help: "Deliver only messages with this key.")
    var key: String?
    @Option(name: .long, help: ArgumentHelp("Deliver only messages with this header (repeatable; all must match).", valueName: "name=value"))
    var header: [String] = []
    @Option(name: .customLong("commit-interval"), help: ArgumentHelp("Longest time delivered messages wait to be committed.", valueName: "duration"))
    var commitInterval: String = "100ms"

    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if let count, count < 0 { throw ValidationError("'--count' cannot be negative") }
    }

    func run() throws {
        var options = ConsumeOptions(topics: topics)
        options.group = group
        if let from { options.start = try usageValue { try StartPosition.parse(from, nowMs: currentTimeMillis()) } }
        options.exitAtEnd = exitAtEnd
        options.count = count
        options.output = try outputOptions.mode()
        options.commitIntervalMs = try usageValue { try Durations.parseDuration(commitInterval) }
        let headers = try header.map { h -> Header in
            guard let eq = h.firstIndex(of: "="), eq != h.startIndex else {
                throw ValidationError("invalid --header '\(h)': expected name=value")
            }
            return Header(name: String(h[..<eq]), value: Array(h[h.index(after: eq)...].utf8))
        }
        try runReportingErrors("mq-consume") {
            if grep != nil || key != nil || !headers.isEmpty {
                options.filter = try MessageFilter(grep: grep, key: key.map { Array($0.utf8) }, headers: headers)
            }
            if options.count == 0 { return }
            try Consumer(options: options, log: logOptions.log).run()
        }
    }
}
