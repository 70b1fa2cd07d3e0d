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
    /// Readers holding files, with the token of their last use.
    private var tokens: [ObjectIdentifier: UInt64] = [:]
    /// Uses in order, oldest first from `front`; an entry whose token is not
    /// the reader's current one is stale and skipped.
    private var queue: [(id: ObjectIdentifier, token: UInt64, reader: Unmanaged<PartitionReader>)] = []
    private var front = 0
    private var lastToken: UInt64 = 0
    /// Files released to stay within the limit, since the start (for tests and statistics).
    private(set) var releases = 0

    init(limit: Int) { self.limit = max(limit, 2) }

    /// Readers holding files now.
    var holding: Int { tokens.count }

    /// `reader` holds files, or is about to open one: marks it the most
    /// recently used, and releases the least recently used others while more
    /// than `limit` hold files.
    func use(_ reader: PartitionReader) {
        let id = ObjectIdentifier(reader)
        lastToken += 1
        tokens[id] = lastToken
        queue.append((id, lastToken, Unmanaged.passUnretained(reader)))
        while tokens.count > limit, front < queue.count {
            let entry = queue[front]
            front += 1
            guard entry.id != id, tokens[entry.id] == entry.token else { continue }
            tokens[entry.id] = nil
            releases += 1
            entry.reader.takeUnretainedValue().releaseFiles()
        }
        if queue.count - front > 2 * tokens.count + 64 {
            // Mostly stale entries: keep the current one of each reader, in order.
            queue = queue[front...].filter { tokens[$0.id] == $0.token }
            front = 0
        } else if front > 1024 && front * 2 > queue.count {
            queue.removeFirst(front)
            front = 0
        }
    }

    /// `reader` closed its files (or is going away): it no longer counts.
    func forget(_ reader: PartitionReader) {
        tokens[ObjectIdentifier(reader)] = nil
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
