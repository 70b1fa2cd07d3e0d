import Glibc
import Testing
@testable import MQLog

@Suite struct BackgroundWorkerTests {
    /// Which thread ran each index, and how often: written by both threads,
    /// each at its own indexes.
    final class Visits: @unchecked Sendable {
        var threads: [pthread_t?]
        var counts: [Int]
        init(_ count: Int) {
            threads = Array(repeating: nil, count: count)
            counts = Array(repeating: 0, count: count)
        }
    }

    struct Failure: Error, Equatable { let half: String }

    @Test func inHalvesRunsEveryIndexOnceHalfOnEachThread() throws {
        let worker = try BackgroundWorker()
        for count in [0, 1, 2, 7, 1000] {
            let visits = Visits(count)
            try worker.inHalves(count) { range in
                for i in range {
                    visits.counts[i] += 1
                    visits.threads[i] = pthread_self()
                }
            }
            #expect(visits.counts == Array(repeating: 1, count: count), "count \(count)")
            let here = pthread_self()
            let onCaller = visits.threads.filter { $0.map { pthread_equal($0, here) != 0 } ?? false }.count
            #expect(onCaller == count / 2, "count \(count): \(onCaller) on the caller's thread")
        }
    }

    @Test func inHalvesThrowsTheThreadsErrorFirstThenTheCallers() throws {
        let here = pthread_self()
        func onCaller() -> Bool { pthread_equal(pthread_self(), here) != 0 }

        let callerFails = try BackgroundWorker()
        #expect(throws: Failure(half: "caller")) {
            try callerFails.inHalves(10) { _ in if onCaller() { throw Failure(half: "caller") } }
        }
        // The caller's error is not the worker's: it goes on.
        try callerFails.inHalves(4) { _ in }

        let bothFail = try BackgroundWorker()
        #expect(throws: Failure(half: "thread")) {
            try bothFail.inHalves(10) { _ in throw Failure(half: onCaller() ? "caller" : "thread") }
        }
        // A failed job is kept: nothing more runs on that worker.
        let visits = Visits(4)
        #expect(throws: Failure(half: "thread")) {
            try bothFail.inHalves(4) { range in for i in range { visits.counts[i] += 1 } }
        }
        #expect(visits.counts == [0, 0, 0, 0])
    }
}
