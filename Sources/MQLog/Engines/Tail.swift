import Glibc
import CLinux

/// Where `mq-tail` starts in each partition.
public enum StartPosition: Sendable, Equatable {
    /// The last N records (across all selected partitions, in timestamp order).
    case last(Int)
    case beginning
    case end
    case offset(Int64)
    /// The first record with a timestamp at or after this (ms since the epoch).
    case time(Int64)
    /// From each partition's Nth record on, as `tail -n +N` counts lines: 1
    /// is the first record kept (0 counts as 1). Counted in offsets from the
    /// partition's start, as `.last` counts back from its end.
    case nth(Int64)
    /// The last N records of each partition (kcat's `-o -N`), where `.last`
    /// takes the last N of all selected partitions together.
    case lastOfEach(Int)

    /// The offset this position means in one partition (for `.last`, that
    /// partition's own last N).
    public func offset(in reader: PartitionReader) throws -> Int64 {
        switch self {
        case .beginning: return try reader.logStartOffset()
        case .end: return try reader.logEndOffset()
        case .offset(let o): return max(o, try reader.logStartOffset())
        case .time(let t): return try reader.offset(forTime: t)
        case .last(let n), .lastOfEach(let n): return max(try reader.logStartOffset(), try reader.logEndOffset() - Int64(n))
        case .nth(let n):
            let start = try reader.logStartOffset()
            let (o, overflow) = start.addingReportingOverflow(max(n, 1) - 1)
            return overflow ? Int64.max : o
        }
    }

    /// Parses mq-tail's `-n`: `N` (the last N of all partitions together) or
    /// `+N` (from each partition's Nth record, 1 its first; `+0` as `+1`).
    /// - Throws: `MQError` (usage) for anything else.
    public static func parseLines(_ text: String) throws(MQError) -> StartPosition {
        if text.hasPrefix("+"), let n = Int64(text.dropFirst()), n >= 0, !text.dropFirst().hasPrefix("+") { return .nth(n) }
        if let n = Int(text), n >= 0, !text.hasPrefix("+") { return .last(n) }
        throw MQError(.usage, "invalid --lines '\(text)': expected N (the last N messages) or +N (from the Nth message of each partition)")
    }

    /// Parses kcat's `-o`: `beginning`, `end`, an offset `N`, `-N` (the last
    /// N of each partition) or `s@MS` (the first record at or after MS
    /// milliseconds since the epoch).
    /// - Throws: `MQError` (usage) for anything else, kcat's `stored` and
    ///   `e@MS` included, which mq-tail has no equivalent for.
    public static func parseKcatOffset(_ text: String) throws(MQError) -> StartPosition {
        let digits = { (s: Substring) in !s.isEmpty && s.allSatisfy { $0.isASCII && $0.isNumber } }
        switch text {
        case "beginning": return .beginning
        case "end": return .end
        default:
            if digits(text[...]), let n = Int64(text) { return .offset(n) }
            if text.hasPrefix("-"), digits(text.dropFirst()), let n = Int(text.dropFirst()) { return .lastOfEach(n) }
            if text.hasPrefix("s@"), digits(text.dropFirst(2)), let ms = Int64(text.dropFirst(2)) { return .time(ms) }
        }
        throw MQError(.usage, "invalid -o '\(text)': expected beginning, end, an offset N, -N (the last N of each partition) or s@MS (a time in ms since the epoch)")
    }

    /// Parses `--from`: beginning, end, an offset, or a time (ISO-8601 / relative).
    public static func parse(_ text: String, nowMs: Int64) throws -> StartPosition {
        switch text {
        case "beginning", "earliest", "start": return .beginning
        case "end", "latest": return .end
        default:
            if let n = Int64(text), n >= 0 { return .offset(n) }
            return .time(try TimeSpec.parseTime(text, nowMs: nowMs))
        }
    }
}

/// How records are printed.
public enum OutputMode {
    /// The value alone, then the delimiter.
    case values(delimiter: [UInt8])
    /// kcat-style `--format`.
    case format(KcatFormat)
    /// One JSON envelope per line.
    case json
}

public struct TailOptions {
    public var topics: [String]
    public var start: StartPosition = .last(10)
    public var count: Int? = nil
    public var follow = false
    public var partition: Int32? = nil
    public var output: OutputMode = .values(delimiter: [10])
    public var outputFD: Int32 = 1
    /// Which records of transactions are printed (`--read-uncommitted`).
    public var isolation: ReadIsolation = .readCommitted

