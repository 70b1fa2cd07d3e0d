import Glibc

/// The root of an mq log: a directory of topics.
///
/// Layout (see docs/FORMAT.md):
///
///     ROOT/topics/NAME/topic.properties   partitions and config overrides
///     ROOT/topics/NAME/lock               "in use" lock: shared by users, exclusive by delete
///     ROOT/topics/NAME/P/                 partition P (0-based): segments, indexes, head
///
/// A topic appears by renaming a fully built directory into `topics/`, so a
/// reader never sees half a topic and two creators cannot both win.
/// Temporary and deleted names contain `~`, which no topic name can.
public struct LogDirectory: Sendable {
    public let root: String

    public init(root: String) {
        var r = root
        while r.count > 1 && r.hasSuffix("/") { r.removeLast() }
        self.root = r
    }

    /// The root a tool uses: `--dir`, else `$MQ_DIR`, else
    /// `$XDG_DATA_HOME/mq`, else `$HOME/.local/share/mq`.
    public static func resolve(explicit: String?) -> LogDirectory {
        if let explicit, !explicit.isEmpty { return LogDirectory(root: explicit) }
        if let env = environment("MQ_DIR"), !env.isEmpty { return LogDirectory(root: env) }
        if let xdg = environment("XDG_DATA_HOME"), xdg.hasPrefix("/") { return LogDirectory(root: xdg + "/mq") }
        if let home = environment("HOME"), !home.isEmpty { return LogDirectory(root: home + "/.local/share/mq") }
        return LogDirectory(root: "/tmp/mq-\(getuid())")
    }

    public var topicsPath: String { root + "/topics" }
    /// The directory of the consumer groups (`GroupDirectory`).
    public var groupsPath: String { root + "/groups" }

    public func topicPath(_ name: String) -> String { topicsPath + "/" + name }

    /// Checks a topic name against Kafka's rules: 1 to 249 of `[A-Za-z0-9._-]`, not `.` or `..`.
    /// - Throws: `MQError` (usage) saying what is wrong.
    public static func validateTopicName(_ name: String) throws {
        if name.isEmpty { throw MQError.usage("invalid topic name '': a topic name cannot be empty") }
        if name == "." || name == ".." { throw MQError.usage("invalid topic name '\(name)': '.' and '..' are not allowed") }
        if name.utf8.count > 249 { throw MQError.usage("invalid topic name '\(name.prefix(40))…': \(name.utf8.count) characters, the limit is 249") }
        if let bad = name.unicodeScalars.first(where: { !isLegalTopicScalar($0) }) {
            throw MQError.usage("invalid topic name '\(name)': character '\(bad.escaped(asASCII: true))' is not allowed (use letters, digits, '.', '_' and '-')")
        }
    }

    static func isLegalTopicScalar(_ s: Unicode.Scalar) -> Bool {
        switch s {
        case "a"..."z", "A"..."Z", "0"..."9", ".", "_", "-": return true
        default: return false
        }
    }

    public static func isValidTopicName(_ name: String) -> Bool { (try? validateTopicName(name)) != nil }

    /// Names of all topics, sorted (none when `topics/` does not exist).
    /// - Throws: `MQError` (77) when this user may not look into the log.
    public func listTopics() throws -> [String] {
        guard FileSystem.isDirectory(topicsPath) else {
            if FileSystem.lookupError(topicsPath) == .permissionDenied {
                throw MQError.system("cannot list", path: topicsPath, .permissionDenied)
            }
            return []
        }
        return try FileSystem.list(topicsPath)
            .filter { LogDirectory.isValidTopicName($0) && FileSystem.exists(topicPath($0) + "/topic.properties") }
            .sorted()
    }

    public func topicExists(_ name: String) -> Bool {
        LogDirectory.isValidTopicName(name) && FileSystem.exists(topicPath(name) + "/topic.properties")
    }

    /// The error for topic `name` when `topicExists` said no: `noInput` when
    /// it is not there (with `remedy`, e.g. " (create it with …)", appended),
    /// `noPermission` naming its path when this user may not look (a log
    /// shared by a group the user is not in).
    public func missingTopicError(_ name: String, remedy: String = "") -> MQError {
        if FileSystem.lookupError(topicPath(name) + "/topic.properties") == .permissionDenied {
            return MQError.system("cannot look for topic '\(name)' at", path: topicPath(name), .permissionDenied)
        }
        return MQError(.noInput, "topic '\(name)' does not exist in \(root)\(remedy)")
    }

    /// Returns when topic `name` exists; else throws what a tool reports for
    /// it: `usage` for a name that cannot be a topic, else `missingTopicError`.
    public func requireTopic(_ name: String, remedy: String = "") throws {
        guard !topicExists(name) else { return }
        try LogDirectory.validateTopicName(name)
        throw missingTopicError(name, remedy: remedy)
    }

