import Glibc

/// Reads one partition's batches in offset order, without any lock.
///
/// It never returns a batch that is not whole and valid: a batch still being
/// written, or torn by a writer that died, looks like the end of the log until
/// a writer completes or cuts it. Segments that are rolled, deleted or
/// replaced under it are handled: an open segment stays readable, and the next
/// one is found by listing the directory. When `mq-compact` replaced the
/// segment just read (a new file under its name, possibly merged with the
/// ones after it), the reader continues in the new file at the offset after
/// the last batch it returned; it never returns a batch whose offsets it has
/// already passed (docs/FORMAT.md, "Compaction and retention"). Not thread-safe.
public final class PartitionReader {
    public let directory: String
    private var segmentBase: Int64 = -1
    private var log: OpenFile?
    /// Byte position in the current segment of the next batch to return.
    public private(set) var position: Int64 = 0
    /// Sized to the pool's read size at the first read. Empty until then:
    /// a reader that maps its segments never uses it, and 4 KiB each would
    /// be a page to fault in for every one of 10,000 partitions.
    private let buffer = GrowableBytes(capacity: 16)
    /// The partition's `head`, opened at the first look.
    private let head: HeadFileReader
    /// File position of the first buffered byte (`viewBase`); `viewCount` bytes are buffered from there.
    private var bufferStart: Int64 = 0
    private var bufferOffset = 0  // index in the buffered bytes of `position`
    /// For a reader that `mapsSegments`: a window of the current segment
    /// mapped into memory, which stands in for `buffer` (docs/FORMAT.md §9,
    /// "Mapped reads"): its bytes are read in place, without a copy into
    /// memory of the process's own. `windowCount` of its bytes are in use.
    private var window: FileMapping?
    private var windowCount = 0
    /// Whether this reader, one of many, maps windows of its segments
    /// instead of reading them (`window`): for a merge that holds a batch
    /// of every partition at once and reads to an end (`mq-tail` without
    /// `-f`), where every reader's buffer would be fresh memory to fault in.
    /// Not for readers used one after another (`mq-consume`), whose buffers
    /// reuse the memory the last one gave back, nor for a reader that
    /// follows the end, where each new batch would be a new window.
    public var mapsSegments = false
    /// True once a window could not be mapped: this reader then reads.
    private var mappingFailed = false
    /// The buffered bytes: the window's when one is mapped, else `buffer`'s.
    private var viewBase: UnsafeRawPointer { window?.base ?? UnsafeRawPointer(buffer.base) }
    private var viewCount: Int { window != nil ? windowCount : buffer.count }
    /// Segment base offsets as last listed, and when (monotonic ns).
    private var cachedSegments: [Int64] = []
    private var listedAt: UInt64 = 0
    /// Whether positioning (`seek`, `logStartOffset`, `logEndOffset`,
    /// `offset(forTime:)`) works from the segments as last listed instead of
    /// listing the directory on every call, and takes the end of the last one
    /// listed for the end of the log. For a caller that asks several
    /// questions about one moment of a partition (mq-stat): the directory is
    /// listed once, and again only when a listed segment is found gone.
    public private(set) var reusesListing: Bool
    /// False once a listed segment was found gone: the next positioning lists again.
    private var listingIsCurrent = false
    /// The offset after the last batch returned from the current segment.
    private var nextOffsetInSegment: Int64 = -1
    /// The offset after the last batch returned since the last seek (-1: none yet).
    /// Batches that end at or before it are not returned again.
    private var returnedEnd: Int64 = -1

    /// For a reader that does not follow the partition (`mq-tail` without
    /// `-f`, `mq-consume -e`): the end of the log is where it first gets to
    /// it. It keeps the segments it was positioned from (it looks for none
    /// rolled since), and once a read came short at the end of a segment's
    /// file, it does not read there again. Everything appended before the
    /// reader got to the end is read; what comes later may not be. At the
    /// end of each partition, that spares the read that finds nothing and
    /// the look at `head` for a newer segment.
    public var stopsAtEnd = false
    /// Where a read last came short at the end of the current segment's
    /// file (-1: none since it was opened).
    private var fileEndSeen: Int64 = -1

    /// For a reader whose batches are all read at once (a merge by time
    /// peeks at every partition before printing one record): its first
    /// read is as large as any, instead of a probe of the first batch's
    /// header followed by a read of the batch.
    public var readsWholeBatches = false

    /// The pool that bounds open files: the one of the thread that made this reader.
    private let pool = ReaderPool.current

    /// - Parameter segments: when given, the partition's segment base
    ///   offsets, ascending, as the caller just listed them
    ///   (`LogSegments.baseOffsets`): the reader then works from this listing
    ///   (`reusesListing`).
    public init(directory: String, segments: [Int64]? = nil) {
        self.directory = directory
        head = HeadFileReader(directory: directory)
        reusesListing = segments != nil
        pool.readerCreated()
        if let segments {
            cachedSegments = segments
            listedAt = monotonicNanos()
            listingIsCurrent = true
        }
    }

    /// A reader of `directory` working from one listing of its segments
    /// (`reusesListing`), or from none: when `head`, written this boot, names
    /// segment 0 active, 0 is the only segment (no offset precedes it, and a
    /// roll names its new segment in `head` before creating it). Most
    /// partitions of a topic of thousands never roll: each then costs one
    /// read of `head`, which its reader keeps open, instead of a listing.
    public static func positioning(directory: String) throws -> PartitionReader {
        let reader = PartitionReader(directory: directory)
        reader.useFiles()
        if let state = reader.activeState(base: 0) {
            reader.cachedSegments = [0]
            reader.headAtPositioning = state
        } else {
            reader.cachedSegments = try LogSegments.baseOffsets(in: directory)
        }
        reader.listedAt = monotonicNanos()
        reader.listingIsCurrent = true
        reader.reusesListing = true
        return reader
    }

