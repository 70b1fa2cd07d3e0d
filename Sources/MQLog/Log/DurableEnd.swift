import Glibc

/// Makes a partition's records durable up to an offset before a reader
/// records that offset as consumed (a group's commit, a work queue's claim).
///
/// A writer with `--sync exit` makes its appends durable only when it ends;
/// a follower reads them from the page cache long before. If the machine
/// then dies, the log comes back shorter than what the follower saw, and a
/// position committed past the new end would skip the records a later
/// writer appends at those offsets. So a reader never records a position
/// past what is durable: when `head` does not already say the records below
/// the position are flushed in this boot, it fdatasyncs the segment that
/// holds them (docs/FORMAT.md §11, "Readers that record positions").
/// Segments before it were synced when they were rolled away.
///
/// Takes no lock and writes nothing but the fdatasync; not thread-safe.
public final class DurableEnd {
    public let directory: String
    /// Every record below this offset is known durable.
    public private(set) var known: Int64 = 0
    /// Reads `head` now (nil: none, or short); `closeHead` lets its descriptor go.
    private let readHead: () -> UnsafeRawBufferPointer?
    /// `head` as last read by someone else, without reading it (nil: not known).
    private let lastHead: () -> UnsafeRawBufferPointer?
    private let closeHead: () -> Void

    public init(directory: String) {
        self.directory = directory
        let head = HeadFileReader(directory: directory)
        readHead = { head.read() }
        lastHead = { nil }
        // `head` is opened for each look: a consumer holding thousands of
        // partitions does not keep a descriptor per partition for it.
        closeHead = { head.close() }
    }

    /// For the partition `reader` reads: through the reader's own `head`,
    /// which the reader keeps open within its pool's budget.
    public init(reader: PartitionReader) {
        self.directory = reader.directory
        readHead = { [unowned reader] in reader.headBytes() }
        lastHead = { [unowned reader] in reader.lastHeadBytes() }
        closeHead = {}
    }

    /// Returns when every record below `offset` is on disk.
    public func ensure(below offset: Int64) throws {
        if offset <= known { return }
        // `head` as the reader last read it may answer already: within a
        // boot, what is durable only grows.
        if let raw = lastHead(), learn(from: raw, below: offset) { return }
        defer { closeHead() }
        if let raw = readHead(), learn(from: raw, below: offset) { return }
        // The segment holding offset - 1 is the last one starting below `offset`.
        guard let base = try LogSegments.baseOffsets(in: directory).last(where: { $0 < offset }) else { return }
        guard let log = try OpenFile.openIfExists(Segment(directory, base).logPath, O_RDONLY) else {
            // Removed meanwhile (retention or compaction): its records were synced by whoever removed or rewrote it.
            return
        }
        defer { log.close() }
        try log.sync()
        known = offset
    }

    /// Learns from `head`'s bytes what is durable; true when every record
    /// below `offset` is.
    private func learn(from raw: UnsafeRawBufferPointer, below offset: Int64) -> Bool {
        guard let state = HeadState.decode(raw), state.bootID == currentBootID else { return false }
        // Everything before the active segment was synced at its roll.
        let flushed = max(state.flushedNextOffset, state.activeBase)
        guard flushed >= offset else { return false }
        known = max(known, min(flushed, state.nextOffset))
        return true
    }
}
