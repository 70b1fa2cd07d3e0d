import Glibc

/// How much of a topic a consumer group has still to consume.
public struct Backlog: Sendable, Equatable {
    /// Offsets from the group's position to the log end, summed over partitions.
    public var messages: Int64
    /// Bytes of the segments from the batch holding the group's position to
    /// the end, summed over partitions (an estimate: see `PartitionExtent`).
    public var bytes: Int64

    public static let zero = Backlog(messages: 0, bytes: 0)

    /// The sum, saturating (sizes and offsets come from disk).
    static func + (a: Backlog, b: Backlog) -> Backlog {
        Backlog(messages: saturatingSum(a.messages, b.messages), bytes: saturatingSum(a.bytes, b.bytes))
    }
}

/// `a + b`, or Int64.max when that overflows.
@inline(__always)
func saturatingSum(_ a: Int64, _ b: Int64) -> Int64 {
    let (sum, overflow) = a.addingReportingOverflow(b)
    return overflow ? (b < 0 ? .min : .max) : sum
}

/// One partition as a backlog is counted in it: its segments' base offsets
/// and sizes, and its log end offset, as read at one moment.
///
/// The bytes behind an offset are those from the start of the batch holding
/// it to the end of the log: the rest of its segment, then every later
/// segment whole. The start of the batch is found through the offset index
/// and the batch headers after its entry (`BacklogMeter.indexedPosition`):
/// exact while those check, else a position before it, so the bytes may
/// then count more, never fewer.
struct PartitionExtent: Equatable, Sendable {
    struct SegmentExtent: Equatable, Sendable {
        var base: Int64
        /// Bytes of the `.log`: its size, or for the active segment the end
        /// `head` records when it has one.
        var size: Int64
    }

    /// Ascending by base offset; the last is the active segment.
    var segments: [SegmentExtent]
    var end: Int64

    /// The first offset counted: the first segment's base offset (the log
    /// start, after retention), or the end when there is no segment.
    var start: Int64 { segments.first.map { min(max($0.base, 0), end) } ?? end }

    /// The backlog from `offset` (nil: from the log start) to the end. An
    /// offset below the log start counts from the start; one past the end
    /// (a reset forward) counts nothing.
    /// - Parameter position: a byte position in segment `base` at or before
    ///   the batch holding `offset` (the offset index's answer), called
    ///   only when there is a backlog.
    func backlog(from offset: Int64?, position: (_ base: Int64, _ offset: Int64) throws -> Int64) rethrows -> Backlog {
        let from = min(max(offset ?? start, start), end)
        let messages = max(end - from, 0)
        guard messages > 0, !segments.isEmpty else { return Backlog(messages: messages, bytes: 0) }
        let i = segments.lastIndex(where: { $0.base <= from }) ?? 0
        let first = segments[i]
        let size = max(first.size, 0)
        let at = first.base < from ? min(max(try position(first.base, from), 0), size) : 0
        var bytes = size - at
        for later in segments[(i + 1)...] { bytes = saturatingSum(bytes, max(later.size, 0)) }
        return Backlog(messages: messages, bytes: bytes)
    }
}

/// Measures how far consumer groups are behind a topic, from the files
/// alone, without locks (docs/FORMAT.md §2, "Backlog bound"): for each
/// partition the log end and the segments (from `head` and a listing), and
/// each group's position (its committed offset, or a work queue's
/// done-below mark, the lower when it has both; the log start when it has
/// neither).
///
/// The groups counted are the named one (whether or not it has read the
/// topic yet), else every group with state for the topic (`committed/TOPIC`,
/// `offsets/TOPIC`, `queue/TOPIC`); with none, the whole log counts as
/// backlog, as it would for a group that starts now from the beginning.
///
/// A measure reads each partition's `head` (kept open), lists its directory,
/// and reads each group's committed-offset file of the topic once; index
/// lookups are remembered while a position does not move. Not thread-safe.
public final class BacklogMeter {
    /// What one measure found.
    public struct Reading: Sendable, Equatable {
        /// The largest backlog in messages of the groups counted, and whose it is
        /// (nil: no group, the whole log counted).
        public var messages: Int64
        public var messagesGroup: String?
        /// The largest backlog in bytes, and whose it is.
        public var bytes: Int64
        public var bytesGroup: String?
    }

    public let log: LogDirectory
    public let topic: String
    public let partitions: Int32
    /// The group counted, or nil for every group of the topic.
    public let group: String?

    private let heads: [HeadFileReader]
    /// Index lookups, by group and partition: the offset asked for, in which
    /// segment, and the position found.
    private var positions: [String: [Int32: (base: Int64, offset: Int64, position: Int64)]] = [:]

    public init(log: LogDirectory, topic: String, partitions: Int32, group: String? = nil) {
        self.log = log
        self.topic = topic
        self.partitions = max(partitions, 0)
        self.group = group
        heads = (0..<max(partitions, 0)).map { HeadFileReader(directory: log.topicPath(topic) + "/\($0)") }
    }

    /// Measures every partition and the groups counted.
    /// - Throws: `MQError` when a directory cannot be listed or a file read.
    public func measure() throws -> Reading {
        let extents = try (0..<partitions).map { try extent($0) }
        let groups = try countedGroups()
        guard !groups.isEmpty else {
            let whole = try backlog(of: nil, extents)
            return Reading(messages: whole.messages, messagesGroup: nil, bytes: whole.bytes, bytesGroup: nil)
        }
        var reading = Reading(messages: -1, messagesGroup: nil, bytes: -1, bytesGroup: nil)
        for name in groups {
            let b = try backlog(of: name, extents)
            if b.messages > reading.messages { (reading.messages, reading.messagesGroup) = (b.messages, name) }
            if b.bytes > reading.bytes { (reading.bytes, reading.bytesGroup) = (b.bytes, name) }
        }
        return reading
    }

