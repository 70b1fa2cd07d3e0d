import Glibc

// Transactions (`mq-produce --atomic`), on disk (docs/FORMAT.md §18):
//
//   ROOT/transactions/PID.lock      flock(LOCK_EX) by the producer for its whole life
//   ROOT/transactions/PID           the transaction record: partitions touched, start, timeout
//   ROOT/transactions/PID.decision  "commit" or "abort", created once with link(2): the decision
//   P/transactions                  the partition's open transactions (producer id, epoch, first offset)
//   P/%020d.txnindex                Kafka's aborted-transaction index of a segment (`Segment.txnIndexPath`)
//
// PID is the producer id in 16 lowercase hexadecimal digits.

/// File names of the transaction state under a log root and in partitions.
public enum TransactionFiles {
    public static let directoryName = "transactions"
    public static let partitionListName = "transactions"

    public static func directory(_ root: String) -> String { root + "/" + directoryName }
    public static func hex(_ producerId: Int64) -> String {
        let digits = String(UInt64(bitPattern: producerId), radix: 16)
        return String(repeating: "0", count: max(0, 16 - digits.count)) + digits
    }
    public static func record(_ root: String, _ producerId: Int64) -> String { directory(root) + "/" + hex(producerId) }
    public static func lock(_ root: String, _ producerId: Int64) -> String { record(root, producerId) + ".lock" }
    public static func decision(_ root: String, _ producerId: Int64) -> String { record(root, producerId) + ".decision" }
    public static func partitionList(_ partitionDir: String) -> String { partitionDir + "/" + partitionListName }

    /// The log root of a partition directory `ROOT/topics/TOPIC/P`.
    public static func root(ofPartition dir: String) -> String {
        var path = dir
        for _ in 0..<3 { path = FileSystem.dirname(of: path) }
        return path
    }

    /// Topic name and partition number of a partition directory.
    static func topicPartition(ofPartition dir: String) -> (topic: String, partition: Int32)? {
        let parts = dir.split(separator: "/")
        guard parts.count >= 2, let p = Int32(parts[parts.count - 1]) else { return nil }
        return (String(parts[parts.count - 2]), p)
    }
}

/// How a transaction ended (or is to end).
public enum TransactionDecision: String, Sendable {
    case commit
    case abort

    /// The control record type of Kafka's markers: 0 ABORT, 1 COMMIT.
    var controlType: Int16 { self == .commit ? 1 : 0 }

    /// Reads `PID.decision`, or nil when there is none yet.
    static func read(_ root: String, _ producerId: Int64) throws -> TransactionDecision? {
        let path = TransactionFiles.decision(root, producerId)
        guard FileSystem.exists(path) else { return nil }
        let text = String(decoding: (try? FileSystem.readAll(path)) ?? [], as: UTF8.self)
        switch text.trimmed(of: "\n ") {
        case "commit": return .commit
        case "abort": return .abort
        default: throw MQError.corrupt("corrupt transaction decision \(path): expected 'commit' or 'abort'")
        }
    }

    /// Records the decision unless one exists; returns the one that stands.
    /// The file is written and fsynced under a temporary name, then linked to
    /// its name, which fails when it exists: exactly one decision is ever made.
    static func decide(_ self_: TransactionDecision, _ root: String, _ producerId: Int64) throws -> TransactionDecision {
        let path = TransactionFiles.decision(root, producerId)
        let tmp = path + ".~tmp.\(getpid())"
        let handle = try OpenFile.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, creating: true)
        defer { try? FileSystem.remove(tmp) }
        do {
            try Array((self_.rawValue + "\n").utf8).withUnsafeBytes { try handle.write($0, at: 0) }
            try handle.sync()
            handle.close()
        } catch { handle.close(); throw error }
        guard try FileSystem.link(tmp, to: path) else { return try read(root, producerId) ?? self_ }
        try FileSystem.syncDirectory(TransactionFiles.directory(root))
        return self_
    }
}