    deinit {
        window?.unmap()
        log?.close()
        pool.forget(self)
        pool.readerGone()
    }

    /// `head` as `positioning` read it (written this boot, segment 0
    /// active), for the questions asked of that moment (`reusesListing`).
    private var headAtPositioning: HeadState?

    /// Stops working from the listing given at creation: positioning lists
    /// the directory again, and the end of the last segment listed is no
    /// longer the end of the log. For a reader positioned from a listing
    /// that goes on to follow the partition.
    public func followNewSegments() {
        reusesListing = false
    }

    // MARK: Released files

    /// The file `log` refers to (device, inode): a released segment is opened
    /// again only if its name still refers to it. Asked of the descriptor
    /// only when needed (`identifyOpenFile`): most readers never release
    /// their segment nor see it replaced, and one `fstat` per partition
    /// opened is a tenth of a reader's calls over thousands of partitions.
    private var openFile: (dev: UInt64, ino: UInt64) = (0, 0)

    /// Records `openFile` from the open segment's descriptor, once per segment opened.
    private func identifyOpenFile() {
        guard let log, openFile == (0, 0) else { return }
        var st = stat()
        if fstat(log.fd, &st) == 0 { openFile = (UInt64(st.st_dev), UInt64(st.st_ino)) }
    }
    /// True when `ReaderPool` closed the segment (and `head`) to stay within
    /// the open-file budget; the next read from disk opens it again.
    private var released = false

    /// Closes the segment and `head` (the pool is over its limit). The
    /// position and the buffered bytes stay: reading on needs no file until
    /// the buffer is used up.
    func releaseFiles() {
        pool.forget(self)
        if log != nil {
            identifyOpenFile()
            log?.close()
            log = nil
            released = true
        }
        head.close()
    }

    /// Windows this reader has mapped, since it was made, and the largest (for tests).
    private(set) var windowsMapped = 0
    private(set) var largestWindow = 0

    /// Bytes of buffer this reader holds (for tests).
    var bufferCapacity: Int { buffer.capacity }

    /// True while the current segment is open (not released, not at the start).
    var isHoldingSegment: Bool { log != nil }

    /// Counts this reader among those holding files (before it opens or uses one).
    private func useFiles() {
        pool.use(self)
    }

    /// `head` now (see `HeadFileReader.read`), left open only while the
    /// pool lets readers keep it beside their segment.
    private func readHead() -> UnsafeRawBufferPointer? {
        head.read(keepingOpen: pool.keepsHeadsOpen)
    }

    /// Closes `head` (the pool stopped letting readers keep it open).
    func closeHead() {
        head.close()
    }

    /// Opens the released segment again. If its name now refers to another
    /// file (a compaction swapped one in) or to none (retention, a merge),
    /// continues at the resume offset in whichever segment holds it now, as
    /// at the end of a segment (rule 3a).
    private func reopenReleased() throws {
        released = false
        useFiles()
        if let handle = try OpenFile.openForReading(Segment(directory, segmentBase).logPath) {
            var st = stat()
            if fstat(handle.fd, &st) == 0, UInt64(st.st_dev) == openFile.dev, UInt64(st.st_ino) == openFile.ino {
                log = handle
                return
            }
            handle.close()
        }
        try reposition(at: max(returnedEnd, nextOffsetInSegment))
    }

    // MARK: Positioning

    /// Positions at the batch holding `offset` (or the first one after it).
    /// Records before `offset` in that batch are the caller's to skip.
    public func seek(toOffset offset: Int64) throws {
        returnedEnd = -1
        // Positioning at or past the end `logEndOffset` just found: there,
        // without reading the segment again.
        if reusesListing, let known = knownEnd, offset >= known.offset, known.segment == segmentBase, log != nil {
            move(to: known.position, keepingBuffer: true)
            return
        }
        try reposition(at: offset)
        // At the start of the segment that holds everything from `offset` on:
        // its first batch, whichever it is, is where reading starts.
        if offset <= segmentBase && position == 0 { return }
        if try skipByHeaders(before: offset) { return }
        // Walk forward to the batch that contains the offset.
        while let (header, _) = try peekBatch() {
            if header.lastOffset >= offset { return }
            consumePeeked(header)
        }
    }

    public func seekToBeginning() throws {
        returnedEnd = -1
        try reposition(at: -1)
    }

    /// The first offset whose record has a timestamp at or after `time`, or
    /// the log end offset if none has (Kafka's offset for a time): the first
    /// such record of the first batch whose largest timestamp is at or after
    /// `time`.
    ///
    /// Timestamps need not increase along the log, but the time index and
    /// `head` record the largest timestamp so far, so no segment is read
    /// whole to find it (docs/FORMAT.md §6, Lookups): a segment rolled away is
    /// skipped when its last time-index entry (its largest timestamp) is
    /// earlier and names a batch with that timestamp; the active one is read from the end `head` records when the
    /// largest timestamp there is earlier; otherwise a segment is read from
    /// the batch its time index names (`seekInSegment`).
    public func offset(forTime time: Int64) throws -> Int64 {
        returnedEnd = -1
        let bases = try positioningSegments()
        for (i, base) in bases.enumerated() {
            let isLast = i == bases.count - 1
            let state = isLast ? activeState(base: base) : nil
            // Neither entry is needed when head already answers, or records an empty time index.
            let entries = state.map { $0.maxTimestamp < time || $0.timeIndexBytes == 0 } == true ? nil : try timeIndexEntries(base: base, time: time)
            // Working from a listing, what is buffered of the open file serves again.
            let keep = reusesListing && base == segmentBase && log != nil
            guard try open(segment: base) else { continue }  // deleted since the listing
            if !keep { resetBuffer() }
            // A segment rolled away whose largest timestamp is earlier: skipped,
            // when its last entry names a batch with that largest timestamp.
            if !isLast, let last = entries?.last, last.timestamp < time {
                if try moveToBatch(base: base, named: last) { continue }
                move(to: 0, keepingBuffer: true)  // a damaged index: read it all
            } else {
                try seekInSegment(base: base, time: time, state: state, floor: entries?.floor)
            }
            // The last segment's walk goes on into segments rolled since the listing.
            while let (header, batch) = try (isLast ? peekBatch() : batchInCurrentSegment()) {
                if header.maxTimestamp >= time { return try firstOffset(in: batch, header, atOrAfter: time) }
                consumePeeked(header)
            }
        }
        // Stopped where the last `logEndOffset` did, in the same file: its answer stands.
        if let known = knownEnd, known.segment == segmentBase, known.position == position, log != nil { return known.offset }
        return try logEndOffset()
    }

