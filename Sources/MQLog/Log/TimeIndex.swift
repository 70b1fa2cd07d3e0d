/// Kafka's time index, a segment's `.timeindex` file (docs/FORMAT.md §6).
///
///   offset  size  field
///   0       8     timestamp        int64 BE: the segment's largest timestamp when the entry was written
///   8       4     relativeOffset   uint32 BE: last offset of the batch that first reached it - base offset
///
/// Timestamps strictly increase from entry to entry; the last entry of a
/// segment rolled away holds its largest timestamp. File handling: `SegmentIndex`.
public struct TimeIndex: SegmentIndex {
    public struct Entry: Equatable, Sendable {
        public var timestamp: Int64
        public var relativeOffset: UInt32

        public init(timestamp: Int64, relativeOffset: UInt32) {
            self.timestamp = timestamp
            self.relativeOffset = relativeOffset
        }

        /// The entry for `timestamp`, first reached by the batch whose last
        /// offset is `offset`, in the segment based at `baseOffset`.
        public init(timestamp: Int64, offset: Int64, baseOffset: Int64) {
            self.timestamp = timestamp
            relativeOffset = UInt32(truncatingIfNeeded: offset &- baseOffset)
        }

        /// The absolute offset the entry names, in the segment based at `baseOffset`.
        public func offset(from baseOffset: Int64) -> Int64 { baseOffset &+ Int64(relativeOffset) }
    }

    public static let entrySize = 12
    static let timestampField = 0
    static let relativeOffsetField = timestampField + 8

    public let file: OpenFile
    public let baseOffset: Int64

    public init(file: OpenFile, baseOffset: Int64) {
        self.file = file
        self.baseOffset = baseOffset
    }

    // MARK: Layout

    public static func encode(_ entry: Entry, into out: UnsafeMutableRawPointer) {
        out.storeBytes(of: entry.timestamp.bigEndian, toByteOffset: timestampField, as: Int64.self)
        out.storeBytes(of: entry.relativeOffset.bigEndian, toByteOffset: relativeOffsetField, as: UInt32.self)
    }

    /// Decodes the `entrySize` bytes at `p`.
    public static func decode(_ p: UnsafeRawPointer) -> Entry {
        Entry(timestamp: loadBE(p, timestampField, as: Int64.self), relativeOffset: loadBE(p, relativeOffsetField, as: UInt32.self))
    }

    // MARK: Lookup

    /// Kafka's `lookup`: the last entry whose timestamp is at most
    /// `timestamp`, or nil when there is none, or the file changed under the search.
    public func floorEntry(timestamp target: Int64) throws -> Entry? {
        try floorEntry { $0.timestamp <= target }
    }

    // MARK: Checking

    /// The problems of a time index's bytes (`mq-compact --check`): a size
    /// that is not a whole number of entries (not in the active segment),
    /// timestamps or offsets that do not increase, and, outside the active
    /// segment, an offset past `lastOffset`, the segment's last. Stops at the
    /// first bad entry.
    public static func check(_ bytes: [UInt8], baseOffset: Int64, active: Bool, lastOffset: Int64?) -> [IndexProblem] {
        var problems: [IndexProblem] = []
        if !active, let partial = IndexProblem.partialEntry(size: bytes.count, entrySize: entrySize) { problems.append(partial) }
        var previous: (Int64, Int64)?
        for (i, entry) in bytes.withUnsafeBytes(entries(in:)).enumerated() {
            let ts = entry.timestamp, offset = entry.offset(from: baseOffset)
            let at = i * entrySize
            if let (pt, po) = previous, ts <= pt || offset < po {
                problems.append(IndexProblem(at, "entry (\(ts), \(offset)) is not after (\(pt), \(po)): timestamps must increase"))
                break
            }
            if !active, let last = lastOffset, offset > last {
                problems.append(IndexProblem(at, "offset \(offset) is past the segment's last offset \(last)"))
                break
            }
            previous = (ts, offset)
        }
        return problems
    }
}