    /// Creates a topic atomically.
    /// - Parameter dryRun: make the checks, and create nothing.
    /// - Returns: true if this call created it (or with `dryRun` would), false
    ///   if it already existed (then the existing topic is left as it is).
    /// - Throws: `MQError` for a bad name (usage), bad config, or file-system failure.
    @discardableResult
    public func createTopic(_ name: String, config: TopicConfig, dryRun: Bool = false) throws -> Bool {
        try LogDirectory.validateTopicName(name)
        guard config.partitions >= 1 && config.partitions <= TopicConfig.maximumPartitions else {
            throw MQError.usage("invalid partition count \(config.partitions): must be from 1 to \(TopicConfig.maximumPartitions)")
        }
        if topicExists(name) { return false }
        if dryRun { return true }
        // The root's entry for topics/ is synced every time: another tool
        // (a follower waiting for a topic) may have made it without.
        try FileSystem.makeDirectoriesDurably(topicsPath)
        try FileSystem.syncDirectory(root)
        let tmp = topicsPath + "/~creating~\(getpid())~\(UInt32.random(in: 0...UInt32.max))"
        do {
            try FileSystem.makeDirectory(tmp)
            let now = currentTimeMillis()
            for p in 0..<config.partitions {
                try FileSystem.makeDirectory(tmp + "/\(p)")
                try PartitionWriter.createFiles(in: tmp + "/\(p)", now: now)
            }
            let lock = try OpenFile.open(tmp + "/lock", O_WRONLY | O_CREAT, creating: true)
            lock.close()
            try FileSystem.writeAtomically(tmp + "/topic.properties", Array(config.serialize().utf8))
            let syncedAtOnce = try config.partitions >= FileSystemSync.threshold && FileSystemSync.syncAll(holding: [tmp])
            if !syncedAtOnce {
                for p in 0..<config.partitions { try FileSystem.syncDirectory(tmp + "/\(p)") }
            }
            if Glibc.rename(tmp, topicPath(name)) != 0 {
                let e = currentErrno()
                try? FileSystem.removeTree(tmp)
                if e == .directoryNotEmpty || e == .fileExists { return false }
                throw MQError.system("cannot create topic", path: topicPath(name), e, creating: true)
            }
        } catch {
            try? FileSystem.removeTree(tmp)
            throw error
        }
        try FileSystem.syncDirectory(topicsPath)
        return true
    }

    /// Reads a topic's configuration.
    /// - Throws: `MQError` with status `noInput` when the topic does not exist.
    public func readConfig(_ name: String) throws -> TopicConfig {
        try LogDirectory.validateTopicName(name)
        let path = topicPath(name) + "/topic.properties"
        guard FileSystem.exists(path) else { throw missingTopicError(name) }
        return try TopicConfig.parse(String(decoding: try FileSystem.readAll(path), as: UTF8.self), path: path)
    }

    /// Opens a topic for use: reads its config and takes its shared "in use" lock.
    public func openTopic(_ name: String) throws -> Topic {
        let config = try readConfig(name)
        let lock = try OpenFile.open(topicPath(name) + "/lock", O_RDONLY | O_CREAT, creating: true)
        try lock.lock(exclusive: false)
        guard FileSystem.exists(topicPath(name) + "/topic.properties") else {
            lock.close()
            throw MQError(.noInput, "topic '\(name)' was deleted")
        }
        return Topic(name: name, path: topicPath(name), config: config, useLock: lock)
    }

    /// Rewrites a topic's config overrides (the partition count cannot change).
    /// - Parameter dryRun: check the changes, and write nothing.
    /// - Returns: the config as it is (or with `dryRun` would be) afterwards.
    public func alterTopic(_ name: String, set: [(String, String)], remove: [String], dryRun: Bool = false) throws -> TopicConfig {
        var config = try readConfig(name)
        for key in remove {
            guard TopicConfig.key(named: key) != nil else { throw MQError.config("unknown config '\(key)'") }
            config.overrides[key] = nil
        }
        for (k, v) in set {
            if k == "partitions" { throw MQError.config("the partition count of a topic is fixed at creation") }
            try TopicConfig.validate(name: k, value: v)
            config.overrides[k] = v
        }
        if !dryRun { try FileSystem.writeAtomically(topicPath(name) + "/topic.properties", Array(config.serialize().utf8)) }
        return config
    }

    /// Deletes a topic: renames it out of the way atomically, then removes its files.
    /// - Parameters:
    ///   - force: delete even while another process has it open.
    ///   - dryRun: make every check, then change nothing.
    /// - Returns: the bytes of the topic's files (those freed, or that would be).
    /// - Throws: `MQError` `tempFail` when in use and not forced, `noInput` when missing.
    @discardableResult
    public func deleteTopic(_ name: String, force: Bool, dryRun: Bool = false) throws -> Int64 {
        try LogDirectory.validateTopicName(name)
        guard FileSystem.isDirectory(topicPath(name)) else { throw missingTopicError(name) }
        let lock = try OpenFile.open(topicPath(name) + "/lock", O_RDONLY | O_CREAT, creating: true)
        defer { lock.close() }
        if !(try lock.lock(exclusive: true, wait: false)) && !force {
            throw MQError(.tempFail, "topic '\(name)' is in use by another process (a producer or reader has it open); stop it first or use --force")
        }
        let bytes = FileSystem.treeSize(topicPath(name))
        if dryRun { return bytes }
        let grave = topicsPath + "/~deleted~\(getpid())~\(UInt32.random(in: 0...UInt32.max))"
        try FileSystem.rename(topicPath(name), to: grave)
        try FileSystem.syncDirectory(topicsPath)
        try FileSystem.removeTree(grave)
        return bytes
    }
}


/// An open topic: its config and the shared lock that marks it in use.
public final class Topic: @unchecked Sendable {
    public let name: String
    public let path: String
    public let config: TopicConfig
    private let useLock: OpenFile

    init(name: String, path: String, config: TopicConfig, useLock: OpenFile) {
        self.name = name
        self.path = path
        self.config = config
        self.useLock = useLock
    }

    deinit { useLock.close() }

    public var partitions: Int32 { config.partitions }

    public func partitionPath(_ p: Int32) -> String { path + "/\(p)" }
}
