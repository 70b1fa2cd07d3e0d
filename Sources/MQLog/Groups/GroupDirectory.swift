import Glibc

/// A consumer group's state, all in plain files:
///
///     ROOT/groups/GROUP/members/ID          one per live consumer process, flock(LOCK_EX) by it
///     ROOT/groups/GROUP/offsets/TOPIC/P     the committed offset of partition P of TOPIC;
///                                           flock(LOCK_EX) on it is the partition's lease
///
/// The kernel drops a dead consumer's locks, so its partitions become free
/// and its member file reads as dead with no cleanup step. Group names follow
/// the topic-name rules.
public struct GroupDirectory: Sendable {
    public let log: LogDirectory
    public let group: String

    public init(log: LogDirectory, group: String) throws {
        guard LogDirectory.isValidTopicName(group) else {
            throw MQError.usage("invalid group name '\(group)': use 1 to 249 of letters, digits, '.', '_' and '-' (not '.' or '..')")
        }
        self.log = log
        self.group = group
    }

    public var path: String { log.root + "/groups/" + group }
    public var membersPath: String { path + "/members" }
    public func offsetsPath(_ topic: String) -> String { path + "/offsets/" + topic }
    public func offsetPath(_ topic: String, _ partition: Int32) -> String { offsetsPath(topic) + "/\(partition)" }

    /// Creates the group's directories for `topic` if missing, durably: a
    /// committed offset must not vanish with its directory at a crash.
    public func prepare(topic: String) throws {
        try FileSystem.makeDirectoriesDurably(offsetsPath(topic))
    }

    /// The committed offset of a partition, read without taking its lease, or nil if none.
    public func committedOffset(_ topic: String, _ partition: Int32) throws -> Int64? {
        guard let handle = try OpenFile.openIfExists(offsetPath(topic, partition), O_RDONLY) else { return nil }
        defer { handle.close() }
        return try CommittedOffsetFile.read(handle)?.offset
    }

    /// True when the member `id` is alive: its file under `members/` exists
    /// and its owner holds its lock (§13's liveness test).
    public func isMemberAlive(_ id: String) -> Bool {
        guard !id.isEmpty, !id.contains("/"),
              let other = try? OpenFile.openIfExists(membersPath + "/" + id, O_RDONLY) else { return false }
        defer { other.close() }
        return (try? other.lock(exclusive: false, wait: false)) != true
    }
}

/// The committed-offset file of one partition: two 32-byte slots written in
/// turn ("ping-pong"), each little-endian:
///
///     0   8  generation   incremented by every commit
///     8   8  offset       the next offset the group will consume
///     16  8  committedMs  wall-clock time of the commit
///     24  4  CRC-32C of bytes 0..<24
///     28  4  zero
///
/// A commit writes slot `generation % 2` and fdatasyncs. The valid slot with
/// the larger generation is the committed offset, so a torn or lost write
/// leaves the previous commit in place: an offset is never corrupted and
/// never replaced by anything but a whole later write. Consumers only move
/// it forward; a reset (`PartitionLease.reset`) writes the next generation
/// with any offset, backward included, the same way.
public enum CommittedOffsetFile {
    public static let slotSize = 32

    public struct Slot: Equatable, Sendable {
        public var generation: UInt64
        public var offset: Int64
        public var committedMs: Int64
    }

