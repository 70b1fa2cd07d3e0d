import Glibc

/// A thread of its own that runs one owner's jobs, one at a time, while the
/// owner goes on (`mq-produce` writes one round of batches on it while it
/// reads and builds the next).
///
/// The owner hands a job with `run`, which first waits for the previous job
/// to end, and waits with `wait` before touching anything a job uses. A job's
/// error is kept: `run` and `wait` throw it from then on, and no later job
/// runs. Every signal is blocked in the thread, so signals reach the owner's.
/// Only its owner's thread may call it; `stop` ends the thread.
final class BackgroundWorker: @unchecked Sendable {
    private var mutex = pthread_mutex_t()
    private var changed = pthread_cond_t()
    /// The job handed over and not yet finished.
    private var job: (() throws -> Void)?
    /// The first error a job threw.
    private var failure: (any Error)?
    private var stopping = false
    private var thread = pthread_t()
    private var running = false

    /// Starts the thread.
    /// - Throws: `MQError` (osError) when the system cannot start one.
    init() throws {
        pthread_mutex_init(&mutex, nil)
        pthread_cond_init(&changed, nil)
        var all = sigset_t()
        var previous = sigset_t()
        sigfillset(&all)
        // The thread inherits the mask in force when it is created.
        pthread_sigmask(SIG_SETMASK, &all, &previous)
        let rc = pthread_create(&thread, nil, { arg in
            Unmanaged<BackgroundWorker>.fromOpaque(arg!).takeUnretainedValue().loop()
            return nil
        }, Unmanaged.passUnretained(self).toOpaque())
        pthread_sigmask(SIG_SETMASK, &previous, nil)
        guard rc == 0 else {
            throw MQError(.osError, "cannot start a writer thread: \(String(cString: strerror(rc)))")
        }
        running = true
    }

    deinit {
        stop()
        pthread_cond_destroy(&changed)
        pthread_mutex_destroy(&mutex)
    }

    /// Waits for the previous job, then hands `job` to the thread.
    /// - Throws: the error of an earlier job (and `job` does not run).
    func run(_ job: @escaping () throws -> Void) throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while self.job != nil { pthread_cond_wait(&changed, &mutex) }
        if let failure { throw failure }
        self.job = job
        pthread_cond_broadcast(&changed)
    }

    /// Returns when no job runs.
    /// - Throws: the error of an earlier job.
    func wait() throws {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        while job != nil { pthread_cond_wait(&changed, &mutex) }
        if let failure { throw failure }
    }

    /// Splits `0..<count` in two: runs `body` over the upper half on the
    /// thread and over the lower half on the caller's, and returns when both
    /// are done (after the previous job, which it waits for first).
    /// - Throws: the error of an earlier job, else the thread's half's, else
    ///   the caller's half's.
    func inHalves(_ count: Int, _ body: @escaping (Range<Int>) throws -> Void) throws {
        let half = count / 2
        try run { try body(half..<count) }
        var failure: (any Error)?
        do {
            try body(0..<half)
        } catch {
            failure = error
        }
        try wait()
        if let failure { throw failure }
    }

    /// Lets the job in hand end, then ends the thread.
    func stop() {
        guard running else { return }
        running = false
        pthread_mutex_lock(&mutex)
        stopping = true
        pthread_cond_broadcast(&changed)
        pthread_mutex_unlock(&mutex)
        pthread_join(thread, nil)
    }

    private func loop() {
        pthread_mutex_lock(&mutex)
        while true {
            while job == nil && !stopping { pthread_cond_wait(&changed, &mutex) }
            guard let next = job else { break }
            pthread_mutex_unlock(&mutex)
            var error: (any Error)?
            do { try next() } catch let e { error = e }
            pthread_mutex_lock(&mutex)
            if failure == nil { failure = error }
            job = nil
            pthread_cond_broadcast(&changed)
        }
        pthread_mutex_unlock(&mutex)
    }
}