    public init(topics: [String]) { self.topics = topics }
}

/// Prints records of one or more topics, like tail(1): reads without locks,
/// merges partitions by timestamp, and with `follow` waits for more.
/// Not thread-safe.
public final class Tailer {
    public let options: TailOptions
    public let log: LogDirectory
    private var topics: [String: Topic] = [:]
    /// Changed through `setCursor` and `appendCursor` only, which keep `cursorRefs` in step.
    private var cursors: [PartitionCursor] = []
    /// `cursors`, unretained, for the per-record path: over thousands of
    /// partitions each record comes from a cursor whose lines have left the
    /// cache, and a reference count changed there is a locked instruction
    /// that waits for them (9 % of `mq-tail`'s samples over 10,000 partitions).
    private var cursorRefs: [Unmanaged<PartitionCursor>] = []
    private var cursorTopic: [String] = []
    private var patterns: [TopicPattern] = []
    private let printer: RecordPrinter
    private var emitted = 0
    private var watcher: ChangeWatcher?

    public init(options: TailOptions, log: LogDirectory) {
        self.options = options
        self.log = log
        self.printer = RecordPrinter(mode: options.output, fd: options.outputFD)
    }

    /// Prints until the end of the log (or forever with `follow`), or `count` records.
    /// - Throws: `MQError`: no such topic (noInput), corrupt data (dataError).
    public func run() throws {
        // mq-tail writes no partitions: its readers may hold every descriptor the pools have.
        ReaderPool.takeWholeBudget()
        if options.follow { watcher = ChangeWatcher() }
        let selection = try TopicSelection(options.topics)
        let exact = selection.exact
        patterns = selection.patterns
        if options.follow && !patterns.isEmpty || options.follow && exact.contains(where: { !log.topicExists($0) }) {
            try FileSystem.makeDirectoriesDurably(log.topicsPath)
            watcher?.watch(log.topicsPath)
        }
        var selected: [String] = []
        for name in exact {
            if log.topicExists(name) { selected.append(name) } else if !options.follow {
                throw log.missingTopicError(name)
            }
        }
        let all = patterns.isEmpty ? [] : try log.listTopics()
        for pattern in patterns {
            let matches = all.filter { pattern.matches($0) }
            if matches.isEmpty && !options.follow {
                throw MQError(.noInput, "no topic in \(log.root) matches '\(pattern.source)'")
            }
            selected.append(contentsOf: matches.filter { !selected.contains($0) })
        }
        pendingExact = Set(exact.filter { !selected.contains($0) })
        if options.count == 0 { return }
        for name in selected { try addTopic(name, start: options.start) }
        if case .last(let n) = options.start { try positionAtLast(n) }

        if try drain(cursors.indices) { return try flushOutput() }
        while options.follow, let watcher {
            try flushOutput()
            // Only the partitions that changed are read again: the others
            // are parked at their end. The events are taken before the reads,
            // so anything written after a read has its event still queued.
            let woken = watcher.waitForEvents(timeoutMs: 1000)
            let changed = watcher.drain()
            let known = cursors.count
            if changed.contains(log.topicsPath) || !watcher.usesInotify { try discoverTopics() }
            var visit = changed.compactMap { cursorIndex[$0] }.filter { $0 < known }
            visit += known..<cursors.count
            // A transaction whose producer died ends with no write to wake
            // anyone: a cursor it holds back looks again at every timeout.
            if !woken || changed.isSubset(of: watcher.unwatched) {
                visit += cursors.indices.filter { cursors[$0].isHeldByTransaction }
            }
            if try drain(Set(visit).sorted()) { break }
        }
        try flushOutput()
    }

    /// The cursor of each partition directory watched (when following).
    private var cursorIndex: [String: Int] = [:]

    private var pendingExact: Set<String> = []

    // MARK: Topics and cursors

