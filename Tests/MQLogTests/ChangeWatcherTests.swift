import Testing
import Glibc
@testable import MQLog

/// What wakes a follower: data in the newest segment, new and replaced
/// segments; not the writes to `head` and the indexes that go with every append.
@Suite struct ChangeWatcherTests {
    private func write(_ path: String, _ text: String) throws {
        let file = try OpenFile.open(path, O_WRONLY | O_CREAT | O_APPEND)
        defer { file.close() }
        try Array(text.utf8).withUnsafeBytes { try file.write($0, at: 0) }
    }

    @Test func wakesForSegmentDataOnlyAndFollowsRolls() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let watcher = ChangeWatcher()
        try #require(watcher.usesInotify)
        try write(Segment(dir, 0).logPath, "x")
        try write(LogSegments.headPath(dir), "state")
        try write(Segment(dir, 0).indexPath, "index")
        watcher.watch(dir)
        #expect(watcher.wait(timeoutMs: 20).isEmpty)

        // Writes to head and the indexes: no wake-up at all.
        try write(LogSegments.headPath(dir), "state")
        try write(Segment(dir, 0).indexPath, "index")
        #expect(!watcher.hasPendingEvents)

        try write(Segment(dir, 0).logPath, "data")
        #expect(watcher.wait(timeoutMs: 1000) == [dir])

        // A roll: the creation wakes, and writes to the new segment do too.
        try write(Segment(dir, 10).logPath, "")
        #expect(watcher.wait(timeoutMs: 1000) == [dir])
        try write(Segment(dir, 10).logPath, "data")
        #expect(watcher.wait(timeoutMs: 1000) == [dir])
        // The old segment is no longer watched for writes.
        try write(Segment(dir, 0).logPath, "late")
        #expect(!watcher.hasPendingEvents)

        // A segment renamed over the newest one (a compaction swap).
        let replacement = dir + "/replacement"
        try write(replacement, "merged")
        #expect(rename(replacement, Segment(dir, 10).logPath) == 0)
        #expect(watcher.wait(timeoutMs: 1000) == [dir])
        try write(Segment(dir, 10).logPath, "after")
        #expect(watcher.wait(timeoutMs: 1000) == [dir])
    }

    @Test func anEmptyPartitionWakesForItsFirstSegment() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let watcher = ChangeWatcher()
        try #require(watcher.usesInotify)
        watcher.watch(dir)
        try write(Segment(dir, 0).logPath, "")
        #expect(watcher.wait(timeoutMs: 1000) == [dir])
        try write(Segment(dir, 0).logPath, "first")
        #expect(watcher.wait(timeoutMs: 1000) == [dir])
    }

    @Test func stateDirectoriesWakeForWritesInPlace() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let watcher = ChangeWatcher()
        try #require(watcher.usesInotify)
        try write(dir + "/a", "state 1")
        watcher.watchWrites(dir)
        #expect(!watcher.hasPendingEvents)
        try write(dir + "/a", "state 2")
        #expect(watcher.wait(timeoutMs: 1000) == [dir])
    }
}