/// The transaction record `ROOT/transactions/PID`: text, one field a line,
/// the last line the CRC-32C of everything before it.
public struct TransactionRecord: Equatable, Sendable {
    public struct Partition: Hashable, Sendable {
        public var topic: String
        public var partition: Int32
        public init(topic: String, partition: Int32) { self.topic = topic; self.partition = partition }
    }

    public var producerId: Int64
    public var epoch: Int16 = 0
    public var startedMs: Int64
    public var timeoutMs: Int64
    public var partitions: [Partition] = []

    public init(producerId: Int64, startedMs: Int64, timeoutMs: Int64) {
        self.producerId = producerId
        self.startedMs = startedMs
        self.timeoutMs = timeoutMs
    }

    public func encode() -> [UInt8] {
        var text = "mq-transaction 1\nproducer \(TransactionFiles.hex(producerId))\nepoch \(epoch)\nstarted \(startedMs)\ntimeout \(timeoutMs)\n"
        for p in partitions { text += "partition \(p.partition) \(p.topic)\n" }
        var bytes = Array(text.utf8)
        let crc = bytes.withUnsafeBytes { CRC32C.checksum($0) }
        bytes += Array("crc \(crc)\n".utf8)
        return bytes
    }

    public static func decode(_ bytes: [UInt8]) -> TransactionRecord? {
        guard let crcLine = bytes.dropLast().lastIndex(of: 10).map({ $0 + 1 }) else { return nil }
        let body = Array(bytes[..<crcLine])
        let tail = String(decoding: bytes[crcLine...], as: UTF8.self).trimmed(of: "\n")
        guard tail == "crc \(body.withUnsafeBytes { CRC32C.checksum($0) })" else { return nil }
        var record = TransactionRecord(producerId: 0, startedMs: 0, timeoutMs: 0)
        var sawHeader = false
        for line in String(decoding: body, as: UTF8.self).split(separator: "\n") {
            let fields = line.split(separator: " ", maxSplits: 2).map(String.init)
            guard fields.count >= 2 else { return nil }
            switch fields[0] {
            case "mq-transaction": sawHeader = fields[1] == "1"
            case "producer": guard let v = UInt64(fields[1], radix: 16) else { return nil }; record.producerId = Int64(bitPattern: v)
            case "epoch": guard let v = Int16(fields[1]) else { return nil }; record.epoch = v
            case "started": guard let v = Int64(fields[1]) else { return nil }; record.startedMs = v
            case "timeout": guard let v = Int64(fields[1]) else { return nil }; record.timeoutMs = v
            case "partition":
                guard fields.count == 3, let p = Int32(fields[1]) else { return nil }
                record.partitions.append(Partition(topic: fields[2], partition: p))
            default: return nil
            }
        }
        return sawHeader ? record : nil
    }

    static func read(_ root: String, _ producerId: Int64) throws -> TransactionRecord? {
        let path = TransactionFiles.record(root, producerId)
        guard FileSystem.exists(path), let bytes = try? FileSystem.readAll(path) else { return nil }
        guard let record = decode(bytes) else { throw MQError.corrupt("corrupt transaction record \(path)") }
        return record
    }
}

