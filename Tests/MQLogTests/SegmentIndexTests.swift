import Testing
import Glibc
@testable import MQLog

/// `Segment` naming and the `OffsetIndex` / `TimeIndex` entry layouts,
/// lookups and checks, against expectations computed independently here
/// (bytes built by hand, floors found by a linear scan).
@Suite struct SegmentIndexTests {
    // MARK: Segment names

    @Test func segmentNames() {
        #expect(Segment.name(0) == "00000000000000000000")
        #expect(Segment.name(42) == "00000000000000000042")
        #expect(Segment.name(BatchLayout.maximumBaseOffset) == "09223372034707292159")
        #expect(Segment.name(Int64.max) == "09223372036854775807")
        #expect(Segment.name(1_000_000_007) == "00000000001000000007")
        #expect(Segment("/d/é t", 1).logPath == "/d/é t/00000000000000000001.log")
        #expect(Segment("", 0).path("") == "/00000000000000000000")
        let s = Segment("/d/t/0", 42)
        #expect(s.logPath == "/d/t/0/00000000000000000042.log")
        #expect(s.indexPath == "/d/t/0/00000000000000000042.index")
        #expect(s.timeIndexPath == "/d/t/0/00000000000000000042.timeindex")
        #expect(s.txnIndexPath == "/d/t/0/00000000000000000042.txnindex")
        #expect(s.path(".log.cleaned") == "/d/t/0/00000000000000000042.log.cleaned")
        #expect(SegmentBuilder.logPath("/d", 7) == "/d/00000000000000000007.log.cleaned")
        #expect(LogSegments.headPath("/d/t/0") == "/d/t/0/head")
    }

    @Test func segmentNamesParse() {
        #expect(Segment.baseOffset(ofLogName: "00000000000000000042.log") == 42)
        #expect(Segment.baseOffset(ofLogName: Segment.name(BatchLayout.maximumBaseOffset) + ".log") == BatchLayout.maximumBaseOffset)
        for bad in ["0000000000000000042.log", "000000000000000000042.log", "0000000000000000004x.log",
                    "00000000000000000042.index", "00000000000000000042.log.cleaned", ".log", "",
                    "-0000000000000000042.log", "+0000000000000000042.log", "99999999999999999999.log",
                    Segment.name(BatchLayout.maximumBaseOffset + 1) + ".log"] {
            #expect(Segment.baseOffset(ofLogName: bad) == nil, "\(bad)")
        }
        #expect(Segment.baseOffset(ofFileName: "00000000000000000007.txnindex", suffix: Segment.txnIndexSuffix) == 7)
        #expect(Segment.baseOffset(ofFileName: "00000000000000000007.log", suffix: Segment.txnIndexSuffix) == nil)
        for base: Int64 in [0, 1, 9, 10, 123_456_789, 1 << 40] {
            #expect(Segment.baseOffset(ofLogName: Segment.name(base) + Segment.logSuffix) == base)
        }
    }

