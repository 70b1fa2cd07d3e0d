import Glibc

/// What readers that keep state still need from a partition, so that
/// retention does not delete it under them (docs/FORMAT.md, "Compaction and
/// retention"):
///
/// - every consumer group's committed offset (`groups/G/committed/TOPIC`,
///   or a file of the earlier layout, `groups/G/offsets/TOPIC/P`), and the
///   whole partition while a group holds its lease with no commit yet;
/// - every work queue's done-below mark (`groups/G/queue/TOPIC/P`);
/// - for a delay topic `T.delay`, the mover's low-water mark: messages below
///   it were moved to `T`, the rest still wait.
///
/// Group state that `GroupHousekeeping` expired is gone before this is asked,
/// so an abandoned group does not hold a log forever.
public enum RetentionGuard {
    /// The lowest offset of `topic`'s partition that some group, queue or the
    /// delay mover has not finished with, or nil when none of them holds it.
    public static func firstNeededOffset(log: LogDirectory, topic: String, partition: Int32) throws -> Int64? {
        var floor: Int64? = nil
        func hold(_ offset: Int64) { floor = min(floor ?? .max, offset) }
        let groups = log.groupsPath
        if FileSystem.isDirectory(groups) {
            for group in try FileSystem.list(groups) where LogDirectory.isValidTopicName(group) {
                let g = try GroupDirectory(log: log, group: group)
                if let slot = try g.committedSlot(topic, partition) {
                    hold(slot.offset)
                } else if isLeased(g, topic: topic, partition: partition) || FileSystem.exists(g.legacyOffsetPath(topic, partition)) {
                    // Taken, with no commit yet: the holder may be reading from the beginning.
                    hold(0)
                }
                let queueDir = g.queuePath(topic, partition)
                if FileSystem.exists(queueDir + "/a") {
                    hold(try QueuePartition(directory: queueDir).read().low)
                }
            }
        }
        if DerivedTopics.isDelayTopic(topic), partition == 0 {
            // 0 when no mover has run: every delayed message still waits.
            hold(try DelayMoverFiles.lowWaterMark(log.topicPath(topic)))
        }
        return floor
    }

    /// True when some process holds the lease of the partition in the group.
    private static func isLeased(_ group: GroupDirectory, topic: String, partition: Int32) -> Bool {
        guard let f = try? OpenFile.openIfExists(group.commitsPath(topic), O_RDONLY) else { return false }
        defer { f.close() }
        return f.isRangeLocked(start: CommittedOffsetFile.position(of: partition), length: Int64(CommittedOffsetFile.recordSize))
    }
}