    /// The offset of the first record of `batch` whose timestamp is at or
    /// after `time`, one of them being so by its header.
    private func firstOffset(in batch: UnsafeRawBufferPointer, _ header: BatchHeader, atOrAfter time: Int64) throws -> Int64 {
        let decoder = BatchDecoder()
        // Records point into its buffer: it lives as long as this scope.
        defer { withExtendedLifetime(decoder) {} }
        let found: Int64?
        do {
            found = try withExtendedLifetime(decoder) {
                var records = RecordIterator(records: try decoder.records(of: batch, header: header), header: header)
                while let r = try records.next() { if r.timestamp >= time { return r.offset } }
                return nil
            }
        } catch {
            lastBatchSegment = segmentBase
            lastBatchPosition = position
            throw undecodable(header, error)
        }
        // The batch's max is >= time, so some record qualifies; reaching here means a lying header.
        return found ?? header.baseOffset
    }

    /// The offset of the first record still in the log.
    ///
    /// In a log with no batch yet, the base offset of its (last) segment:
    /// where the first batch will go. Not the log end read afresh: a writer
    /// may append between the two looks, and a group starting at "the
    /// beginning" of an empty topic would then start after what it appended.
    public func logStartOffset() throws -> Int64 {
        returnedEnd = -1
        try reposition(at: -1)
        if segmentBase < 0 { return 0 }
        // The first segment is the active one of the `head` positioning read
        // (this boot): a writer starts the active segment at its base, and
        // nothing compacts or trims it, so its first batch, if any, starts
        // there. No read: a consumer taking thousands of partitions would
        // read each one's first header here, then the same bytes again to deliver.
        if reusesListing, headAtPositioning?.activeBase == segmentBase { return segmentBase }
        // Only the first header matters: a small read, not a buffer's worth
        // per partition before any record is read (a consumer taking a
        // thousand partitions). The batch is read whole, and checked, when
        // a record of it is.
        if let (header, _) = try peekHeader() { return header.baseOffset }
        return segmentBase < 0 ? 0 : nextOffsetInSegment
    }

    /// Moves past the batches of the current segment that end before
    /// `offset` by their headers alone (small reads, no CRC: they are not
    /// delivered), so that positioning reads no batch whole and a thousand
    /// cursors made before any record is read hold no buffers. Only batches
    /// that lie wholly before the segment's recorded end are skipped this
    /// way: past it may be a torn write that the next writer cuts and
    /// writes over. True when it stopped at the batch holding `offset`.
    private func skipByHeaders(before offset: Int64) throws -> Bool {
        let segment = segmentBase
        guard segment >= 0 else { return false }
        var end: Int64?
        while let (header, _) = try peekHeader(), segmentBase == segment {
            if header.lastOffset >= offset { return true }
            if end == nil { end = try recordedEnd() }
            guard let end, position + Int64(header.totalSize) <= end else { return false }
            consumePeeked(header)
        }
        return false
    }

    /// The end of the current segment's recorded data: `head`'s end for the
    /// active segment, the file's size for one rolled away; nil when `head`
    /// cannot tell, or was written before this boot (a crash may have lost
    /// data it counts, which the next writer's recovery cuts).
    private func recordedEnd() throws -> Int64? {
        guard let log, let raw = readHead(), HeadState.isOfThisBoot(raw), let state = HeadState.decode(raw) else { return nil }
        if state.activeBase == segmentBase { return state.endPosition }
        return state.activeBase > segmentBase ? try log.size() : nil
    }

    /// As `peekBatch`, but returns the batch's header alone (its
    /// plausibility checked, not its CRC: the batch's records are checked
    /// when they are read), with a small read
    /// (`ReaderPool.headerProbeSize`) when this is one of many readers that
    /// does not `readsWholeBatches` (otherwise a reader's first read is as
    /// large as any).
    private func peekHeader() throws -> (BatchHeader, UnsafeRawBufferPointer)? {
        probingHeader = true
        defer { probingHeader = false }
        return try peekBatch()
    }

    /// While true, `batchInCurrentSegment` returns headers alone (`peekHeader`).
    private var probingHeader = false

    /// The size of a read for a header alone (nil: the pool's read size).
    private var headerReadSize: Int? {
        pool.readSize < ReaderPool.maximumReadSize && !readsWholeBatches ? ReaderPool.headerProbeSize : nil
    }

    /// The offset the next appended record will get, from the files alone:
    /// from where `head` records the end (`moveToRecordedEnd`) when it can
    /// tell, else from the last segment's last index entry, reading on over
    /// the batches after.
    public func logEndOffset() throws -> Int64 {
        returnedEnd = -1
        var end: Int64
        if let recorded = try moveToRecordedEnd() {
            end = recorded.offset
            // Nothing past it, in a segment `head` just named active: the
            // end is there (no size to ask again, no later segment).
            if recorded.fileEndsThere {
                knownEnd = (segmentBase, position, end)
                return end
            }
        } else {
            try reposition(at: .max)
            guard segmentBase >= 0 else { return 0 }
            end = segmentBase
        }
        while let (header, _) = try peekBatch() {
            end = header.nextOffset
            consumePeeked(header)
        }
        knownEnd = log == nil ? nil : (segmentBase, position, end)
        return end
    }

