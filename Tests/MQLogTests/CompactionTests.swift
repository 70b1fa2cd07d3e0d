import Testing
import Glibc
@testable import MQLog

/// A record to write: key and value (nil = null), timestamp.
private struct Rec {
    var key: String?
    var value: String?
    var timestamp: Int64 = 1_700_000_000_000
}

/// Appends `records` in batches of `perBatch`.
private func write(_ writer: PartitionWriter, _ records: [Rec], perBatch: Int, codec: CompressionCodec = .none) throws {
    let builder = RecordBatchBuilder(codec: codec)
    let noHeaders = RecordBatchBuilder.encodeHeaders([Header(name: "h", value: Array("x".utf8))])
    var i = 0
    while i < records.count {
        builder.reset()
        for r in records[i..<min(i + perBatch, records.count)] {
            let k = r.key.map { Array($0.utf8) }, v = r.value.map { Array($0.utf8) }
            noHeaders.withUnsafeBytes { h in
                func withOptional(_ a: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> Void) {
                    if let a { a.withUnsafeBytes { body($0) } } else { body(nil) }
                }
                withOptional(k) { kp in withOptional(v) { vp in builder.append(timestamp: r.timestamp, key: kp, value: vp, headers: h) } }
            }
        }
        _ = try builder.finish()
        try writer.append(builder.output)
        i += perBatch
    }
}

/// Every record of a partition: offset, key, value, header count.
private func readAll(_ dir: String) throws -> [(offset: Int64, key: String?, value: String?, headers: Int)] {
    let cursor = try PartitionCursor(partition: 0, directory: dir, startOffset: 0)
    var out: [(Int64, String?, String?, Int)] = []
    while let r = try cursor.peek() {
        out.append((r.offset, r.key.map { String(decoding: $0, as: UTF8.self) }, r.value.map { String(decoding: $0, as: UTF8.self) }, r.headerCount))
        cursor.advance()
    }
    return out
}

private func compactTopic(_ records: [Rec], perBatch: Int, codec: CompressionCodec = .none, config: [String: String],
                          now: Int64 = 1_700_000_100_000, force: Bool = true) throws -> (LogDirectory, String, Compactor.Report) {
    let root = makeTempDirectory()
    let log = LogDirectory(root: root)
    var overrides = ["cleanup.policy": "compact", "segment.bytes": "1024", "index.interval.bytes": "100"]
    for (k, v) in config { overrides[k] = v }
    let topicConfig = TopicConfig(partitions: 1, overrides: overrides)
    try log.createTopic("t", config: topicConfig)
    let dir = log.topicPath("t") + "/0"
    let writer = try PartitionWriter(directory: dir, settings: .init(topicConfig))
    try write(writer, records, perBatch: perBatch, codec: codec)
    var options = Compactor.Options(now: now)
    options.force = force
    let compactor = Compactor(log: log, options: options)
    try compactor.run(topics: ["t"])
    return (log, dir, compactor.report)
}

@Suite struct CompactionTests {
    @Test func latestPerKeyKeptWithOffsetsAndOrder() throws {
        // 300 records over 10 keys, then 20 more that stay in the active segment.
        let records = (0..<320).map { Rec(key: "k\($0 % 10)", value: "v\($0)") }
        for codec in [CompressionCodec.none, .zstd, .lz4] {
            let (log, dir, report) = try compactTopic(records, perBatch: 7, codec: codec, config: [:])
            defer { try? FileSystem.removeTree(log.root) }
            let got = try readAll(dir)
            let active = try LogSegments.baseOffsets(in: dir).last!
            // Every key's latest record before the active segment survives, at its offset.
            let expected = records.enumerated().filter { i, r in
                Int64(i) >= active || !records[(i + 1)...].prefix(while: { _ in true }).enumerated().contains { j, s in
                    s.key == r.key && Int64(i + 1 + j) < active
                }
            }.map { (Int64($0.offset), $0.element.value) }
            #expect(got.map(\.offset) == expected.map(\.0))
            #expect(got.map(\.value) == expected.map(\.1))
            #expect(got.allSatisfy { $0.headers == 1 })
            #expect(report.recordsRemoved == Int64(records.count - expected.count))
            #expect(report.segmentsWritten >= 1)
            // The result passes the checker.
            let check = LogCheck(log: log, repair: false)
            try check.run(topics: ["t"])
            #expect(check.problems == [])
        }
    }

