import Synchronization

/// A few idle codec contexts kept for reuse.
///
/// Setting up a deflate stream, an LZ4 frame context or a zstd context allocates
/// (hundreds of KiB for deflate and zstd); batches are compressed one after another on
/// the producer's hot path, so each call borrows a context and gives it back. A context
/// is used by one call at a time; the pool keeps at most `keep` idle ones and frees the
/// rest (each context class frees its C state in `deinit`).
final class ContextPool<Context: AnyObject & Sendable>: Sendable {
    private let idle = Mutex<[Context]>([])
    private let keep: Int

    init(keep: Int = 4) {
        self.keep = keep
    }

    /// An idle context that satisfies `fits`, if there is one.
    func take(where fits: (Context) -> Bool = { _ in true }) -> Context? {
        idle.withLock { list -> Context? in
            guard let i = list.lastIndex(where: fits) else { return nil }
            return list.remove(at: i)
        }
    }

    /// An idle context that satisfies `fits`, or a new one from `make`.
    func take<E: Error>(
        where fits: (Context) -> Bool = { _ in true }, orMake make: () throws(E) -> Context
    ) throws(E) -> Context {
        if let context = take(where: fits) { return context }
        return try make()
    }

    /// Returns a context whose last use left it reusable.
    func give(_ context: Context) {
        idle.withLock { list in
            if list.count < keep { list.append(context) }
        }
    }
}