    /// Where the last `logEndOffset` stopped in the file open now (segment,
    /// position) and the offset it found there.
    private var knownEnd: (segment: Int64, position: Int64, offset: Int64)?

    /// Moves to where `head` (of this boot) records the end of the last
    /// segment listed, when it names that segment active and the file holds
    /// that much, and returns the next offset it records there, and whether
    /// the file ends there too. Only batches appended since (a writer
    /// between its write and its record of it) lie beyond, instead of the
    /// segment from its last index entry. Nil when `head` cannot tell.
    /// Positioning from a listing asks the `head` it read then.
    private func moveToRecordedEnd() throws -> (offset: Int64, fileEndsThere: Bool)? {
        let bases = try positioningSegments()
        guard let base = bases.last,
              let state = reusesListing && headAtPositioning?.activeBase == base ? headAtPositioning : activeState(base: base) else { return nil }
        // What is buffered serves only if it is of that segment's file.
        let keep = base == segmentBase && log != nil
        guard try open(segment: base), let log else { return nil }
        let size = try log.size()
        guard size >= state.endPosition else { return nil }
        fileSizeSeen = size
        move(to: state.endPosition, keepingBuffer: keep)
        nextOffsetInSegment = state.nextOffset
        if size == state.endPosition { fileEndSeen = size }
        return (state.nextOffset, size == state.endPosition)
    }

    // MARK: Reading

    /// The next whole, valid batch, or nil at the current end of the log.
    /// The bytes stay valid until the next call on this reader.
    /// - Throws: `MQError` (dataError) when a batch in the middle of the log is corrupt.
    public func nextBatch() throws -> (BatchHeader, UnsafeRawBufferPointer)? {
        while true {
            guard let (header, bytes) = try peekBatch() else { return nil }
            consumePeeked(header)
            // Already returned from the file this one replaced.
            if header.nextOffset <= returnedEnd { continue }
            returnedEnd = header.nextOffset
            return (header, bytes)
        }
    }

    /// True when the next batch is already in memory (no read needed to get it).
    public var hasBufferedBatch: Bool {
        let available = viewCount - bufferOffset
        guard available >= BatchLayout.headerSize else { return false }
        return BatchHeader(viewBase + bufferOffset).totalSize <= available
    }

    /// The next batch when the buffer holds all of it and it is valid: what
    /// a released reader returns without opening its segment again.
    private func bufferedBatch() -> (BatchHeader, UnsafeRawBufferPointer)? {
        guard hasBufferedBatch else { return nil }
        let header = BatchHeader(viewBase + bufferOffset)
        guard header.problem == nil else { return nil }
        let bytes = UnsafeRawBufferPointer(start: viewBase + bufferOffset, count: header.totalSize)
        guard case .success(let h) = validateBatch(bytes) else { return nil }
        return (h, bytes)
    }

    /// The segment file and byte position of the batch `nextBatch` returned
    /// last: where to point a person at when its records do not decode.
    public var lastBatchLocation: (file: String, position: Int64) {
        (Segment(directory, lastBatchSegment).logPath, lastBatchPosition)
    }
    private var lastBatchSegment: Int64 = 0
    private var lastBatchPosition: Int64 = 0

    /// An error for a batch that passed framing and CRC but whose contents do
    /// not decode (a bad compressed payload, malformed records): data error
    /// (65) naming the segment file, the byte and the batch's offsets.
    public func undecodable(_ header: BatchHeader, _ cause: any Error) -> MQError {
        let (file, position) = lastBatchLocation
        return MQError(.dataError, "corrupt log: \(file) at byte \(position), batch of offsets \(header.baseOffset)-\(header.lastOffset): \(cause) (the segment is damaged: restore it from a copy, or cut the partition at this point)")
    }

    private func consumePeeked(_ header: BatchHeader) {
        lastBatchSegment = segmentBase
        lastBatchPosition = position
        nextOffsetInSegment = header.nextOffset
        position += Int64(header.totalSize)
        bufferOffset += header.totalSize
    }

    /// Returns the batch at `position` without moving past it.
    private func peekBatch() throws -> (BatchHeader, UnsafeRawBufferPointer)? {
        while true {
            if segmentBase < 0 {
                guard let first = try positioningSegments().first else { return nil }
                guard try open(segment: first) else { continue }
                position = 0
                resetBuffer()
            }
            if let found = try batchInCurrentSegment() { return found }
            // At the end of this segment's data. A newer segment means this one
            // was rolled away; look once more (a last batch may have landed
            // between the read and the roll), then move on.
            guard let next = try segmentAfterCurrent() else { return nil }
            if let found = try batchInCurrentSegment() { return found }
            if currentSegmentWasReplaced() {
                try reposition(at: max(returnedEnd, nextOffsetInSegment))
            } else if try open(segment: next) {
                position = 0
                resetBuffer()
            } else {
                // Gone since the listing: deleted by retention, or merged into
                // an earlier segment by compaction.
                try reposition(at: max(returnedEnd, nextOffsetInSegment))
            }
        }
    }

    /// True when the current segment's name now refers to another file: a
    /// compaction swapped a rewritten segment in.
    private func currentSegmentWasReplaced() -> Bool {
        guard log != nil || released else { return false }
        identifyOpenFile()
        var named = stat()
        guard openFile != (0, 0), stat(Segment(directory, segmentBase).logPath, &named) == 0 else { return false }
        return UInt64(named.st_ino) != openFile.ino || UInt64(named.st_dev) != openFile.dev
    }

    /// Continues in whichever segment file now holds `offset` (or the first
    /// one after it), opened afresh.
    private func reposition(at offset: Int64) throws {
        for _ in 0..<8 {
            let bases = try positioningSegments()
            guard let base = bases.last(where: { $0 <= offset }) ?? bases.first else {
                closeSegment()
                segmentBase = -1
                return
            }
            // The file open is the one listed, unless a compaction replaced it
            // since; working from a listing, it is the one to answer from.
            let keep = reusesListing && base == segmentBase && log != nil
            if !keep {
                closeSegment()
                segmentBase = -1
                guard try open(segment: base) else { continue }  // removed meanwhile: list again
            }
            move(to: try indexedPosition(base: base, offset: offset), keepingBuffer: keep)
            return
        }
        throw MQError(.tempFail, "segments of \(directory) keep changing while being read")
    }

