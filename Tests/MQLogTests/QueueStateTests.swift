import Glibc
import Testing
@testable import MQLog

@Suite struct QueueStateTests {
    @Test func encodeDecodeRoundTripAndDamageIsRejected() throws {
        var s = QueueState()
        s.generation = 7; s.low = 10; s.next = 20
        s.entries = [QueueState.Entry(offset: 11, leaseUntil: 5, visibleAt: 6, attempts: 2, done: false, owner: "123-456"),
                     QueueState.Entry(offset: 15, done: true)]
        var bytes = s.encode()
        #expect(bytes.withUnsafeBytes { QueueState.decode($0) } == s)
        bytes[bytes.count - 20] ^= 1
        #expect(bytes.withUnsafeBytes { QueueState.decode($0) } == nil)
    }

    @Test func advanceLowSkipsDoneEntries() {
        var s = QueueState()
        s.low = 0; s.next = 5
        s.entries = [QueueState.Entry(offset: 0, done: true), QueueState.Entry(offset: 1, done: true),
                     QueueState.Entry(offset: 3), QueueState.Entry(offset: 4, done: true)]
        s.advanceLow()
        #expect(s.low == 3)
        #expect(s.entries.map(\.offset) == [3])
        s.entries[0].done = true
        s.advanceLow()
        #expect(s.low == 5 && s.entries.isEmpty)
    }

    @Test func updatesAlternateFilesAndSurviveATornWrite() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let q = try QueuePartition(directory: dir + "/q")
        try q.update(durable: true) { $0.next = 5 }
        try q.update(durable: true) { $0.low = 3 }
        #expect(try q.read().low == 3 && q.read().next == 5 && q.read().generation == 2)
        // Tear the newest copy (generation 2 lives in file "a"): the previous state wins.
        let a = try OpenFile.open(dir + "/q/a", O_RDWR)
        try a.truncate(to: 20)
        a.close()
        let s = try q.read()
        #expect(s.generation == 1 && s.next == 5 && s.low == 0)
    }
}
