import Glibc

/// Bounds the partition files that `PartitionReader`s keep open.
///
/// A reader holds its current segment's `.log` open between reads, and the
/// partition's `head` while few readers are alive. A tool that reads
/// thousands of partitions would need two descriptors per partition, more
/// than the open-file limit allows; so the pool counts descriptors:
/// - while every reader alive could keep both within `descriptors`, each
///   may (`keepsHeadsOpen`), and at most half as many readers as
///   descriptors hold files;
/// - beyond that, a reader closes `head` after each look at it, and as many
///   readers as descriptors may hold their segment.
/// Readers register here while they hold files, and when more than `limit`
/// do, the least recently used one closes its files (`releaseFiles`). It keeps
/// its position and the bytes it had buffered, and opens the segment again
/// at its next read from disk (docs/FORMAT.md §9, "Released files").
///
/// Each use (a read from disk, a look at `head`) moves the reader to the
/// back of the queue, in O(1) amortized time. Not thread-safe: each thread
/// has its own pool (`ReaderPool.current`), and a reader uses the pool of the
/// thread that made it (a pool releases files of its own readers only, so a
/// reader is never closed under another thread that is reading it).
public final class ReaderPool {
    /// The calling thread's pool, sized by `FileBudget.shared.readerDescriptors`.
    static var current: ReaderPool {
        let key = threadKey.key
        if let p = pthread_getspecific(key) { return Unmanaged<ReaderPool>.fromOpaque(p).takeUnretainedValue() }
        let pool = ReaderPool(descriptors: FileBudget.shared.readerDescriptors)
        pthread_setspecific(key, Unmanaged.passRetained(pool).toOpaque())
        return pool
    }

    /// Gives the calling thread's readers the whole descriptor budget: for
    /// a tool that opens no partition writers (`mq-tail`).
    public static func takeWholeBudget() {
        current.setDescriptors(FileBudget.shared.pooled)
    }

    /// Descriptors this pool's readers may hold between them (at least 2).
    private(set) var descriptors: Int

    func setDescriptors(_ count: Int) {
        descriptors = max(count, 2)
        updateHeadsPolicy()
    }

    /// Most readers holding files at once.
    var limit: Int { keepsHeadsOpen ? max(descriptors / 2, 2) : descriptors }

    /// Whether readers may keep `head` open beside their segment: while all
    /// the readers alive (or about to be) could hold both at once.
    private(set) var keepsHeadsOpen = true

    /// Readers holding files, least recently used first.
    private var order = RecencyOrder<ObjectIdentifier>()
    /// The readers in `order`, not retained: a reader leaves `order` when it
    /// releases its files or goes away (`forget`).
    private var readers: [ObjectIdentifier: Unmanaged<PartitionReader>] = [:]
    /// Files released to stay within the limit, since the start (for tests and statistics).
    private(set) var releases = 0

    init(descriptors: Int) { self.descriptors = max(descriptors, 2) }

    /// A pool whose readers keep `head` open beside their segment: `readers` of them hold files at once.
    convenience init(limit readers: Int) { self.init(descriptors: 2 * max(readers, 2)) }

    /// Readers alive on this thread (holding files or not).
    private(set) var readerCount = 0

    /// All readers' buffers together stay near this, however many partitions
    /// are read. Small enough that a thousand buffers are not a thousand
    /// fresh 64 KiB regions to fault in: reading many partitions at once
    /// costs memory faults and cache misses more than system calls.
    static let bufferBudget = 16 << 20
    /// A reader reads at least this much at a time (and at most a megabyte);
    /// a batch larger than its read is read whole, with the next batch's
    /// header (`PartitionReader.refill`), so small reads cost no extra calls.
    static let minimumReadSize = 16 << 10
    /// What one of many readers reads to position itself by batch headers.
    /// Not more: a consumer positions all its partitions before it reads
    /// any, and 16 KiB each there (the whole of a small partition) cost
    /// 10,000 partitions more in cache misses than the second read saved.
    static let headerProbeSize = 4096
    /// A reader reads at most this much at a time (a larger batch is still read whole).
    static let maximumReadSize = 1 << 20

    /// How many bytes a reader reads from its segment at a time: a megabyte
    /// while few readers are alive, less when many are, so that reading
    /// 10,000 partitions at once holds `bufferBudget`, not 10 GB, of buffers
    /// (a batch larger than this is still read whole).
    var readSize: Int {
        // In whole steps of the minimum, so that buffers are not reallocated as readers come and go.
        let share = Self.bufferBudget / max(readerCount, expectedReaders, 1) / Self.minimumReadSize * Self.minimumReadSize
        return min(Self.maximumReadSize, max(Self.minimumReadSize, share))
    }

    /// How many readers a tool said it is about to create (`expectReaders`).
    private var expectedReaders = 0

    /// Says that about `count` readers will be alive at once on this
    /// thread: the first ones made then read no more than their share of
    /// the budget either (a tool opening 1,000 partitions in turn).
    public static func expectReaders(_ count: Int) { current.expectReaders(count) }

    func expectReaders(_ count: Int) {
        expectedReaders = max(0, count)
        updateHeadsPolicy()
    }

    func readerCreated() {
        readerCount += 1
        updateHeadsPolicy()
    }

    func readerGone() {
        readerCount -= 1
        updateHeadsPolicy()
    }

    /// Sets `keepsHeadsOpen` from the readers alive or expected; when it
    /// turns false, the readers holding files close `head` now, so that
    /// the descriptors held never pass `descriptors`.
    private func updateHeadsPolicy() {
        let keep = max(readerCount, expectedReaders) * 2 <= descriptors
        guard keep != keepsHeadsOpen else { return }
        keepsHeadsOpen = keep
        if !keep { for r in readers.values { r.takeUnretainedValue().closeHead() } }
    }

    /// Readers holding files now.
    var holding: Int { order.count }

    /// `reader` holds files, or is about to open one: marks it the most
    /// recently used, and releases the least recently used others while more
    /// than `limit` hold files (never `reader` itself: with more than
    /// `limit` ≥ 2 holding, at least two were used before it).
    func use(_ reader: PartitionReader) {
        let id = ObjectIdentifier(reader)
        order.touch(id)
        readers[id] = Unmanaged.passUnretained(reader)
        while order.count > limit, let victim = order.removeLeastRecent() {
            releases += 1
            readers.removeValue(forKey: victim)?.takeUnretainedValue().releaseFiles()
        }
    }

    /// `reader` closed its files (or is going away): it no longer counts.
    func forget(_ reader: PartitionReader) {
        let id = ObjectIdentifier(reader)
        order.remove(id)
        readers[id] = nil
    }
}

/// The thread-specific key of `ReaderPool.current`; a thread's pool is
/// released when the thread ends.
private struct ThreadKey: @unchecked Sendable {
    let key: pthread_key_t
    init() {
        var k = pthread_key_t()
        pthread_key_create(&k) { p in
            guard let p else { return }
            Unmanaged<ReaderPool>.fromOpaque(p).release()
        }
        key = k
    }
}
private let threadKey = ThreadKey()
