import ArgumentParser
import MQCommandSupport
import MQLog

@main
struct MQTail: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-tail",
        abstract: "Print the last messages of topics, and follow new ones.",
        discussion: "A TOPIC with characters other than letters, digits, '.', '_' and '-' is an extended regular expression matched against whole topic names. See mq-tail(1).",
        version: mqVersion)

    static func main() { runMain("mq-tail") }

    @OptionGroup var logOptions: LogOptions

    @Argument(help: "Topics or topic patterns to read.", completion: LogCompletion.topics)
    var topics: [String]

    @Option(name: [.customShort("n"), .customLong("lines")], help: ArgumentHelp("Print the last N messages, or with +N each partition from its Nth message (+1: the first).", valueName: "[+]n"))
    var lines: String?
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Start at beginning, end, an offset, or a time (ISO-8601, or relative like -10m).", valueName: "position"))
    var from: String?
    @Option(name: .customShort("o"), parsing: .unconditional, help: ArgumentHelp("Start as kcat -o does: beginning, end, an offset N, -N (the last N of each partition), or s@MS (a time in ms since the epoch).", valueName: "offset"))
    var kcatOffset: String?
    @Option(name: [.customShort("c"), .long], help: "Stop after N messages.")
    var count: Int?
    @Flag(name: [.customShort("f"), .long], help: "Keep printing messages as they are appended.")
    var follow = false
    @Flag(name: .customLong("read-uncommitted"), help: "Also show records of transactions still open or aborted (default: committed only).")
    var readUncommitted = false
    @Option(name: [.customShort("p"), .long], help: "Read only this partition.")
    var partition: Int32?
    @OptionGroup var outputOptions: OutputOptions

    func validate() throws {
        if [lines != nil, from != nil, kcatOffset != nil].filter({ $0 }).count > 1 {
            throw ValidationError("'--lines', '--from' and '-o' are mutually exclusive")
        }
        if let count, count < 0 { throw ValidationError("'--count' cannot be negative") }
    }

    func run() throws {
        var options = TailOptions(topics: topics)
        if let lines { options.start = try usageValue { try StartPosition.parseLines(lines) } }
        if let kcatOffset { options.start = try usageValue { try StartPosition.parseKcatOffset(kcatOffset) } }
        if let from { options.start = try usageValue { try StartPosition.parse(from, nowMs: currentTimeMillis()) } }
        options.count = count
        options.follow = follow
        options.isolation = readUncommitted ? .readUncommitted : .readCommitted
        options.partition = partition
        options.output = try outputOptions.mode()
        try runReportingErrors("mq-tail") {
            let tailer = Tailer(options: options, log: logOptions.log)
            try tailer.run()
            // The process ends now, and its files and memory with it: the
            // tailer is not taken apart first, cursor by cursor (closing
            // 10,000 partitions' files one call at a time).
            _ = Unmanaged.passRetained(tailer)
        }
    }
}