    @Test func listsSegmentsInOrder() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        for name in ["00000000000000000100.log", "00000000000000000002.log", "00000000000000000002.index",
                     "00000000000000000050.timeindex", "00000000000000000003.log.cleaned", "head", "junk.log"] {
            try FileSystem.writeAtomically(dir + "/" + name, [])
        }
        #expect(try LogSegments.baseOffsets(in: dir) == [2, 100])
        #expect(try LogSegments.segments(in: dir) == [Segment(dir, 2), Segment(dir, 100)])
    }

    // MARK: Layouts, by hand

    static func bigEndian<T: FixedWidthInteger>(_ v: T) -> [UInt8] {
        (0..<(T.bitWidth / 8)).reversed().map { UInt8(truncatingIfNeeded: v >> ($0 * 8)) }
    }

    static func withFile<R>(_ bytes: [UInt8], _ body: (OpenFile) throws -> R) throws -> R {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        try FileSystem.writeAtomically(dir + "/f", bytes)
        let file = try OpenFile.open(dir + "/f", O_RDWR)
        defer { file.close() }
        return try body(file)
    }

    static func contents(_ file: OpenFile) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Int(try file.size()))
        let n = try bytes.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: $0.count, at: 0) }
        return Array(bytes[..<n])
    }

    @Test func offsetIndexLayout() throws {
        let entries = [OffsetIndex.Entry(relativeOffset: 0x0102_0304, position: 0xA0B0_C0D0), OffsetIndex.Entry(relativeOffset: 7, position: 9)]
        let expected = entries.flatMap { Self.bigEndian($0.relativeOffset) + Self.bigEndian($0.position) }
        let written = try Self.withFile([]) { (file: OpenFile) throws in
            let index = OffsetIndex(file: file, baseOffset: 100)
            for (i, e) in entries.enumerated() { #expect(index.append(e, at: Int64(i * OffsetIndex.entrySize))) }
            #expect(try index.count() == 2)
            #expect(try index.entry(at: 1) == entries[1])
            #expect(try index.entry(at: 2) == nil)
            return try Self.contents(file)
        }
        #expect(written == expected)
        #expect(expected.withUnsafeBytes(OffsetIndex.entries(in:)) == entries)
        #expect((expected + [1, 2, 3]).withUnsafeBytes(OffsetIndex.entries(in:)) == entries)
        let e = OffsetIndex.Entry(lastOffset: 142, position: 4096, baseOffset: 100)
        #expect(e == OffsetIndex.Entry(relativeOffset: 42, position: 4096))
        #expect(e.offset(from: 100) == 142)
    }

    @Test func timeIndexLayout() throws {
        let entries = [TimeIndex.Entry(timestamp: 0x0102_0304_0506_0708, relativeOffset: 0xA0B0_C0D0), TimeIndex.Entry(timestamp: -1, relativeOffset: 3)]
        let expected = entries.flatMap { Self.bigEndian($0.timestamp) + Self.bigEndian($0.relativeOffset) }
        let written = try Self.withFile([]) { (file: OpenFile) throws in
            let index = TimeIndex(file: file, baseOffset: 5)
            #expect(try index.lastEntry() == nil)
            for (i, e) in entries.enumerated() { #expect(index.append(e, at: Int64(i * TimeIndex.entrySize))) }
            #expect(try index.lastEntry() == entries[1])
            return try Self.contents(file)
        }
        #expect(written == expected)
        #expect(expected.withUnsafeBytes(TimeIndex.entries(in:)) == entries)
        #expect(TimeIndex.Entry(timestamp: 9, offset: 12, baseOffset: 5) == TimeIndex.Entry(timestamp: 9, relativeOffset: 7))
    }

    /// Offsets from disk never trap: relative offsets wrap.
    @Test func entriesWrapInsteadOfTrapping() {
        #expect(OffsetIndex.Entry(relativeOffset: .max, position: 0).offset(from: .max) == Int64.max &+ Int64(UInt32.max))
        #expect(TimeIndex.Entry(timestamp: 0, relativeOffset: .max).offset(from: .max) == Int64.max &+ Int64(UInt32.max))
        #expect(OffsetIndex.Entry(lastOffset: .min, position: .max, baseOffset: .max).relativeOffset == 1)
        #expect(TimeIndex.Entry(timestamp: 0, offset: .max, baseOffset: .min).relativeOffset == UInt32.max)
    }

    // MARK: Lookups

    /// The floor by linear scan: the last entry with key <= target.
    static func linearFloor<E>(_ entries: [E], _ key: (E) -> Int64, _ target: Int64) -> E? {
        entries.last { key($0) <= target }
    }

    @Test(arguments: [0, 1, 2, 3, 17])
    func offsetIndexFloor(count: Int) throws {
        var rng = SystemRandomNumberGenerator()
        var rel: UInt32 = 3, position: UInt32 = 0
        let entries: [OffsetIndex.Entry] = (0..<count).map { _ in
            defer { rel += UInt32.random(in: 1...5, using: &rng); position += 100 }
            return OffsetIndex.Entry(relativeOffset: rel, position: position)
        }
        let bytes = entries.flatMap { Self.bigEndian($0.relativeOffset) + Self.bigEndian($0.position) }
        try Self.withFile(bytes) { (file: OpenFile) throws in
            let index = OffsetIndex(file: file, baseOffset: 1000)
            var targets: [Int64] = [.min, -1, 0, 1, 2, .max, Int64(UInt32.max), Int64(rel) + 10]
            for e in entries { targets += [Int64(e.relativeOffset) - 1, Int64(e.relativeOffset), Int64(e.relativeOffset) + 1] }
            for t in targets {
                #expect(try index.floorEntry(relativeOffset: t) == Self.linearFloor(entries, { Int64($0.relativeOffset) }, t), "target \(t)")
            }
        }
    }

    @Test(arguments: [0, 1, 2, 5, 16])
    func timeIndexFloor(count: Int) throws {
        var ts: Int64 = -20
        let entries: [TimeIndex.Entry] = (0..<count).map { i in
            defer { ts += Int64.random(in: 1...1000) }
            return TimeIndex.Entry(timestamp: ts, relativeOffset: UInt32(i * 3))
        }
        let bytes = entries.flatMap { Self.bigEndian($0.timestamp) + Self.bigEndian($0.relativeOffset) }
        try Self.withFile(bytes) { (file: OpenFile) throws in
            let index = TimeIndex(file: file, baseOffset: 0)
            #expect(try index.lastEntry() == entries.last)
            var targets: [Int64] = [.min, -21, -20, 0, .max, ts]
            for e in entries { targets += [e.timestamp - 1, e.timestamp, e.timestamp + 1] }
            for t in targets {
                #expect(try index.floorEntry(timestamp: t) == Self.linearFloor(entries, { $0.timestamp }, t), "target \(t)")
            }
        }
    }

    /// A torn last entry is not an entry; random bytes give answers, never traps.
    @Test func damagedIndexesDoNotTrap() throws {
        var rng = SystemRandomNumberGenerator()
        for length in [0, 1, 7, 8, 11, 12, 13, 23, 24, 25, 97, 400] {
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &rng) }
            try Self.withFile(bytes) { (file: OpenFile) throws in
                let offsets = OffsetIndex(file: file, baseOffset: .max)
                #expect(try offsets.count() == Int64(length / 8))
                let all = bytes.withUnsafeBytes(OffsetIndex.entries(in:))
                #expect(all.count == length / 8)
                for t: Int64 in [.min, 0, .max] {
                    if let found = try offsets.floorEntry(relativeOffset: t) { #expect(all.contains(found)) }
                }
                let times = TimeIndex(file: file, baseOffset: .max)
                #expect(try times.lastEntry() == bytes.withUnsafeBytes(TimeIndex.entries(in:)).last)
                for t: Int64 in [.min, 0, .max] { _ = try times.floorEntry(timestamp: t) }
                _ = OffsetIndex.check(bytes, baseOffset: .max, active: false, scannedEnd: 0) { _ in nil }
                _ = TimeIndex.check(bytes, baseOffset: .max, active: false, lastOffset: .min)
            }
        }
        // Entries past what a shrunk file holds read as nothing.
        try Self.withFile([0, 0, 0, 1, 0, 0, 0, 2, 9]) { (file: OpenFile) throws in
            let index = OffsetIndex(file: file, baseOffset: 0)
            #expect(try index.entry(at: 0) == OffsetIndex.Entry(relativeOffset: 1, position: 2))
            #expect(try index.entry(at: 1) == nil)
            #expect(try index.entry(at: .max) == nil)
            #expect(try index.entry(at: -1) == nil)
            #expect(try TimeIndex(file: file, baseOffset: 0).entry(at: .max / 12) == nil)
        }
    }

    // MARK: Checks

    @Test func offsetIndexCheck() {
        let header = { (base: Int64, delta: Int32) -> BatchHeader in
            var bytes = [UInt8](repeating: 0, count: BatchLayout.headerSize)
            bytes.replaceSubrange(0..<8, with: Self.bigEndian(base))
            bytes.replaceSubrange(BatchLayout.lastOffsetDelta..<BatchLayout.lastOffsetDelta + 4, with: Self.bigEndian(delta))
            return bytes.withUnsafeBytes { BatchHeader($0.baseAddress!) }
        }
        let batches: [Int64: BatchHeader] = [0: header(100, 4), 500: header(105, 4), 900: header(110, 0)]
        let encode = { (pairs: [(UInt32, UInt32)]) in pairs.flatMap { Self.bigEndian($0.0) + Self.bigEndian($0.1) } }
        let good = encode([(9, 500), (10, 900)])
        #expect(OffsetIndex.check(good, baseOffset: 100, active: false, scannedEnd: 1000) { batches[$0] } == [])
        #expect(OffsetIndex.check(good + [0], baseOffset: 100, active: false, scannedEnd: 1000) { batches[$0] }
                == [IndexProblem(16, "size 17 is not a multiple of 8")])
        #expect(OffsetIndex.check(good + [0], baseOffset: 100, active: true, scannedEnd: 1000) { batches[$0] } == [])
        #expect(OffsetIndex.check(encode([(10, 900), (9, 500)]), baseOffset: 100, active: false, scannedEnd: 1000) { batches[$0] }
                == [IndexProblem(8, "entry (9, 500) does not increase from (10, 900)")])
        #expect(OffsetIndex.check(encode([(9, 501)]), baseOffset: 100, active: false, scannedEnd: 1000) { batches[$0] }
                == [IndexProblem(0, "position 501 is not the start of a batch")])
        #expect(OffsetIndex.check(encode([(9, 2000)]), baseOffset: 100, active: true, scannedEnd: 1000) { batches[$0] } == [])
        #expect(OffsetIndex.check(encode([(4, 500)]), baseOffset: 100, active: false, scannedEnd: 1000) { batches[$0] }
                == [IndexProblem(0, "offset 104 is not in the batch at byte 500 (offsets 105...109)")])
    }

    @Test func timeIndexCheck() {
        let encode = { (pairs: [(Int64, UInt32)]) in pairs.flatMap { Self.bigEndian($0.0) + Self.bigEndian($0.1) } }
        let good = encode([(10, 1), (20, 5)])
        #expect(TimeIndex.check(good, baseOffset: 100, active: false, lastOffset: 105) == [])
        #expect(TimeIndex.check(good + [1, 2], baseOffset: 100, active: false, lastOffset: 105)
                == [IndexProblem(24, "size 26 is not a multiple of 12")])
        #expect(TimeIndex.check(encode([(10, 1), (10, 5)]), baseOffset: 100, active: false, lastOffset: 105)
                == [IndexProblem(12, "entry (10, 105) is not after (10, 101): timestamps must increase")])
        #expect(TimeIndex.check(good, baseOffset: 100, active: false, lastOffset: 104)
                == [IndexProblem(12, "offset 105 is past the segment's last offset 104")])
        #expect(TimeIndex.check(good, baseOffset: 100, active: true, lastOffset: 104) == [])
    }

    // MARK: The writer's indexes

    /// What the writer indexes, read back through the index types, points at
    /// the batches the scanner finds (an independent walk of the `.log`).
    @Test func writerIndexesPointAtBatches() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let writer = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 100))
        try appendMessages(writer, from: 0, count: 300, perBatch: 3)
        let segment = Segment(dir, 0)
        var batches: [Int64: BatchHeader] = [:]
        let scanner = try #require(try SegmentScanner.open(segment.logPath))
        while case .batch(let position, let h, _) = try scanner.next() { batches[position] = h }
        let indexBytes = try FileSystem.readAll(segment.indexPath)
        let entries = indexBytes.withUnsafeBytes(OffsetIndex.entries(in:))
        #expect(entries.count > 10)
        for e in entries { #expect(batches[Int64(e.position)]?.lastOffset == e.offset(from: 0)) }
        #expect(OffsetIndex.check(indexBytes, baseOffset: 0, active: false, scannedEnd: .max) { batches[$0] } == [])
        let file = try OpenFile.open(segment.indexPath, O_RDONLY)
        defer { file.close() }
        let index = OffsetIndex(file: file, baseOffset: 0)
        for offset: Int64 in [0, 1, 50, 151, 299, 300, .max] {
            let found = try index.floorEntry(relativeOffset: offset)
            #expect(found == entries.last { Int64($0.relativeOffset) <= offset })
        }
        let times = try FileSystem.readAll(segment.timeIndexPath)
        #expect(TimeIndex.check(times, baseOffset: 0, active: true, lastOffset: 299) == [])
    }

    // MARK: Recovery

    /// Kafka's `testRecoveryWithCorruptMessage`: nonsense written at a random
    /// byte; recovery keeps exactly the batches before the damaged one, cuts
    /// the rest, and rebuilds the indexes the writer had for those batches.
    @Test func recoveryCutsAtTheDamagedBatch() throws {
        for round in 0..<50 {
            let dir = makeTempDirectory()
            defer { try? FileSystem.removeTree(dir) }
            let writer = try PartitionWriter(directory: dir, settings: .init(indexIntervalBytes: 200))
            try appendMessages(writer, from: 0, count: 200, perBatch: 4)
            let segment = Segment(dir, 0)
            var starts: [(position: Int64, header: BatchHeader)] = []
            let scanner = try #require(try SegmentScanner.open(segment.logPath))
            while case .batch(let position, let h, _) = try scanner.next() { starts.append((position, h)) }
            let size = try #require(FileSystem.size(segment.logPath))
            let cleanIndex = try FileSystem.readAll(segment.indexPath)
            var damagedAt = round == 0 ? size - 1 : Int64.random(in: 0..<size)
            // partitionLeaderEpoch is neither checksummed nor checked: damage the magic instead.
            if let b = starts.last(where: { $0.position <= damagedAt }),
               damagedAt - b.position >= Int64(BatchLayout.partitionLeaderEpoch), damagedAt - b.position < Int64(BatchLayout.magic) {
                damagedAt = b.position + Int64(BatchLayout.magic)
            }
            let file = try OpenFile.open(segment.logPath, O_RDWR)
            defer { file.close() }
            var byte: UInt8 = 0
            _ = try withUnsafeMutableBytes(of: &byte) { try file.read(into: $0.baseAddress!, count: 1, at: damagedAt) }
            byte ^= 0xFF
            try withUnsafeBytes(of: &byte) { try file.write($0, at: damagedAt) }
            let kept = starts.filter { $0.position + Int64($0.header.totalSize) <= damagedAt }
            let keptEnd = kept.last.map { $0.position + Int64($0.header.totalSize) } ?? 0

            let files = try segment.open(createLog: false)
            defer { files.close() }
            var state = HeadState.emptySegment(base: 0, createdMs: 0)
            let cut = try files.recover(&state, interval: 200, scratch: GrowableBytes(capacity: 64))
            #expect(state.endPosition == keptEnd, "damaged at \(damagedAt)")
            #expect(state.nextOffset == (kept.last?.header.nextOffset ?? 0))
            #expect(cut == size - keptEnd)
            #expect(FileSystem.size(segment.logPath) == keptEnd)
            // The rebuilt index is the writer's, up to the batches kept.
            let rebuilt = try FileSystem.readAll(segment.indexPath)
            #expect(Int64(rebuilt.count) == state.indexBytes)
            #expect(Array(cleanIndex.prefix(rebuilt.count)) == rebuilt)
            let keptPositions = Set(kept.map { UInt32($0.position) })
            #expect(rebuilt.withUnsafeBytes(OffsetIndex.entries(in:)).allSatisfy { keptPositions.contains($0.position) })
        }
    }
}
