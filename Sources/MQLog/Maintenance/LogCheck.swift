import Glibc

/// `mq-compact --check` and `--repair`: validates every batch of every
/// segment (framing, CRC, records, offsets increasing and inside the
/// segment's range), the offset and time indexes, and orphan index files.
///
/// With `repair`: a torn tail of the active segment is cut by the writer's
/// own full recovery (under the partition's `head` lock); a torn tail of
/// another segment is truncated and fsynced; the indexes of every other
/// segment are rebuilt into temporary files and renamed in; orphan index
/// files are removed. Damage that is not a tail is only reported: nothing
/// is deleted.
public final class LogCheck {
    public let log: LogDirectory
    public let repair: Bool
    /// One line per problem left: `topic/partition: file at byte N: problem`.
    public private(set) var problems: [String] = []
    /// One line per repair made.
    public private(set) var repairs: [String] = []
    public private(set) var partitions = 0
    public private(set) var segments = 0
    public private(set) var batches = 0
    public var progress: ((String, Int32, Int, Int) -> Void)?
    private let decoder = BatchDecoder()

    public init(log: LogDirectory, repair: Bool) {
        self.log = log
        self.repair = repair
    }

    public func run(topics: [String]) throws {
        try forEachPartition(log, topics, progress: progress) { topic, p in
            try checkPartition(topic, p)
            partitions += 1
        } topicDone: {}
    }

    /// What a scan of one segment found.
    struct Scan {
        var starts: [Int64: BatchHeader] = [:]
        var positions: [Int64] = []
        var lastOffset: Int64?
        var end: Int64 = 0
        /// Where the valid batches stop, and why, when they stop before the end of the file.
        var stop: (position: Int64, problem: String, torn: Bool)?
    }

    func checkPartition(_ topic: Topic, _ p: Int32) throws {
        let dir = topic.partitionPath(p)
        let label = "\(topic.name)/\(p)"
        guard FileSystem.isDirectory(dir) else {
            problems.append("\(label): \(dir): partition directory missing")
            return
        }
        _ = try SwapJournal.recover(in: dir)
        let names = try FileSystem.list(dir)
        let bases = try LogSegments.baseOffsets(in: dir)
        let logNames = Set(bases.map { Segment.name($0) })
        for name in names.sorted() {
            for suffix in Segment.indexSuffixes where name.hasSuffix(suffix) {
                let stem = String(name.dropLast(suffix.count))
                guard stem.count == 20, stem.allSatisfy(\.isNumber), !logNames.contains(stem) else { continue }
                if repair {
                    try FileSystem.remove(dir + "/" + name)
                    repairs.append("\(label): \(dir)/\(name): removed (no \(stem).log)")
                } else {
                    problems.append("\(label): \(dir)/\(name): index file without its segment \(stem).log")
                }
            }
        }
        let active = Compactor.activeBase(dir, bases)
        var previousLast: Int64?
        var activeNeedsRecovery = false
        for (i, base) in bases.enumerated() {
            segments += 1
            let nextBase = i + 1 < bases.count ? bases[i + 1] : nil
            let path = Segment(dir, base).logPath
            var scan = try scanSegment(path, base: base, nextBase: nextBase, after: previousLast, label: label)
            // A writer may complete a batch (and record its end) between the
            // scan's look at the file size and the look at the state: read again.
            var retries = 0
            while base >= active, retries < 3, let stop = scan.stop, let end = LogCheck.committedEnd(dir, base), stop.position < end {
                retries += 1
                batches -= scan.positions.count
                scan = try scanSegment(path, base: base, nextBase: nextBase, after: previousLast, label: label)
            }
            if let stop = scan.stop {
                if base >= active {
                    // The end of the active segment may be an append in
                    // progress or a dead writer's torn tail that the next
                    // writer cuts: only bytes before the recorded end are damage.
                    let committedEnd = LogCheck.committedEnd(dir, base)
                    if committedEnd.map({ stop.position >= $0 }) ?? stop.torn {
                        if repair {
                            activeNeedsRecovery = true
                        } else if committedEnd == nil {
                            problems.append("\(label): \(path) at byte \(stop.position): torn tail: \(stop.problem) (the next writer cuts it; --repair cuts it now)")
                        }
                    } else {
                        problems.append("\(label): \(path) at byte \(stop.position): \(stop.problem)")
                    }
                } else if stop.torn && repair {
                    let handle = try OpenFile.open(path, O_RDWR)
                    defer { handle.close() }
                    let size = try handle.size()
                    try handle.truncate(to: stop.position)
                    try handle.sync()
                    repairs.append("\(label): \(path): cut \(size - stop.position) bytes of a torn tail at byte \(stop.position) (\(stop.problem))")
                    scan.stop = nil
                } else {
                    problems.append("\(label): \(path) at byte \(stop.position): \(stop.problem)\(stop.torn ? " (a torn tail: --repair cuts it)" : "")")
                }
            }
            if base >= active && repair && scan.stop == nil
                && !(FileSystem.exists(Segment(dir, base).indexPath) && FileSystem.exists(Segment(dir, base).timeIndexPath)) {
                activeNeedsRecovery = true
            }
            if base < active && repair && scan.stop == nil {
                try rebuildIndexes(dir, base, config: topic.config, scan: scan, label: label)
            } else if !(base >= active && activeNeedsRecovery) {
                checkIndexes(dir, base, scan: scan, label: label, active: base >= active)
            }
            if let last = scan.lastOffset { previousLast = last }
        }
        if activeNeedsRecovery {
            try recoverActive(dir, config: topic.config, label: label)
        }
    }

