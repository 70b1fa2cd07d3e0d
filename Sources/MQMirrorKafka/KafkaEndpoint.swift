import MQLog

/// Where `mq-mirror` sends records in Kafka:
/// `kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC` (the port defaults to 9092).
public struct KafkaEndpoint: Sendable, Equatable {
    /// `bootstrap.servers`: `HOST:PORT` each.
    public var servers: [String]
    public var topic: String

    /// Parses a `kafka://` URL; nil when `text` is not one.
    /// - Throws: a usage error for a `kafka://` URL without hosts, with a bad
    ///   port, or without a valid topic name.
    public static func parse(_ text: String) throws -> KafkaEndpoint? {
        let scheme = "kafka://"
        guard text.hasPrefix(scheme) else { return nil }
        let form = "a Kafka destination is kafka://HOST[:PORT][,HOST[:PORT]...]/TOPIC"
        let rest = text.dropFirst(scheme.count)
        guard let slash = rest.firstIndex(of: "/") else {
            throw MQError.usage("'\(text)': \(form) (no topic given)")
        }
        var servers: [String] = []
        for host in rest[..<slash].split(separator: ",", omittingEmptySubsequences: false) {
            servers.append(try server(String(host), in: text, form: form))
        }
        let topic = String(rest[rest.index(after: slash)...])
        guard isValidTopic(topic) else {
            throw MQError.usage("'\(text)': a Kafka topic name is 1 to 249 letters, digits, '.', '_' or '-' (and not '.' or '..')")
        }
        return KafkaEndpoint(servers: servers, topic: topic)
    }

    /// `HOST[:PORT]` (a bracketed IPv6 address keeps its brackets) as `HOST:PORT`.
    private static func server(_ text: String, in url: String, form: String) throws -> String {
        var host = Substring(text), port: Substring = "9092"
        if let colon = text.lastIndex(of: ":"), !text.hasSuffix("]") {
            host = text[..<colon]
            port = text[text.index(after: colon)...]
        }
        let hostOK = !host.isEmpty && !host.contains(where: { $0 == " " || $0 == "/" || $0 == "@" || $0 == "?" || $0 == "#" })
        guard hostOK else { throw MQError.usage("'\(url)': \(form) (bad host '\(text)')") }
        guard port.count <= 5, port.allSatisfy({ $0.isASCII && $0.isNumber }), let n = Int(port), n >= 1, n <= 65535 else {
            throw MQError.usage("'\(url)': bad port in '\(text)' (1 to 65535)")
        }
        return "\(host):\(n)"
    }

    /// Kafka's rule for topic names.
    public static func isValidTopic(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 249 && name != "." && name != ".."
            && name.utf8.allSatisfy { ($0 >= 48 && $0 <= 57) || ($0 >= 65 && $0 <= 90) || ($0 >= 97 && $0 <= 122) || $0 == 46 || $0 == 95 || $0 == 45 }
    }
}

/// How local partitions map to the partitions of the Kafka topic
/// (`MirrorPartitioning`, shared with pulling).
public typealias KafkaPartitioning = MirrorPartitioning

/// librdkafka properties given with `-F FILE` and `-X key=value`, in order
/// (later ones win), each with where it came from for messages.
public struct KafkaProperties: Sendable {
    public struct Property: Sendable, Equatable {
        public var key: String
        public var value: String
        /// `-X key=value`, or `FILE:LINE`.
        public var origin: String
    }

    public private(set) var list: [Property] = []

    public init() {}

    /// The value last given for `key`.
    public subscript(key: String) -> String? { list.last { $0.key == key }?.value }

    /// Adds `-X key=value`.
    /// - Throws: a usage error without `=` or with an empty key.
    public mutating func add(option text: String) throws {
        guard let eq = text.firstIndex(of: "="), eq != text.startIndex else {
            throw MQError.usage("-X '\(text)': expected key=value (a librdkafka property)")
        }
        list.append(Property(key: String(text[..<eq]), value: String(text[text.index(after: eq)...]), origin: "-X \(text[..<eq])"))
    }

    /// Adds the `key=value` lines of a properties file (as kcat's `-F`):
    /// blank lines and lines starting with `#` are skipped, spaces around
    /// key and value dropped.
    /// - Throws: 66 when the file cannot be read, 64 naming the file and
    ///   line for a line that is not `key=value` or not UTF-8.
    public mutating func add(file path: String) throws {
        let bytes: [UInt8]
        do { bytes = try FileSystem.readAll(path) } catch let e as MQError {
            throw MQError(e.status == .noPermission ? .noPermission : .noInput, "cannot read the properties file (-F) \(e.description)")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw MQError.usage("\(path): not UTF-8 text (-F takes key=value lines)")
        }
        for (i, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.trimmingSpaces
            if line.isEmpty || line.hasPrefix("#") { continue }
            guard let eq = line.firstIndex(of: "="), !line[..<eq].trimmingSpaces.isEmpty else {
                throw MQError.usage("\(path):\(i + 1): expected key=value, found '\(line.prefix(80))'")
            }
            list.append(Property(key: String(line[..<eq].trimmingSpaces), value: String(line[line.index(after: eq)...].trimmingSpaces),
                                 origin: "\(path):\(i + 1)"))
        }
    }
}

extension Substring {
    fileprivate var trimmingSpaces: Substring {
        var s = self
        while let c = s.first, c == " " || c == "\t" || c == "\r" { s.removeFirst() }
        while let c = s.last, c == " " || c == "\t" || c == "\r" { s.removeLast() }
        return s
    }
}
