import Testing
import Glibc
@testable import MQLog

func makeTempDirectory() -> String {
    var template = Array("/tmp/mq-test-XXXXXX".utf8CString)
    let p = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
    return String(cString: p!)
}

/// Appends `count` one-record-per-message batches of `perBatch` records.
func appendMessages(_ writer: PartitionWriter, from first: Int, count: Int, perBatch: Int, codec: CompressionCodec = .none) throws {
    let builder = RecordBatchBuilder(codec: codec)
    let noHeaders = RecordBatchBuilder.encodeHeaders([])
    var i = first
    while i < first + count {
        builder.reset()
        for j in i..<min(i + perBatch, first + count) {
            let value = Array("message \(j)".utf8)
            value.withUnsafeBytes { v in noHeaders.withUnsafeBytes { h in
                builder.append(timestamp: 1_700_000_000_000 + Int64(j), key: nil, value: v, headers: h)
            } }
        }
        _ = try builder.finish()
        try writer.append(builder.output)
        i += perBatch
    }
}

func readValues(_ dir: String, from offset: Int64 = 0) throws -> [(Int64, String)] {
    try readValues(PartitionCursor(partition: 0, directory: dir, startOffset: offset))
}

/// Every record of `cursor` to its end, as (offset, value).
func readValues(_ cursor: PartitionCursor) throws -> [(Int64, String)] {
    var out: [(Int64, String)] = []
    while let r = try cursor.peek() {
        out.append((r.offset, String(decoding: r.value!, as: UTF8.self)))
        cursor.advance()
    }
    return out
}

