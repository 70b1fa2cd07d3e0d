import ArgumentParser
import Glibc
import MQLog

/// Splits a command line at the first `--`: what follows is a command to
/// run (mq-consume's handler), not arguments of the tool.
/// A completion query from a shell script (`---completion -- ...`) is all
/// the tool's own.
public func splitAtTerminator(_ arguments: [String]) -> (own: [String], command: [String]) {
    guard arguments.first != "---completion", let i = arguments.firstIndex(of: "--") else { return (arguments, []) }
    return (Array(arguments[..<i]), Array(arguments[(i + 1)...]))
}

/// The version every tool reports with `--version`.
public let mqVersion = "0.1.0"

/// `--dir`, shared by every tool.
public struct LogOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The log directory (default: $MQ_DIR, else $XDG_DATA_HOME/mq, else ~/.local/share/mq).", valueName: "dir"))
    public var dir: String?

    public init() {}

    public var log: LogDirectory { LogDirectory.resolve(explicit: dir) }
}

/// Runs a tool's body, turning errors into one `tool: message` line on
/// standard error and the error's sysexits status. First, `$MQ_UMASK` (when
/// set) replaces the umask, before anything is created (`Umask`).
public func runReportingErrors(_ tool: String, _ body: () throws -> Void) throws {
    _ = FileBudget.shared
    do {
        try Umask.applyEnvironment()
        try body()
    } catch let error as ExitCode {
        throw error
    } catch let error as CleanExit {
        throw error
    } catch let error as ValidationError {
        throw error
    } catch {
        let (status, message) = ErrorReport.classify(error)
        if let message { printError(tool, message) }
        throw status == .ok ? ExitCode.success : ExitCode(status.rawValue)
    }
}

/// Writes `tool: message` to standard error.
/// Writes text to standard error as it is (no tool prefix, no newline): a prompt.
public func printRaw(_ text: String) {
    var bytes = Array(text.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

public func printError(_ tool: String, _ message: String) {
    let line = "\(tool): \(message)\n"
    var bytes = Array(line.utf8)
    _ = bytes.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
}

/// Parses a `--header name=value` argument (the name must not be empty).
public func parseHeaderOption(_ text: String) throws -> Header {
    guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
        throw ValidationError("invalid --header '\(text)': expected name=value")
    }
    return Header(name: String(text[..<eq]), value: Array(text[text.index(after: eq)...].utf8))
}

/// Converts a parse error of a library helper into a usage error for ArgumentParser.
public func usageValue<T>(_ body: () throws -> T) throws -> T {
    do { return try body() } catch let e as MQError { throw ValidationError(e.message) }
}

extension CompressionCodec: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { allCases.map(\.name) }
    public var defaultValueDescription: String { name }
    public static var allValueDescriptions: [String: String] {
        ["none": "no compression", "gzip": "gzip (zlib)", "snappy": "snappy, xerial framing as Kafka writes it",
         "lz4": "LZ4 frame as Kafka writes it", "zstd": "Zstandard"]
    }
}

extension SyncPolicy: ExpressibleByArgument {
    public static var allValueDescriptions: [String: String] {
        ["exit": "fsync once before exiting (default)", "batch": "fsync every batch before its offsets are printed",
         "none": "never fsync; a power loss can lose recent messages"]
    }
}

extension ParsableCommand {
    /// Parses the command line and runs the command like ArgumentParser's own
    /// `main()`, but prints errors as `tool: message` (the form every mq error
    /// takes) and exits with the error's status: 64 for usage errors.
    public static func runMain(_ tool: String, arguments: [String]? = nil) -> Never {
        do {
            var command = try parseAsRoot(arguments)
            try command.run()
            Glibc.exit(0)
        } catch {
            let code = exitCode(for: error)
            let message = fullMessage(for: error)
            if code == .success {
                var text = message
                if configuration.subcommands.isEmpty, let shell = completionShell(arguments ?? Array(CommandLine.arguments.dropFirst())) {
                    text = LogCompletion.withoutHelpSubcommand(text, shell: shell, tool: tool)
                }
                if !text.isEmpty { print(text) }
                Glibc.exit(0)
            }
            if !message.isEmpty {
                var text = message
                if text.hasPrefix("Error: ") { text.removeFirst("Error: ".count) }
                printError(tool, text)
            }
            Glibc.exit(code.rawValue)
        }
    }
}

/// The shell of `--generate-completion-script SHELL` in `arguments`, if any.
func completionShell(_ arguments: [String]) -> String? {
    for (i, a) in arguments.enumerated() {
        if a == "--generate-completion-script" { return i + 1 < arguments.count ? arguments[i + 1] : nil }
        if a.hasPrefix("--generate-completion-script=") { return String(a.dropFirst("--generate-completion-script=".count)) }
    }
    return nil
}

/// How records are printed: shared by mq-tail and mq-consume.
public struct OutputOptions: ParsableArguments {
    @Option(name: [.customShort("d"), .customShort("D"), .long], help: ArgumentHelp("Write this after each value instead of a newline (-D as kcat).", valueName: "delim"))
    public var delimiter: String?
    @Flag(name: [.customShort("0"), .customLong("null")], help: "End each value with a NUL byte.")
    public var nullSeparated = false
    @Option(name: .long, help: ArgumentHelp("Print with kcat tokens: %t %p %o %k %s %T %h %K %S, \\n \\t.", valueName: "fmt"))
    public var format: String?
    @Flag(name: [.customShort("J"), .long], help: "Print one JSON envelope per message.")
    public var json = false

    public init() {}

    public func validate() throws {
        if [delimiter != nil, nullSeparated, format != nil, json].filter({ $0 }).count > 1 {
            throw ValidationError("'--delimiter', '--null', '--format' and '--json' are mutually exclusive")
        }
    }

    public func mode() throws -> OutputMode {
        if let delimiter { return .values(delimiter: try usageValue { try parseDelimiter(delimiter) }) }
        if nullSeparated { return .values(delimiter: [0]) }
        if let format { return .format(try usageValue { try KcatFormat(format) }) }
        if json { return .json }
        return .values(delimiter: [10])
    }
}

/// `--grep`, `--key` and `--header`: which messages a tool passes on
/// (shared by mq-consume and mq-replay; see `MessageFilter`).
public struct FilterOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Only messages whose value matches this extended regular expression.", valueName: "regex"))
    public var grep: String?
    @Option(name: .long, help: "Only messages with this key.")
    public var key: String?
    @Option(name: .long, help: ArgumentHelp("Only messages with this header (repeatable; all must match).", valueName: "name=value"))
    public var header: [String] = []

    public init() {}

    public func validate() throws { _ = try header.map(parseHeaderOption) }

    /// The filter, or nil when no option was given.
    /// - Throws: `MQError` (usage) for a bad regular expression.
    public func filter() throws -> MessageFilter? {
        let headers = try header.map(parseHeaderOption)
        guard grep != nil || key != nil || !headers.isEmpty else { return nil }
        return try MessageFilter(grep: grep, key: key.map { Array($0.utf8) }, headers: headers)
    }
}
