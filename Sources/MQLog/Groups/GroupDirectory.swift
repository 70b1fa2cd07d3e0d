import Glibc
import Synchronization

/// A consumer group's state, all in plain files:
///
///     ROOT/groups/GROUP/members/ID          one per live consumer process, flock(LOCK_EX) by it
///     ROOT/groups/GROUP/committed/TOPIC     the committed offsets of TOPIC's partitions, 128 bytes
///                                           each (partition P's at P × 128); a write lock on
///                                           partition P's 128 bytes is its lease
///     ROOT/groups/GROUP/offsets/TOPIC/P     the earlier layout, one file per partition: read
///                                           for a partition that has no commit in committed/TOPIC
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

    public var path: String { log.groupsPath + "/" + group }
    public var membersPath: String { path + "/members" }
    /// The directory of the committed-offset files, one per topic.
    public var committedPath: String { path + "/committed" }
    /// The committed offsets of every partition of `topic`.
    public func commitsPath(_ topic: String) -> String { committedPath + "/" + topic }
    /// The earlier layout's directory of `topic`'s offset files, one per partition.
    public func legacyOffsetsPath(_ topic: String) -> String { path + "/offsets/" + topic }
    public func legacyOffsetPath(_ topic: String, _ partition: Int32) -> String { legacyOffsetsPath(topic) + "/\(partition)" }

    /// Creates the group's `committed/` directory if missing, durably: a
    /// committed offset must not vanish with its directory at a crash.
    public func prepare(topic: String) throws {
        try FileSystem.makeDirectoriesDurably(committedPath)
    }

    /// The committed offset of a partition, read without taking its lease, or nil if none.
    public func committedOffset(_ topic: String, _ partition: Int32) throws -> Int64? {
        try committedSlot(topic, partition)?.offset
    }

    /// The commit of a partition, read without taking its lease, or nil if none.
    public func committedSlot(_ topic: String, _ partition: Int32) throws -> CommittedOffsetFile.Slot? {
        if let handle = try OpenFile.openIfExists(commitsPath(topic), O_RDONLY) {
            defer { handle.close() }
            if let slot = try CommittedOffsetFile.read(handle, partition: partition) { return slot }
        }
        return try legacySlot(topic, partition)
    }

    /// The commits of the partitions `0..<partitions` of `topic` that have
    /// one (index: partition), read without taking leases: one read of the
    /// topic's file, and of the earlier layout's files only for partitions
    /// without a commit there.
    public func committedSlots(_ topic: String, partitions: Int32) throws -> [CommittedOffsetFile.Slot?] {
        var slots = [CommittedOffsetFile.Slot?](repeating: nil, count: Int(max(partitions, 0)))
        if let handle = try OpenFile.openIfExists(commitsPath(topic), O_RDONLY) {
            defer { handle.close() }
            slots = try CommittedOffsetFile.readAll(handle, partitions: partitions).map(\.slot)
        }
        if slots.contains(where: { $0 == nil }), FileSystem.exists(legacyOffsetsPath(topic)) {
            for p in slots.indices where slots[p] == nil { slots[p] = try legacySlot(topic, Int32(p)) }
        }
        return slots
    }

    /// The commit of the earlier layout's file of a partition, if any.
    func legacySlot(_ topic: String, _ partition: Int32) throws -> CommittedOffsetFile.Slot? {
        guard let handle = try OpenFile.openIfExists(legacyOffsetPath(topic, partition), O_RDONLY) else { return nil }
        defer { handle.close() }
        return try CommittedOffsetFile.read(handle)
    }

    /// The state directory of `topic` partition `partition` as a work queue.
    public func queuePath(_ topic: String, _ partition: Int32) -> String { queueTopicPath(topic) + "/\(partition)" }
    /// The work-queue state directories of `topic`'s partitions.
    public func queueTopicPath(_ topic: String) -> String { queuesPath + "/" + topic }
    /// The work-queue state of every topic the group works on as a queue.
    public var queuesPath: String { path + "/queue" }

    /// Topics with committed offsets (either layout), sorted.
    public func committedTopics() -> [String] {
        let names = Set((try? FileSystem.list(committedPath)) ?? []).union((try? FileSystem.list(path + "/offsets")) ?? [])
        return names.filter { LogDirectory.isValidTopicName($0) }.sorted()
    }

    /// Topics consumed as work queues, sorted.
    public func queueTopics() -> [String] {
        ((try? FileSystem.list(queuesPath)) ?? []).filter { LogDirectory.isValidTopicName($0) }.sorted()
    }

    /// Every topic the group has state of: committed offsets or a work queue.
    public func consumedTopics() -> [String] { Array(Set(committedTopics()).union(queueTopics())).sorted() }

    /// The ids of the members alive now, sorted (read only: dead members'
    /// files stay for their group's consumers and `mq-compact` to remove).
    public func liveMemberIDs() -> [String] {
        ((try? FileSystem.list(membersPath)) ?? []).filter { !$0.hasPrefix("~") && isMemberAlive($0) }.sorted()
    }

    /// The process id a member id starts with (`GroupMembership` makes ids
    /// as the pid in hex, '-', a random number), if it has one.
    public static func pid(ofMember id: String) -> Int32? {
        guard let hex = id.split(separator: "-", omittingEmptySubsequences: false).first, let pid = Int32(hex, radix: 16), pid > 0 else { return nil }
        return pid
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

/// Committed offsets: a pair of 32-byte slots, written in turn
/// ("ping-pong"), each little-endian:
///
///     0   8  generation   incremented by every commit
///     8   8  offset       the next offset the group will consume
///     16  8  committedMs  wall-clock time of the commit
///     24  4  CRC-32C of bytes 0..<24
///     28  4  zero
///
/// A group's file for a topic holds a 128-byte record per partition,
/// partition P's at P × 128: the pair, then who holds the lease (`Holder`),
/// then zeros. A file of the earlier layout, and the delay mover's
/// low-water file, hold one pair at 0. A commit writes slot
/// `generation % 2` of the pair and fdatasyncs. The valid slot with the
/// larger generation is the committed offset, so a torn or lost write
/// leaves the previous commit in place: an offset is never corrupted and
/// never replaced by anything but a whole later write. Consumers only move
/// it forward; a reset (`PartitionLease.reset`) writes the next generation
/// with any offset, backward included, the same way. Bytes past the end of
/// the file read as zeros (no commit): a write extends the file, never
/// shrinks it.
public enum CommittedOffsetFile {
    public static let slotSize = 32
    /// The pair of slots.
    public static let pairSize = 2 * slotSize
    /// One partition's bytes in a topic's file: the pair, the holder, zeros.
    public static let recordSize = 128
    /// Where the holder is, in a partition's record.
    static let holderOffset = pairSize
    static let holderSize = 32

    /// Who took a partition's lease, written by the taker (not synced: it
    /// means something only while the lease's lock is held), little-endian:
    ///
    ///     64  4   pid       the process
    ///     68  4   zero
    ///     72  8   takenMs   wall-clock time it took the lease
    ///     80  16  member    its member id (ASCII, zero-padded), or zeros
    public struct Holder: Equatable, Sendable {
        public var pid: Int32
        public var takenMs: Int64
        public var member: String
    }

    static func encode(_ holder: Holder) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: holderSize)
        withUnsafeBytes(of: holder.pid.littleEndian) { bytes.replaceSubrange(0..<4, with: $0) }
        withUnsafeBytes(of: holder.takenMs.littleEndian) { bytes.replaceSubrange(8..<16, with: $0) }
        let member = Array(holder.member.utf8.prefix(16))
        bytes.replaceSubrange(16..<(16 + member.count), with: member)
        return bytes
    }

    static func decodeHolder(_ raw: UnsafeRawBufferPointer) -> Holder? {
        guard raw.count >= holderSize, let p = raw.baseAddress else { return nil }
        let pid = Int32(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: Int32.self))
        guard pid > 0 else { return nil }
        let member = UnsafeRawBufferPointer(rebasing: raw[16..<32]).prefix { $0 != 0 }
        return Holder(pid: pid, takenMs: Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: Int64.self)),
                      member: String(decoding: member, as: UTF8.self))
    }

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

    /// The newer valid slot of the pair in `raw` (64 bytes), or nil.
    static func decodePair(_ raw: UnsafeRawBufferPointer) -> Slot? {
        guard raw.count >= pairSize else { return nil }
        let a = decode(UnsafeRawBufferPointer(rebasing: raw[0..<slotSize]))
        let b = decode(UnsafeRawBufferPointer(rebasing: raw[slotSize..<pairSize]))
        switch (a, b) {
        case let (a?, b?): return a.generation > b.generation ? a : b
        case let (a?, nil): return a
        case let (nil, b?): return b
        default: return nil
        }
    }

    /// Where partition `partition`'s pair starts in a topic's file.
    static func position(of partition: Int32) -> Int64 { Int64(partition) * Int64(recordSize) }

    /// The newest valid slot of the pair at `at`, or nil when nothing was ever committed there.
    public static func read(_ handle: OpenFile, at: Int64 = 0) throws -> Slot? {
        // A short file reads as if zero-padded: that is what it becomes when a
        // commit extends it, so readers and writers agree on every slot.
        var raw = [UInt8](repeating: 0, count: pairSize)
        _ = try raw.withUnsafeMutableBytes { try handle.read(into: $0.baseAddress!, count: pairSize, at: at) }
        return raw.withUnsafeBytes { decodePair($0) }
    }

    /// The newest valid slot of partition `partition` in a topic's file.
    public static func read(_ handle: OpenFile, partition: Int32) throws -> Slot? {
        try read(handle, at: position(of: partition))
    }

    /// The newest valid slots and the holders of partitions `0..<partitions`
    /// in a topic's file, with one read.
    public static func readAll(_ handle: OpenFile, partitions: Int32) throws -> [(slot: Slot?, holder: Holder?)] {
        let count = Int(max(partitions, 0))
        var raw = [UInt8](repeating: 0, count: count * recordSize)
        if count > 0 { _ = try raw.withUnsafeMutableBytes { try handle.read(into: $0.baseAddress!, count: $0.count, at: 0) } }
        return raw.withUnsafeBytes { all in
            (0..<count).map { p in
                let record = UnsafeRawBufferPointer(rebasing: all[(p * recordSize)..<((p + 1) * recordSize)])
                return (decodePair(record), decodeHolder(UnsafeRawBufferPointer(rebasing: record[holderOffset..<(holderOffset + holderSize)])))
            }
        }
    }

    /// Writes the next generation with `offset` into the pair at `at` and,
    /// with `sync`, makes it durable.
    public static func commit(_ handle: OpenFile, at: Int64 = 0, after previous: Slot?, offset: Int64, sync: Bool = true) throws -> Slot {
        let slot = try next(after: previous, offset: offset, in: handle, at: at)
        let bytes = encode(slot)
        try bytes.withUnsafeBytes { try handle.write($0, at: at + Int64(slotPosition(slot))) }
        if sync { try handle.sync() }
        return slot
    }

    /// The slot of the commit after `previous` (the generation after its
    /// one), with `offset` and the time now.
    /// - Throws: `MQError` (corrupt) when `previous` has the last generation
    ///   (`handle` and `at` name the pair).
    static func next(after previous: Slot?, offset: Int64, in handle: OpenFile, at: Int64) throws -> Slot {
        guard (previous?.generation ?? 0) < UInt64.max else {
            throw MQError.corrupt("committed-offset file '\(handle.path)' has an impossible generation at byte \(at); remove it to reset the group's positions")
        }
        return Slot(generation: (previous?.generation ?? 0) + 1, offset: offset, committedMs: currentTimeMillis())
    }

    /// Where `slot` goes in its pair: the slot its generation's parity names.
    static func slotPosition(_ slot: Slot) -> Int { Int(slot.generation % 2) * slotSize }
}