    /// The base offset of the segment after the current one, if there is one.
    ///
    /// Segments after the current one in the cached listing need no I/O. At
    /// the last known segment, the only way a later one appears is a roll,
    /// which starts the new segment exactly at the offset after the last batch
    /// of this one: one `access` tells. The directory is listed again only when
    /// the cached listing is older than a second (for anything unforeseen).
    private func segmentAfterCurrent() throws -> Int64? {
        if let next = cachedSegments.first(where: { $0 > segmentBase }) { return next }
        if (reusesListing || stopsAtEnd) && listingIsCurrent { return nil }
        let now = monotonicNanos()
        // While `head` names this segment active, there is no later one: a
        // roll records the new base there before it creates the file. One
        // read of an open file, where a lookup of the next segment's name
        // walks the path and leaves a negative dentry per message followed.
        // A head of this boot is trusted at any age; one of an earlier boot
        // (its last writes may be lost) only while the listing is recent.
        if let (active, thisBoot) = recordedActiveBase(), active <= segmentBase,
           thisBoot || now &- listedAt <= 1_000_000_000 { return nil }
        if nextOffsetInSegment > segmentBase, FileSystem.exists(Segment(directory, nextOffsetInSegment).logPath) {
            cachedSegments.append(nextOffsetInSegment)
            return nextOffsetInSegment
        }
        guard now &- listedAt > 1_000_000_000 else { return nil }
        return try listSegments().first(where: { $0 > segmentBase })
    }

    /// The active segment's base offset as `head` records it now, or nil
    /// when there is no valid state to read (no writer yet, or one rewriting it).
    public func activeSegmentBase() -> Int64? { recordedActiveBase()?.base }

    /// The 128 bytes of the partition's `head` as they are now (nil: none,
    /// or short), read through this reader's descriptor. Valid until the
    /// next read of `head` by this reader.
    /// The bytes of `head` as this reader last read them (nil: not read
    /// yet, or not whole), without reading it again. Valid until the next
    /// read of `head` by this reader.
    func lastHeadBytes() -> UnsafeRawBufferPointer? { head.lastRead }

    func headBytes() -> UnsafeRawBufferPointer? {
        useFiles()
        return readHead()
    }

    /// The active segment's base offset as `head` records it, or nil when
    /// there is no valid state to read (no writer yet, or one rewriting it).
    private func recordedActiveBase() -> (base: Int64, thisBoot: Bool)? {
        useFiles()
        guard let raw = readHead(), let base = HeadState.activeBase(raw) else { return nil }
        return (base, HeadState.isOfThisBoot(raw))
    }

    /// Lists the segments and caches the listing.
    private func listSegments() throws -> [Int64] {
        cachedSegments = try LogSegments.baseOffsets(in: directory)
        listedAt = monotonicNanos()
        listingIsCurrent = true
        return cachedSegments
    }

    /// The segments to position in: the cached listing when it is to be
    /// reused and still current, else a new one.
    private func positioningSegments() throws -> [Int64] {
        reusesListing && listingIsCurrent ? cachedSegments : try listSegments()
    }

    private func batchInCurrentSegment() throws -> (BatchHeader, UnsafeRawBufferPointer)? {
        if stopsAtEnd && position == fileEndSeen && bufferOffset == viewCount {
            if pool.readSize < ReaderPool.maximumReadSize { buffer.clear(shrinkingTo: 4096) }
            return nil
        }
        if released {
            if let buffered = bufferedBatch() { return buffered }
            try reopenReleased()
        } else if log != nil {
            useFiles()
        }
        guard let log else { return nil }
        if viewCount - bufferOffset < BatchLayout.headerSize {
            try refill(log, need: BatchLayout.headerSize, readSize: probingHeader ? headerReadSize : nil)
            if viewCount - bufferOffset < BatchLayout.headerSize {
                if viewCount - bufferOffset > BatchLayout.magic {
                    let magic = (viewBase + bufferOffset).load(fromByteOffset: BatchLayout.magic, as: UInt8.self)
                    if magic != BatchLayout.currentMagic && !isPastCommittedEnd() { throw corruption(.badMagic(magic)) }
                }
                resetBuffer()
                // At the end of the data: one of many readers (a follower of
                // thousands of partitions) gives its buffer back while it waits.
                if pool.readSize < ReaderPool.maximumReadSize { buffer.clear(shrinkingTo: 4096) }
                return nil
            }
        }
        let header = BatchHeader(viewBase + bufferOffset)
        if let problem = header.problem {
            if isPastCommittedEnd() { resetBuffer(); return nil }
            throw corruption(problem)
        }
        if probingHeader { return (header, UnsafeRawBufferPointer(start: viewBase + bufferOffset, count: BatchLayout.headerSize)) }
        if viewCount - bufferOffset < header.totalSize {
            // The length comes from disk: a batch larger than the largest
            // read is read only when the file holds it, so that a damaged
            // length cannot make the reader allocate up to 2 GiB (below
            // that, a short read tells, without a look at the file's size).
            if header.totalSize > max(buffer.capacity, ReaderPool.maximumReadSize), try log.size() - position < Int64(header.totalSize) {
                resetBuffer()
                return nil
            }
            // With the next batch's header, when the file has it: its length
            // then sizes the read after this one.
            try refill(log, need: header.totalSize, want: header.totalSize + BatchLayout.headerSize)
            if viewCount - bufferOffset < header.totalSize { resetBuffer(); return nil }
        }
        let bytes = UnsafeRawBufferPointer(start: viewBase + bufferOffset, count: header.totalSize)
        switch validateBatch(bytes) {
        case .success(let h):
            return (h, bytes)
        case .failure(let problem):
            // A bad batch at the very end is a torn write that the next writer
            // will cut: treat it as the end. Anything after it means corruption.
            if isPastCommittedEnd() { resetBuffer(); return nil }
            throw corruption(problem)
        }
    }