/// A partition's open transactions, `P/transactions`: magic `MQTXNS01`, a
/// big-endian int32 count, `count` entries of (int64 producer id, int16
/// epoch, int64 first offset), then the CRC-32C of all bytes before it.
/// Replaced whole (temporary file, fsync, rename, directory fsync) under the
/// partition's writer lock. A missing file is an empty list.
public struct OpenTransactions: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var producerId: Int64
        public var epoch: Int16
        public var firstOffset: Int64
        public init(producerId: Int64, epoch: Int16, firstOffset: Int64) {
            self.producerId = producerId; self.epoch = epoch; self.firstOffset = firstOffset
        }
    }
    static let magic = Array("MQTXNS01".utf8)
    static let entrySize = 18

    public var entries: [Entry] = []
    public init(entries: [Entry] = []) { self.entries = entries }

    public func entry(for producerId: Int64) -> Entry? { entries.first { $0.producerId == producerId } }

    /// The last stable offset bound: the smallest first offset, or nil when none is open.
    public var firstOpenOffset: Int64? { entries.map(\.firstOffset).min() }

    public func encode() -> [UInt8] {
        var out = OpenTransactions.magic
        func be<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { out += $0 } }
        be(Int32(entries.count))
        for e in entries { be(e.producerId); be(e.epoch); be(e.firstOffset) }
        let crc = out.withUnsafeBytes { CRC32C.checksum($0) }
        be(crc)
        return out
    }

    public static func decode(_ bytes: [UInt8]) -> OpenTransactions? {
        guard bytes.count >= 16, Array(bytes[0..<8]) == magic else { return nil }
        return bytes.withUnsafeBytes { raw -> OpenTransactions? in
            let p = raw.baseAddress!
            let count = Int(loadBE(p, 8, as: Int32.self))
            guard count >= 0, bytes.count == 12 + count * entrySize + 4 else { return nil }
            let crcAt = 12 + count * entrySize
            guard loadBE(p, crcAt, as: UInt32.self) == CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: crcAt)) else { return nil }
            var list = OpenTransactions()
            for i in 0..<count {
                let at = 12 + i * entrySize
                list.entries.append(Entry(producerId: loadBE(p, at, as: Int64.self), epoch: loadBE(p, at + 8, as: Int16.self),
                                          firstOffset: loadBE(p, at + 10, as: Int64.self)))
            }
            return list
        }
    }

    /// Reads a partition's list (empty when the file does not exist).
    public static func read(partition dir: String) throws -> OpenTransactions {
        let path = TransactionFiles.partitionList(dir)
        guard let handle = try OpenFile.openIfExists(path, O_RDONLY) else { return OpenTransactions() }
        defer { handle.close() }
        var bytes = [UInt8](repeating: 0, count: Int(try handle.size()))
        let n = try bytes.withUnsafeMutableBytes { try handle.read(into: $0.baseAddress!, count: $0.count, at: 0) }
        guard n == bytes.count, let list = decode(bytes) else {
            throw MQError.corrupt("corrupt list of open transactions \(path) (restore it, or remove it after aborting its transactions by hand)")
        }
        return list
    }

    /// Replaces a partition's list (the caller holds the writer lock).
    func write(partition dir: String) throws {
        let path = TransactionFiles.partitionList(dir)
        if entries.isEmpty {
            try FileSystem.remove(path)
            try FileSystem.syncDirectory(dir)
        } else {
            try FileSystem.writeAtomically(path, encode())
        }
    }
}

/// Kafka's aborted-transaction index entry (34 bytes, big-endian): int16
/// version 0, int64 producer id, int64 first offset, int64 last offset (the
/// ABORT marker's), int64 last stable offset when the abort completed.
public struct AbortedTransaction: Equatable, Sendable {
    public static let size = 34
    public var producerId: Int64
    public var firstOffset: Int64
    public var lastOffset: Int64
    public var lastStableOffset: Int64

    public init(producerId: Int64, firstOffset: Int64, lastOffset: Int64, lastStableOffset: Int64) {
        self.producerId = producerId; self.firstOffset = firstOffset
        self.lastOffset = lastOffset; self.lastStableOffset = lastStableOffset
    }

    public func encode() -> [UInt8] {
        var out: [UInt8] = []
        func be<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.bigEndian) { out += $0 } }
        be(Int16(0)); be(producerId); be(firstOffset); be(lastOffset); be(lastStableOffset)
        return out
    }

    static func decode(_ p: UnsafeRawPointer) -> AbortedTransaction {
        AbortedTransaction(producerId: loadBE(p, 2, as: Int64.self), firstOffset: loadBE(p, 10, as: Int64.self),
                           lastOffset: loadBE(p, 18, as: Int64.self), lastStableOffset: loadBE(p, 26, as: Int64.self))
    }
}