@Suite struct PartitionLogTests {
    @Test func appendThenReadAcrossSegmentRolls() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 4096, indexIntervalBytes: 100))
        try appendMessages(writer, from: 0, count: 1000, perBatch: 7)
        #expect(writer.nextOffset == 1000)
        let segments = try LogSegments.baseOffsets(in: dir)
        #expect(segments.count > 5)
        #expect(segments.first == 0)
        let values = try readValues(dir)
        #expect(values.count == 1000)
        #expect(values.enumerated().allSatisfy { $0.offset == Int($0.element.0) && $0.element.1 == "message \($0.offset)" })
        // Seek into the middle of a batch in a middle segment, by offset and by time.
        let tail = try readValues(dir, from: 503)
        #expect(tail.first?.0 == 503 && tail.count == 497)
        let reader = PartitionReader(directory: dir)
        #expect(try reader.offset(forTime: 1_700_000_000_000 + 777) == 777)
        #expect(try reader.logEndOffset() == 1000)
        #expect(try reader.logStartOffset() == 0)
    }

    @Test func secondWriterContinuesOffsets() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let a = try PartitionWriter(directory: dir, settings: .init())
        let b = try PartitionWriter(directory: dir, settings: .init())
        try appendMessages(a, from: 0, count: 10, perBatch: 3)
        try appendMessages(b, from: 10, count: 10, perBatch: 4)
        try appendMessages(a, from: 20, count: 5, perBatch: 5)
        let values = try readValues(dir)
        #expect(values.map(\.0) == Array(0..<25).map(Int64.init))
        #expect(values.map(\.1) == (0..<25).map { "message \($0)" })
    }

    /// Writers read `head` under its lock right after some writer wrote it:
    /// with relatime each read would update its access time, dirtying the
    /// inode once more per append. They open it without (O_NOATIME).
    @Test func writersLeaveTheAccessTimeOfHeadAlone() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        try appendMessages(PartitionWriter(directory: dir, settings: .init()), from: 0, count: 3, perBatch: 1)
        let head = LogSegments.headPath(dir)
        // Accessed before its last change: relatime would update it at the next read.
        var times = [timespec(tv_sec: 1_000, tv_nsec: 0), timespec(tv_sec: 2_000, tv_nsec: 0)]
        #expect(utimensat(AT_FDCWD, head, &times, 0) == 0)
        let writer = try PartitionWriter(directory: dir, settings: .init())
        try appendMessages(writer, from: 3, count: 3, perBatch: 1)
        let mark = try #require(writer.unsyncedMark)
        try writer.sync()
        try writer.markSynced(mark)
        try PartitionWriter.recordSynced(mark, directory: dir)
        var st = stat()
        #expect(stat(head, &st) == 0)
        #expect(st.st_atim.tv_sec == 1_000)
        #expect(st.st_mtim.tv_sec > 2_000)
        #expect(try readValues(dir).count == 6)
    }

    @Test func tornTailIsCutAndOnlyWholeBatchesSurvive() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        do {
            let w = try PartitionWriter(directory: dir, settings: .init())
            try appendMessages(w, from: 0, count: 30, perBatch: 10)
        }
        // A writer died mid-write: half a batch lands after the recorded end.
        let log = try OpenFile.open(Segment(dir, 0).logPath, O_RDWR)
        let size = try log.size()
        let garbage = [UInt8](repeating: 0xAB, count: 40)
        try garbage.withUnsafeBytes { try log.write($0, at: size) }
        log.close()
        // Readers stop before the torn bytes.
        #expect(try readValues(dir).count == 30)
        // The next writer cuts them and continues at offset 30.
        let w = try PartitionWriter(directory: dir, settings: .init())
        try appendMessages(w, from: 30, count: 5, perBatch: 5)
        #expect(w.recoveredBytesDropped == 40)
        let values = try readValues(dir)
        #expect(values.map(\.0) == Array(0..<35).map(Int64.init))
    }

    @Test func randomCorruptionInTheTailKeepsExactlyTheEarlierBatches() throws {
        for trial in 0..<20 {
            let dir = makeTempDirectory()
            defer { try? FileSystem.removeTree(dir) }
            var ends: [Int64] = []
            do {
                let w = try PartitionWriter(directory: dir, settings: .init())
                for b in 0..<10 {
                    try appendMessages(w, from: b * 5, count: 5, perBatch: 5)
                    ends.append(w.state.endPosition)
                }
            }
            // Damage one byte; lose the state file so the whole segment is re-validated.
            let log = try OpenFile.open(Segment(dir, 0).logPath, O_RDWR)
            // Any byte but the partition leader epoch (bytes 12..<16 of a
            // batch), which Kafka's format leaves outside the CRC.
            let starts = [Int64(0)] + ends.dropLast()
            var at: Int64
            repeat { at = Int64.random(in: 0..<ends.last!) } while starts.contains(where: { (12..<16).contains(at - $0) })
            var byte: UInt8 = 0
            _ = try withUnsafeMutableBytes(of: &byte) { try log.read(into: $0.baseAddress!, count: 1, at: at) }
            byte ^= 0xFF
            try withUnsafeBytes(of: &byte) { try log.write($0, at: at) }
            log.close()
            try FileSystem.remove(dir + "/head")
            let w = try PartitionWriter(directory: dir, settings: .init())
            try w.recoverFully()
            let survivingBatches = ends.firstIndex(where: { $0 > at })!
            #expect(w.nextOffset == Int64(survivingBatches * 5), "trial \(trial): byte \(at)")
            #expect(try readValues(dir).count == survivingBatches * 5)
        }
    }
}

@Suite struct RestartRecoveryTests {
    @Test func bootIDIsThisMachines() throws {
        let text = String(decoding: try FileSystem.readAll("/proc/sys/kernel/random/boot_id"), as: UTF8.self)
        let hex = text.filter { $0.isHexDigit }
        #expect(currentBootID.count == 16)
        #expect(currentBootID != [UInt8](repeating: 0, count: 16))
        #expect(currentBootID.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() == hex)
    }