    /// The head state's `endPosition` when it names `base` as active.
    static func committedEnd(_ dir: String, _ base: Int64) -> Int64? {
        guard let bytes = try? FileSystem.readAll(LogSegments.headPath(dir)),
              let state = bytes.withUnsafeBytes({ HeadState.decode($0) }), state.activeBase == base else { return nil }
        return state.endPosition
    }

    func scanSegment(_ path: String, base: Int64, nextBase: Int64?, after previousLast: Int64?, label: String) throws -> Scan {
        var scan = Scan()
        guard let scanner = try SegmentScanner.open(path) else { return scan }
        var last = previousLast
        while true {
            switch try scanner.next() {
            case .batch(let position, let h, let bytes):
                batches += 1
                var why: String?
                if h.baseOffset < base {
                    why = "batch base offset \(h.baseOffset) is below the segment's base offset \(base)"
                } else if let last, h.baseOffset <= last {
                    why = "batch base offset \(h.baseOffset) is not above the previous batch's last offset \(last)"
                } else if let nextBase, h.lastOffset >= nextBase {
                    why = "batch last offset \(h.lastOffset) reaches the next segment's base offset \(nextBase)"
                } else if h.lastOffset - base > Int64(Int32.max) {
                    why = "batch last offset \(h.lastOffset) is too far from the segment's base offset for a 32-bit relative offset"
                } else if !h.isControl || h.recordsCount > 0 {
                    why = checkRecords(h, bytes)
                }
                if let why {
                    scan.stop = (position, why, false)
                    return scan
                }
                scan.starts[position] = h
                scan.positions.append(position)
                scan.lastOffset = h.lastOffset
                scan.end = position + Int64(h.totalSize)
                last = h.lastOffset
            case .end:
                return scan
            case .problem(let position, let problem, let torn):
                scan.stop = (position, "\(problem)", torn)
                return scan
            }
        }
    }

    /// Decodes every record: offsets increasing inside the batch, the count as the header says.
    func checkRecords(_ h: BatchHeader, _ bytes: UnsafeRawBufferPointer) -> String? {
        do {
            var records = RecordIterator(records: try decoder.records(of: bytes, header: h), header: h)
            var previous: Int64 = h.baseOffset &- 1
            var n: Int32 = 0
            while let r = try records.next() {
                if r.offset <= previous || r.offset > h.lastOffset {
                    return "record \(n) of the batch at offset \(h.baseOffset) has offset \(r.offset), outside \(previous + 1)...\(h.lastOffset)"
                }
                previous = r.offset
                n += 1
            }
            return nil
        } catch {
            return "batch at offset \(h.baseOffset): \(error)"
        }
    }

