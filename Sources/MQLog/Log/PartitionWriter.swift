import Glibc
import CLinux

/// Appends record batches to one partition, safely alongside any number of
/// other writer processes.
///
/// Protocol (docs/FORMAT.md, "Writing"): under `flock(LOCK_EX)` on the
/// partition's `head` file a writer
/// 1. reads and checks the shared `HeadState` (checksum, boot id), and the
///    active segment's size against `endPosition`; any mismatch means a
///    writer died mid-append or the machine restarted, and it recovers:
///    bytes past `endPosition` are kept if they are whole, valid batches with
///    the expected offsets, and cut off otherwise; stale index entries go too;
/// 2. rolls to a new segment when the active one is full or old: the old one
///    is fsynced, the new state is stored first, then the new files created;
/// 3. stamps the batch with the next offset (outside the CRC) and writes it
///    whole at `endPosition` with one `pwrite`;
/// 4. adds sparse index entries, stores the new state, unlocks.
/// A failed write (a full disk) is cut back to `endPosition`, so the log stays valid.
///
/// Readers take no lock: they never look past the last whole batch.
/// Not thread-safe: one writer object per thread.
public final class PartitionWriter {
    public struct Settings: Sendable {
        public var segmentBytes: Int64
        public var segmentMs: Int64
        public var indexIntervalBytes: Int64
        public var logAppendTime: Bool
        /// Start writing appended data back to the disk (without waiting)
        /// whenever this many bytes have been appended since the last start;
        /// 0: never. For writers that will fsync later anyway: the disk works
        /// while they go on, and the fsync finds less to write.
        public var writebackBytes: Int64 = 0

        public init(segmentBytes: Int64 = 1 << 30, segmentMs: Int64 = 604_800_000, indexIntervalBytes: Int64 = 4096, logAppendTime: Bool = false) {
            self.segmentBytes = segmentBytes
            self.segmentMs = segmentMs
            self.indexIntervalBytes = indexIntervalBytes
            self.logAppendTime = logAppendTime
        }

        public init(_ config: TopicConfig) {
            self.init(segmentBytes: config.segmentBytes, segmentMs: config.segmentMs,
                      indexIntervalBytes: config.indexIntervalBytes, logAppendTime: config.logAppendTime)
        }
    }

    public let directory: String
    public let settings: Settings
    private let head: OpenFile
    public private(set) var state = HeadState()
    private var active: Segment.Files?
    /// Appends since the last fsync of the active segment (for `WriterPool`).
    private(set) var unsynced = false
    /// For recoveries, made at the first: a producer opening 10,000
    /// partitions made 10,000 of these 64 KiB buffers that no recovery used,
    /// each growing the allocator's heap with an `mprotect`.
    private lazy var scratch = GrowableBytes(capacity: 1 << 16)
    /// Bytes cut from torn tails by recoveries this writer ran.
    public private(set) var recoveredBytesDropped: Int64 = 0

    /// Opens (creating if needed) the partition's lock and state file.
    /// - Parameter directory: the partition directory, which must exist.
    public init(directory: String, settings: Settings) throws {
        self.directory = directory
        self.settings = settings
        self.head = try OpenFile.open(LogSegments.headPath(directory), O_RDWR | O_CREAT, creating: true, updatingAccessTime: false)
    }

    deinit {
        active?.close()
        head.close()
    }

    /// Creates a new partition's files in `directory`, which must be empty:
    /// the first segment's (as Kafka creates them with the partition) and a
    /// head naming it active, so that the first writer creates no file,
    /// lists no directory and recovers nothing. Syncs nothing.
    static func createFiles(in directory: String, now: Int64) throws {
        try Segment(directory, 0).createEmpty()
        let head = try OpenFile.open(LogSegments.headPath(directory), O_WRONLY | O_CREAT | O_EXCL, creating: true)
        defer { head.close() }
        try writeState(HeadState.emptySegment(base: 0, createdMs: now), to: head)
    }

