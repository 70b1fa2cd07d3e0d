import Testing
import Glibc
@testable import MQLog

/// Readers of a merge over many partitions map windows of their segments
/// instead of reading them (docs/FORMAT.md §9, "Mapped reads").
/// Serialized: one test takes every window the process allows itself, which
/// the others' readers would then not get.
@Suite(.serialized) struct MappedReadTests {
    /// A cursor of partition `dir` from its start, as `mq-tail`'s merge makes
    /// them: it reads whole batches and stops at its end, so it maps.
    private func mergeCursor(_ dir: String) throws -> PartitionCursor {
        try PartitionCursor.positioned(partition: 0, directory: dir, isolation: .readCommitted, stopsAtEnd: true,
                                       readsWholeBatches: true) { try $0.logStartOffset() }
    }

    /// Every record of `cursor` to its end, as (offset, value).
    private func readAll(_ cursor: PartitionCursor, releasingEvery: Int = 0) throws -> [(Int64, String)] {
        var records: [(Int64, String)] = []
        while let r = try cursor.peek() {
            records.append((r.offset, r.value.map { String(decoding: $0, as: UTF8.self) } ?? ""))
            cursor.advance()
            if releasingEvery > 0 && records.count % releasingEvery == 0 { cursor.reader.releaseFiles() }
        }
        return records
    }

    /// Batches of every size, a batch larger than a window, several
    /// segments, files released by the pool in between: a reader that maps
    /// returns what one that reads returns.
    @Test func aMergeReaderReturnsWhatAReadingReaderReturns() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 96 << 10, indexIntervalBytes: 4096))
        try appendMessages(writer, from: 0, count: 3_000, perBatch: 7)
        try appendMessages(writer, from: 3_000, count: 9_000, perBatch: 9_000)  // about 150 KiB, more than a window
        try appendMessages(writer, from: 12_000, count: 2_000, perBatch: 300)
        try writer.sync()
        #expect(try LogSegments.baseOffsets(in: dir).count > 2)
        // One of many readers, as in a merge of a thousand partitions.
        ReaderPool.current.expectReaders(1_000)
        defer { ReaderPool.expectReaders(0) }
        let mapping = try mergeCursor(dir)
        let reading = try PartitionCursor.positioned(partition: 0, directory: dir, isolation: .readCommitted, stopsAtEnd: true) {
            try $0.logStartOffset()
        }
        #expect(mapping.reader.mapsSegments && !reading.reader.mapsSegments)
        let mapped = try readAll(mapping, releasingEvery: 997)
        let read = try readAll(reading)
        #expect(mapped.count == 14_000)
        #expect(mapped.map(\.0) == read.map(\.0))
        #expect(mapped.map(\.1) == read.map(\.1))
        #expect(mapped.first.map { $0 == (0, "message 0") } == true)
        #expect(mapping.reader.windowsMapped > 3)
        #expect(reading.reader.windowsMapped == 0)
        // At its end it stays there, as a reader that read does.
        try appendMessages(writer, from: 14_000, count: 5, perBatch: 5)
        #expect(try readAll(mapping).isEmpty)
    }

    /// A window that would leave less of its file after it than it spans
    /// takes that rest too: a partition of 100 KiB read by one of 1,000
    /// readers (windows of 64 KiB) is one mapping, not two; one of 1.7 MiB
    /// is still read in windows of about 64 KiB, none more than twice that.
    @Test func aWindowTakesAShortRestOfItsFile() throws {
        ReaderPool.current.expectReaders(1_000)
        defer { ReaderPool.expectReaders(0) }
        #expect(ReaderPool.current.readSize <= PartitionReader.minimumWindow)
        for (count, least, most) in [(4_000, 1, 1), (80_000, 14, 32)] {
            let dir = makeTempDirectory()
            defer { try? FileSystem.removeTree(dir) }
            let writer = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 4096))
            try appendMessages(writer, from: 0, count: count, perBatch: 100)
            try writer.sync()
            let size = try #require(FileSystem.size(Segment(dir, 0).logPath))
            let cursor = try mergeCursor(dir)
            let records = try readAll(cursor)
            #expect(records.count == count)
            #expect(records.map(\.0).elementsEqual(0..<Int64(count)))
            #expect(records.last.map { $0.1 == "message \(count - 1)" } == true)
            #expect(cursor.reader.windowsMapped >= least && cursor.reader.windowsMapped <= most,
                    "\(size) bytes: \(cursor.reader.windowsMapped) windows")
            #expect(cursor.reader.largestWindow <= 2 * PartitionReader.minimumWindow + Int(FileMapping.pageSize))
            if count == 4_000 { #expect(size > Int64(PartitionReader.minimumWindow) && size < Int64(2 * PartitionReader.minimumWindow)) }
        }
    }

    /// With every window the process allows itself taken (a quarter of
    /// vm.max_map_count), a merge reader reads instead, and returns the same.
    @Test func aReaderThatFindsNoRoomForAWindowReads() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 4096))
        try appendMessages(writer, from: 0, count: 3_000, perBatch: 50)
        try writer.sync()
        ReaderPool.current.expectReaders(1_000)
        defer { ReaderPool.expectReaders(0) }
        let file = try #require(try OpenFile.openForReading(Segment(dir, 0).logPath))
        defer { file.close() }
        var held: [FileMapping] = []
        defer { for m in held { m.unmap() } }
        while held.count < 1 << 20, let m = file.mapForReading(from: 0, length: 4096) { held.append(m) }
        #expect(held.count >= 1_000)
        let cursor = try mergeCursor(dir)
        let records = try readAll(cursor)
        #expect(cursor.reader.windowsMapped == 0)
        #expect(records.count == 3_000)
        #expect(records.map(\.0).elementsEqual(0..<3_000))
        #expect(records.last.map { $0.1 == "message 2999" } == true)
        // Room again: the next reader maps.
        for m in held { m.unmap() }
        held.removeAll()
        let next = try mergeCursor(dir)
        #expect(try readAll(next).count == 3_000)
        #expect(next.reader.windowsMapped > 0)
    }

    /// A segment cut shorter under a mapped window (by hand, say, while
    /// `mq-tail` runs): the pages past the new end read as zeros instead of
    /// killing the process with SIGBUS, and the reader reports the damage.
    @Test func aSegmentCutUnderAMappedWindowIsADataErrorNotACrash() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 4096))
        try appendMessages(writer, from: 0, count: 3_000, perBatch: 50)
        try writer.sync()
        let path = Segment(dir, 0).logPath
        let size = try #require(FileSystem.size(path))
        #expect(size > 5 * 4096)
        ReaderPool.current.expectReaders(1_000)
        defer { ReaderPool.expectReaders(0) }
        let cursor = try mergeCursor(dir)
        #expect(try cursor.peek()?.offset == 0)
        #expect(cursor.reader.windowsMapped == 1)
        #expect(truncate(path, 8192) == 0)
        var delivered = 0
        do {
            while try cursor.peek() != nil { cursor.advance(); delivered += 1 }
            Issue.record("read past the cut: \(delivered) records")
        } catch let error as MQError {
            #expect(error.status == .dataError)
            #expect(error.message.contains(path))
        }
        // The records wholly before the cut were returned, none after it.
        #expect(delivered > 0 && delivered < 3_000)
    }
}