    func checkIndexes(_ dir: String, _ base: Int64, scan: Scan, label: String, active: Bool) {
        let indexPath = Segment(dir, base).indexPath
        // A writer rolling to a new segment creates its indexes just after
        // its log, and recreates missing ones of the active segment itself.
        for path in [indexPath, Segment(dir, base).timeIndexPath] where !active && !FileSystem.exists(path) {
            problems.append("\(label): \(path): missing (--repair rebuilds it)")
        }
        if let bytes = try? FileSystem.readAll(indexPath) {
            let found = OffsetIndex.check(bytes, baseOffset: base, active: active, scannedEnd: scan.end) { scan.starts[$0] }
            problems += found.map { "\(label): \(indexPath) \($0)" }
        }
        let timePath = Segment(dir, base).timeIndexPath
        if let bytes = try? FileSystem.readAll(timePath) {
            let found = TimeIndex.check(bytes, baseOffset: base, active: active, lastOffset: scan.lastOffset)
            problems += found.map { "\(label): \(timePath) \($0)" }
        }
    }

    /// Rebuilds a non-active segment's indexes from its batches, into
    /// temporary files renamed over the old ones.
    func rebuildIndexes(_ dir: String, _ base: Int64, config: TopicConfig, scan: Scan, label: String) throws {
        let indexTmp = SegmentBuilder.indexPath(dir, base), timeTmp = SegmentBuilder.timeIndexPath(dir, base)
        let index = try OpenFile.open(indexTmp, O_RDWR | O_CREAT | O_TRUNC, creating: true)
        defer { index.close() }
        let timeIndex = try OpenFile.open(timeTmp, O_RDWR | O_CREAT | O_TRUNC, creating: true)
        defer { timeIndex.close() }
        var state = HeadState.emptySegment(base: base, createdMs: 0)
        let offsets = OffsetIndex(file: index, baseOffset: base), times = TimeIndex(file: timeIndex, baseOffset: base)
        for position in scan.positions {
            let h = scan.starts[position]!
            SparseIndexer.add(&state, index: offsets, timeIndex: times, interval: config.indexIntervalBytes, position: position,
                              size: Int64(h.totalSize), lastOffset: h.lastOffset, maxTimestamp: h.maxTimestamp)
        }
        SparseIndexer.appendTimeEntry(&state, timeIndex: times)
        try index.sync()
        try timeIndex.sync()
        let before = (try? FileSystem.readAll(Segment(dir, base).indexPath)) ?? []
        let beforeTime = (try? FileSystem.readAll(Segment(dir, base).timeIndexPath)) ?? []
        let after = try FileSystem.readAll(indexTmp), afterTime = try FileSystem.readAll(timeTmp)
        if before == after && beforeTime == afterTime && FileSystem.exists(Segment(dir, base).indexPath)
            && FileSystem.exists(Segment(dir, base).timeIndexPath) {
            try FileSystem.remove(indexTmp)
            try FileSystem.remove(timeTmp)
            return
        }
        try FileSystem.rename(indexTmp, to: Segment(dir, base).indexPath)
        try FileSystem.rename(timeTmp, to: Segment(dir, base).timeIndexPath)
        try FileSystem.syncDirectory(dir)
        repairs.append("\(label): \(Segment(dir, base).logPath): indexes rebuilt")
    }

    /// Runs the writer's full recovery on the active segment, under the
    /// partition's writer lock: cuts a torn tail, rebuilds its indexes and the state.
    func recoverActive(_ dir: String, config: TopicConfig, label: String) throws {
        let lock = try OpenFile.open(LogSegments.headPath(dir), O_RDWR | O_CREAT, creating: true)
        defer { lock.close() }
        try lock.lock(exclusive: true)
        defer { lock.unlock() }
        let writer = try PartitionWriter(directory: dir, settings: PartitionWriter.Settings(config))
        try writer.recoverFully()
        let cut = writer.recoveredBytesDropped
        repairs.append("\(label): \(Segment(dir, writer.state.activeBase).logPath): recovered the active segment\(cut > 0 ? ", cut \(cut) bytes of a torn tail" : ""), indexes rebuilt")
    }
}