/// What a group has of a topic's partitions, read without taking leases
/// (for `mq-stat`): for each partition that has a commit or a holder, the
/// committed offset and the process holding its lease.
public enum GroupCommits {
    public struct Row: Equatable, Sendable {
        public var partition: Int32
        public var committed: Int64?
        public var ownerPIDs: [Int32]
        /// When the committed offset was written (wall clock, ms), if any.
        public var committedMs: Int64? = nil
    }

    /// Rows of the partitions `0..<partitions` that have a commit, or a lease
    /// held now, in `committed/TOPIC` or in the earlier layout's files.
    public static func read(_ group: GroupDirectory, topic: String, partitions: Int32) throws -> [Row] {
        var rows: [Int32: Row] = [:]
        if let f = try OpenFile.openIfExists(group.commitsPath(topic), O_RDONLY) {
            defer { f.close() }
            for (p, record) in try CommittedOffsetFile.readAll(f, partitions: partitions).enumerated() {
                let partition = Int32(p)
                // The holder written by the taker counts only while its lock is held.
                var owners: [Int32] = []
                if let holder = record.holder,
                   f.isRangeLocked(start: CommittedOffsetFile.position(of: partition), length: Int64(CommittedOffsetFile.recordSize)) {
                    owners = [holder.pid]
                }
                if record.slot != nil || !owners.isEmpty {
                    rows[partition] = Row(partition: partition, committed: record.slot?.offset, ownerPIDs: owners, committedMs: record.slot?.committedMs)
                }
            }
        }
        let legacy = group.legacyOffsetsPath(topic)
        if FileSystem.isDirectory(legacy) {
            let holders = FlockHolders.byInode()
            for p in 0..<max(partitions, 0) where rows[p]?.committed == nil {
                guard let f = try OpenFile.openIfExists(group.legacyOffsetPath(topic, p), O_RDONLY) else { continue }
                defer { f.close() }
                var st = stat()
                fstat(f.fd, &st)
                let slot = try CommittedOffsetFile.read(f)
                let owners = (rows[p]?.ownerPIDs ?? []) + (holders[UInt64(st.st_ino)] ?? [])
                rows[p] = Row(partition: p, committed: slot?.offset, ownerPIDs: owners, committedMs: slot?.committedMs)
            }
        }
        return rows.values.sorted { $0.partition < $1.partition }
    }
}

