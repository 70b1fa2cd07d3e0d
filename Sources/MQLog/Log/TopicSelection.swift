import Glibc

/// The topics a reader asked for: exact names, and anchored POSIX extended
/// regular expressions for arguments with characters no topic name can have.
struct TopicSelection {
    private(set) var exact: [String] = []
    private(set) var patterns: [TopicPattern] = []

    /// Selects nothing.
    init() {}

    /// - Throws: `MQError` (usage) for a pattern that does not compile.
    init(_ arguments: [String]) throws {
        for arg in arguments {
            if LogDirectory.isValidTopicName(arg) { exact.append(arg) } else { patterns.append(try TopicPattern(arg)) }
        }
    }

    var isEmpty: Bool { exact.isEmpty && patterns.isEmpty }

    func matchesPattern(_ name: String) -> Bool { patterns.contains { $0.matches(name) } }

    /// Throws `noInput` for the first exact name that is not a topic.
    func requireExact(in log: LogDirectory) throws {
        for name in exact where !log.topicExists(name) {
            throw log.missingTopicError(name)
        }
    }

    /// The selected topics that exist now, sorted: the exact names, then the
    /// pattern matches. Delay topics are internal: a pattern never selects them.
    func existing(in log: LogDirectory) throws -> [String] {
        var names = exact.filter { log.topicExists($0) }
        if !patterns.isEmpty {
            for name in try log.listTopics() where !names.contains(name) && !DerivedTopics.isDelayTopic(name) && matchesPattern(name) {
                names.append(name)
            }
        }
        return names.sorted()
    }
}

/// A topic pattern: an anchored POSIX extended regular expression (regcomp(3)).
struct TopicPattern {
    let source: String
    private let regex: UnsafeMutablePointer<regex_t>

    init(_ source: String) throws {
        self.source = source
        regex = .allocate(capacity: 1)
        let rc = regcomp(regex, "^(" + source + ")$", REG_EXTENDED | REG_NOSUB)
        if rc != 0 {
            var message = [CChar](repeating: 0, count: 256)
            regerror(rc, regex, &message, message.count)
            regex.deallocate()
            throw MQError.usage("invalid topic pattern '\(source)': \(String(cString: message)) (a name with characters other than letters, digits, '.', '_' and '-' is read as a regular expression)")
        }
    }

    func matches(_ name: String) -> Bool { regexec(regex, name, 0, nil, 0) == 0 }
}
