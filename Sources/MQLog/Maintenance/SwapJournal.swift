import Glibc

/// The commit point of a segment swap: `compact.swap` in the partition
/// directory names the new segment (written as `<base>.*.cleaned`) and the
/// old segments it replaces. Once it is on disk the swap is decided, and
/// anyone who finds it finishes the swap ("roll forward"); without it, any
/// `.cleaned` file is debris of an unfinished rewrite and is removed ("roll
/// back"). So a crash leaves the old segments or the new one, never a mix.
///
/// Layout, integers little-endian:
///
///     0   8  magic "MQSWAP01"
///     8   8  base of the new segment (also the first old segment's base)
///     16  4  n, the number of old segments
///     20  8n their bases, ascending
///     …   4  CRC-32C of everything before
public struct SwapJournal: Equatable, Sendable {
    public static let name = "compact.swap"
    static let magic = Array("MQSWAP01".utf8)

    public var newBase: Int64
    public var oldBases: [Int64]

    public init(newBase: Int64, oldBases: [Int64]) {
        self.newBase = newBase
        self.oldBases = oldBases
    }

    public func encode() -> [UInt8] {
        let b = GrowableBytes(capacity: 24 + 8 * oldBases.count)
        b.append(SwapJournal.magic)
        var v = newBase.littleEndian
        withUnsafeBytes(of: &v) { b.append($0) }
        var n = UInt32(oldBases.count).littleEndian
        withUnsafeBytes(of: &n) { b.append($0) }
        for base in oldBases {
            var x = base.littleEndian
            withUnsafeBytes(of: &x) { b.append($0) }
        }
        var crc = CRC32C.checksum(b.bytes).littleEndian
        withUnsafeBytes(of: &crc) { b.append($0) }
        return b.array
    }

    public static func decode(_ bytes: [UInt8]) -> SwapJournal? {
        guard bytes.count >= 24, Array(bytes[0..<8]) == magic else { return nil }
        return bytes.withUnsafeBytes { raw -> SwapJournal? in
            let p = raw.baseAddress!
            let n = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: UInt32.self)))
            guard n >= 1, n <= 1 << 20, bytes.count == 24 + 8 * n else { return nil }
            let crc = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 20 + 8 * n, as: UInt32.self))
            guard crc == CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: 20 + 8 * n)) else { return nil }
            let newBase = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: Int64.self))
            let old = (0..<n).map { Int64(littleEndian: p.loadUnaligned(fromByteOffset: 20 + 8 * $0, as: Int64.self)) }
            return SwapJournal(newBase: newBase, oldBases: old)
        }
    }

    /// Swaps the finished, fsynced new segment in: journal (the commit
    /// point), then the renames and removals of `finish`.
    public static func commit(_ journal: SwapJournal, in directory: String) throws {
        try FileSystem.writeAtomically(directory + "/" + name, journal.encode())
        try finish(journal, in: directory)
    }

    /// Completes a committed swap; every step may already have been done.
    /// 1. while the new `.log` is not in place: remove the first old
    ///    segment's `.index` and `.timeindex`, then rename the new `.log`
    ///    over the old one (a segment without indexes is valid; a log with
    ///    another segment's indexes is not);
    /// 2. rename the new `.index` and `.timeindex` in;
    /// 3. merge the old segments' `.txnindex` entries into the new one's;
    ///    remove every other old segment, `.log` first (readers go by
    ///    `.log` names), then its indexes and `.txnindex`;
    /// 4. fsync the directory, remove the journal, fsync again.
    static func finish(_ journal: SwapJournal, in directory: String) throws {
        let b = journal.newBase
        let segment = Segment(directory, b)
        if FileSystem.exists(SegmentBuilder.logPath(directory, b)) {
            try FileSystem.remove(segment.indexPath)
            try FileSystem.remove(segment.timeIndexPath)
            try FileSystem.rename(SegmentBuilder.logPath(directory, b), to: segment.logPath)
        }
        for (from, to) in [(SegmentBuilder.indexPath(directory, b), segment.indexPath),
                           (SegmentBuilder.timeIndexPath(directory, b), segment.timeIndexPath)] where FileSystem.exists(from) {
            try FileSystem.rename(from, to: to)
        }
        // Aborted transactions of the merged segments (docs/FORMAT.md §18):
        // merged into the new segment's .txnindex before their files go.
        try TxnIndexFiles.merge(into: b, from: journal.oldBases, in: directory)
        for old in journal.oldBases where old != b {
            let oldSegment = Segment(directory, old)
            try oldSegment.removeFiles()
            try FileSystem.remove(oldSegment.txnIndexPath)
        }
        try FileSystem.syncDirectory(directory)
        try FileSystem.remove(directory + "/" + name)
        try FileSystem.syncDirectory(directory)
    }

    /// What `recover` found.
    public enum Recovery: Equatable, Sendable { case nothing, rolledForward, rolledBack }

    /// Brings a partition directory to a consistent state after an
    /// interrupted run: finishes a committed swap, or removes the debris of
    /// an uncommitted one (and of interrupted atomic writes).
    public static func recover(in directory: String, dryRun: Bool = false) throws -> Recovery {
        let names = try FileSystem.list(directory)
        let journalPath = directory + "/" + name
        var result = Recovery.nothing
        if names.contains(name) {
            guard let journal = SwapJournal.decode(try FileSystem.readAll(journalPath)) else {
                // Written by rename of a fsynced file: a bad one is damage, not a torn write.
                throw MQError(.dataError, "\(journalPath): damaged swap journal; compare the .cleaned files with the segments it would replace, then remove it")
            }
            if !dryRun { try finish(journal, in: directory) }
            result = .rolledForward
        }
        let debris = names.filter {
            ($0.hasSuffix(SegmentBuilder.suffix) && result != .rolledForward)
                || $0.hasPrefix(name + ".~tmp.") || $0.hasPrefix(CleanerCheckpoint.name + ".~tmp.")
        }
        if !debris.isEmpty {
            if !dryRun { for d in debris { try FileSystem.remove(directory + "/" + d) } }
            if result == .nothing && debris.contains(where: { $0.hasSuffix(SegmentBuilder.suffix) }) { result = .rolledBack }
        }
        return result
    }
}

/// The offset up to which a compacted partition is clean (every record
/// below it was compacted at least once), in `cleaner-offset` in the
/// partition directory: the offset (int64 LE), its CRC-32C (uint32 LE), 4
/// zero bytes; written atomically (temporary file, fsync, rename, fsync of
/// the directory). Missing or damaged reads as 0: all dirty.
public enum CleanerCheckpoint {
    public static let name = "cleaner-offset"

    public static func read(_ directory: String) -> Int64 {
        guard let bytes = try? FileSystem.readAll(directory + "/" + name), bytes.count == 16 else { return 0 }
        return bytes.withUnsafeBytes { raw in
            let p = raw.baseAddress!
            let crc = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt32.self))
            guard crc == CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: 8)) else { return 0 }
            return max(0, Int64(littleEndian: p.loadUnaligned(fromByteOffset: 0, as: Int64.self)))
        }
    }

    public static func write(_ directory: String, _ offset: Int64) throws {
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: offset.littleEndian, toByteOffset: 0, as: Int64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: raw[0..<8]))
            raw.storeBytes(of: crc.littleEndian, toByteOffset: 8, as: UInt32.self)
        }
        try FileSystem.writeAtomically(directory + "/" + name, bytes)
    }
}
