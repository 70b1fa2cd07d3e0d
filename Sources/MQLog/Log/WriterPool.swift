/// A bounded set of open `PartitionWriter`s, keyed by partition directory,
/// closing the least recently used when full.
///
/// A writer holds up to 4 descriptors (head, `.log`, and `.index` and
/// `.timeindex` once it has indexed a batch), so a
/// tool writing to 10,000 partitions cannot keep one open per partition
/// under the usual limit of open files. Every tool that appends goes
/// through a pool sized from `FileBudget.shared.writers`.
///
/// Durability across eviction: closing a writer never loses a sync. When
/// the evicted writer holds appends not yet fsynced, the pool remembers its
/// directory; `sync(_:)` and `syncAll()` then fsync that partition's active
/// segment through a new writer (a roll fsyncs the segment it leaves, so
/// the active one is all that can still hold those appends). Eviction itself
/// does not fsync: a `--sync exit` producer pays one fsync per partition at
/// the end, as it did with every writer open, or one syncfs for them all
/// (`syncAll`).
///
/// Other state a writer carries that outlives it:
/// - bytes its recoveries cut (`recoveredBytesDropped(_:)` adds the closed
///   writers' counts);
/// - the writeback hint position is only a hint and starts over.
///
/// Contract for callers: do not keep a writer returned by `writer(_:settings:)`
/// across another call to `writer`, which may close it.
/// Not thread-safe.
public final class WriterPool {
    /// How many writers may be open at once (at least 1).
    public let capacity: Int

    private var open: [String: PartitionWriter] = [:]
    /// The open writers' directories, least recently used first.
    private var order = RecencyOrder<String>()
    /// The settings of every directory opened, to open it again.
    private var settingsOf: [String: PartitionWriter.Settings] = [:]
    /// Directories whose closed writers left appends that are not yet
    /// fsynced, with how far those appends reached.
    private var unsyncedClosed: [String: PartitionWriter.DurableMark] = [:]
    private var droppedByClosed: [String: Int64] = [:]
    /// Writers closed to make room (for tests and figures).
    public private(set) var evictions = 0

    /// - Parameter capacity: the most writers open at once; by default what
    ///   the file budget allows.
    public init(capacity: Int = FileBudget.shared.writers) {
        self.capacity = max(1, capacity)
    }

    /// A pool of at most 8 writers, for writers that fsync every batch (dead
    /// letters, the delay mover): closing one leaves nothing to sync, so a
    /// small pool costs only the reopening, and keeps descriptors for the
    /// consumer that runs them.
    public static func forSyncedBatches() -> WriterPool {
        WriterPool(capacity: min(FileBudget.shared.writers, 8))
    }

    /// A pool holding `writers` (at least as many as there are).
    public init(adopting writers: [PartitionWriter], capacity: Int = FileBudget.shared.writers) {
        self.capacity = max(1, capacity, writers.count)
        for w in writers {
            open[w.directory] = w
            order.touch(w.directory)
            settingsOf[w.directory] = w.settings
        }
    }

    /// Number of writers open now.
    public var openCount: Int { open.count }

    /// True while the writer of `directory` is open.
    public func isOpen(_ directory: String) -> Bool { open[directory] != nil }

    /// The open writer of `directory`, or a new one (closing the least
    /// recently used writer first when the pool is full).
    /// - Parameter settings: used only when a writer is opened.
    /// - Throws: `MQError` when the partition's head file cannot be opened.
    public func writer(_ directory: String, settings: @autoclosure () throws -> PartitionWriter.Settings) throws -> PartitionWriter {
        if let w = open[directory] {
            order.touch(directory)
            return w
        }
        if open.count >= capacity { evictLeastRecentlyUsed() }
        let s = try settings()
        let w = try PartitionWriter(directory: directory, settings: s)
        open[directory] = w
        order.touch(directory)
        settingsOf[directory] = s
        return w
    }

    /// The writer of a directory this pool opened before, opened again if it was closed.
    public func writer(_ directory: String) throws -> PartitionWriter {
        guard let settings = settingsOf[directory] else {
            preconditionFailure("WriterPool: '\(directory)' was never opened through this pool")
        }
        return try writer(directory, settings: settings)
    }

    private func evictLeastRecentlyUsed() {
        guard let victim = order.removeLeastRecent() else { return }
        close(victim)
        evictions += 1
    }

    /// Closes the writer of `directory`, remembering what it leaves unsynced.
    private func close(_ directory: String) {
        guard let w = open.removeValue(forKey: directory) else { return }
        order.remove(directory)
        if let mark = w.unsyncedMark { unsyncedClosed[directory] = mark }
        if w.recoveredBytesDropped > 0 { droppedByClosed[directory, default: 0] += w.recoveredBytesDropped }
    }

    /// Makes everything appended to `directory` through this pool durable.
    public func sync(_ directory: String) throws {
        if unsyncedClosed.removeValue(forKey: directory) != nil {
            try writer(directory).syncActiveSegment()
        } else if let w = open[directory] {
            try w.sync()
        }
    }

    /// Makes everything appended through this pool durable: the open
    /// writers first, then the partitions of closed writers with unsynced
    /// appends (opening them may close writers synced just before, which
    /// leave nothing behind).
    ///
    /// With `FileSystemSync.threshold` partitions or more to sync, on file
    /// systems where that is as durable, one syncfs per file system does it
    /// instead of an fdatasync per partition; each partition's head then
    /// records what is durable, as after an fdatasync.
    public func syncAll() throws { try syncAll(alongside: nil) }

    /// `syncAll`, with `helper`, an idle thread, recording after a syncfs
    /// half of what it made durable while this one records the other half
    /// (each partition's head is its own file).
    func syncAll(alongside helper: BackgroundWorker?) throws {
        if try syncAllThroughFileSystem(alongside: helper) { return }
        for directory in open.keys.sorted() { try open[directory]!.sync() }
        for directory in unsyncedClosed.keys.sorted() { try sync(directory) }
    }

    private func syncAllThroughFileSystem(alongside helper: BackgroundWorker?) throws -> Bool {
        let openUnsynced = open.values.compactMap { w in w.unsyncedMark.map { (w, $0) } }
        let closed = Array(unsyncedClosed)
        let directories = Set(openUnsynced.map(\.0.directory)).union(unsyncedClosed.keys)
        guard directories.count >= FileSystemSync.threshold, try FileSystemSync.syncAll(holding: directories) else { return false }
        // Each partition's head is its own file: the halves share nothing.
        let record = { (range: Range<Int>) throws in
            for i in range {
                if i < openUnsynced.count {
                    let (w, mark) = openUnsynced[i]
                    try w.markSynced(mark)
                } else {
                    let (directory, mark) = closed[i - openUnsynced.count]
                    try PartitionWriter.recordSynced(mark, directory: directory)
                }
            }
        }
        let count = openUnsynced.count + closed.count
        if let helper {
            try helper.inHalves(count, record)
        } else {
            try record(0..<count)
        }
        unsyncedClosed.removeAll()
        return true
    }

    /// Bytes cut from torn tails by recoveries of every writer of `directory` this pool opened.
    public func recoveredBytesDropped(_ directory: String) -> Int64 {
        (droppedByClosed[directory] ?? 0) + (open[directory]?.recoveredBytesDropped ?? 0)
    }

    /// Closes every writer. Appends they left unsynced stay unsynced.
    public func closeAll() {
        for directory in Array(open.keys) { close(directory) }
    }
}