    private func addTopic(_ name: String, start: StartPosition) throws {
        guard topics[name] == nil else { return }
        let topic = try log.openTopic(name)
        topics[name] = topic
        let partitions: [Int32]
        if let p = options.partition {
            guard p < topic.partitions else {
                throw MQError.usage("partition \(p) does not exist: topic '\(name)' has \(topic.partitions) partition\(topic.partitions == 1 ? "" : "s")")
            }
            partitions = [p]
        } else {
            partitions = Array(0..<topic.partitions)
        }
        ReaderPool.expectReaders(cursors.count + partitions.count)
        for p in partitions {
            let dir = topic.partitionPath(p)
            let cursor = try PartitionCursor.positioned(partition: p, directory: dir, isolation: options.isolation,
                                                        stopsAtEnd: !options.follow, readsWholeBatches: true) { try start.offset(in: $0) }
            // Only a follower looks a changed directory up.
            if let watcher {
                cursorIndex[dir] = cursors.count
                watcher.watch(dir) { cursor.reader.activeSegmentBase() }
            }
            appendCursor(cursor)
            cursorTopic.append(name)
        }
    }

    private func appendCursor(_ cursor: PartitionCursor) {
        cursors.append(cursor)
        cursorRefs.append(Unmanaged.passUnretained(cursor))
    }

    private func setCursor(_ i: Int, _ cursor: PartitionCursor) {
        cursors[i] = cursor
        cursorRefs[i] = Unmanaged.passUnretained(cursor)
    }

    /// A cursor of the partition `old` reads, at `start`, reading as the
    /// first cursors do: whole batches at once (they are merged), and to
    /// the end it first finds unless following.
    private func cursor(replacing old: PartitionCursor, at start: Int64) throws -> PartitionCursor {
        let reader = PartitionReader(directory: old.reader.directory)
        reader.readsWholeBatches = true
        let cursor = try PartitionCursor(partition: old.partition, reader: reader, startOffset: start, isolation: options.isolation)
        reader.stopsAtEnd = !options.follow
        reader.mapsSegments = !options.follow
        return cursor
    }

    /// Topics created after the start that match a pattern, or a name that did not exist yet.
    private func discoverTopics() throws {
        guard !patterns.isEmpty || !pendingExact.isEmpty else { return }
        for name in try log.listTopics() where topics[name] == nil {
            if pendingExact.contains(name) || patterns.contains(where: { $0.matches(name) }) {
                pendingExact.remove(name)
                try addTopic(name, start: .beginning)
            }
        }
    }

    /// For `-n N`: find which of the last N per partition are the last N
    /// overall, in timestamp order, and start each partition there.
    private func positionAtLast(_ n: Int) throws {
        guard cursors.count > 1 else { return }
        if try !positionAtLastFromTheEnd(n) { try positionAtLastByMerging(n) }
    }

    /// The reference: a forward `TimestampMerge` of every partition's own
    /// last N, keeping the last N taken. P x N records for P partitions.
    private func positionAtLastByMerging(_ n: Int) throws {
        // The last n taken, in a circular buffer: `ring[next]` is the oldest once full.
        var ring: [(cursor: Int, offset: Int64)] = []
        var next = 0
        var probes: [PartitionCursor] = []
        for c in cursors { probes.append(try PartitionCursor(partition: c.partition, directory: c.reader.directory, startOffset: c.nextOffset, isolation: options.isolation)) }
        var merge = try TimestampMerge(probes)
        while let i = merge.next() {
            let r = try probes[i].peek()!
            if ring.count < n {
                ring.append((i, r.offset))
            } else if n > 0 {
                ring[next] = (i, r.offset)
                next = (next + 1) % n
            }
            probes[i].advance()
            try merge.readd(i)
        }
        var starts = [Int64?](repeating: nil, count: cursors.count)
        for k in ring.indices {
            let entry = ring[(next + k) % ring.count]
            if starts[entry.cursor] == nil { starts[entry.cursor] = entry.offset }
        }
        for i in cursors.indices {
            let start = starts[i] ?? probes[i].nextOffset
            setCursor(i, try cursor(replacing: cursors[i], at: start))
        }
    }

    /// One partition in `positionAtLastFromTheEnd`: its batches from its own
    /// last-N start, and the records decoded so far, a suffix of them.
    private struct LastRecords {
        /// The first offset of each batch at or after the start, and the
        /// batch header's largest timestamp (a bound on its records').
        var batches: [(start: Int64, bound: Int64)] = []
        /// `bounds[j]`: the largest bound of `batches[..<j]` (nil: none).
        var bounds: [Int64?] = []
        /// `batches[decodedFrom...]` are decoded into `records`.
        var decodedFrom = 0
        var records: [(offset: Int64, timestamp: Int64)] = []
        /// `records[taken...]` are among the last N.
        var taken = 0
        /// Leaders of the runs in `records[..<taken]` known to be runs of
        /// the whole suffix (see below), ascending.
        var leaders: [Int] = []
    }