    /// True when `position` is at or past the end the writers recorded for
    /// the active segment: bytes there are a torn write that the next writer
    /// will cut, not corruption.
    private func isPastCommittedEnd() -> Bool {
        useFiles()
        for _ in 0..<3 {
            if let raw = readHead(), let state = HeadState.decode(raw) {
                return state.activeBase == segmentBase && position >= state.endPosition
            }
            if !head.found { return false }  // no head at all: no writer's tail to wait for
        }
        return true  // a state being rewritten right now: assume the tail is in flux
    }

    private func corruption(_ problem: BatchProblem) -> MQError {
        MQError(.dataError, "corrupt log: \(Segment(directory, segmentBase).logPath) at byte \(position): \(problem) (the segment is damaged: restore it from a copy, or cut the partition at this point)")
    }

    /// Reads from `position` so that at least `need` bytes are buffered, if
    /// the file has them, and `want` bytes if one read returns them; with
    /// `readSize`, no more than that beyond `need` (else the pool's read size).
    private func refill(_ log: OpenFile, need: Int, want: Int = 0, readSize: Int? = nil) throws {
        let capacity = max(need, want, readSize ?? pool.readSize)
        // One of many readers (a buffer of its own each): mapped. A reader
        // alone reads into its buffer, which stays in the processor's
        // caches from one read to the next, where each window is new pages.
        if mapsSegments && !mappingFailed && pool.readSize < ReaderPool.maximumReadSize,
           try mapWindow(log, need: need, capacity: capacity) { return }
        unmapWindow()
        // Storage of the size of this read: one grown for a large batch goes
        // back to the read size, and one that holds a batch is not twice its size.
        if buffer.capacity < capacity || buffer.capacity > 2 * capacity {
            buffer.clear(resizingTo: capacity)
        } else {
            buffer.clear()
        }
        bufferStart = position
        bufferOffset = 0
        buffer.count = try log.readOnce(into: buffer.base, count: capacity, at: position)
        if buffer.count < need && buffer.count > 0 {
            // A batch bigger than one read returns: read the rest.
            buffer.count += try log.read(into: buffer.base + buffer.count, count: capacity - buffer.count, at: position + Int64(buffer.count))
        }
        fileEndSeen = buffer.count < capacity ? position + Int64(buffer.count) : -1
    }

    /// Maps the segment from `position` in place of a read (`mapsSegments`):
    /// the `capacity` bytes a read would have read, at least
    /// `minimumWindow`, from the page that holds `position`, and no further
    /// than the end of the file; a window that would leave less of the file
    /// after it than it spans takes that rest too. The file's size is asked
    /// only when the window would reach past the size last seen; a window
    /// that reaches the end of the file marks where this reader saw the end,
    /// as a read that came short does. False when the window could not be
    /// mapped: this reader then reads.
    private func mapWindow(_ log: OpenFile, need: Int, capacity: Int) throws -> Bool {
        // Back within the window mapped (positioning that read on, then
        // seeks): it serves again.
        if let window, position >= window.start, position + Int64(need) <= window.start + Int64(window.length) {
            windowCount = window.length
            bufferStart = window.start
            bufferOffset = Int(position - window.start)
            return true
        }
        let start = position - position % FileMapping.pageSize
        let span = Int64(max(capacity, Self.minimumWindow))
        if position + span > fileSizeSeen { fileSizeSeen = try log.size() }
        // A short rest after the window would be a window of its own, a
        // mapping and an unmapping for little: 1,000 partitions of 100 KiB
        // each took two windows of 64 KiB, and mapping and unmapping were a
        // quarter of `mq-tail`'s samples.
        let end = fileSizeSeen - position < 2 * span ? fileSizeSeen : position + span
        guard end > position else {
            // At the end: nothing to map. The window stays, for a seek back
            // into it (positioning that found the end, then seeks).
            resetBuffer()
            fileEndSeen = position
            return true
        }
        unmapWindow()
        guard let mapped = log.mapForReading(from: start, length: Int(end - start)) else {
            mappingFailed = true
            return false
        }
        window = mapped
        windowsMapped += 1
        largestWindow = max(largestWindow, mapped.length)
        windowCount = mapped.length
        bufferStart = start
        bufferOffset = Int(position - start)
        fileEndSeen = end == fileSizeSeen ? end : -1
        return true
    }

    /// A mapped window spans at least this much: the kernel's own read-ahead
    /// of a file read in small pieces, so that a window costs the disk no
    /// more than the read it replaces; mapping it whole at once (its pages
    /// set up in one call) is cheaper than a read of it into fresh memory.
    static let minimumWindow = 64 << 10

    /// The size of the current segment's file when last asked (`mapWindow`).
    private var fileSizeSeen: Int64 = -1

    private func unmapWindow() {
        guard let window else { return }
        window.unmap()
        self.window = nil
        windowCount = 0
    }

    private func resetBuffer() {
        buffer.count = 0
        windowCount = 0
        bufferOffset = 0
        bufferStart = position
    }

    /// Moves to `target` in the open segment; with `keepingBuffer`, the
    /// buffered bytes of the same file serve it when they reach it.
    private func move(to target: Int64, keepingBuffer: Bool) {
        position = target
        if keepingBuffer, target >= bufferStart, target - bufferStart <= Int64(viewCount) {
            bufferOffset = Int(target - bufferStart)
        } else {
            resetBuffer()
        }
    }

