import Glibc

/// The delay mover's files in partition 0 of a delay topic (docs/FORMAT.md
/// §15), read by the mover (`DelayMover`), by retention (everything below the
/// low-water mark may go) and by housekeeping (the journal is trimmed).
///
///     mover.lock      flock(LOCK_EX) by the active mover
///     mover.offset    low-water mark: every delay-topic offset below it was moved
///                     (the committed-offset file format: two ping-pong slots)
///     mover.journal   offsets moved at or above the low-water mark, 16 bytes
///                     each: offset (int64 LE), CRC-32C of those 8 bytes
///                     (uint32 LE), zero (uint32)
public enum DelayMoverFiles {
    public static let lockName = "mover.lock"
    public static let lowWaterName = "mover.offset"
    public static let journalName = "mover.journal"
    /// Bytes per journal entry.
    public static let journalEntrySize = 16

    public static func lockPath(_ directory: String) -> String { directory + "/" + lockName }
    public static func lowWaterPath(_ directory: String) -> String { directory + "/" + lowWaterName }
    public static func journalPath(_ directory: String) -> String { directory + "/" + journalName }

    /// The low-water mark in a delay topic's directory, read without the
    /// mover's lock: every offset below it was moved (0 when no mover ran).
    public static func lowWaterMark(_ directory: String) throws -> Int64 {
        guard let f = try OpenFile.openIfExists(lowWaterPath(directory), O_RDONLY) else { return 0 }
        defer { f.close() }
        return try CommittedOffsetFile.read(f)?.offset ?? 0
    }

    /// The offsets of a journal's entries, up to the first torn or damaged
    /// one, and the bytes those entries take.
    public static func journalEntries(_ raw: [UInt8]) -> (offsets: [Int64], validBytes: Int) {
        var offsets: [Int64] = []
        var at = 0
        raw.withUnsafeBytes { p in
            while at + journalEntrySize <= p.count {
                let offset = Int64(littleEndian: p.loadUnaligned(fromByteOffset: at, as: Int64.self))
                let crc = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at + 8, as: UInt32.self))
                guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[at..<at + 8])) == crc else { break }
                offsets.append(offset)
                at += journalEntrySize
            }
        }
        return (offsets, at)
    }
}