    // MARK: Appending

    /// Appends one finished batch (as `RecordBatchBuilder.finish` leaves it).
    /// Sets the batch's base offset in `batch` as a side effect.
    /// - Returns: the base offset assigned.
    /// - Throws: `MQError` on I/O failure; the log is left valid and without the batch.
    @discardableResult
    public func append(_ batch: GrowableBytes) throws -> Int64 {
        precondition(batch.count >= BatchLayout.headerSize)
        try head.lock(exclusive: true)
        defer { head.unlock() }
        try loadState()
        return try appendLocked(batch)
    }

    /// Appends a batch (under the lock, state loaded). `beforeWrite` runs
    /// after any roll, with the offset the batch will get.
    private func appendLocked(_ batch: GrowableBytes, beforeWrite: ((Int64) throws -> Void)? = nil) throws -> Int64 {
        let header = BatchHeader(batch.base)
        let now = currentTimeMillis()
        if settings.logAppendTime { stampLogAppendTime(batch, now: now) }
        let size = Int64(batch.count)
        if state.endPosition > 0 &&
            (state.endPosition + size > settings.segmentBytes
             || now - state.createdMs >= settings.segmentMs
             || state.nextOffset + Int64(header.lastOffsetDelta) - state.activeBase > Int64(Int32.max)) {
            try roll(now: now)
        }
        let segment = try openActive()
        let base = state.nextOffset
        try beforeWrite?(base)
        batch.setBigEndian(base, at: BatchLayout.baseOffset)
        let position = state.endPosition
        do {
            try segment.log.write(batch.bytes, at: position)
        } catch {
            try? segment.log.truncate(to: position)
            throw error
        }
        unsynced = true
        startWriteback(segment, from: position, end: position + size)
        let maxTimestamp = settings.logAppendTime ? now : header.maxTimestamp
        addIndexEntries(segment, position: position, size: size, lastOffset: base + Int64(header.lastOffsetDelta), maxTimestamp: maxTimestamp)
        state.endPosition = position + size
        state.nextOffset = base + Int64(header.lastOffsetDelta) + 1
        try storeState()
        return base
    }

    /// Where in `writebackSegment` writing back was last started.
    private var writebackFrom: Int64 = 0
    private var writebackSegment: Int64 = -1
    /// Less than this is left to the final sync by `startPendingWriteback`:
    /// 1,000,000 messages into 1,000 partitions took a median 0.59 s with
    /// 64 KiB against 0.66 s with every batch started and 0.63 s with 256 KiB
    /// (one call per ~24 KiB batch cost more than the early start saved).
    static let pendingWritebackMinimum: Int64 = 64 << 10

    /// Starts writing back the appends not yet started once they reach
    /// `pendingWritebackMinimum` (with `writebackBytes` set): for a producer
    /// that has just written a small batch to each of many partitions, none
    /// of which will reach `writebackBytes` soon, so that the disk works
    /// while it goes on.
    func startPendingWriteback() {
        guard settings.writebackBytes > 0, let segment = active, writebackSegment == segment.base,
              state.endPosition > writebackFrom else { return }
        guard state.endPosition - writebackFrom >= Self.pendingWritebackMinimum else { return }
        _ = mq_start_writeback(segment.log.fd, writebackFrom, state.endPosition - writebackFrom)
        writebackFrom = state.endPosition
    }

    private func startWriteback(_ segment: Segment.Files, from start: Int64, end: Int64) {
        guard settings.writebackBytes > 0 else { return }
        if writebackSegment != segment.base || writebackFrom > start {
            writebackSegment = segment.base
            writebackFrom = start
        }
        guard end - writebackFrom >= settings.writebackBytes else { return }
        // Only a hint: a failure here leaves the work to the fsync.
        _ = mq_start_writeback(segment.log.fd, writebackFrom, end - writebackFrom)
        writebackFrom = end
    }

    // MARK: Transactions (docs/FORMAT.md §18)