/// The aborted transactions of one partition, read from its `.txnindex`
/// files and refreshed incrementally (only new bytes are read).
final class AbortedTransactionIndex {
    let directory: String
    private var bytesRead: [Int64: Int64] = [:]
    private var aborted: [Int64: [(first: Int64, last: Int64)]] = [:]

    init(directory: String) { self.directory = directory }

    /// Reads the new entries of every `.txnindex` in the directory (also one
    /// whose segment is gone: its entries then name offsets no longer read).
    func refresh() throws {
        let bases = try FileSystem.list(directory).compactMap { name -> Int64? in
            Segment.baseOffset(ofFileName: name, suffix: Segment.txnIndexSuffix)
        }
        for base in bases {
            guard let handle = try OpenFile.openIfExists(Segment(directory, base).txnIndexPath, O_RDONLY) else { continue }
            defer { handle.close() }
            let size = try handle.size() / Int64(AbortedTransaction.size) * Int64(AbortedTransaction.size)
            let from = bytesRead[base] ?? 0
            guard size > from else { continue }
            var bytes = [UInt8](repeating: 0, count: Int(size - from))
            let n = try bytes.withUnsafeMutableBytes { try handle.read(into: $0.baseAddress!, count: $0.count, at: from) }
            let whole = n / AbortedTransaction.size
            bytes.withUnsafeBytes { raw in
                for i in 0..<whole {
                    let e = AbortedTransaction.decode(raw.baseAddress! + i * AbortedTransaction.size)
                    aborted[e.producerId, default: []].append((e.firstOffset, e.lastOffset))
                }
            }
            bytesRead[base] = from + Int64(whole * AbortedTransaction.size)
        }
    }

    func isAborted(producerId: Int64, offset: Int64) -> Bool {
        aborted[producerId]?.contains { $0.first <= offset && offset <= $0.last } ?? false
    }
}

/// The fates of the transactions whose batches one partition holds, as
/// read committed needs them (docs/FORMAT.md §18, "Reading").
final class TransactionFates {
    enum Fate { case committed, aborted, open }

    let directory: String
    private var aborted: AbortedTransactionIndex?
    private lazy var markers = TransactionMarkerScan(directory: directory)

    init(directory: String) { self.directory = directory }

    /// The fate of the transaction of `producerId`, whose batch at `offset`
    /// was read before this call. An open transaction whose producer died is
    /// finished first (`TransactionRecovery.resolve`).
    ///
    /// An ended transaction's fate is its marker, the first control batch of
    /// its producer after `offset`: `.txnindex` answers for aborts without a
    /// scan, and the markers are read for the rest. Kafka's own record
    /// builders write no `.txnindex` (a broker derives it when it recovers a
    /// segment), and Kafka producers reuse their producer id across
    /// transactions, so neither the index alone nor a producer id alone can
    /// tell (docs/FORMAT.md §18).
    func fate(producerId: Int64, offset: Int64) throws -> Fate {
        if let aborted, aborted.isAborted(producerId: producerId, offset: offset) { return .aborted }
        if let known = markers.known(producerId: producerId, offset: offset) { return known }
        // The list is read after the batch: a transaction not listed has
        // ended, and its marker is in the log by then.
        if try OpenTransactions.read(partition: directory).entry(for: producerId) != nil {
            if try TransactionRecovery.resolve(partitionDir: directory, producerId: producerId) == .live { return .open }
            if try OpenTransactions.read(partition: directory).entry(for: producerId) != nil { return .open }
        }
        let index = aborted ?? AbortedTransactionIndex(directory: directory)
        aborted = index
        try index.refresh()
        if index.isAborted(producerId: producerId, offset: offset) { return .aborted }
        if let found = try markers.scan(producerId: producerId, after: offset) { return found }
        // Neither open nor ended by a marker: a log that another writer cut
        // short. Nothing of it was committed; Kafka's read committed never
        // delivers it either.
        return .aborted
    }
}

