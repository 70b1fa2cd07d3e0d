/// Kafka's sparse offset index, a segment's `.index` file (docs/FORMAT.md §6).
///
///   offset  size  field
///   0       4     relativeOffset   uint32 BE: the batch's last offset - the segment's base offset
///   4       4     position         uint32 BE: where the batch starts in the `.log`
///
/// An entry (o, p) says the batch at byte p holds offsets up to base + o.
/// Entries increase in both fields. A reader trusts an entry only when a
/// batch with fitting offsets starts at its position. Relative offsets are
/// added with wrapping arithmetic. File handling: `SegmentIndex`.
public struct OffsetIndex: SegmentIndex {
    public struct Entry: Equatable, Sendable {
        public var relativeOffset: UInt32
        public var position: UInt32

        public init(relativeOffset: UInt32, position: UInt32) {
            self.relativeOffset = relativeOffset
            self.position = position
        }

        /// The entry for the batch at `position` whose last offset is
        /// `lastOffset`, in the segment based at `baseOffset`. The writer rolls
        /// before a relative offset could pass `Int32.max` (§8), so nothing is cut.
        @inline(__always)
        public init(lastOffset: Int64, position: Int64, baseOffset: Int64) {
            relativeOffset = UInt32(truncatingIfNeeded: lastOffset &- baseOffset)
            self.position = UInt32(truncatingIfNeeded: position)
        }

        /// The absolute offset the entry names, in the segment based at `baseOffset`.
        public func offset(from baseOffset: Int64) -> Int64 { baseOffset &+ Int64(relativeOffset) }
    }

    public static let entrySize = 8
    static let relativeOffsetField = 0
    static let positionField = relativeOffsetField + 4

    public let file: OpenFile
    /// The segment's base offset, which relative offsets count from.
    public let baseOffset: Int64

    public init(file: OpenFile, baseOffset: Int64) {
        self.file = file
        self.baseOffset = baseOffset
    }

    // MARK: Layout

    @inline(__always)
    public static func encode(_ entry: Entry, into out: UnsafeMutableRawPointer) {
        out.storeBytes(of: entry.relativeOffset.bigEndian, toByteOffset: relativeOffsetField, as: UInt32.self)
        out.storeBytes(of: entry.position.bigEndian, toByteOffset: positionField, as: UInt32.self)
    }

    /// Decodes the `entrySize` bytes at `p`.
    @inline(__always)
    public static func decode(_ p: UnsafeRawPointer) -> Entry {
        Entry(relativeOffset: loadBE(p, relativeOffsetField, as: UInt32.self), position: loadBE(p, positionField, as: UInt32.self))
    }

    // MARK: Lookup

    /// Kafka's `lookup`: the last entry whose relative offset is at most
    /// `relativeOffset` (binary search, assuming entries increase), or nil
    /// when there is none, or the file changed under the search.
    public func floorEntry(relativeOffset target: Int64) throws -> Entry? {
        try floorEntry { Int64($0.relativeOffset) <= target }
    }

    // MARK: Checking

    /// The problems of an offset index's bytes against its segment's batches
    /// (`mq-compact --check`): a size that is not a whole number of entries
    /// (not in the active segment, which a writer may be appending to),
    /// entries that do not increase, positions that are not batch starts,
    /// offsets outside the batch at the position. Stops at the first bad entry.
    /// - Parameters:
    ///   - batchAt: the header of the batch starting at a position, if one does.
    ///   - scannedEnd: where the scan of the `.log` ended; in the active
    ///     segment an entry past it may point at a batch appended since.
    public static func check(_ bytes: [UInt8], baseOffset: Int64, active: Bool, scannedEnd: Int64,
                             batchAt: (Int64) -> BatchHeader?) -> [IndexProblem] {
        var problems: [IndexProblem] = []
        if !active, let partial = IndexProblem.partialEntry(size: bytes.count, entrySize: entrySize) { problems.append(partial) }
        var previous: (Int64, Int64)?
        for (i, entry) in bytes.withUnsafeBytes(entries(in:)).enumerated() {
            let rel = Int64(entry.relativeOffset), position = Int64(entry.position)
            let at = i * entrySize
            if let (pr, pp) = previous, rel <= pr || position < pp {
                problems.append(IndexProblem(at, "entry (\(rel), \(position)) does not increase from (\(pr), \(pp))"))
                break
            }
            guard let h = batchAt(position) else {
                if !(active && position >= scannedEnd) {
                    problems.append(IndexProblem(at, "position \(position) is not the start of a batch"))
                }
                break
            }
            let offset = entry.offset(from: baseOffset)
            if offset < h.baseOffset || offset > h.lastOffset {
                problems.append(IndexProblem(at, "offset \(offset) is not in the batch at byte \(position) (offsets \(h.baseOffset)...\(h.lastOffset))"))
                break
            }
            previous = (rel, position)
        }
        return problems
    }
}
