import Glibc

/// Calls `body(i)` for every `i` in `0..<count` on up to `threads` threads
/// (the calling thread is one of them), thread `t` taking the indices `t`,
/// `t + threads`, `t + 2 × threads`…, and returns each call's result or error
/// in index order. Every index is run, whatever the others threw.
///
/// `body` must be safe to call from several threads at once. Thread-safe;
/// returns when every call has returned.
public func concurrentMap<R>(_ count: Int, threads: Int, _ body: (Int) throws -> R) -> [Result<R, any Error>] {
    let n = max(1, min(threads, count))
    guard n > 1 else { return (0..<count).map { i in Result { try body(i) } } }
    var results = [Result<R, any Error>?](repeating: nil, count: count)
    results.withUnsafeMutableBufferPointer { out in
        withoutActuallyEscaping(body) { body in
            let stripe = Stripe(body: body, out: out.baseAddress!, count: count, stride: n)
            var started: [pthread_t] = []
            for t in 1..<n {
                let start = ThreadStart { stripe.run(t) }
                var thread = pthread_t()
                if pthread_create(&thread, nil, { ThreadStart.enter($0) }, Unmanaged.passRetained(start).toOpaque()) == 0 {
                    started.append(thread)
                } else {
                    Unmanaged.passUnretained(start).release()
                    stripe.run(t)  // no thread to spare: this one does the stripe
                }
            }
            stripe.run(0)
            for thread in started { pthread_join(thread, nil) }
        }
    }
    return results.map { $0! }
}

/// The online CPUs, at least 1. The corresponding C function is `sysconf(_SC_NPROCESSORS_ONLN)`.
public func onlineProcessorCount() -> Int {
    max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// One thread's share of a `concurrentMap`: writes only its own indices of `out`.
private final class Stripe<R>: @unchecked Sendable {
    let body: (Int) throws -> R
    let out: UnsafeMutablePointer<Result<R, any Error>?>
    let count: Int
    let stride: Int

    init(body: @escaping (Int) throws -> R, out: UnsafeMutablePointer<Result<R, any Error>?>, count: Int, stride: Int) {
        self.body = body
        self.out = out
        self.count = count
        self.stride = stride
    }

    func run(_ first: Int) {
        var i = first
        while i < count {
            out[i] = Result { try body(i) }
            i += stride
        }
    }
}

/// What a new thread runs, passed through `pthread_create`'s argument.
private final class ThreadStart: @unchecked Sendable {
    let work: () -> Void
    init(_ work: @escaping () -> Void) { self.work = work }

    static func enter(_ arg: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
        Unmanaged<ThreadStart>.fromOpaque(arg!).takeRetainedValue().work()
        return nil
    }
}