    /// Appends a batch of producer `producerId`'s transaction. With
    /// `register`, the transaction is first added to the partition's open
    /// list (first offset: this batch's), in the same critical section;
    /// without, it must still be listed there.
    /// - Throws: `MQError` (tempFail) when the transaction was aborted by
    ///   another process (its timeout passed): the producer is fenced.
    @discardableResult
    public func appendTransactional(_ batch: GrowableBytes, producerId: Int64, epoch: Int16, register: Bool) throws -> Int64 {
        precondition(batch.count >= BatchLayout.headerSize)
        try head.lock(exclusive: true)
        defer { head.unlock() }
        try loadState()
        var open = try OpenTransactions.read(partition: directory)
        if open.entry(for: producerId) == nil {
            guard register else { throw TransactionError.fenced(producerId) }
            open.entries.append(OpenTransactions.Entry(producerId: producerId, epoch: epoch, firstOffset: state.nextOffset))
            try open.write(partition: directory)
        }
        return try appendLocked(batch)
    }

    /// Ends producer `producerId`'s transaction in this partition, if it is
    /// still listed open: for an abort, an entry in the active segment's
    /// `.txnindex` (fsynced) first; then the COMMIT or ABORT marker; then the
    /// transaction leaves the open list. With `checkForMarker` (recovery of a
    /// producer that died), a marker already in the log (it died between the
    /// marker and the list) is not written twice.
    /// - Returns: false when the transaction was not listed (already finished).
    @discardableResult
    public func finishTransaction(producerId: Int64, decision: TransactionDecision, checkForMarker: Bool = false) throws -> Bool {
        try head.lock(exclusive: true)
        defer { head.unlock() }
        try loadState()
        var open = try OpenTransactions.read(partition: directory)
        guard let entry = open.entry(for: producerId) else { return false }
        open.entries.removeAll { $0.producerId == producerId }
        if checkForMarker, try markerExists(producerId: producerId, from: entry.firstOffset) {
            try open.write(partition: directory)
            return true
        }
        let marker = TransactionMarker.batch(producerId: producerId, epoch: entry.epoch, decision: decision, timestamp: currentTimeMillis())
        _ = try appendLocked(marker) { offset in
            guard decision == .abort else { return }
            let lso = open.firstOpenOffset ?? offset + 1
            let aborted = AbortedTransaction(producerId: producerId, firstOffset: entry.firstOffset, lastOffset: offset, lastStableOffset: lso)
            try self.appendTxnIndex(aborted)
        }
        try open.write(partition: directory)
        return true
    }

    /// The open transactions of this partition (for tests and tools).
    public func openTransactions() throws -> OpenTransactions { try OpenTransactions.read(partition: directory) }

    private func appendTxnIndex(_ entry: AbortedTransaction) throws {
        let path = Segment(directory, state.activeBase).txnIndexPath
        let existed = FileSystem.exists(path)
        let file = try OpenFile.open(path, O_RDWR | O_CREAT, creating: true)
        defer { file.close() }
        // A torn entry (a crash mid-write) is cut first.
        let size = try file.size()
        let whole = size / Int64(AbortedTransaction.size) * Int64(AbortedTransaction.size)
        if whole != size { try file.truncate(to: whole) }
        try entry.encode().withUnsafeBytes { try file.write($0, at: whole) }
        try file.sync()
        if !existed { try FileSystem.syncDirectory(directory) }
    }

    private func markerExists(producerId: Int64, from offset: Int64) throws -> Bool {
        let reader = PartitionReader(directory: directory)
        try reader.seek(toOffset: offset)
        while let (header, _) = try reader.nextBatch() {
            if header.isControl && header.producerId == producerId { return true }
        }
        return false
    }

    /// How far a writer's appends reached in the active segment: what a
    /// sync makes durable, recorded in `head` afterwards (`flushedPosition`).
    public struct DurableMark: Sendable {
        let segmentBase: Int64
        let position: Int64
        let nextOffset: Int64
    }