    /// One group's backlog over `extents` (index: partition); nil: the
    /// whole log's, from each partition's start.
    func backlog(of name: String?, _ extents: [PartitionExtent]) throws -> Backlog {
        let g = try name.map { try GroupDirectory(log: log, group: $0) }
        let committed = try g?.committedSlots(topic, partitions: partitions) ?? []
        var total = Backlog.zero
        for (p, extent) in extents.enumerated() {
            var from = p < committed.count ? committed[p]?.offset : nil
            if let g, let low = try QueuePartition.peek(directory: g.queuePath(topic, Int32(p)))?.low {
                from = min(from ?? low, low)
            }
            total = total + (try extent.backlog(from: from) { base, offset in
                try cachedPosition(name ?? "", Int32(p), base, offset)
            })
        }
        return total
    }

    /// The groups counted: the named one, else those with state for the topic.
    func countedGroups() throws -> [String] {
        if let group { return [group] }
        guard FileSystem.isDirectory(log.groupsPath) else { return [] }
        return try FileSystem.list(log.groupsPath).sorted().filter { name in
            guard let g = try? GroupDirectory(log: log, group: name) else { return false }
            return FileSystem.exists(g.commitsPath(topic)) || FileSystem.exists(g.legacyOffsetsPath(topic))
                || FileSystem.exists(g.queueTopicPath(topic))
        }
    }

    /// Partition `p`'s segments and end: the end and the active segment's
    /// size from `head` when it is valid and names the last segment listed,
    /// else from the files.
    func extent(_ p: Int32) throws -> PartitionExtent {
        let dir = log.topicPath(topic) + "/\(p)"
        guard FileSystem.isDirectory(dir) else { return PartitionExtent(segments: [], end: 0) }
        let bases = try LogSegments.baseOffsets(in: dir)
        var segments = bases.map { PartitionExtent.SegmentExtent(base: $0, size: FileSystem.size(Segment(dir, $0).logPath) ?? 0) }
        if let raw = heads[Int(p)].read(), let state = HeadState.decode(raw), state.activeBase == bases.last {
            segments[segments.count - 1].size = state.endPosition
            return PartitionExtent(segments: segments, end: state.nextOffset)
        }
        return PartitionExtent(segments: segments, end: try PartitionReader(directory: dir, segments: bases).logEndOffset())
    }

    /// `indexedPosition`, remembered per group and partition while the
    /// position asked for stays the same.
    private func cachedPosition(_ group: String, _ p: Int32, _ base: Int64, _ offset: Int64) throws -> Int64 {
        if let known = positions[group]?[p], known.base == base, known.offset == offset { return known.position }
        let position = try indexedPosition(p, base, offset)
        positions[group, default: [:]][p] = (base, offset, position)
        return position
    }

    /// Most batch headers `indexedPosition` reads past an index entry: more
    /// than lie between two entries at the default `index.interval.bytes`
    /// (4096 bytes, batches of at least 61).
    static let maximumHeaderSteps = 256

    /// The start of the batch holding `offset` in segment `base`, or a
    /// position before it. The offset index's last entry whose batch ends
    /// before `offset` is trusted when the batch it names starts there and
    /// ends where it says; from the end of that batch (from the segment's
    /// start when there is no such entry) batch headers are read forward,
    /// moving past each batch that ends before `offset`, up to the first that
    /// does not, one whose header does not check, the end of the file, or
    /// `maximumHeaderSteps` batches. So a damaged index costs an
    /// overestimate, never an underestimate.
    func indexedPosition(_ p: Int32, _ base: Int64, _ offset: Int64) throws -> Int64 {
        let segment = Segment(log.topicPath(topic) + "/\(p)", base)
        guard offset > base, let file = try OpenFile.openIfExists(segment.logPath, O_RDONLY) else { return 0 }
        defer { file.close() }
        let reader = HeaderReader(file: file, size: try file.size(), base: base)
        var position: Int64 = 0
        if let index = try OpenFile.openIfExists(segment.indexPath, O_RDONLY) {
            defer { index.close() }
            if let entry = try OffsetIndex(file: index, baseOffset: base).floorEntry(relativeOffset: offset - 1 - base),
               let header = try reader.header(at: Int64(entry.position)),
               header.lastOffset == entry.offset(from: base), header.lastOffset < offset {
                position = Int64(entry.position) + Int64(header.totalSize)
            }
        }
        for _ in 0..<Self.maximumHeaderSteps {
            guard let header = try reader.header(at: position), header.lastOffset < offset else { break }
            position += Int64(header.totalSize)
        }
        return position
    }

    /// Batch headers of one segment, read one at a time.
    private struct HeaderReader {
        let file: OpenFile
        let size: Int64
        let base: Int64

        /// The header of the batch at `position` when a whole one is there,
        /// passes `BatchHeader.problem` and belongs to the segment; else nil.
        func header(at position: Int64) throws -> BatchHeader? {
            guard position >= 0, position <= size - Int64(BatchLayout.headerSize) else { return nil }
            var raw = [UInt8](repeating: 0, count: BatchLayout.headerSize)
            guard try raw.withUnsafeMutableBytes({ try file.read(into: $0.baseAddress!, count: BatchLayout.headerSize, at: position) })
                    == BatchLayout.headerSize else { return nil }
            let header = raw.withUnsafeBytes { BatchHeader($0.baseAddress!) }
            return header.problem == nil && header.baseOffset >= base ? header : nil
        }
    }
}
