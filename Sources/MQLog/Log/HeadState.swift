import Glibc

/// The state a partition's writers share, kept in the partition's `head` file.
///
/// `head` is also the partition's writer lock: a writer holds `flock(LOCK_EX)`
/// on it while it appends, rolls or recovers. The state is a hint that saves
/// every writer from scanning the log: it is checked (checksum, boot id,
/// segment size) on every lock, and rebuilt from the segments when wrong.
///
/// Layout, 128 bytes, integers little-endian:
///
///   0    8   magic "MQHEAD01"
///   8    16  boot id of the machine boot that last wrote it
///   24   8   activeBase          base offset of the active segment
///   32   8   endPosition         bytes of valid batches in the active segment
///   40   8   nextOffset          log end offset: the offset the next record gets
///   48   8   flushedPosition     active-segment bytes known to be fsynced
///   56   8   flushedNextOffset   log end offset at flushedPosition
///   64   8   bytesSinceIndex     bytes appended since the last offset-index entry
///   72   8   indexBytes          valid bytes of the active segment's .index
///   80   8   timeIndexBytes      valid bytes of the active segment's .timeindex
///   88   8   maxTimestamp        largest timestamp in the active segment, -1 if none
///   96   8   offsetOfMaxTimestamp
///   104  8   lastTimeIndexTimestamp  timestamp of the last .timeindex entry, -1 if none
///   112  8   createdMs           wall-clock time the active segment was created
///   120  4   CRC-32C of bytes 0..<120
///   124  4   zero
public struct HeadState: Equatable, Sendable {
    public static let size = 128
    static let magic: [UInt8] = Array("MQHEAD01".utf8)

    public var bootID: [UInt8] = currentBootID
    public var activeBase: Int64 = 0
    public var endPosition: Int64 = 0
    public var nextOffset: Int64 = 0
    public var flushedPosition: Int64 = 0
    public var flushedNextOffset: Int64 = 0
    public var bytesSinceIndex: Int64 = 0
    public var indexBytes: Int64 = 0
    public var timeIndexBytes: Int64 = 0
    public var maxTimestamp: Int64 = -1
    public var offsetOfMaxTimestamp: Int64 = -1
    public var lastTimeIndexTimestamp: Int64 = -1
    public var createdMs: Int64 = 0

    public init() {}

    /// A state for a fresh, empty active segment at `base`.
    public static func emptySegment(base: Int64, createdMs: Int64) -> HeadState {
        var s = HeadState()
        s.activeBase = base
        s.nextOffset = base
        s.flushedNextOffset = base
        s.createdMs = createdMs
        return s
    }