/// The transaction markers of one partition, read forward from where they
/// were first needed: for each producer id, the offsets of its markers and
/// their decisions. Covers one contiguous range of offsets, `[from, to)`.
final class TransactionMarkerScan {
    let directory: String
    private var reader: PartitionReader?
    private let decoder = BatchDecoder()
    private var from: Int64 = 0
    private var to: Int64 = 0
    private var found: [Int64: [(offset: Int64, commit: Bool)]] = [:]

    init(directory: String) { self.directory = directory }

    /// The fate the markers already read give the batch of `producerId` at `offset`.
    func known(producerId: Int64, offset: Int64) -> TransactionFates.Fate? {
        guard offset >= from, let markers = found[producerId] else { return nil }
        // Markers are in offset order (read forward): the first one after
        // `offset`, by binary search, as a Kafka producer id may have many.
        var lo = 0, hi = markers.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if markers[mid].offset > offset { hi = mid } else { lo = mid + 1 }
        }
        guard lo < markers.count else { return nil }
        return markers[lo].commit ? .committed : .aborted
    }

    /// Reads on until the first marker of `producerId` after `offset`;
    /// nil when the log ends first.
    func scan(producerId: Int64, after offset: Int64) throws -> TransactionFates.Fate? {
        if let known = known(producerId: producerId, offset: offset) { return known }
        if reader == nil || offset < from || offset > to {
            let r = reader ?? PartitionReader(directory: directory)
            reader = r
            try r.seek(toOffset: offset)
            found.removeAll()
            from = offset
            to = offset
        }
        guard let reader else { return nil }
        while let (header, bytes) = try reader.nextBatch() {
            to = max(to, header.nextOffset)
            guard header.isControl else { continue }
            let decision: TransactionDecision?
            do {
                var records = RecordIterator(records: try decoder.records(of: bytes, header: header), header: header)
                decision = TransactionMarker.decision(key: try records.next()?.key)
            } catch {
                throw reader.undecodable(header, error)
            }
            guard let decision else { continue }  // a control record of another kind
            found[header.producerId, default: []].append((header.baseOffset, decision == .commit))
            if header.producerId == producerId && header.baseOffset > offset { return decision == .commit ? .committed : .aborted }
        }
        return nil
    }
}

/// Kafka's `.txnindex` files as segments are merged (compaction) and deleted.
public enum TxnIndexFiles {
    /// Makes `base`'s `.txnindex` hold the entries of every segment in
    /// `bases` (which includes `base`), each once; written atomically, so a
    /// rerun after a crash merges again without loss. The other segments'
    /// files are left for the caller to remove after their `.log`.
    public static func merge(into base: Int64, from bases: [Int64], in directory: String) throws {
        var bytes: [UInt8] = []
        var seen = Set<[UInt8]>()
        var fromOthers = false
        for b in [base] + bases.filter({ $0 != base }) {
            let path = Segment(directory, b).txnIndexPath
            guard FileSystem.exists(path) else { continue }
            let data = try FileSystem.readAll(path)
            var at = 0
            while at + AbortedTransaction.size <= data.count {
                let entry = Array(data[at..<at + AbortedTransaction.size])
                if seen.insert(entry).inserted {
                    bytes += entry
                    if b != base { fromOthers = true }
                }
                at += AbortedTransaction.size
            }
        }
        if fromOthers { try FileSystem.writeAtomically(Segment(directory, base).txnIndexPath, bytes) }
    }
}