/// A group's committed-offset file of one topic, opened once per process
/// and shared by the leases this process holds on the topic's partitions
/// (one descriptor per topic, however many partitions are held). The
/// leases are byte-range locks taken through it; `held` keeps two leases of
/// this process off one partition (the locks of one open file do not
/// conflict with each other). Closed when the last lease goes.
final class TopicCommitFile: @unchecked Sendable {
    let path: String
    let handle: OpenFile
    /// The earlier layout's directory of this topic existed when the file was opened.
    let hasLegacy: Bool
    let group: GroupDirectory
    let topic: String
    /// Partitions leased through this file.
    private let held = Mutex<Set<Int32>>([])

    private init(group: GroupDirectory, topic: String, handle: OpenFile) {
        self.group = group
        self.topic = topic
        self.path = handle.path
        self.handle = handle
        self.hasLegacy = FileSystem.exists(group.legacyOffsetsPath(topic))
    }

    deinit { handle.close() }

    private struct Weak: @unchecked Sendable { weak var file: TopicCommitFile? }
    /// The files open in this process, by path.
    private static let registry = Mutex<[String: Weak]>([:])

    /// The process's open file of `topic` in `group`, opened (and created,
    /// with its name made durable) when none is.
    static func shared(_ group: GroupDirectory, topic: String) throws -> TopicCommitFile {
        let path = group.commitsPath(topic)
        if let file = registry.withLock({ $0[path]?.file }) { return file }
        let handle: OpenFile
        if let existing = try OpenFile.openIfExists(path, O_RDWR) {
            handle = existing
        } else {
            try group.prepare(topic: topic)
            handle = try OpenFile.open(path, O_RDWR | O_CREAT, creating: true)
            // Once per topic and group: the file is found again after a crash.
            try FileSystem.syncDirectory(group.committedPath)
        }
        let file = TopicCommitFile(group: group, topic: topic, handle: handle)
        return registry.withLock { open in
            if let raced = open[path]?.file { return raced }
            open[path] = Weak(file: file)
            return file
        }
    }

