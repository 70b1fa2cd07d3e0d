import Glibc

/// Bounds the partition files that `PartitionReader`s keep open.
///
/// A reader holds its current segment's `.log` and the partition's `head`
/// open between reads. A tool that reads thousands of partitions would need
/// two descriptors per partition, more than the open-file limit allows; so
/// readers register here while they hold files, and when more than `limit`
/// do, the least recently used one closes its files (`releaseFiles`). It keeps
/// its position and the bytes it had buffered, and opens the segment again
/// at its next read from disk (docs/FORMAT.md §9, "Released files").
///
/// Each use (a read from disk, a look at `head`) moves the reader to the
/// back of the queue, in O(1) amortized time. Not thread-safe: each thread
/// has its own pool (`ReaderPool.current`), and a reader uses the pool of the
/// thread that made it (a pool releases files of its own readers only, so a
/// reader is never closed under another thread that is reading it).
final class ReaderPool {
    /// The calling thread's pool, sized by `FileBudget.shared.readers`.
    static var current: ReaderPool {
        let key = threadKey.key
        if let p = pthread_getspecific(key) { return Unmanaged<ReaderPool>.fromOpaque(p).takeUnretainedValue() }
        let pool = ReaderPool(limit: FileBudget.shared.readers)
        pthread_setspecific(key, Unmanaged.passRetained(pool).toOpaque())
        return pool
    }

    /// Most readers holding files at once.
    let limit: Int
    /// Readers holding files, least recently used first.
    private var order = RecencyOrder<ObjectIdentifier>()
    /// The readers in `order`, not retained: a reader leaves `order` when it
    /// releases its files or goes away (`forget`).
    private var readers: [ObjectIdentifier: Unmanaged<PartitionReader>] = [:]
    /// Files released to stay within the limit, since the start (for tests and statistics).
    private(set) var releases = 0

    init(limit: Int) { self.limit = max(limit, 2) }

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