    /// `positionAtLastByMerging`'s result, reading each partition backward
    /// only as far as its records can be among the last N: about N records
    /// plus each partition's batch headers from its own last N.
    ///
    /// Why it is the same. Split a partition's records (from its start) into
    /// runs, each beginning at a *leader*, a record whose timestamp is larger
    /// than every earlier one's. A forward merge takes the heads by key
    /// (timestamp, cursor index); once it takes a leader, the rest of its run
    /// has keys at most the leader's, and every other head is a leader with a
    /// larger key, so the whole run follows at once. The merge's output is
    /// therefore the runs of all partitions in ascending key of their leader,
    /// and its last N are the runs of largest leader key, the lowest one cut.
    ///
    /// Leaders depend on every earlier record, but a bound on them is enough: when only
    /// `batches[j...]` are decoded and B is the largest header timestamp of
    /// the batches before, the decoded records that exceed both B and the
    /// records before them are leaders of the whole, with the same runs; any
    /// other run of the partition has a leader key at most (B, index). So the
    /// runs are taken from a max-heap holding, per partition, its next known
    /// run or else that bound, which when taken decodes more (doubling).
    ///
    /// Returns false, to use the merge instead, when a transaction is open
    /// (where a cursor stops depends on its start) or a decoded record's
    /// timestamp exceeds its batch header's largest. The headers of batches
    /// never decoded are trusted to bound their records, as Kafka's are.
    private func positionAtLastFromTheEnd(_ n: Int) throws -> Bool {
        if options.isolation == .readCommitted {
            // As each cursor saw them when it was made, else as they are now.
            for c in cursors where try c.openTransactionsAtStart ?? !OpenTransactions.read(partition: c.reader.directory).entries.isEmpty {
                return false
            }
        }
        var parts: [LastRecords] = []
        parts.reserveCapacity(cursors.count)
        for c in cursors {
            // Its reader, positioned at the start, lists the batches and stays at the end.
            var p = LastRecords()
            var bound: Int64? = nil
            while let (header, _) = try c.reader.nextBatch() {
                p.bounds.append(bound)
                p.batches.append((max(header.baseOffset, c.nextOffset), header.maxTimestamp))
                bound = max(bound ?? header.maxTimestamp, header.maxTimestamp)
            }
            p.bounds.append(bound)
            p.decodedFrom = p.batches.count
            parts.append(p)
        }

        /// Decodes more of partition i: twice as many batches. False when a
        /// record breaks its batch's bound.
        func decodeMore(_ i: Int) throws -> Bool {
            let from = parts[i].decodedFrom, count = parts[i].batches.count
            let newFrom = max(0, from - max(1, count - from))
            let stop = from < count ? parts[i].batches[from].start : .max
            let cursor = try PartitionCursor(partition: cursors[i].partition, directory: cursors[i].reader.directory,
                                             startOffset: parts[i].batches[newFrom].start, isolation: options.isolation)
            var fresh: [(offset: Int64, timestamp: Int64)] = []
            var j = newFrom
            while let r = try cursor.peek(), r.offset < stop {
                while j + 1 < from && r.offset >= parts[i].batches[j + 1].start { j += 1 }
                if r.timestamp > parts[i].batches[j].bound { return false }
                fresh.append((r.offset, r.timestamp))
                cursor.advance()
            }
            parts[i].records = fresh + parts[i].records
            parts[i].taken += fresh.count
            parts[i].decodedFrom = newFrom
            var highest = parts[i].bounds[newFrom]
            parts[i].leaders = []
            for k in 0..<parts[i].taken where highest.map({ parts[i].records[k].timestamp > $0 }) ?? true {
                parts[i].leaders.append(k)
                highest = parts[i].records[k].timestamp
            }
            return true
        }

        typealias Item = (timestamp: Int64, index: Int, isBound: Bool)
        func nextItem(_ i: Int) -> Item? {
            if let l = parts[i].leaders.last { return (parts[i].records[l].timestamp, i, false) }
            if parts[i].decodedFrom > 0, let b = parts[i].bounds[parts[i].decodedFrom] { return (b, i, true) }
            return nil
        }
        // Largest key first; keys never tie (a run's leader exceeds its partition's bound).
        var heap = MinHeap<Item> { a, b in a.timestamp > b.timestamp || (a.timestamp == b.timestamp && a.index > b.index) }
        for i in parts.indices { if let item = nextItem(i) { heap.push(item) } }
        var total = 0
        var cut: (cursor: Int, record: Int)? = nil
        while total < n, let item = heap.pop() {
            let i = item.index
            if item.isBound {
                guard try decodeMore(i) else { return false }
            } else {
                let leader = parts[i].leaders.removeLast()
                total += parts[i].taken - leader
                parts[i].taken = leader
                if total >= n { cut = (i, leader + total - n) }
            }
            if let next = nextItem(i) { heap.push(next) }
        }
        for i in cursors.indices {
            let p = parts[i]
            let start: Int64
            if cut?.cursor == i {
                start = p.records[cut!.record].offset
            } else if p.taken < p.records.count {
                start = p.records[p.taken].offset
            } else {
                // Nothing of it among the last N: the merge's cursor stopped
                // after its last record, with nothing to deliver up to the
                // end, where this cursor's reader is now. It stays.
                continue
            }
            setCursor(i, try cursor(replacing: cursors[i], at: start))
        }
        return true
    }