    /// Takes partition `partition`'s lease unless this process or another holds it.
    func tryLease(_ partition: Int32) throws -> Bool {
        let mine = held.withLock { $0.insert(partition).inserted }
        guard mine else { return false }
        let locked: Bool
        do {
            locked = try handle.lockRange(start: CommittedOffsetFile.position(of: partition), length: Int64(CommittedOffsetFile.recordSize))
        } catch {
            release(partition)
            throw error
        }
        if !locked { held.withLock { _ = $0.remove(partition) } }
        return locked
    }

    func release(_ partition: Int32) {
        handle.unlockRange(start: CommittedOffsetFile.position(of: partition), length: Int64(CommittedOffsetFile.recordSize))
        held.withLock { _ = $0.remove(partition) }
    }

    /// Takes the leases of all the partitions of `run` with one lock over
    /// their records, unless this process holds one of them or another
    /// process holds a lock on any of those bytes.
    func tryLeaseRun(_ run: Range<Int32>) throws -> Bool {
        let mine = held.withLock { held in
            guard !run.contains(where: { held.contains($0) }) else { return false }
            held.formUnion(run)
            return true
        }
        guard mine else { return false }
        let locked: Bool
        do {
            locked = try handle.lockRange(start: CommittedOffsetFile.position(of: run.lowerBound), length: Self.length(of: run))
        } catch {
            held.withLock { $0.subtract(run) }
            throw error
        }
        if !locked { held.withLock { $0.subtract(run) } }
        return locked
    }