    /// Where this writer's unsynced appends end; nil when it has none.
    public var unsyncedMark: DurableMark? {
        guard unsynced, let segment = active else { return nil }
        return DurableMark(segmentBase: segment.base, position: state.endPosition, nextOffset: state.nextOffset)
    }

    /// Makes everything this writer appended durable (`fdatasync` of the
    /// active segment; segments rolled away were synced by whoever rolled them).
    public func sync() throws {
        guard let mark = unsyncedMark, let segment = active else { return }
        try segment.log.sync()
        try markSynced(mark)
    }

    /// Records that the appends up to `mark` are durable (a sync of the
    /// whole file system made them so), as `sync` does after its fdatasync:
    /// in `head` alone, as `recordSynced` does. The segment's files are
    /// not looked at: whatever a writer that died since left past the
    /// recorded end is the next append's to recover.
    public func markSynced(_ mark: DurableMark) throws {
        unsynced = false
        try Self.recordSynced(mark, in: head)
    }

    /// Records in the `head` of `directory` that appends up to `mark` are
    /// durable, for a writer already closed.
    public static func recordSynced(_ mark: DurableMark, directory: String) throws {
        guard let head = try OpenFile.openIfExists(LogSegments.headPath(directory), O_RDWR, updatingAccessTime: false) else { return }
        defer { head.close() }
        try recordSynced(mark, in: head)
    }

    /// Moves the flushed position in `head` up to `mark`, under the lock;
    /// touches the head file only. Leaves it alone when it cannot be read
    /// or names another boot (the next writer recovers from the files).
    private static func recordSynced(_ mark: DurableMark, in head: OpenFile) throws {
        try head.lock(exclusive: true)
        defer { head.unlock() }
        guard var state = try readState(head), advanceFlushed(&state, to: mark) else { return }
        try writeState(state, to: head)
    }

    /// Moves `state`'s flushed position up to `mark`, when `mark` is in its
    /// active segment, past the flushed position and not past the end.
    private static func advanceFlushed(_ state: inout HeadState, to mark: DurableMark) -> Bool {
        guard state.activeBase == mark.segmentBase && state.flushedPosition < mark.position && mark.position <= state.endPosition else {
            return false
        }
        state.flushedPosition = mark.position
        state.flushedNextOffset = mark.nextOffset
        return true
    }

    /// Makes the active segment durable even when this writer appended
    /// nothing to it: for appends of an earlier writer of the partition
    /// that was closed before it synced (`WriterPool`).
    public func syncActiveSegment() throws {
        if active == nil {
            try head.lock(exclusive: true)
            defer { head.unlock() }
            try loadState()
        }
        unsynced = true
        try sync()
    }

    /// The log end offset as of the last lock this writer held.
    public var nextOffset: Int64 { state.nextOffset }

    /// The log end offset now: takes the lock and brings the state in line
    /// with the files first (so a batch a dead writer left whole past the
    /// recorded end is kept and counted, and a torn one is cut).
    public func currentEndOffset() throws -> Int64 {
        try head.lock(exclusive: true)
        defer { head.unlock() }
        try loadState()
        return state.nextOffset
    }