/// Finishing transactions whose producer is gone (or timed out).
public enum TransactionRecovery {
    /// What a reader should do about a transaction listed open in a partition.
    public enum Status: Equatable, Sendable {
        /// Its producer is alive and within its timeout: wait.
        case live
        /// It was finished (now, by this call, or meanwhile by someone else).
        case finished
    }

    /// Called for a producer id found in `partitionDir`'s open list. When the
    /// producer's lock is free (it died), takes the lock and finishes the
    /// transaction everywhere: by its decision if one was made, else abort.
    /// When the lock is held but the record's timeout has passed, decides
    /// abort (unless commit was decided first) and finishes it likewise; the
    /// producer then finds itself fenced.
    public static func resolve(partitionDir: String, producerId: Int64) throws -> Status {
        let root = TransactionFiles.root(ofPartition: partitionDir)
        let lockPath = TransactionFiles.lock(root, producerId)
        guard let lock = try OpenFile.openIfExists(lockPath, O_RDONLY) else {
            // Record gone: every partition it named is done; finish this one.
            let decision = try TransactionDecision.read(root, producerId) ?? .abort
            try finish(partitionDir: partitionDir, producerId: producerId, decision: decision, checkForMarker: true)
            return .finished
        }
        defer { lock.close() }
        if try lock.lock(exclusive: true, wait: false) {
            defer { lock.unlock() }
            try finishEverywhere(root: root, producerId: producerId, also: partitionDir, decision: nil)
            // Done: remove the state (record first: a missing record means "all partitions done").
            try FileSystem.remove(TransactionFiles.record(root, producerId))
            try FileSystem.remove(TransactionFiles.decision(root, producerId))
            try FileSystem.remove(lockPath)
            return .finished
        }
        // Alive, or looks it: only the timeout can end it.
        guard let record = try TransactionRecord.read(root, producerId),
              currentTimeMillis() >= record.startedMs + record.timeoutMs else { return .live }
        try finishEverywhere(root: root, producerId: producerId, also: partitionDir, decision: .abort)
        return .finished
    }

    /// The last stable offset of a partition: the first offset of its oldest
    /// transaction still open (after finishing those whose producer died),
    /// or `logEnd` when none is.
    public static func lastStableOffset(partitionDir: String, logEnd: Int64) throws -> Int64 {
        var lso = logEnd
        for entry in try OpenTransactions.read(partition: partitionDir).entries where entry.firstOffset < lso {
            if try resolve(partitionDir: partitionDir, producerId: entry.producerId) == .live { lso = entry.firstOffset }
        }
        return lso
    }

    /// Finishes the transactions of every producer that died: those whose
    /// lock file is not locked, and the temporary files of dead producers.
    /// Run by `mq-produce --atomic` when it starts.
    public static func recoverOrphans(root: String) throws {
        let dir = TransactionFiles.directory(root)
        guard FileSystem.isDirectory(dir) else { return }
        let names = try FileSystem.list(dir)
        // Temporary files (NAME.~tmp.PID) of a producer killed while it
        // created its lock or record: nothing names them once PID is gone.
        for name in names {
            let parts = name.split(separator: ".")
            guard parts.count >= 3, parts[parts.count - 2] == "~tmp", let pid = pid_t(parts[parts.count - 1]) else { continue }
            if kill(pid, 0) != 0 && errno == ESRCH { try FileSystem.remove(dir + "/" + name) }
        }
        for name in names where name.hasSuffix(".lock") {
            guard let v = UInt64(name.dropLast(5), radix: 16) else { continue }
            let producerId = Int64(bitPattern: v)
            let lockPath = TransactionFiles.lock(root, producerId)
            guard let lock = try OpenFile.openIfExists(lockPath, O_RDONLY) else { continue }
            defer { lock.close() }
            guard try lock.lock(exclusive: true, wait: false) else { continue }
            defer { lock.unlock() }
            try finishEverywhere(root: root, producerId: producerId, also: nil, decision: nil)
            try FileSystem.remove(TransactionFiles.record(root, producerId))
            try FileSystem.remove(TransactionFiles.decision(root, producerId))
            try FileSystem.remove(lockPath)
        }
    }