    /// Gives back the leases of all the partitions of `run`, with one unlock.
    func releaseRun(_ run: Range<Int32>) {
        handle.unlockRange(start: CommittedOffsetFile.position(of: run.lowerBound), length: Self.length(of: run))
        held.withLock { $0.subtract(run) }
    }

    /// The bytes of the records of `run`.
    static func length(of run: Range<Int32>) -> Int64 { Int64(run.count) * Int64(CommittedOffsetFile.recordSize) }
}

/// This process's id, for the holders of its leases.
private let processID = getpid()

/// Ownership of one partition within a group: a write lock on the
/// partition's 128 bytes of the group's committed-offset file of the topic,
/// held for as long as this object lives (or until `releaseAll`). Not
/// thread-safe.
public final class PartitionLease {
    public let topic: String
    public let partition: Int32
    private let file: TopicCommitFile
    public private(set) var committed: CommittedOffsetFile.Slot?
    /// The partition's record as it is in the file: as read when the lease
    /// was taken, with the holder and each commit since. Consecutive
    /// partitions' commits write their records whole, in one write.
    private var record: [UInt8]
    /// Given back by `releaseAll`.
    private var released = false

    /// A lease on `partition`, locked through `file`, whose record reads `record`.
    private init(topic: String, partition: Int32, file: TopicCommitFile, record: [UInt8]) throws {
        self.topic = topic
        self.partition = partition
        self.file = file
        self.record = record
        var slot = record.withUnsafeBytes { CommittedOffsetFile.decodePair($0) }
        if slot == nil && file.hasLegacy { slot = try file.group.legacySlot(topic, partition) }
        self.committed = slot
    }

    deinit { if !released { file.release(partition) } }

    /// Where this partition's pair of slots starts in the file.
    private var position: Int64 { CommittedOffsetFile.position(of: partition) }