    static func encode(_ slot: Slot) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: slotSize)
        bytes.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            p.storeBytes(of: slot.generation.littleEndian, toByteOffset: 0, as: UInt64.self)
            p.storeBytes(of: slot.offset.littleEndian, toByteOffset: 8, as: Int64.self)
            p.storeBytes(of: slot.committedMs.littleEndian, toByteOffset: 16, as: Int64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: 24))
            p.storeBytes(of: crc.littleEndian, toByteOffset: 24, as: UInt32.self)
        }
        return bytes
    }

    static func decode(_ raw: UnsafeRawBufferPointer) -> Slot? {
        guard raw.count >= slotSize, let p = raw.baseAddress else { return nil }
        let crc = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: UInt32.self))
        guard crc == CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: 24)) else { return nil }
        let slot = Slot(generation: UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                        offset: Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: Int64.self)),
                        committedMs: Int64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: Int64.self)))
        return slot.generation > 0 && slot.offset >= 0 ? slot : nil
    }

    /// The newest valid slot, or nil when nothing was ever committed.
    public static func read(_ handle: OpenFile) throws -> Slot? {
        // A short file reads as if zero-padded: that is what it becomes when a
        // commit extends it, so readers and writers agree on every slot.
        var raw = [UInt8](repeating: 0, count: 2 * slotSize)
        _ = try raw.withUnsafeMutableBytes { try handle.read(into: $0.baseAddress!, count: 2 * slotSize, at: 0) }
        return raw.withUnsafeBytes { all -> Slot? in
            let a = decode(UnsafeRawBufferPointer(rebasing: all[0..<slotSize]))
            let b = decode(UnsafeRawBufferPointer(rebasing: all[slotSize..<2 * slotSize]))
            switch (a, b) {
            case let (a?, b?): return a.generation > b.generation ? a : b
            case let (a?, nil): return a
            case let (nil, b?): return b
            default: return nil
            }
        }
    }

    /// Writes the next generation with `offset` and makes it durable.
    public static func commit(_ handle: OpenFile, after previous: Slot?, offset: Int64, sync: Bool = true) throws -> Slot {
        guard (previous?.generation ?? 0) < UInt64.max else {
            throw MQError.corrupt("committed-offset file '\(handle.path)' has an impossible generation; remove it to reset the partition's position")
        }
        let slot = Slot(generation: (previous?.generation ?? 0) + 1, offset: offset, committedMs: currentTimeMillis())
        let bytes = encode(slot)
        try bytes.withUnsafeBytes { try handle.write($0, at: Int64(slot.generation % 2) * Int64(slotSize)) }
        if sync { try handle.sync() }
        return slot
    }
}

/// Ownership of one partition within a group: an exclusive flock on its
/// committed-offset file, held for as long as this object lives.
/// Not thread-safe.
public final class PartitionLease {
    public let topic: String
    public let partition: Int32
    private let handle: OpenFile
    public private(set) var committed: CommittedOffsetFile.Slot?
    /// The directory holding the offset file.
    public let directory: String
    /// True while the offset file's name may not be durable yet: it was
    /// created by `tryAcquire(…, syncingName: false)` and no
    /// `syncNames` has run since.
    public private(set) var nameUnsynced = false

    /// - Parameter empty: the file was empty (just created): nothing to read.
    private init(topic: String, partition: Int32, handle: OpenFile, directory: String, nameUnsynced: Bool, empty: Bool) throws {
        self.topic = topic
        self.partition = partition
        self.handle = handle
        self.directory = directory
        self.nameUnsynced = nameUnsynced
        self.committed = empty ? nil : try CommittedOffsetFile.read(handle)
    }

    deinit { handle.close() }

    /// Takes the lease if no other process holds it.
    ///
    /// A new offset file (or one cut short by a crash) is sized to 64 bytes.
    /// With `syncingName`, the file and its directory are then synced, one
    /// fdatasync and one fsync per new file. Without, nothing is synced: the
    /// first commit's fdatasync makes the size durable with the slot, and the
    /// holder calls `syncNames` on its leases after committing, one fsync per
    /// directory however many files are new (a consumer taking thousands of
    /// partitions).
    /// - Returns: nil when another consumer owns the partition.
    public static func tryAcquire(_ group: GroupDirectory, topic: String, partition: Int32, syncingName: Bool = true) throws -> PartitionLease? {
        let handle = try OpenFile.open(group.offsetPath(topic, partition), O_RDWR | O_CREAT, mode: 0o644, creating: true)
        guard try handle.lock(exclusive: true, wait: false) else {
            handle.close()
            return nil
        }
        var unsynced = false
        let size = try handle.size()
        if size < Int64(2 * CommittedOffsetFile.slotSize) {
            // New (or cut short by a crash): sized, then its name made durable,
            // so that a commit's fdatasync leaves a file that is found again.
            try handle.truncate(to: Int64(2 * CommittedOffsetFile.slotSize))
            if syncingName {
                try handle.sync()
                try FileSystem.syncDirectory(group.offsetsPath(topic))
            } else {
                unsynced = true
            }
        }
        return try PartitionLease(topic: topic, partition: partition, handle: handle, directory: group.offsetsPath(topic), nameUnsynced: unsynced, empty: size == 0)
    }

    /// Commits `offset` (the next offset to consume) durably, unless it is already committed.
    public func commit(_ offset: Int64) throws {
        guard offset != committed?.offset else { return }
        committed = try CommittedOffsetFile.commit(handle, after: committed, offset: offset)
    }