    public func encode() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: HeadState.size)
        out.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            for i in 0..<8 { p.storeBytes(of: HeadState.magic[i], toByteOffset: i, as: UInt8.self) }
            for i in 0..<16 { p.storeBytes(of: bootID[i], toByteOffset: 8 + i, as: UInt8.self) }
            let fields = [activeBase, endPosition, nextOffset, flushedPosition, flushedNextOffset, bytesSinceIndex,
                          indexBytes, timeIndexBytes, maxTimestamp, offsetOfMaxTimestamp, lastTimeIndexTimestamp, createdMs]
            for (i, v) in fields.enumerated() { p.storeBytes(of: v.littleEndian, toByteOffset: 24 + 8 * i, as: Int64.self) }
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: 120))
            p.storeBytes(of: crc.littleEndian, toByteOffset: 120, as: UInt32.self)
        }
        return out
    }

    /// The active segment's base offset from a valid state, without decoding the rest.
    public static func activeBase(_ bytes: UnsafeRawBufferPointer) -> Int64? {
        guard let p = checked(bytes) else { return nil }
        let base = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: Int64.self))
        return base >= 0 && base <= BatchLayout.maximumBaseOffset ? base : nil
    }

    /// True when `bytes` (a valid state) were written in this boot of the machine.
    public static func isOfThisBoot(_ bytes: UnsafeRawBufferPointer) -> Bool {
        guard let p = checked(bytes) else { return false }
        let boot = currentBootID
        for i in 0..<16 where p.load(fromByteOffset: 8 + i, as: UInt8.self) != boot[i] { return false }
        return true
    }

    /// The start of `bytes` when they hold a whole state with the magic and a matching checksum.
    private static func checked(_ bytes: UnsafeRawBufferPointer) -> UnsafeRawPointer? {
        guard bytes.count >= size, let p = bytes.baseAddress else { return nil }
        for i in 0..<8 where p.load(fromByteOffset: i, as: UInt8.self) != magic[i] { return nil }
        let crc = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 120, as: UInt32.self))
        guard crc == CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: 120)) else { return nil }
        return p
    }

    /// Decodes, or nil when the bytes are not a valid state (short, torn, wrong magic or checksum).
    public static func decode(_ bytes: UnsafeRawBufferPointer) -> HeadState? {
        guard let p = checked(bytes) else { return nil }
        var s = HeadState()
        s.bootID = (0..<16).map { p.load(fromByteOffset: 8 + $0, as: UInt8.self) }
        func field(_ i: Int) -> Int64 { Int64(littleEndian: p.loadUnaligned(fromByteOffset: 24 + 8 * i, as: Int64.self)) }
        s.activeBase = field(0); s.endPosition = field(1); s.nextOffset = field(2)
        s.flushedPosition = field(3); s.flushedNextOffset = field(4); s.bytesSinceIndex = field(5)
        s.indexBytes = field(6); s.timeIndexBytes = field(7); s.maxTimestamp = field(8)
        s.offsetOfMaxTimestamp = field(9); s.lastTimeIndexTimestamp = field(10); s.createdMs = field(11)
        // Offsets within what a batch can carry and positions far from
        // overflow, so that no sum a writer or reader makes from them wraps.
        let offsets: ClosedRange<Int64> = 0...BatchLayout.maximumBaseOffset
        let positions: ClosedRange<Int64> = 0...(Int64.max >> 2)
        guard offsets.contains(s.activeBase), offsets.contains(s.nextOffset), offsets.contains(s.flushedNextOffset),
              positions.contains(s.endPosition), positions.contains(s.flushedPosition), positions.contains(s.bytesSinceIndex),
              positions.contains(s.indexBytes), positions.contains(s.timeIndexBytes),
              s.nextOffset >= s.activeBase, s.flushedPosition <= s.endPosition,
              s.flushedNextOffset <= s.nextOffset, s.bytesSinceIndex <= s.endPosition,
              s.indexBytes % Int64(OffsetIndex.entrySize) == 0, s.timeIndexBytes % Int64(TimeIndex.entrySize) == 0 else { return nil }
        // At most one index entry per batch (and one more time entry), a batch
        // being at least a header long: a writer appends its next entries at
        // these sizes, so a damaged size must not make it extend the index
        // files far past their data.
        let batches = s.endPosition / Int64(BatchLayout.headerSize)
        guard s.indexBytes <= Int64(OffsetIndex.entrySize) * (batches + 1), s.timeIndexBytes <= Int64(TimeIndex.entrySize) * (batches + 2) else { return nil }
        return s
    }
}

/// A partition's `head` read without its lock: for readers, which look at
/// the writers' state (torn tails, rolls, what is flushed) but never change
/// it. Kept open between reads, or closed after each (`read(keepingOpen:)`)
/// by a reader that is one of thousands. Not thread-safe.
final class HeadFileReader {
    private let path: String
    private var file: OpenFile?
    private let bytes = UnsafeMutableRawBufferPointer.allocate(byteCount: HeadState.size, alignment: 8)

    init(directory: String) { path = LogSegments.headPath(directory) }

    deinit {
        file?.close()
        bytes.deallocate()
    }

    /// True when the last `read` found `head` (the file exists).
    private(set) var found = false

    /// What the last `read` returned, without reading again (nil: no read
    /// yet, or the last one found no whole `head`). Valid until the next `read`.
    private(set) var lastRead: UnsafeRawBufferPointer?

    /// Closes `head`; the next `read` opens it again.
    func close() {
        file?.close()
        file = nil
    }

    /// The 128 bytes of `head` as they are now, or nil when there is no
    /// `head` or it is short. Valid until the next call.
    /// - Parameter keepingOpen: false closes `head` after the read.
    func read(keepingOpen: Bool = true) -> UnsafeRawBufferPointer? {
        if file == nil { file = try? OpenFile.openForReading(path) }
        found = file != nil
        defer { if !keepingOpen { close() } }
        lastRead = nil
        guard let file, (try? file.read(into: bytes.baseAddress!, count: HeadState.size, at: 0)) == HeadState.size else { return nil }
        lastRead = UnsafeRawBufferPointer(bytes)
        return lastRead
    }
}