    /// Takes the lease if no other process (nor another lease of this one)
    /// holds it, and records this process as its holder (`member`: the
    /// taker's member id, if it is a group member).
    /// - Returns: nil when another consumer owns the partition.
    public static func tryAcquire(_ group: GroupDirectory, topic: String, partition: Int32, member: String = "") throws -> PartitionLease? {
        guard partition >= 0 && partition < Int32.max else { return nil }
        return try tryAcquire(TopicCommitFile.shared(group, topic: topic), topic: topic, partition: partition, member: member)
    }

    private static func tryAcquire(_ file: TopicCommitFile, topic: String, partition: Int32, member: String) throws -> PartitionLease? {
        guard try file.tryLease(partition) else { return nil }
        do {
            return try taken(file, topic: topic, run: partition..<(partition + 1), member: member, holderOnly: true)[0]
        } catch {
            file.release(partition)
            throw error
        }
    }

    /// Takes the leases of `partitions` (of `topic`) that no other process,
    /// nor another lease of this one, holds, as `tryAcquire` does for each;
    /// each run of consecutive partitions that are all free takes one lock,
    /// one read of their records and one write of them with their holders
    /// (the slots rewritten with the bytes they hold).
    /// - Returns: the leases taken, in the order of `partitions`.
    public static func tryAcquireAll(_ group: GroupDirectory, topic: String, partitions: [Int32], member: String = "") throws -> [PartitionLease] {
        let wanted = partitions.filter { $0 >= 0 && $0 < Int32.max }
        guard !wanted.isEmpty else { return [] }
        let file = try TopicCommitFile.shared(group, topic: topic)
        var leases: [PartitionLease] = []
        leases.reserveCapacity(wanted.count)
        for indices in runs(in: wanted) {
            let run = wanted[indices.lowerBound]..<(wanted[indices.upperBound - 1] + 1)
            if run.count > 1, try file.tryLeaseRun(run) {
                do {
                    leases += try taken(file, topic: topic, run: run, member: member, holderOnly: false)
                } catch {
                    file.releaseRun(run)
                    throw error
                }
            } else {
                for p in run {
                    if let lease = try tryAcquire(file, topic: topic, partition: p, member: member) { leases.append(lease) }
                }
            }
        }
        return leases
    }

    /// The leases of `run`, whose locks this process has just taken: reads
    /// their records and writes the holder into each, only the holder's
    /// bytes with `holderOnly` (one partition), else the records whole.
    private static func taken(_ file: TopicCommitFile, topic: String, run: Range<Int32>, member: String, holderOnly: Bool) throws -> [PartitionLease] {
        let size = CommittedOffsetFile.recordSize
        let start = CommittedOffsetFile.position(of: run.lowerBound)
        // A short file reads as if zero-padded (CommittedOffsetFile.read).
        var bytes = [UInt8](repeating: 0, count: run.count * size)
        _ = try bytes.withUnsafeMutableBytes { try file.handle.read(into: $0.baseAddress!, count: $0.count, at: start) }
        let holder = CommittedOffsetFile.encode(CommittedOffsetFile.Holder(pid: processID, takenMs: currentTimeMillis(), member: member))
        let at = CommittedOffsetFile.holderOffset
        for k in 0..<run.count { bytes.replaceSubrange((k * size + at)..<(k * size + at + holder.count), with: holder) }
        if holderOnly {
            try holder.withUnsafeBytes { try file.handle.write($0, at: start + Int64(at)) }
        } else {
            try bytes.withUnsafeBytes { try file.handle.write($0, at: start) }
        }
        return try run.enumerated().map { k, p in
            try PartitionLease(topic: topic, partition: p, file: file, record: Array(bytes[(k * size)..<((k + 1) * size)]))
        }
    }

    /// Gives back every lease of `leases`, one unlock per run of
    /// consecutive partitions of a file (as their deinit would, one each).
    public static func releaseAll(_ leases: [PartitionLease]) {
        for (file, run) in runs(of: leases.filter { !$0.released }) {
            file.releaseRun(run.first!.partition..<(run.last!.partition + 1))
            for lease in run { lease.released = true }
        }
    }

