import ArgumentParser
import Glibc
import MQLog

/// Completions that know the log: the shell scripts ask the tool itself
/// (swift-argument-parser's custom completion), and the tool answers with the
/// topics, groups or settings of the log directory that the command line
/// being completed points at (its `--dir`, else `$MQ_DIR`, else the default).
/// Reading a directory listing is all it costs; nothing is created.
public enum LogCompletion {
    /// Every topic.
    public static let topics = CompletionKind.custom { words, _, prefix in
        matching(prefix, (try? log(words).listTopics()) ?? [])
    }

    /// Dead-letter topics (names ending in `.dlq`).
    public static let deadLetterTopics = CompletionKind.custom { words, _, prefix in
        matching(prefix, ((try? log(words).listTopics()) ?? []).filter { DerivedTopics.isDeadLetterTopic($0) })
    }

    /// Every consumer group.
    public static let groups = CompletionKind.custom { words, _, prefix in
        matching(prefix, (try? LogStats.listGroups(log(words))) ?? [])
    }

    /// Setting names (`mq-topic alter --delete-config`).
    public static let configNames = CompletionKind.custom { _, _, prefix in
        matching(prefix, TopicConfig.keys.map(\.name))
    }

    /// `name=value` settings: names followed by `=`, then the values a
    /// setting takes when it takes one of a few.
    public static let configAssignments = CompletionKind.custom { _, _, prefix in
        configAssignment(prefix)
    }

    /// Values of `mq-dlq --reason`.
    public static let deadLetterReasons = CompletionKind.list(DeadLetterQuery.reasons)

    /// A tool without subcommands as its completion script should be:
    /// swift-argument-parser's scripts offer a `help` subcommand to every
    /// tool, which for one without subcommands is no command at all but would
    /// be taken for a topic. The script's lines that offer it are left out.
    public static func withoutHelpSubcommand(_ script: String, shell: String, tool: String) -> String {
        let lines = script.split(separator: "\n", omittingEmptySubsequences: false)
        let kept = lines.filter { line in
            switch shell {
            case "bash": return !line.contains("COMPREPLY+=($(compgen -W 'help' -- \"${cur}\"))")
            case "zsh": return !(line.hasSuffix("'(-): :->command'") || line.hasSuffix("'(-)*:: :->arg'")
                                 || line.hasSuffix("'help:Show subcommand help information.'"))
            case "fish": return !(line.contains("-fa 'help' -d 'Show subcommand help information.'") || line.contains("\"\(tool) help\""))
            default: return true
            }
        }
        return kept.joined(separator: "\n")
    }

    static func configAssignment(_ prefix: String) -> [String] {
        guard let eq = prefix.firstIndex(of: "=") else { return matching(prefix, TopicConfig.keys.map { $0.name + "=" }) }
        let name = String(prefix[..<eq])
        return matching(prefix, (TopicConfig.valueChoices[name] ?? []).map { name + "=" + $0 })
    }

    static func matching(_ prefix: String, _ candidates: [String]) -> [String] {
        candidates.filter { $0.hasPrefix(prefix) }.sorted()
    }

    /// The log directory of the command line `words`, as the tool would use
    /// it: `--dir X` or `--dir=X` (the last one), else the default. A word
    /// is taken as the shell shows it: simple quotes are removed and a
    /// leading `~/` means the home directory.
    static func log(_ words: [String]) -> LogDirectory {
        var dir: String?
        for (i, word) in words.enumerated() {
            if word == "--dir", i + 1 < words.count {
                dir = words[i + 1]
            } else if word.hasPrefix("--dir=") {
                dir = String(word.dropFirst("--dir=".count))
            }
        }
        return LogDirectory.resolve(explicit: dir.map(unquoted))
    }

    static func unquoted(_ word: String) -> String {
        var w = word
        if w.count >= 2, let first = w.first, first == "'" || first == "\"", w.last == first { w = String(w.dropFirst().dropLast()) }
        if w.hasPrefix("~/"), let home = environment("HOME") { w = home + w.dropFirst() }
        return w
    }
}