    /// Commits `offset` for each lease, as `commit` does, unless it is
    /// already committed. With `FileSystemSync.threshold` files or more to
    /// write, writes them all and then makes them durable with one
    /// syncfs(2) per file system holding them, instead of one fdatasync each
    /// (a consumer committing thousands of partitions), where syncfs makes
    /// files durable (`FileSystemSync`; not on FUSE or NFS); either way, all
    /// are durable when it returns.
    public static func commitAll(_ commits: [(lease: PartitionLease, offset: Int64)]) throws {
        let due = commits.filter { $0.offset != $0.lease.committed?.offset }
        guard due.count >= FileSystemSync.threshold else {
            for c in due { try c.lease.commit(c.offset) }
            return
        }
        var slots: [CommittedOffsetFile.Slot] = []
        for c in due { slots.append(try CommittedOffsetFile.commit(c.lease.handle, after: c.lease.committed, offset: c.offset, sync: false)) }
        let namesSynced = try FileSystemSync.syncAll(holding: Set(due.map(\.lease.directory)))
        if !namesSynced {
            for c in due { try c.lease.handle.sync() }
        }
        for (c, slot) in zip(due, slots) {
            c.lease.committed = slot
            if namesSynced { c.lease.nameUnsynced = false }  // syncfs made the directories durable too
        }
    }

    /// Makes the names of the offset files of `leases` durable: one fsync
    /// per directory that holds a file created without (`tryAcquire(…,
    /// syncingName: false)`). Call it after committing, before going on.
    public static func syncNames(_ leases: some Sequence<PartitionLease>) throws {
        let pending = leases.filter(\.nameUnsynced)
        for directory in Set(pending.map(\.directory)) { try FileSystem.syncDirectory(directory) }
        for lease in pending { lease.nameUnsynced = false }
    }

    /// Moves the committed offset to `offset`, backward or forward (an
    /// administrative reset, `mq-replay --reset-to`): writes the next
    /// generation and fdatasyncs it, as a commit does, even when the offset
    /// does not change (the commit time records the reset).
    public func reset(to offset: Int64) throws {
        committed = try CommittedOffsetFile.commit(handle, after: committed, offset: offset)
    }
}

/// This process's membership of a group: a file in `members/` that it keeps
/// flocked. Counting the live members tells each consumer its fair share of
/// partitions. Not thread-safe.
public final class GroupMembership {
    public let group: GroupDirectory
    public let id: String
    private let handle: OpenFile
    /// The member file made again after it went missing.
    private var replaced: OpenFile?

    public init(_ group: GroupDirectory) throws {
        self.group = group
        try FileSystem.makeDirectoriesDurably(group.membersPath)
        // At most 15 characters: the work queue stores leaseholders in 16 bytes.
        id = String(getpid(), radix: 16) + "-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        handle = try GroupMembership.createLocked(group, id)
    }

    /// Creates the member file already locked: made and locked under a
    /// temporary name, then renamed into place, so no other member can see it
    /// unlocked and take it for a dead one.
    private static func createLocked(_ group: GroupDirectory, _ id: String) throws -> OpenFile {
        let tmp = group.membersPath + "/~" + id
        let handle = try OpenFile.open(tmp, O_RDWR | O_CREAT, creating: true)
        do {
            try handle.lock(exclusive: true)
            try FileSystem.rename(tmp, to: group.membersPath + "/" + id)
        } catch {
            handle.close()
            try? FileSystem.remove(tmp)
            throw error
        }
        return handle
    }

    deinit {
        try? FileSystem.remove(group.membersPath + "/" + id)
        handle.close()
        replaced?.close()
    }

    /// True when the member `id` is alive: its file exists and is locked by its owner.
    public func isAlive(_ id: String) -> Bool {
        id == self.id || group.isMemberAlive(id)
    }

    /// The ids of live members, this one included, sorted; removes the files
    /// of dead ones (whose lock the kernel dropped).
    public func liveMembers() throws -> [String] {
        var live: [String] = [id]
        if !FileSystem.exists(group.membersPath + "/" + id) {
            // Removed by hand: put it back (the lock we hold is on the old, unlinked file).
            if let fresh = try? GroupMembership.createLocked(group, id) { replaced = fresh }
        }
        for name in try FileSystem.list(group.membersPath) {
            if name == id || name.hasPrefix("~") { continue }
            guard let other = try? OpenFile.openIfExists(group.membersPath + "/" + name, O_RDONLY) else { continue }
            defer { other.close() }
            if (try? other.lock(exclusive: false, wait: false)) == true {
                try? FileSystem.remove(group.membersPath + "/" + name)  // its owner is gone
            } else {
                live.append(name)
            }
        }
        return live.sorted()
    }
}