    @Test func verbatimCopyWhenNothingDrops() throws {
        // Distinct keys: nothing to remove, so batches are copied byte for byte.
        let records = (0..<200).map { Rec(key: "key-\($0)", value: "v\($0)") }
        let root = makeTempDirectory()
        defer { try? FileSystem.removeTree(root) }
        let dir = root + "/p"
        try FileSystem.makeDirectory(dir)
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 1024, indexIntervalBytes: 100))
        try write(writer, records, perBatch: 5)
        let bases = try LogSegments.baseOffsets(in: dir)
        let before = try FileSystem.readAll(Segment(dir, bases[0]).logPath) + FileSystem.readAll(Segment(dir, bases[1]).logPath)
        let builder = try SegmentBuilder(directory: dir, base: bases[0], indexInterval: 100)
        let rewriter = BatchRewriter()
        for base in bases[0...1] {
            let scanner = try SegmentScanner.open(Segment(dir, base).logPath)!
            while case .batch(_, let h, let bytes) = try scanner.next() {
                let (outcome, removed) = try rewriter.rewrite(header: h, bytes: bytes) { _ in true }
                #expect(removed == 0)
                guard case .verbatim = outcome else { Issue.record("not verbatim"); return }
                try builder.append(bytes)
            }
        }
        try builder.finish()
        #expect(try FileSystem.readAll(SegmentBuilder.logPath(dir, bases[0])) == before)
    }

    @Test func partialBatchKeepsBaseAndLastOffset() throws {
        let root = makeTempDirectory()
        defer { try? FileSystem.removeTree(root) }
        let dir = root + "/p"
        try FileSystem.makeDirectory(dir)
        let writer = try PartitionWriter(directory: dir, settings: .init())
        let records = (0..<6).map { Rec(key: "k\($0)", value: "v\($0)", timestamp: 1_000 + Int64($0)) }
        try write(writer, records, perBatch: 6, codec: .gzip)
        let scanner = try SegmentScanner.open(Segment(dir, 0).logPath)!
        // `bytes` points into the scanner's buffer: keep it alive to the end.
        defer { withExtendedLifetime(scanner) {} }
        guard case .batch(_, let h, let bytes) = try scanner.next() else { Issue.record("no batch"); return }
        // Keep offsets 2 and 4: the first and last records go.
        let rewriter = BatchRewriter()  // owns the rewritten bytes
        let (outcome, removed) = try rewriter.rewrite(header: h, bytes: bytes) { $0.offset == 2 || $0.offset == 4 }
        #expect(removed == 4)
        guard case .rewritten(let batch) = outcome else { Issue.record("not rewritten"); return }
        guard case .success(let nh) = validateBatch(batch) else { Issue.record("invalid batch \(validateBatch(batch))"); return }
        #expect(nh.baseOffset == h.baseOffset && nh.lastOffsetDelta == h.lastOffsetDelta && nh.recordsCount == 2)
        #expect(nh.compression == .gzip && nh.producerId == h.producerId)
        #expect(nh.baseTimestamp == 1_002 && nh.maxTimestamp == 1_004)
        let decoder = BatchDecoder()  // owns the decoded records
        var it = RecordIterator(records: try decoder.records(of: batch, header: nh), header: nh)
        var offsets: [Int64] = []
        while let r = try it.next() { offsets.append(r.offset) }
        withExtendedLifetime(decoder) {}
        #expect(offsets == [2, 4])
        // And nothing kept: the batch disappears.
        let (none, all) = try rewriter.rewrite(header: h, bytes: bytes) { _ in false }
        #expect(all == 6)
        guard case .dropped = none else { Issue.record("not dropped"); return }
    }

    @Test func tombstonesGoOnlyAfterDeleteRetention() throws {
        let now: Int64 = 1_700_000_100_000
        var records = (0..<100).map { Rec(key: "k\($0 % 5)", value: "v\($0)", timestamp: now - 50_000) }
        records.append(Rec(key: "k0", value: nil, timestamp: now - 50_000))  // old tombstone
        records.append(Rec(key: "k1", value: nil, timestamp: now - 1_000))   // young tombstone
        records += (0..<60).map { Rec(key: "z\($0)", value: String(repeating: "p", count: 40), timestamp: now) }
        let (log, dir, _) = try compactTopic(records, perBatch: 4, config: ["delete.retention.ms": "10000"], now: now)
        defer { try? FileSystem.removeTree(log.root) }
        let got = try readAll(dir)
        #expect(!got.contains { $0.key == "k0" })                  // tombstone and its key gone
        #expect(got.filter { $0.key == "k1" }.map(\.value) == [nil]) // young tombstone kept, alone
        #expect(got.filter { $0.key == "k2" }.map(\.value) == ["v97"])
    }

    @Test func minCompactionLagKeepsYoungSegments() throws {
        let now: Int64 = 1_700_000_100_000
        // Old half, then a young half: only segments before the first young record are cleaned.
        var records = (0..<100).map { Rec(key: "k\($0 % 5)", value: "old\($0)", timestamp: now - 100_000) }
        records += (0..<100).map { Rec(key: "k\($0 % 5)", value: "new\($0)", timestamp: now - 10) }
        let (log, dir, _) = try compactTopic(records, perBatch: 5, config: ["min.compaction.lag.ms": "60000"], now: now)
        defer { try? FileSystem.removeTree(log.root) }
        let got = try readAll(dir)
        // Every young record is still there.
        #expect(got.filter { $0.value!.hasPrefix("new") }.count == 100)
        // Old records were compacted among themselves (at most one per key per batch boundary left).
        #expect(got.filter { $0.value!.hasPrefix("old") }.count < 100)
    }

    @Test func mergeGroupsFitSegmentBytes() throws {
        let records = (0..<600).map { Rec(key: "k\($0 % 20)", value: "value-\($0)") }
        let (log, dir, report) = try compactTopic(records, perBatch: 4, config: ["segment.bytes": "2048"])
        defer { try? FileSystem.removeTree(log.root) }
        let bases = try LogSegments.baseOffsets(in: dir)
        // Many small segments were merged into few, each within segment.bytes.
        #expect(report.segmentsCompacted > report.segmentsWritten)
        for b in bases.dropLast() {
            var st = stat()
            stat(Segment(dir, b).logPath, &st)
            #expect(Int64(st.st_size) <= 2048)
        }
        #expect(try readAll(dir).count < 200)
        #expect(!FileSystem.exists(dir + "/" + SwapJournal.name))
    }

    @Test func dirtyRatioAndMaxLagDecideWhenToClean() throws {
        let now: Int64 = 1_700_000_100_000
        let records = (0..<400).map { Rec(key: "k\($0 % 10)", value: "v\($0)", timestamp: now - 5_000) }
        let config = ["min.cleanable.dirty.ratio": "0.9", "max.compaction.lag.ms": "60000"]
        let (log, dir, first) = try compactTopic(records, perBatch: 7, config: config, now: now, force: false)
        defer { try? FileSystem.removeTree(log.root) }
        #expect(first.segmentsCompacted > 0)  // no checkpoint yet: all dirty
        #expect(CleanerCheckpoint.read(dir) == (try LogSegments.baseOffsets(in: dir)).last!)
        // A little more data: far below the ratio, and younger than the max lag.
        let writer = try PartitionWriter(directory: dir, settings: .init(try log.readConfig("t")))
        try write(writer, (0..<60).map { Rec(key: "k\($0 % 10)", value: "w\($0)", timestamp: now - 5_000) }, perBatch: 7)
        func run(at time: Int64) throws -> Compactor.Report {
            let c = Compactor(log: log, options: Compactor.Options(now: time))
            try c.run(topics: ["t"])
            return c.report
        }
        #expect(try run(at: now).segmentsCompacted == 0)
        // The same data once its first record has waited past max.compaction.lag.ms.
        #expect(try run(at: now + 120_000).recordsRemoved > 0)
    }

    @Test func swapJournalRollsForwardAndBack() throws {
        let j = SwapJournal(newBase: 42, oldBases: [42, 50, 77])
        #expect(SwapJournal.decode(j.encode()) == j)
        var damaged = j.encode()
        damaged[10] ^= 1
        #expect(SwapJournal.decode(damaged) == nil)

        let root = makeTempDirectory()
        defer { try? FileSystem.removeTree(root) }
        func touch(_ path: String, _ text: String) throws { try FileSystem.writeAtomically(path, Array(text.utf8)) }
        // Roll back: .cleaned files without a journal are removed.
        try touch(SegmentBuilder.logPath(root, 42), "new")
        #expect(try SwapJournal.recover(in: root) == .rolledBack)
        #expect(try FileSystem.list(root).isEmpty)
        // Roll forward: the journal is the commit point.
        for b in [42, 50, 77] as [Int64] { try touch(Segment(root, b).logPath, "old\(b)"); try touch(Segment(root, b).indexPath, "") }
        try touch(SegmentBuilder.logPath(root, 42), "new")
        try touch(SegmentBuilder.indexPath(root, 42), "newindex")
        try touch(root + "/" + SwapJournal.name, String(decoding: j.encode(), as: UTF8.self))
        try FileSystem.writeAtomically(root + "/" + SwapJournal.name, j.encode())
        #expect(try SwapJournal.recover(in: root) == .rolledForward)
        #expect(try FileSystem.list(root).sorted() == ["00000000000000000042.index", "00000000000000000042.log"])
        #expect(try FileSystem.readAll(Segment(root, 42).logPath) == Array("new".utf8))
    }

    @Test func scannerReportsTornTailsAndDamage() throws {
        let root = makeTempDirectory()
        defer { try? FileSystem.removeTree(root) }
        let writer = try PartitionWriter(directory: root, settings: .init())
        try write(writer, (0..<50).map { Rec(key: "k\($0)", value: "v\($0)") }, perBatch: 10)
        let path = Segment(root, 0).logPath
        let good = try FileSystem.readAll(path)
        func steps(_ bytes: [UInt8], headersOnly: Bool) throws -> (batches: Int, last: SegmentScanner.Step) {
            try FileSystem.writeAtomically(path, bytes)
            let scanner = try SegmentScanner.open(path)!
            var n = 0
            while true {
                let step = headersOnly ? try scanner.nextHeader() : try scanner.next()
                guard case .batch = step else { return (n, step) }
                n += 1
            }
        }
        for headersOnly in [false, true] {
            var (n, last) = try steps(good, headersOnly: headersOnly)
            #expect(n == 5)
            guard case .end = last else { Issue.record("no clean end"); return }
            (n, last) = try steps(Array(good.dropLast(7)), headersOnly: headersOnly)
            #expect(n == 4)
            guard case .problem(_, .incomplete, true) = last else { Issue.record("not torn: \(last)"); return }
            var bad = good
            bad[16] = 7  // the first batch's magic
            (n, last) = try steps(bad, headersOnly: headersOnly)
            guard case .problem(0, .badMagic(7), false) = last else { Issue.record("not damage: \(last)"); return }
        }
        // A flipped record byte fails the CRC only when batches are read whole.
        var flipped = good
        flipped[100] ^= 1
        #expect(try steps(flipped, headersOnly: true).batches == 5)
        guard case .problem(0, .badCRC, false) = try steps(flipped, headersOnly: false).last else { Issue.record("CRC"); return }
    }

    @Test func keyDigestSeparatesShortAndLongKeys() {
        func d(_ s: String) -> KeyDigest { Array(s.utf8).withUnsafeBytes { KeyDigest($0) } }
        #expect(d("a") != d("b"))
        #expect(d("") != d("\0"))
        #expect(d("exactly-15-byte") != d("exactly-15-bytes"))
        #expect(d(String(repeating: "x", count: 40)) == d(String(repeating: "x", count: 40)))
        #expect(d(String(repeating: "x", count: 40)) != d(String(repeating: "x", count: 41)))
        let many = Set((0..<20_000).map { d("a-long-key-prefix-\($0)") })
        #expect(many.count == 20_000)
    }
}
