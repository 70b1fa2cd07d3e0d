import Testing
import Glibc
@testable import MQLog

@Suite struct ReaderPoolTests {
    @Test func aReleasedReaderReadsOnWhereItWas() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 4096, indexIntervalBytes: 100))
        try appendMessages(writer, from: 0, count: 500, perBatch: 7)
        let cursor = try PartitionCursor(partition: 0, directory: dir, startOffset: 3)
        var offsets: [Int64] = []
        func readAll() throws {
            while let r = try cursor.peek() {
                offsets.append(r.offset)
                cursor.advance()
                cursor.reader.releaseFiles()
                #expect(!cursor.reader.isHoldingSegment)
            }
        }
        try readAll()
        // Written (and rolled) while the reader held no file.
        cursor.reader.releaseFiles()
        try appendMessages(writer, from: 500, count: 500, perBatch: 7)
        try readAll()
        #expect(offsets == Array(3..<1000))
    }

    @Test func aReleasedReaderWhoseSegmentWasReplacedResumesAfterWhatItReturned() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 1 << 20, indexIntervalBytes: 100))
        try appendMessages(writer, from: 0, count: 100, perBatch: 10)
        let cursor = try PartitionCursor(partition: 0, directory: dir, startOffset: 0)
        var offsets: [Int64] = []
        for _ in 0..<35 {
            offsets.append(try cursor.peek()!.offset)
            cursor.advance()
        }
        cursor.reader.releaseFiles()
        // Another file under the segment's name, with the same batches (as a compaction that kept them).
        let name = Segment(dir, 0).logPath
        let bytes = try FileSystem.readAll(name)
        let tmp = dir + "/replacement"
        let fd = open(tmp, O_WRONLY | O_CREAT, 0o644)
        _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        close(fd)
        #expect(rename(tmp, name) == 0)
        while let r = try cursor.peek() {
            offsets.append(r.offset)
            cursor.advance()
        }
        #expect(offsets == Array(0..<100))
    }

    @Test func readersShareTheBufferBudget() throws {
        let pool = ReaderPool(limit: 16)
        pool.readerCreated()
        #expect(pool.readSize == 1 << 20)
        for _ in 0..<999 { pool.readerCreated() }
        #expect(pool.readSize == ReaderPool.minimumReadSize)
        for _ in 0..<900 { pool.readerGone() }
        // 100 readers: 16 MiB / 100 in whole 16 KiB steps.
        #expect(pool.readSize == 160 << 10)
        #expect(pool.readSize * 100 <= ReaderPool.bufferBudget)
    }

    @Test func aCursorReadsNoBatchUntilAskedForARecord() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 4096))
        try appendMessages(writer, from: 0, count: 2_000, perBatch: 1_000)
        try writer.sync()
        // One of many readers (a consumer taking a thousand partitions).
        ReaderPool.current.expectReaders(1_000)
        defer { ReaderPool.expectReaders(0) }
        for start: Int64 in [0, 1_000, 1_500] {
            // Positioned at the log start and at offsets in either batch: headers alone were read.
            let cursor = try PartitionCursor.positioned(partition: 0, directory: dir, isolation: .readCommitted) { reader in
                let logStart = try reader.logStartOffset()
                #expect(logStart == 0)
                return start
            }
            #expect(cursor.reader.bufferCapacity <= 8192, "start \(start)")
            #expect(try cursor.peek()?.offset == start)
            #expect(cursor.reader.bufferCapacity > 8192)
        }
    }

    @Test func aReaderReadsItsShareAndGivesItBackAtTheEnd() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 4096))
        try appendMessages(writer, from: 0, count: 20_000, perBatch: 100)
        let reader = PartitionReader(directory: dir)
        let pool = ReaderPool.current
        pool.expectReaders(500)
        defer { ReaderPool.expectReaders(0) }
        _ = try reader.nextBatch()
        #expect(reader.bufferCapacity <= ReaderPool.bufferBudget / 500 + 4096)
        while try reader.nextBatch() != nil {}
        #expect(reader.bufferCapacity <= 4096)
    }

    @Test func thePoolReleasesTheLeastRecentlyUsedReader() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 1 << 20, indexIntervalBytes: 100))
        try appendMessages(writer, from: 0, count: 10, perBatch: 1)
        let readers = (0..<3).map { _ in PartitionReader(directory: dir) }
        for r in readers { try r.seek(toOffset: 0) }
        #expect(readers.allSatisfy { $0.isHoldingSegment })
        let pool = ReaderPool(limit: 2)
        pool.use(readers[0])
        pool.use(readers[1])
        pool.use(readers[0])
        pool.use(readers[2])
        #expect(pool.releases == 1 && pool.holding == 2)
        #expect(readers[0].isHoldingSegment && !readers[1].isHoldingSegment && readers[2].isHoldingSegment)
        // Used many times, the queue stays small and the count right.
        for _ in 0..<10_000 { pool.use(readers[0]); pool.use(readers[2]) }
        #expect(pool.releases == 1 && pool.holding == 2)
        // The released reader serves what it had buffered, then opens its segment again.
        var bases: [Int64] = []
        while let (header, _) = try readers[1].nextBatch() { bases.append(header.baseOffset) }
        #expect(bases == Array(0..<10))
        #expect(readers[1].isHoldingSegment)
    }

    /// Descriptors of this process open on `path`.
    static func descriptorsOpen(on path: String) -> Int {
        let fds = (try? FileSystem.list("/proc/self/fd")) ?? []
        return fds.filter { fd in
            var target = [CChar](repeating: 0, count: 4096)
            let n = readlink("/proc/self/fd/" + fd, &target, target.count - 1)
            return n > 0 && String(decoding: target[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self) == path
        }.count
    }

    @Test func oneOfThousandsOfReadersClosesHeadAfterEachLook() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        do {  // the writer closes its `head` when it goes
            let writer = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 4096))
            try appendMessages(writer, from: 0, count: 100, perBatch: 10)
        }
        let head = LogSegments.headPath(dir)
        #expect(Self.descriptorsOpen(on: head) == 0)
        let pool = ReaderPool.current
        defer { ReaderPool.expectReaders(0) }
        // Few readers: `head` stays open beside the segment.
        ReaderPool.expectReaders(0)
        #expect(pool.keepsHeadsOpen)
        let reader = try PartitionReader.positioning(directory: dir)
        #expect(Self.descriptorsOpen(on: head) == 1)
        // As many readers expected as the pool has descriptors: the reader
        // holding `head` closes it at once, and closes it after every look.
        ReaderPool.expectReaders(pool.descriptors)
        #expect(!pool.keepsHeadsOpen)
        #expect(pool.limit == pool.descriptors)
        #expect(Self.descriptorsOpen(on: head) == 0)
        var offsets: [Int64] = []
        while let (header, _) = try reader.nextBatch() { offsets.append(header.baseOffset) }
        #expect(offsets == stride(from: 0, to: 100, by: 10).map { Int64($0) })
        #expect(reader.activeSegmentBase() == 0)
        #expect(Self.descriptorsOpen(on: head) == 0)
        #expect(reader.isHoldingSegment)
        // Few again: kept open from the next look on.
        ReaderPool.expectReaders(0)
        #expect(pool.keepsHeadsOpen && pool.limit == pool.descriptors / 2)
        #expect(reader.activeSegmentBase() == 0)
        #expect(Self.descriptorsOpen(on: head) == 1)
    }

    @Test func headsStayOpenWhileEveryReaderCouldKeepBoth() {
        let pool = ReaderPool(descriptors: 8)
        for _ in 0..<4 { pool.readerCreated() }
        #expect(pool.keepsHeadsOpen && pool.limit == 4)
        pool.readerCreated()
        #expect(!pool.keepsHeadsOpen && pool.limit == 8)
        pool.setDescriptors(10)
        #expect(pool.keepsHeadsOpen && pool.limit == 5)
        pool.expectReaders(6)
        #expect(!pool.keepsHeadsOpen)
        pool.expectReaders(0)
        pool.readerGone()
        pool.setDescriptors(8)
        #expect(pool.keepsHeadsOpen && pool.limit == 4)
    }

    /// A reader that does not follow (mq-tail without -f, mq-consume -e)
    /// reads every segment it was positioned from, and once at the end does
    /// not read there again: what is appended later is not returned, where
    /// a following reader's next look returns it.
    @Test func aReaderThatStopsAtItsEndReadsWhatWasThereAndNoMore() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 4096, indexIntervalBytes: 100))
        try appendMessages(writer, from: 0, count: 1000, perBatch: 7)
        #expect(try LogSegments.baseOffsets(in: dir).count > 1)
        let stopping = try PartitionCursor.positioned(partition: 0, directory: dir, isolation: .readCommitted, stopsAtEnd: true,
                                                      readsWholeBatches: true) { try $0.logStartOffset() }
        let following = try PartitionCursor.positioned(partition: 0, directory: dir, isolation: .readCommitted) { try $0.logStartOffset() }
        func readAll(_ cursor: PartitionCursor) throws -> [Int64] {
            var offsets: [Int64] = []
            while let r = try cursor.peek() {
                offsets.append(r.offset)
                cursor.advance()
            }
            return offsets
        }
        #expect(try readAll(stopping) == Array(0..<1000))
        #expect(try readAll(following) == Array(0..<1000))
        try appendMessages(writer, from: 1000, count: 3, perBatch: 3)
        #expect(try readAll(stopping) == [])
        #expect(try readAll(following) == Array(1000..<1003))
        // Into a new segment as well.
        let segments = try LogSegments.baseOffsets(in: dir).count
        try appendMessages(writer, from: 1003, count: 300, perBatch: 7)
        #expect(try LogSegments.baseOffsets(in: dir).count > segments)
        #expect(try readAll(stopping) == [])
        #expect(try readAll(following) == Array(1003..<1303))
    }
}
