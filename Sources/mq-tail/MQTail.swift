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

    @Argument(help: "Topics or topic patterns to read.")
    var topics: [String]

    @Option(name: [.customShort("n"), .customLong("lines")], help: ArgumentHelp("Print the last N messages, or start at offset N with +N.", valueName: "[+]n"))
    var lines: String?
    @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Start at beginning, end, an offset, or a time (ISO-8601, or relative like -10m).", valueName: "position"))
    var from: String?
    @Option(name: [.customShort("c"), .long], help: "Stop after N messages.")
    var count: Int?
    @Flag(name: [.customShort("f"), .long], help: "Keep printing messages as they are appended.")
    var follow = false
    @Option(name: [.customShort("p"), .long], help: "Read only this partition.")
    var partition: Int32?
    @Option(name: [.customShort("d"), .long], help: ArgumentHelp("Write this after each value instead of a newline.", valueName: "delim"))
    var delimiter: String?
    @Flag(name: [.customShort("0"), .customLong("null")], help: "End each value with a NUL byte.")
    var nullSeparated = false
    @Option(name: .long, help: ArgumentHelp("Print with kcat tokens: %t %p %o %k %s %T %h %K %S, \\n \\t.", valueName: "fmt"))
    var format: String?
    @Flag(name: [.customShort("J"), .long], help: "Print one JSON envelope per message.")
    var json = false

    func validate() throws {
        if [delimiter != nil, nullSeparated, format != nil, json].filter({ $0 }).count > 1 {
            throw ValidationError("'--delimiter', '--null', '--format' and '--json' are mutually exclusive")
        }
        if lines != nil && from != nil { throw ValidationError("'--lines' and '--from' are mutually exclusive") }
        if let count, count < 0 { throw ValidationError("'--count' cannot be negative") }
    }

    func run() throws {
        var options = TailOptions(topics: topics)
        if let lines {
            if lines.hasPrefix("+"), let n = Int64(lines.dropFirst()), n >= 0 {
                options.start = .offset(n)
            } else if let n = Int(lines), n >= 0 {
                options.start = .last(n)
            } else {
                throw ValidationError("invalid --lines '\(lines)': expected N or +N")
            }
        }
        if let from { options.start = try usageValue { try StartPosition.parse(from, nowMs: currentTimeMillis()) } }
        options.count = count
        options.follow = follow
        options.partition = partition
        if let delimiter { options.output = .values(delimiter: try usageValue { try parseDelimiter(delimiter) }) }
        if nullSeparated { options.output = .values(delimiter: [0]) }
        if let format { options.output = .format(try usageValue { try KcatFormat(format) }) }
        if json { options.output = .json }
        try runReportingErrors("mq-tail") {
            try Tailer(options: options, log: logOptions.log).run()
        }
    }
}