    /// `logEndOffset` starts from the end `head` records for the active
    /// segment: a batch written past it (a writer between its write and its
    /// record of it) still counts, a head of another boot is not used, and
    /// a reader that read the first segment first does not take those bytes
    /// for the last one's (over several segments, with a cursor positioned
    /// from the end, as `mq-tail -n N` makes it).
    @Test func logEndOffsetFromHeadCountsWhatFollowsAndNothingElse() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 4096, indexIntervalBytes: 100))
        try appendMessages(writer, from: 0, count: 1000, perBatch: 7)
        #expect(try LogSegments.baseOffsets(in: dir).count > 5)
        let reader = try PartitionReader.positioning(directory: dir)
        #expect(try reader.logStartOffset() == 0)
        #expect(try reader.logEndOffset() == 1000)
        let tail = try readValues(PartitionCursor(partition: 0, reader: reader, startOffset: 985))
        #expect(tail.map(\.1) == (985..<1000).map { "message \($0)" })

        // One more batch, with head put back as it was before it.
        let headPath = LogSegments.headPath(dir)
        let before = try FileSystem.readAll(headPath)
        try appendMessages(writer, from: 1000, count: 5, perBatch: 5)
        try before.withUnsafeBytes { bytes in
            let head = try OpenFile.open(headPath, O_WRONLY)
            defer { head.close() }
            try head.write(bytes, at: 0)
        }
        #expect(try PartitionReader.positioning(directory: dir).logEndOffset() == 1005)
        #expect(try PartitionReader(directory: dir).logEndOffset() == 1005)

        // A head that records the whole file and a wrong next offset: taken
        // at its word in this boot (nothing is read past its end), not from another.
        var state = try #require(before.withUnsafeBytes { HeadState.decode($0) })
        var st = stat()
        #expect(stat(Segment(dir, state.activeBase).logPath, &st) == 0)
        state.endPosition = Int64(st.st_size)
        state.nextOffset = 4321
        try FileSystem.writeAtomically(headPath, state.encode())
        #expect(try PartitionReader.positioning(directory: dir).logEndOffset() == 4321)
        state.bootID = [UInt8](repeating: 7, count: 16)
        try FileSystem.writeAtomically(headPath, state.encode())
        #expect(try PartitionReader.positioning(directory: dir).logEndOffset() == 1005)
    }

    /// After a power loss, blocks inside the range the state calls committed
    /// can come back as zeros. A state written before the restart (another
    /// boot id) must not be trusted: the segment is re-validated and cut.
    @Test func stateFromAnotherBootIsRevalidated() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        var ends: [Int64] = []
        do {
            let w = try PartitionWriter(directory: dir, settings: .init())
            for b in 0..<4 {
                try appendMessages(w, from: b * 10, count: 10, perBatch: 10)
                ends.append(w.state.endPosition)
            }
        }
        // Zero the last batch, as lost writes would leave it, and mark the state as from another boot.
        let log = try OpenFile.open(Segment(dir, 0).logPath, O_RDWR)
        let zeros = [UInt8](repeating: 0, count: Int(ends[3] - ends[2]))
        try zeros.withUnsafeBytes { try log.write($0, at: ends[2]) }
        log.close()
        let headPath = dir + "/head"
        var raw = try FileSystem.readAll(headPath)
        var state = try #require(raw.withUnsafeBytes { HeadState.decode($0) })
        state.bootID = [UInt8](repeating: 7, count: 16)
        raw = state.encode()
        try FileSystem.writeAtomically(headPath, raw)
        let w = try PartitionWriter(directory: dir, settings: .init())
        try appendMessages(w, from: 30, count: 5, perBatch: 5)
        #expect(w.recoveredBytesDropped == ends[3] - ends[2])
        #expect(try readValues(dir).map(\.0) == Array(0..<35).map(Int64.init))
    }
}