    /// Opens segment `base`.
    /// - Returns: false when it no longer exists (the current segment is then closed).
    @discardableResult
    private func open(segment base: Int64) throws -> Bool {
        if base == segmentBase, log != nil { return true }
        closeSegment()
        useFiles()
        guard let handle = try OpenFile.openForReading(Segment(directory, base).logPath) else {
            listingIsCurrent = false
            return false
        }
        openFile = (0, 0)
        fileEndSeen = -1
        log = handle
        segmentBase = base
        nextOffsetInSegment = base
        return true
    }

    private func closeSegment() {
        unmapWindow()
        fileSizeSeen = -1
        log?.close()
        log = nil
        released = false
        knownEnd = nil
        fileEndSeen = -1
    }

    // MARK: Indexes

    /// A position at or before the batch holding `offset`, from the offset
    /// index when it has a usable entry, else 0.
    private func indexedPosition(base: Int64, offset: Int64) throws -> Int64 {
        guard offset > base else { return 0 }  // no entry can come before the first batch
        // Positioning from the `head` just read, which records no entry for
        // the active segment: none to open the index for (one written since
        // would only have shortened the walk).
        if reusesListing, let state = headAtPositioning, state.activeBase == base, state.indexBytes == 0 { return 0 }
        guard let file = try OpenFile.openIfExists(Segment(directory, base).indexPath, O_RDONLY) else { return 0 }
        defer { file.close() }
        guard let log, let entry = try OffsetIndex(file: file, baseOffset: base).floorEntry(relativeOffset: offset &- base) else { return 0 }
        let logSize = try log.size()
        let candidate = Int64(entry.position)
        // Indexes are not checksummed: trust an entry only if a batch starts there.
        var header = [UInt8](repeating: 0, count: BatchLayout.headerSize)
        guard candidate + Int64(BatchLayout.headerSize) <= logSize,
              try header.withUnsafeMutableBytes({ try log.read(into: $0.baseAddress!, count: BatchLayout.headerSize, at: candidate) }) == BatchLayout.headerSize else { return 0 }
        let h = header.withUnsafeBytes { BatchHeader($0.baseAddress!) }
        guard h.problem == nil, h.baseOffset >= base, h.baseOffset <= max(offset, base) || offset == .max else { return 0 }
        return candidate
    }

    /// Segment `base`'s last time-index entry (its largest timestamp, for a
    /// segment rolled away), and its last entry at or before `time` (Kafka's
    /// lookup), as far as the file holds them.
    private func timeIndexEntries(base: Int64, time: Int64) throws -> (last: TimeIndex.Entry?, floor: TimeIndex.Entry?) {
        guard let file = try OpenFile.openIfExists(Segment(directory, base).timeIndexPath, O_RDONLY) else { return (nil, nil) }
        defer { file.close() }
        let index = TimeIndex(file: file, baseOffset: base)
        guard let last = try index.lastEntry() else { return (nil, nil) }
        return (last, last.timestamp <= time ? last : try index.floorEntry(timestamp: time))
    }

    /// The writers' state in `head` when it has segment `base` active and was
    /// written in this boot (before a restart, unsynced writes may be lost).
    private func activeState(base: Int64) -> HeadState? {
        guard let raw = readHead(), let state = HeadState.decode(raw), state.activeBase == base,
              state.bootID == currentBootID else { return nil }
        return state
    }

    /// Positions in the open segment `base` at or before the first batch
    /// whose largest timestamp is at or after `time`: no batch before the
    /// position has one. As close to it as `head` (`state`, when the segment
    /// is the active one) or the time index (`floor`, its last entry at or
    /// before `time`) tell; neither is trusted beyond a check of the batch
    /// found where it points, and the segment's start is the fallback. What
    /// is buffered must be of this segment.
    ///
    /// Why the time index is a safe lower bound although timestamps do not
    /// increase: an entry (t, o) is written when t is the largest timestamp
    /// so far, first reached by the batch whose last offset is o. So that
    /// batch's largest timestamp is t, every batch before it has smaller
    /// ones, and with t at or before `time` none of those qualifies.
    private func seekInSegment(base: Int64, time: Int64, state: HeadState?, floor: TimeIndex.Entry?) throws {
        if let state, state.maxTimestamp < time, let log, try log.size() >= state.endPosition {
            // Nothing up to the recorded end is that recent: start there if
            // the batch with the recorded next offset starts there, or none yet.
            move(to: state.endPosition, keepingBuffer: true)
            guard let (header, _) = try batchInCurrentSegment() else { return }
            if header.baseOffset == state.nextOffset { return }
        } else if let floor, try moveToBatch(base: base, named: floor) {
            return
        }
        move(to: 0, keepingBuffer: true)
    }

    /// Moves to the batch of the open segment `base` that time-index entry
    /// (t, o) names, checking what the entry claims: the batch holding
    /// offset o has largest timestamp t, and the batches before it smaller ones.
    /// - Returns: false when the claim fails (a damaged index); the position is then undefined.
    private func moveToBatch(base: Int64, named entry: TimeIndex.Entry) throws -> Bool {
        let claimed = entry.offset(from: base)
        move(to: try indexedPosition(base: base, offset: claimed), keepingBuffer: true)
        while let (header, _) = try batchInCurrentSegment() {
            if header.lastOffset >= claimed { return header.baseOffset <= claimed && header.maxTimestamp == entry.timestamp }
            if header.maxTimestamp >= entry.timestamp { return false }  // t was not the largest so far
            consumePeeked(header)
        }
        return false
    }
}

/// Which records of transactions a cursor delivers (docs/FORMAT.md §18).
public enum ReadIsolation: Sendable {
    /// Committed records only, and nothing at or past the first offset of a
    /// transaction still open (the last stable offset). The default.
    case readCommitted
    /// Everything but control batches, as written.
    case readUncommitted
}