    // MARK: Output

    /// Prints every record available now in the cursors `visit` (ascending
    /// indexes). Returns true when `count` is reached.
    private func drain(_ visit: some Collection<Int>) throws -> Bool {
        if cursors.count == 1 {
            guard !visit.isEmpty else { return false }
            let c = cursors[0]
            while let r = try c.peek() {
                try emit(r, topic: cursorTopic[0], partition: c.partition)
                c.advance()
                if let limit = options.count, emitted >= limit { return true }
                // Following: deliver what we have before going back to the disk.
                if options.follow && !c.hasBufferedRecord { try flushOutput() }
            }
            return false
        }
        var merge = try TimestampMerge(cursors, visiting: visit)
        while let i = merge.next() {
            let topic = cursorTopic[i]
            // A run: the cursor's records that still come before every other
            // cursor's next one go out without going back to the heap.
            let bound = merge.nextOtherThanTop()
            // Over many partitions, that one is most often the next to be
            // read: its cursor and record come into the cache meanwhile.
            if let b = bound { prefetch(cursor: b.index, record: b.bytes) }
            // `cursors` keeps it.
            let (reached, next) = try cursorRefs[i]._withUnsafeGuaranteedRef { c -> (Bool, RecordView?) in
                var r = try c.peek()!
                while true {
                    try emit(r, topic: topic, partition: c.partition)
                    c.advance()
                    if let limit = options.count, emitted >= limit { return (true, nil) }
                    let next = try c.peek()
                    guard let n = next, bound.map({ TimestampMerge.precedes(n.timestamp, i, $0) }) ?? true else { return (false, next) }
                    r = n
                }
            }
            if reached { return true }
            // Back in the heap by the record just peeked (none: left out until the next merge).
            merge.putBackTop(next: next)
        }
        return false
    }

    /// Brings cursor `i` and the bytes of its next record into the cache
    /// (see `mq_prefetch`): the object's first lines, which `peek` and
    /// `advance` use, and the record's first two lines.
    @inline(__always)
    private func prefetch(cursor i: Int, record: UnsafeRawPointer?) {
        mq_prefetch(cursorRefs[i].toOpaque(), 384)
        if let record { mq_prefetch(record, 128) }
    }

    @inline(__always)
    private func emit(_ r: RecordView, topic: String, partition: Int32) throws {
        try printer.print(r, topic: topic, partition: partition)
        emitted += 1
    }

    private func flushOutput() throws { try printer.flush() }
}

/// Merges cursors by the timestamp of their next record (ties: the first
/// cursor), with a heap: O(log P) per record for P cursors. A cursor with
/// nothing to read is asked once and then left out until the next merge
/// (the next drain), so that reading N records costs O(N log P) and one
/// look at the disk per cursor, not one per cursor per record.
///
/// The cursor handed out by `next()` stays at the top of the heap until
/// `readd` gives its next timestamp: one sift down per record instead of a
/// pop and a push.
struct TimestampMerge {
    private struct Entry {
        var timestamp: Int64
        var index: Int
        /// Where the cursor's next record's bytes are (a hint for `prefetch`, never read).
        var bytes: UnsafeRawPointer?
        @inline(__always)
        static func < (a: Entry, b: Entry) -> Bool {
            a.timestamp < b.timestamp || (a.timestamp == b.timestamp && a.index < b.index)
        }
    }