    /// `leases` by file, each file's in runs of consecutive partitions.
    private static func runs(of leases: [PartitionLease]) -> [(TopicCommitFile, [PartitionLease])] {
        var byFile: [ObjectIdentifier: [PartitionLease]] = [:]
        for lease in leases { byFile[ObjectIdentifier(lease.file), default: []].append(lease) }
        var runs: [(TopicCommitFile, [PartitionLease])] = []
        for group in byFile.values {
            let sorted = group.sorted { $0.partition < $1.partition }
            for indices in self.runs(in: sorted.map(\.partition)) { runs.append((sorted[0].file, Array(sorted[indices]))) }
        }
        return runs
    }

    /// The index ranges of `partitions` whose partitions each follow the one before.
    private static func runs(in partitions: [Int32]) -> [Range<Int>] {
        var runs: [Range<Int>] = []
        var start = 0
        for i in partitions.indices.dropFirst() where Int64(partitions[i]) != Int64(partitions[i - 1]) + 1 {
            runs.append(start..<i)
            start = i
        }
        if !partitions.isEmpty { runs.append(start..<partitions.count) }
        return runs
    }

    /// Commits `offset` (the next offset to consume) durably, unless it is already committed.
    public func commit(_ offset: Int64) throws {
        guard offset != committed?.offset else { return }
        try reset(to: offset)
    }

    /// Writes `slot` into this lease's record, where its generation puts it.
    private func recordInMemory(_ slot: CommittedOffsetFile.Slot) {
        let at = CommittedOffsetFile.slotPosition(slot)
        record.replaceSubrange(at..<(at + CommittedOffsetFile.slotSize), with: CommittedOffsetFile.encode(slot))
    }

    /// Commits `offset` for each lease, as `commit` does, unless it is
    /// already committed: writes every slot (the records of consecutive
    /// partitions of a file whole, in one write), then fdatasyncs each file
    /// written once (one per topic, however many partitions); all are
    /// durable when it returns.
    public static func commitAll(_ commits: [(lease: PartitionLease, offset: Int64)]) throws {
        let due = commits.filter { $0.offset != $0.lease.committed?.offset }
        guard due.count > 1 else {
            for c in due { try c.lease.commit(c.offset) }
            return
        }
        var slots: [ObjectIdentifier: CommittedOffsetFile.Slot] = [:]
        for c in due {
            let slot = try CommittedOffsetFile.next(after: c.lease.committed, offset: c.offset, in: c.lease.file.handle, at: c.lease.position)
            slots[ObjectIdentifier(c.lease)] = slot
            c.lease.recordInMemory(slot)
        }
        for (file, run) in runs(of: due.map(\.lease)) {
            if run.count == 1, let lease = run.first, let slot = slots[ObjectIdentifier(lease)] {
                try CommittedOffsetFile.encode(slot).withUnsafeBytes {
                    try file.handle.write($0, at: lease.position + Int64(CommittedOffsetFile.slotPosition(slot)))
                }
            } else {
                try run.flatMap(\.record).withUnsafeBytes { try file.handle.write($0, at: run[0].position) }
            }
        }
        var synced = Set<ObjectIdentifier>()
        for c in due where synced.insert(ObjectIdentifier(c.lease.file)).inserted { try c.lease.file.handle.sync() }
        for c in due { c.lease.committed = slots[ObjectIdentifier(c.lease)] }
    }

    /// Moves the committed offset to `offset`, backward or forward (an
    /// administrative reset, `mq-replay --reset-to`): writes the next
    /// generation and fdatasyncs it, as a commit does, even when the offset
    /// does not change (the commit time records the reset).
    public func reset(to offset: Int64) throws {
        let slot = try CommittedOffsetFile.commit(file.handle, at: position, after: committed, offset: offset)
        recordInMemory(slot)
        committed = slot
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