    private func stampLogAppendTime(_ batch: GrowableBytes, now: Int64) {
        let attributes = BatchHeader(batch.base).attributes | BatchAttributes.timestampTypeLogAppend
        batch.setBigEndian(attributes, at: BatchLayout.attributes)
        batch.setBigEndian(now, at: BatchLayout.maxTimestamp)
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: batch.base + BatchLayout.attributes, count: batch.count - BatchLayout.attributes))
        batch.setBigEndian(crc, at: BatchLayout.crc)
    }

    /// Kafka's sparse indexing (`SparseIndexer`) on the active segment.
    private func addIndexEntries(_ segment: Segment.Files, position: Int64, size: Int64, lastOffset: Int64, maxTimestamp: Int64) {
        segment.addIndexEntries(&state, interval: settings.indexIntervalBytes, position: position, size: size,
                                lastOffset: lastOffset, maxTimestamp: maxTimestamp)
    }

    // MARK: State and segments

    private func storeState() throws {
        state.bootID = currentBootID
        try Self.writeState(state, to: head)
    }

    /// The state in `head`, when it is whole, valid and of this boot.
    private static func readState(_ head: OpenFile) throws -> HeadState? {
        var raw = [UInt8](repeating: 0, count: HeadState.size)
        let n = try raw.withUnsafeMutableBytes { try head.read(into: $0.baseAddress!, count: HeadState.size, at: 0) }
        guard n == HeadState.size, let state = raw.withUnsafeBytes({ HeadState.decode($0) }),
              state.bootID == currentBootID else { return nil }
        return state
    }

    private static func writeState(_ state: HeadState, to head: OpenFile) throws {
        try state.encode().withUnsafeBytes { try head.write($0, at: 0) }
    }

    /// Reads the shared state and brings the active segment in line with it.
    /// Must hold the lock.
    private func loadState() throws {
        guard let loaded = try Self.readState(head) else {
            // No state, a damaged one, or one from before a restart, when
            // unsynced writes may have been lost in any order: rebuild.
            try recoverFully()
            return
        }
        state = loaded
        let segment: Segment.Files
        do {
            segment = try openActive()
        } catch let e as MQError where e.cause == .noSuchFileOrDirectory {
            try recoverFully()
            return
        }
        let size = try segment.log.size()
        if size != state.endPosition {
            if size < state.endPosition {
                try recoverFully()
            } else {
                try recoverTail(segment)
            }
        }
    }

    /// Opens the files of `state.activeBase`, creating them while the segment is empty.
    private func openActive() throws -> Segment.Files {
        if let a = active, a.base == state.activeBase { return a }
        active?.close()
        active = nil
        unsynced = false
        let segment = try Segment(directory, state.activeBase).open(createLog: state.endPosition == 0)
        active = segment
        return segment
    }

    /// Starts a new active segment at the log end offset.
    private func roll(now: Int64) throws {
        let old = try openActive()
        SparseIndexer.appendTimeEntry(&state, timeIndex: old.timeIndex)
        try old.sync()
        unsynced = false
        state = HeadState.emptySegment(base: state.nextOffset, createdMs: now)
        try storeState()
        active?.close()
        active = nil
        // Nothing can have been appended to a segment the state did not name
        // active, so any file already there is debris of an interrupted roll.
        try Segment(directory, state.activeBase).createEmpty()
        _ = try openActive()
        try FileSystem.syncDirectory(directory)
    }

    // MARK: Recovery

    /// Keeps the whole, valid batches a dead writer left past `endPosition`
    /// and cuts the rest.
    private func recoverTail(_ segment: Segment.Files) throws {
        recoveredBytesDropped += try segment.recover(&state, interval: settings.indexIntervalBytes, scratch: scratch)
        try storeState()
    }

    /// Rebuilds the state from the files: the last segment is active; its
    /// indexes are rebuilt and its tail cut at the first invalid batch.
    public func recoverFully() throws {
        active?.close()
        active = nil
        let base = try LogSegments.baseOffsets(in: directory).last ?? 0
        state = HeadState.emptySegment(base: base, createdMs: currentTimeMillis())
        let existed = FileSystem.exists(Segment(directory, base).logPath)
        let segment = try openActive()
        if !existed { try FileSystem.syncDirectory(directory) }
        // From an empty state: the indexes are cut to nothing and rebuilt.
        recoveredBytesDropped += try segment.recover(&state, interval: settings.indexIntervalBytes, scratch: scratch)
        let end = state.endPosition
        if end > 0 { try segment.log.sync() }
        state.flushedPosition = end
        state.flushedNextOffset = state.nextOffset
        try storeState()
    }
}