    private let cursors: [PartitionCursor]
    private var heap: [Entry] = []
    /// The top was handed out by `next()` and not yet put back.
    private var taken = false

    init(_ cursors: [PartitionCursor]) throws {
        try self.init(cursors, visiting: cursors.indices)
    }

    /// Merges only the cursors `visit` (indexes into `cursors`, ascending):
    /// the others are known to have nothing to read.
    init(_ cursors: [PartitionCursor], visiting visit: some Sequence<Int>) throws {
        self.cursors = cursors
        for i in visit { try readd(i) }
    }

    /// Whether a record of `timestamp` from cursor `index` comes before the
    /// next record of `other` (a timestamp and a cursor): ties go to the first cursor.
    @inline(__always)
    static func precedes(_ timestamp: Int64, _ index: Int, _ other: (timestamp: Int64, index: Int, bytes: UnsafeRawPointer?)) -> Bool {
        timestamp < other.timestamp || (timestamp == other.timestamp && index < other.index)
    }

    /// After `next()`: the next record's timestamp and cursor among the
    /// cursors other than the one handed out (nil when there is no other).
    /// Records of the handed-out cursor that precede it may be taken without
    /// going back to the heap.
    /// With where that record's bytes are, for `prefetch`.
    func nextOtherThanTop() -> (timestamp: Int64, index: Int, bytes: UnsafeRawPointer?)? {
        guard heap.count > 1 else { return nil }
        let best = heap.count > 2 && heap[2] < heap[1] ? heap[2] : heap[1]
        return (best.timestamp, best.index, best.bytes)
    }

    /// Where a record's bytes are, as a hint for `prefetch`.
    @inline(__always)
    static func bytes(of record: RecordView) -> UnsafeRawPointer? {
        record.value?.baseAddress ?? record.key?.baseAddress
    }

    /// The index of the cursor to take the next record from, or nil when none has one.
    mutating func next() -> Int? {
        if taken { removeTop() }
        guard let top = heap.first else { return nil }
        taken = true
        return top.index
    }

    /// Puts the cursor handed out by `next()` back, by its next record as
    /// the caller just peeked it; nil leaves it out.
    mutating func putBackTop(next record: RecordView?) {
        taken = false
        if let record {
            heap[0].timestamp = record.timestamp
            heap[0].bytes = Self.bytes(of: record)
            siftDown(0)
        } else {
            removeTop()
        }
    }

    /// Puts cursor `i` back after its record was taken, if it has another.
    mutating func readd(_ i: Int) throws {
        let record = try cursors[i].peek()
        if taken, heap[0].index == i {
            putBackTop(next: record)
            return
        }
        guard let record else { return }
        heap.append(Entry(timestamp: record.timestamp, index: i, bytes: Self.bytes(of: record)))
        var c = heap.count - 1
        while c > 0 {
            let parent = (c - 1) / 2
            guard heap[c] < heap[parent] else { break }
            heap.swapAt(c, parent)
            c = parent
        }
    }

    private mutating func removeTop() {
        taken = false
        let last = heap.removeLast()
        guard !heap.isEmpty else { return }
        heap[0] = last
        siftDown(0)
    }

    /// Floyd's sift: the hole goes down to a leaf along the smaller
    /// children, then the item goes up from there. A cursor put back has
    /// its next record later than most others' (each partition holds a
    /// small share of the records of any moment), so it belongs near the
    /// leaves: one comparison per level on the way down instead of two.
    private mutating func siftDown(_ start: Int) {
        heap.withUnsafeMutableBufferPointer { h in
            var i = start
            let item = h[i]
            while true {
                let l = 2 * i + 1
                guard l < h.count else { break }
                let r = l + 1
                let child = r < h.count && h[r] < h[l] ? r : l
                h[i] = h[child]
                i = child
            }
            while i > start {
                let parent = (i - 1) / 2
                guard item < h[parent] else { break }
                h[i] = h[parent]
                i = parent
            }
            h[i] = item
        }
    }
}