/// Segment swaps as `mq-compact` makes them: readers must neither lose a kept
/// record nor return one twice.
@Suite struct ReplacedSegmentTests {
    /// Three segments of whole batches (5 records each).
    func makePartition() throws -> (String, [Int64]) {
        let dir = makeTempDirectory()
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 1024, indexIntervalBytes: 100))
        try appendMessages(writer, from: 0, count: 150, perBatch: 5)
        let segments = try LogSegments.baseOffsets(in: dir)
        try #require(segments.count >= 3)
        return (dir, segments)
    }

    /// The batches of a segment file, as (base offset, bytes).
    func batches(_ path: String) throws -> [(Int64, [UInt8])] {
        let raw = try FileSystem.readAll(path)
        var out: [(Int64, [UInt8])] = []
        var at = 0
        while at + BatchLayout.headerSize <= raw.count {
            let h = raw.withUnsafeBytes { BatchHeader($0.baseAddress! + at) }
            out.append((h.baseOffset, Array(raw[at..<at + h.totalSize])))
            at += h.totalSize
        }
        return out
    }

    /// Writes segments `merged[0]`…`merged.last` as one file named by the
    /// first, keeping the batches `keep` selects, and renames it in. The
    /// other segments' files are left for the caller to remove.
    func swapIn(_ dir: String, merged: [Int64], keep: (Int64) -> Bool) throws {
        var bytes: [UInt8] = []
        for base in merged {
            for (offset, b) in try batches(Segment(dir, base).logPath) where keep(offset) { bytes += b }
        }
        let tmp = Segment(dir, merged[0]).logPath + ".cleaned"
        try FileSystem.writeAtomically(tmp, bytes)
        try FileSystem.remove(Segment(dir, merged[0]).indexPath)
        try FileSystem.rename(tmp, to: Segment(dir, merged[0]).logPath)
    }

    func drain(_ cursor: PartitionCursor) throws -> [Int64] {
        var out: [Int64] = []
        while let r = try cursor.peek() { out.append(r.offset); cursor.advance() }
        return out
    }

    @Test func readerInsideTheReplacedSegmentContinuesInTheNewFile() throws {
        let (dir, seg) = try makePartition()
        defer { try? FileSystem.removeTree(dir) }
        let cursor = try PartitionCursor(partition: 0, directory: dir, startOffset: 0)
        var seen: [Int64] = []
        for _ in 0..<3 { seen.append(try #require(try cursor.peek()).offset); cursor.advance() }
        // Keep only even batches of segments 0 and 1, merged into segment 0; remove segment 1.
        let keep = { (base: Int64) in (base / 5) % 2 == 0 }
        try swapIn(dir, merged: [seg[0], seg[1]], keep: keep)
        try FileSystem.remove(Segment(dir, seg[1]).logPath)
        seen += try drain(cursor)
        // The open (old) segment 0 is read to its end; from segment 1 on, only kept batches.
        let expected = (0..<150).map(Int64.init).filter { $0 < seg[1] || $0 >= seg[2] || keep($0 / 5 * 5) }
        #expect(seen == expected)
    }

    @Test func readerAtTheEndOfTheReplacedSegmentFindsTheMergedRecords() throws {
        let (dir, seg) = try makePartition()
        defer { try? FileSystem.removeTree(dir) }
        let cursor = try PartitionCursor(partition: 0, directory: dir, startOffset: 0)
        var seen: [Int64] = []
        // Read up to the last record of segment 0 without looking further.
        while cursor.nextOffset < seg[1], let r = try cursor.peek() { seen.append(r.offset); cursor.advance() }
        let keep = { (base: Int64) in (base / 5) % 3 != 1 }
        try swapIn(dir, merged: [seg[0], seg[1]], keep: keep)
        try FileSystem.remove(Segment(dir, seg[1]).logPath)
        seen += try drain(cursor)
        let expected = (0..<150).map(Int64.init).filter { $0 < seg[1] || $0 >= seg[2] || keep($0 / 5 * 5) }
        #expect(seen == expected)
        #expect(Set(seen).count == seen.count)
    }

    @Test func halfSwappedMergeIsReadOnce() throws {
        let (dir, seg) = try makePartition()
        defer { try? FileSystem.removeTree(dir) }
        let keep = { (base: Int64) in (base / 5) % 2 == 1 }
        // The merged segment is in place but the old segment 1 is not removed yet.
        try swapIn(dir, merged: [seg[0], seg[1]], keep: keep)
        let all = try drain(try PartitionCursor(partition: 0, directory: dir, startOffset: 0))
        let expected = (0..<150).map(Int64.init).filter { $0 >= seg[2] || keep($0 / 5 * 5) }
        #expect(all == expected)
        // Plain batch reads skip the old segment's batches as well.
        let reader = PartitionReader(directory: dir)
        var ends: [Int64] = []
        while let (h, _) = try reader.nextBatch() { ends.append(h.nextOffset) }
        #expect(ends == ends.sorted() && Set(ends).count == ends.count)
        #expect(try reader.logStartOffset() == 5)
    }
}