/// Delivers one partition's records in offset order, starting at a given offset.
///
/// Read committed (the default): a transactional batch is delivered only once
/// its transaction committed; one of an aborted transaction is skipped; at a
/// batch of a transaction still open, the cursor stops (it is at the last
/// stable offset) until that transaction ends. A transaction found open whose
/// producer died is finished on the spot (`TransactionRecovery`). Batches
/// without the transactional bit cost one bit test.
public final class PartitionCursor {
    public let partition: Int32
    public let reader: PartitionReader
    public let isolation: ReadIsolation
    private let decoder = BatchDecoder()
    private var records: RecordIterator?
    private var batchHeader: BatchHeader?
    /// The offset of the next record to deliver.
    public private(set) var nextOffset: Int64
    /// The record `peek` returned, until `advance`.
    private var peeked: RecordView?
    /// Fates of the transactions met (read committed only).
    private var fates: TransactionFates?
    /// Open transactions that began before the start offset: nothing is
    /// delivered until they end.
    private var holdFor: [(producerId: Int64, firstOffset: Int64)] = []
    /// The batch (producer id, base offset) of an open transaction the cursor stopped at.
    private var blockedAt: (producerId: Int64, offset: Int64)?

    public convenience init(partition: Int32, directory: String, startOffset: Int64, isolation: ReadIsolation = .readCommitted) throws {
        try self.init(partition: partition, reader: PartitionReader(directory: directory), startOffset: startOffset, isolation: isolation)
    }

    /// A cursor at the offset `start` picks, positioned from one listing of
    /// the partition (`start` and the cursor's own seek work from it); its
    /// reader then follows new segments as any cursor's does, unless it
    /// `stopsAtEnd` (see `PartitionReader.stopsAtEnd`, and `readsWholeBatches`).
    public static func positioned(partition: Int32, directory: String, isolation: ReadIsolation,
                                  stopsAtEnd: Bool = false, readsWholeBatches: Bool = false,
                                  start: (PartitionReader) throws -> Int64) throws -> PartitionCursor {
        let reader = try PartitionReader.positioning(directory: directory)
        reader.readsWholeBatches = readsWholeBatches
        reader.mapsSegments = stopsAtEnd && readsWholeBatches
        let cursor = try PartitionCursor(partition: partition, reader: reader, startOffset: try start(reader), isolation: isolation)
        reader.followNewSegments()
        reader.stopsAtEnd = stopsAtEnd
        return cursor
    }

    /// A cursor reading through `reader` (one that reuses a listing, say).
    public init(partition: Int32, reader: PartitionReader, startOffset: Int64, isolation: ReadIsolation = .readCommitted) throws {
        self.partition = partition
        self.reader = reader
        self.nextOffset = startOffset
        self.isolation = isolation
        try reader.seek(toOffset: startOffset)
        if isolation == .readCommitted && startOffset > 0 {
            // Read after the start offset was chosen: a transaction open now
            // that began before it holds everything back (none began before 0).
            let open = try OpenTransactions.read(partition: reader.directory).entries
            openTransactionsAtStart = !open.isEmpty
            holdFor = open.filter { $0.firstOffset < startOffset }.map { ($0.producerId, $0.firstOffset) }
        }
    }

    /// Whether the partition had transactions open when this cursor was
    /// made, when it looked (read committed, from an offset past 0); nil
    /// when it did not look.
    public private(set) var openTransactionsAtStart: Bool?

    private func fate(producerId: Int64, offset: Int64) throws -> TransactionFates.Fate {
        let f = fates ?? TransactionFates(directory: reader.directory)
        fates = f
        return try f.fate(producerId: producerId, offset: offset)
    }

    /// False while an open transaction holds the cursor back.
    private func mayProceed() throws -> Bool {
        while let held = holdFor.last {
            if try fate(producerId: held.producerId, offset: held.firstOffset) == .open { return false }
            holdFor.removeLast()
        }
        if let blocked = blockedAt {
            if try fate(producerId: blocked.producerId, offset: blocked.offset) == .open { return false }
            blockedAt = nil
            try reader.seek(toOffset: blocked.offset)
        }
        return true
    }

    /// The next record, or nil at the current end of the log. Valid until `advance`.
    @inline(__always)
    public func peek() throws -> RecordView? {
        if let peeked { return peeked }
        while true {
            if records != nil, let r = try nextRecord() {
                if r.offset < nextOffset { continue }
                peeked = r
                return r
            }
            records = nil
            if (!holdFor.isEmpty || blockedAt != nil), try !mayProceed() { return nil }
            guard let (header, bytes) = try reader.nextBatch() else { return nil }
            if header.nextOffset <= nextOffset { continue }
            if header.attributes & (BatchAttributes.control | BatchAttributes.transactional) != 0 {
                if header.isControl {
                    nextOffset = header.nextOffset
                    continue
                }
                if isolation == .readCommitted {
                    switch try fate(producerId: header.producerId, offset: header.baseOffset) {
                    case .committed: break
                    case .aborted:
                        nextOffset = header.nextOffset
                        continue
                    case .open:
                        blockedAt = (header.producerId, header.baseOffset)
                        return nil
                    }
                }
            }
            batchHeader = header
            do {
                records = RecordIterator(records: try decoder.records(of: bytes, header: header), header: header)
            } catch {
                throw reader.undecodable(header, error)
            }
        }
    }

    @inline(__always)
    private func nextRecord() throws -> RecordView? {
        do {
            return try records!.next()
        } catch {
            records = nil
            throw reader.undecodable(batchHeader!, error)
        }
    }

    /// True while an open transaction holds the cursor back.
    public var isHeldByTransaction: Bool { blockedAt != nil || !holdFor.isEmpty }

    /// True when the next record can be had without reading from disk.
    public var hasBufferedRecord: Bool {
        peeked != nil || (blockedAt == nil && holdFor.isEmpty && ((records.map { !$0.isAtEnd } ?? false) || reader.hasBufferedBatch))
    }

    @inline(__always)
    public func advance() {
        if let p = peeked { nextOffset = p.offset + 1 }
        peeked = nil
    }
}
