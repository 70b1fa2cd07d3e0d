// PLACEHOLDER until main lands Maintenance/RetentionGuard.swift and
// Maintenance/GroupHousekeeping.swift: delete this file when merging main.

/// What consumer groups still need of a partition.
public enum RetentionGuard {
    /// The lowest offset some consumer group still needs in the partition,
    /// or nil when none needs anything. Placeholder: the smallest committed
    /// offset of any group.
    public static func firstNeededOffset(log: LogDirectory, topic: String, partition: Int32) throws -> Int64? {
        let groupsPath = log.root + "/groups"
        guard FileSystem.isDirectory(groupsPath) else { return nil }
        var floor: Int64?
        for name in try FileSystem.list(groupsPath) where LogDirectory.isValidTopicName(name) {
            guard let group = try? GroupDirectory(log: log, group: name),
                  let offset = try group.committedOffset(topic, partition) else { continue }
            floor = min(floor ?? offset, offset)
        }
        return floor
    }
}

/// Expiry of dead consumer groups' state. Placeholder: does nothing.
public enum GroupHousekeeping {
    public struct Report: Sendable {
        public var summary: String
        public var bytesReclaimed: Int64
    }

    public static func run(log: LogDirectory, now: Int64, expireAfterMs: Int64, dryRun: Bool) throws -> Report {
        Report(summary: "", bytesReclaimed: 0)
    }
}