    /// Makes (or reads) the decision and finishes every partition the record names, and `also`.
    private static func finishEverywhere(root: String, producerId: Int64, also: String?, decision proposed: TransactionDecision?) throws {
        let decision = try TransactionDecision.decide(proposed ?? .abort, root, producerId)
        var dirs: [String] = []
        if let record = try TransactionRecord.read(root, producerId) {
            for p in record.partitions { dirs.append(root + "/topics/" + p.topic + "/\(p.partition)") }
        }
        if let also, !dirs.contains(also) { dirs.append(also) }
        for dir in dirs where FileSystem.isDirectory(dir) {
            try finish(partitionDir: dir, producerId: producerId, decision: decision, checkForMarker: true)
        }
    }

    /// Finishes one partition with the settings of its topic.
    static func finish(partitionDir: String, producerId: Int64, decision: TransactionDecision, checkForMarker: Bool) throws {
        let root = TransactionFiles.root(ofPartition: partitionDir)
        let topic = TransactionFiles.topicPartition(ofPartition: partitionDir)?.topic ?? ""
        let config = (try? LogDirectory(root: root).readConfig(topic)) ?? TopicConfig(partitions: 1)
        let writer = try PartitionWriter(directory: partitionDir, settings: PartitionWriter.Settings(config))
        try writer.finishTransaction(producerId: producerId, decision: decision, checkForMarker: checkForMarker)
        try writer.sync()
    }
}

extension String {
    fileprivate func trimmed(of set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let c = s.first, chars.contains(c) { s = s.dropFirst() }
        while let c = s.last, chars.contains(c) { s = s.dropLast() }
        return String(s)
    }
}

/// Failures particular to transactions.
public enum TransactionError {
    /// The transaction was aborted by another process after its timeout passed.
    static func fenced(_ producerId: Int64) -> MQError {
        MQError(.tempFail, "transaction \(TransactionFiles.hex(producerId)) was aborted by another process after its timeout passed (see --transaction-timeout); nothing of it is visible: run it again")
    }
}

/// Kafka's transaction markers: a control batch (attributes transactional |
/// control) of one record whose key is int16 version 0 + int16 type (0 ABORT,
/// 1 COMMIT) and whose value is int16 version 0 + int32 coordinator epoch (0).
public enum TransactionMarker {
    public static func batch(producerId: Int64, epoch: Int16, decision: TransactionDecision, timestamp: Int64) -> GrowableBytes {
        let builder = RecordBatchBuilder(codec: .none, capacity: 64)
        builder.producerId = producerId
        builder.producerEpoch = epoch
        builder.baseSequence = -1
        builder.extraAttributes = BatchAttributes.transactional | BatchAttributes.control
        let type = decision.controlType
        let key: [UInt8] = [0, 0, UInt8(type >> 8), UInt8(type & 0xFF)]
        let value: [UInt8] = [0, 0, 0, 0, 0, 0]
        let noHeaders: [UInt8] = [0]
        key.withUnsafeBytes { k in value.withUnsafeBytes { v in noHeaders.withUnsafeBytes { h in
            builder.append(timestamp: timestamp, key: k, value: v, headers: h)
        } } }
        _ = try? builder.finish()
        return builder.output
    }

    /// The decision a control record's key holds, or nil when it is not a transaction marker.
    public static func decision(key: UnsafeRawBufferPointer?) -> TransactionDecision? {
        guard let key, key.count >= 4, loadBE(key.baseAddress!, 0, as: Int16.self) == 0 else { return nil }
        switch loadBE(key.baseAddress!, 2, as: Int16.self) {
        case 0: return .abort
        case 1: return .commit
        default: return nil
        }
    }
}
