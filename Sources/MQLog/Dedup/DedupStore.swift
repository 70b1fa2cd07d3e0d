import Glibc

// Message-id deduplication within a time window (docs/FORMAT.md, "Deduplication").
//
// A store is a directory: `lock` (flock(LOCK_EX) around every use) and `ids`,
// an append-only file of 48-byte entries. Producers keep one per topic
// (`topics/T/dedup/`), consumer groups one per group (`groups/G/dedup/`).
//
// API
//
//     let store = try DedupStore(directory: dir, windowMs: 120_000)
//     store.recoverPartition = { p in try dirOfPartition(p) }   // producers: for recovery
//     try store.withLock {                      // refreshes from what others appended,
//         store.lookup(hash, nowMs:)            // finishes a chunk a dead writer left
//         try store.beginChunk(ends, idHeader:) // PENDING entries, fdatasync
//         ... write and fsync the data ...
//         try store.record(ids, done: true, sync: false)
//     }
//
// Chunk protocol (producers): under the lock, append one PENDING entry per
// partition about to be written (its log end offset) and fdatasync; append and
// fsync the data; append the ids and a DONE entry. A store whose entries end
// in PENDING entries without a DONE belongs to a writer that died in the
// middle: the next user scans those partitions from the recorded offsets for
// records carrying the id header, records their ids, and appends DONE. The
// ids and DONE need no fsync of their own: if they are lost, the PENDING
// entries are still there (the next PENDING's fdatasync makes them durable).

/// A 128-bit FNV-1a hash of a message id. At 128 bits, two different ids
/// collide with probability about n²/2^129: nil for any real window.
public struct IDHash: Hashable, Sendable {
    public var hi: UInt64
    public var lo: UInt64
    public init(hi: UInt64, lo: UInt64) { self.hi = hi; self.lo = lo }

    @inline(__always)
    public static func of(_ bytes: UnsafeRawBufferPointer) -> IDHash {
        var hi: UInt64 = 0x6c62_272e_07bb_0142
        var lo: UInt64 = 0x62b8_2175_6295_c58d
        // prime = 2^88 + 0x13b
        for b in bytes {
            lo ^= UInt64(b)
            let (h1, l1) = lo.multipliedFullWidth(by: 0x13b)
            hi = h1 &+ hi &* 0x13b &+ (lo << 24)
            lo = l1
        }
        return IDHash(hi: hi, lo: lo)
    }

    public static func of(_ bytes: [UInt8]) -> IDHash { bytes.withUnsafeBytes { of($0) } }
    public static func of(_ s: String) -> IDHash { of(Array(s.utf8)) }
}

/// Where a message with an id was written (or processed), and when.
public struct DedupEntry: Sendable, Equatable {
    public var timestampMs: Int64
    public var partition: Int32
    public var offset: Int64
    public init(timestampMs: Int64, partition: Int32, offset: Int64) {
        self.timestampMs = timestampMs
        self.partition = partition
        self.offset = offset
    }
}

/// Known ids: an open-addressing hash table (linear probing) keyed by the
/// id hashes themselves, which are uniform already, so no further hashing
/// is needed. One 40-byte slot per id, at most 2/3 full.
struct IDTable {
    private struct Slot {
        var hi: UInt64
        var lo: UInt64
        var entry: DedupEntry
        static let empty = Slot(hi: 0, lo: 0, entry: DedupEntry(timestampMs: .min, partition: 0, offset: 0))
        var isEmpty: Bool { entry.timestampMs == .min }
    }
    private var slots: [Slot]
    private var mask: Int
    private(set) var count = 0
    /// The earliest time of any entry (Int64.max when empty): nothing to
    /// forget while it is within the window.
    private(set) var oldestMs = Int64.max

    init(capacity: Int = 1024) {
        var n = 1024
        while n * 2 < capacity * 3 { n <<= 1 }
        slots = Array(repeating: .empty, count: n)
        mask = n - 1
    }

    @inline(__always)
    private func slot(_ h: IDHash) -> (Int, Bool) {
        slots.withUnsafeBufferPointer { s in
            var i = Int(truncatingIfNeeded: h.lo ^ (h.hi >> 7)) & mask
            while !s[i].isEmpty {
                if s[i].lo == h.lo && s[i].hi == h.hi { return (i, true) }
                i = (i + 1) & mask
            }
            return (i, false)
        }
    }

    @inline(__always)
    subscript(_ h: IDHash) -> DedupEntry? {
        let (i, found) = slot(h)
        return found ? slots[i].entry : nil
    }

    /// Sets the entry of `h`, unless it has one with a later time.
    /// (Entries need a time above Int64.min, which marks empty slots.)
    @inline(__always)
    mutating func insertNewer(_ h: IDHash, _ e: DedupEntry) {
        let (i, found) = slot(h)
        if found {
            if slots[i].entry.timestampMs <= e.timestampMs { slots[i].entry = e }
            return
        }
        if (count + 1) * 3 > (mask + 1) * 2 {
            grow()
            insertNewer(h, e)
            return
        }
        slots[i] = Slot(hi: h.hi, lo: h.lo, entry: e)
        count += 1
        if e.timestampMs < oldestMs { oldestMs = e.timestampMs }
    }

    private mutating func grow() {
        var bigger = IDTable(capacity: (mask + 1) * 2)
        forEach { bigger.insertNewer($0, $1) }
        self = bigger
    }

    func forEach(_ body: (IDHash, DedupEntry) throws -> Void) rethrows {
        for s in slots where !s.isEmpty { try body(IDHash(hi: s.hi, lo: s.lo), s.entry) }
    }

    /// A table of the entries that pass `keep`.
    func filter(_ keep: (DedupEntry) -> Bool) -> IDTable {
        var n = 0
        forEach { _, e in if keep(e) { n += 1 } }
        var out = IDTable(capacity: n)
        forEach { h, e in if keep(e) { out.insertNewer(h, e) } }
        return out
    }
}

/// One id store; see the top of this file. Not thread-safe.
public final class DedupStore {
    public static let entrySize = 48
    enum Kind: UInt8 { case id = 1, pending = 2, done = 3 }

    public let directory: String
    public let windowMs: Int64
    /// Producers: the directory of a partition, after the writer's check of
    /// its tail (so a dead writer's complete batch is kept or cut before it
    /// is scanned); nil when it is gone. Needed only to finish a chunk.
    public var recoverPartition: ((Int32) throws -> String?)?
    /// Ids recorded while finishing chunks dead writers left, for reports.
    public private(set) var recoveredIDs = 0
    /// False for housekeeping: leave an interrupted chunk to the next producer.
    var finishesChunks = true
    /// How long a trim keeps ids: the largest window any user has declared
    /// (`window`), at least this process's.
    public private(set) var retainMs: Int64
    private var windowNoted = false

    private let lockFile: OpenFile
    private var file: OpenFile
    private var inode: UInt64
    private var readPosition: Int64 = 0
    private var seen = IDTable()
    private var entriesInFile = 0
    private var nextPrune = 65_536
    /// PENDING entries not yet followed by DONE: (partition, offset, header-name hash).
    private var openChunk: [(Int32, Int64, IDHash)] = []
    private var locked = false

    public var path: String { directory + "/ids" }
    /// Ids currently remembered (some may be past the window until the next prune).
    public var count: Int { seen.count }

    public init(directory: String, windowMs: Int64) throws {
        self.directory = directory
        self.windowMs = windowMs
        self.retainMs = windowMs
        try FileSystem.makeDirectoriesDurably(directory)
        lockFile = try OpenFile.open(directory + "/lock", O_RDWR | O_CREAT, creating: true)
        do {
            file = try OpenFile.open(directory + "/ids", O_RDWR | O_CREAT, creating: true)
        } catch {
            lockFile.close()
            throw error
        }
        inode = DedupStore.inode(of: file)
    }

    deinit {
        file.close()
        lockFile.close()
    }

    private static func inode(of handle: OpenFile) -> UInt64 {
        var st = stat()
        fstat(handle.fd, &st)
        return UInt64(st.st_ino)
    }

    // MARK: Locking and refreshing

    /// Runs `body` holding the store's lock, after reading what others
    /// appended and finishing a chunk a dead writer left; trims the file
    /// afterwards when most of it is past the window.
    public func withLock<R>(_ body: () throws -> R) throws -> R {
        try lockFile.lock(exclusive: true)
        locked = true
        defer {
            locked = false
            lockFile.unlock()
        }
        try refresh()
        if !windowNoted { try noteWindow() }
        let result = try body()
        if openChunk.isEmpty && entriesInFile >= nextPrune { try prune() }
        return result
    }

    /// Reads the entries appended since the last refresh (all of them when
    /// the file was replaced by a trim), cuts a torn last entry, and
    /// finishes an interrupted chunk. Under the lock.
    private func refresh() throws {
        var st = stat()
        if stat(path, &st) == 0, UInt64(st.st_ino) != inode {
            let replacement = try OpenFile.open(path, O_RDWR)
            file.close()
            file = replacement
            inode = UInt64(st.st_ino)
            readPosition = 0
            seen = IDTable()
            entriesInFile = 0
            openChunk = []
        }
        let size = try file.size()
        if readPosition == 0 && seen.count == 0 && size >= 4096 * Int64(DedupStore.entrySize) {
            seen = IDTable(capacity: Int(size / Int64(DedupStore.entrySize)))
        }
        if size > readPosition {
            // In pieces of 4 MiB, so that reading costs no memory beyond the table.
            var buffer = [UInt8](repeating: 0, count: Int(min(size - readPosition, 87_381 * Int64(DedupStore.entrySize))))
            var bad = false
            while !bad && size - readPosition >= Int64(DedupStore.entrySize) {
                let want = Int(min(Int64(buffer.count), size - readPosition))
                let n = try buffer.withUnsafeMutableBytes { try file.read(into: $0.baseAddress!, count: want, at: readPosition) }
                var at = 0
                buffer.withUnsafeBytes { raw in
                    while n - at >= DedupStore.entrySize {
                        guard apply(UnsafeRawBufferPointer(rebasing: raw[at..<at + DedupStore.entrySize])) else { bad = true; break }
                        at += DedupStore.entrySize
                    }
                }
                readPosition += Int64(at)
                if at == 0 { break }
            }
            // Appends happen under the lock: anything after the last good
            // entry is a writer's torn append.
            if readPosition < size { try file.truncate(to: readPosition) }
        }
        if !openChunk.isEmpty && finishesChunks { try finishOpenChunk() }
    }

    /// The `window` file: the largest window of any user, decimal ms.
    public static func declaredWindow(_ directory: String) -> Int64? {
        guard let bytes = try? FileSystem.readAll(directory + "/window") else { return nil }
        return Int64(String(decoding: bytes.filter { $0 != 10 && $0 != 32 }, as: UTF8.self))
    }

    /// Raises `window` to this process's window (under the lock), so that
    /// no trim, ours or another's, drops ids a user of the store needs.
    private func noteWindow() throws {
        let declared = DedupStore.declaredWindow(directory) ?? 0
        if windowMs > declared { try FileSystem.writeAtomically(directory + "/window", Array("\(windowMs)\n".utf8)) }
        retainMs = max(windowMs, declared)
        windowNoted = true
    }

    /// Applies one entry read from the file; false when it is not valid.
    private func apply(_ e: UnsafeRawBufferPointer) -> Bool {
        let crc = e.loadUnaligned(fromByteOffset: 40, as: UInt32.self).littleEndian
        guard CRC32C.checksum(UnsafeRawBufferPointer(rebasing: e[0..<40])) == crc, let kind = Kind(rawValue: e[0]) else { return false }
        let partition = Int32(littleEndian: e.loadUnaligned(fromByteOffset: 4, as: Int32.self))
        let hash = IDHash(hi: UInt64(littleEndian: e.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
                          lo: UInt64(littleEndian: e.loadUnaligned(fromByteOffset: 16, as: UInt64.self)))
        let ts = Int64(littleEndian: e.loadUnaligned(fromByteOffset: 24, as: Int64.self))
        let offset = Int64(littleEndian: e.loadUnaligned(fromByteOffset: 32, as: Int64.self))
        entriesInFile += 1
        switch kind {
        case .id:
            seen.insertNewer(hash, DedupEntry(timestampMs: ts, partition: partition, offset: offset))
        case .pending:
            openChunk.append((partition, offset, hash))
        case .done:
            openChunk = []
        }
        return true
    }

    static func encode(_ kind: Kind, hash: IDHash, partition: Int32, timestampMs: Int64, offset: Int64, into out: inout [UInt8]) {
        let at = out.count
        out.append(contentsOf: repeatElement(0, count: entrySize))
        out.withUnsafeMutableBytes { whole in
            let p = UnsafeMutableRawBufferPointer(rebasing: whole[at..<at + entrySize])
            p[0] = kind.rawValue
            p.storeBytes(of: partition.littleEndian, toByteOffset: 4, as: Int32.self)
            p.storeBytes(of: hash.hi.littleEndian, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: hash.lo.littleEndian, toByteOffset: 16, as: UInt64.self)
            p.storeBytes(of: timestampMs.littleEndian, toByteOffset: 24, as: Int64.self)
            p.storeBytes(of: offset.littleEndian, toByteOffset: 32, as: Int64.self)
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(rebasing: p[0..<40]))
            p.storeBytes(of: crc.littleEndian, toByteOffset: 40, as: UInt32.self)
        }
    }

    private func append(_ bytes: [UInt8], sync: Bool) throws {
        precondition(locked, "dedup store written without its lock")
        guard !bytes.isEmpty else { return }
        let at = try file.size()
        do {
            try bytes.withUnsafeBytes { try file.write($0, at: at) }
        } catch {
            try? file.truncate(to: at)
            throw error
        }
        if sync { try file.sync() }
        // Apply our own entries as a reader would.
        bytes.withUnsafeBytes { raw in
            var i = 0
            while i < raw.count {
                _ = apply(UnsafeRawBufferPointer(rebasing: raw[i..<i + DedupStore.entrySize]))
                i += DedupStore.entrySize
            }
        }
        readPosition = at + Int64(bytes.count)
    }

    // MARK: Queries and updates (under the lock)

    /// Where the id was written (or processed) within the window, if it was.
    @inline(__always)
    public func lookup(_ hash: IDHash, nowMs: Int64) -> DedupEntry? {
        guard let e = seen[hash], e.timestampMs > nowMs - windowMs else { return nil }
        return e
    }

    /// Records the partitions about to be written, with their log end
    /// offsets, durably (PENDING entries, fdatasync).
    public func beginChunk(_ ends: [(partition: Int32, offset: Int64)], idHeader: String) throws {
        let name = IDHash.of(idHeader)
        let now = currentTimeMillis()
        var bytes: [UInt8] = []
        for (p, o) in ends { DedupStore.encode(.pending, hash: name, partition: p, timestampMs: now, offset: o, into: &bytes) }
        try append(bytes, sync: true)
    }

    /// Records ids (and DONE, which ends a chunk begun with `beginChunk`).
    public func record(_ ids: [(IDHash, DedupEntry)], done: Bool, sync: Bool) throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity((ids.count + 1) * DedupStore.entrySize)
        for (h, e) in ids { DedupStore.encode(.id, hash: h, partition: e.partition, timestampMs: e.timestampMs, offset: e.offset, into: &bytes) }
        if done { DedupStore.encode(.done, hash: IDHash(hi: 0, lo: 0), partition: -1, timestampMs: currentTimeMillis(), offset: -1, into: &bytes) }
        try append(bytes, sync: sync)
    }

    // MARK: Recovery

    /// Finishes the chunk of a writer that died between PENDING and DONE:
    /// records the ids of what it wrote (records past the recorded offsets
    /// carrying the id header), then DONE.
    private func finishOpenChunk() throws {
        guard let recoverPartition else {
            throw MQError.data("dedup store \(directory) has an unfinished chunk, and this tool cannot finish it (run mq-produce with --id-header on the topic first)")
        }
        let now = currentTimeMillis()
        var ids: [(IDHash, DedupEntry)] = []
        for (p, from, nameHash) in openChunk {
            guard let dir = try recoverPartition(p) else { continue }
            // Every batch as written, whatever the transactions of other
            // producers (a read-committed cursor would stop at an open one's
            // first offset); transactional batches are never ours.
            let reader = PartitionReader(directory: dir)
            try reader.seek(toOffset: from)
            let decoder = BatchDecoder()
            // Records point into its buffer: it lives as long as this scope.
            defer { withExtendedLifetime(decoder) {} }
            while let (header, bytes) = try reader.nextBatch() {
                guard header.nextOffset > from, !header.isControl, !header.isTransactional else { continue }
                do {
                    var records = RecordIterator(records: try decoder.records(of: bytes, header: header), header: header)
                    while let r = try records.next() {
                        guard r.offset >= from else { continue }
                        for h in try r.headers() where IDHash.of(h.name) == nameHash {
                            if let v = h.value {
                                ids.append((IDHash.of(v), DedupEntry(timestampMs: now, partition: p, offset: r.offset)))
                            }
                            break
                        }
                    }
                } catch {
                    throw reader.undecodable(header, error)
                }
            }
        }
        recoveredIDs += ids.count
        try record(ids, done: true, sync: true)
    }

    // MARK: Trimming

    /// Forgets ids past the window and, when they are most of the file,
    /// rewrites it with the live ones (temporary file, fsync, rename).
    private func prune() throws {
        let cutoff = currentTimeMillis() - retainMs
        if seen.oldestMs <= cutoff { seen = seen.filter { $0.timestampMs > cutoff } }
        if entriesInFile > 2 * seen.count {
            try rewrite()
        }
        nextPrune = entriesInFile + max(65_536, entriesInFile)
    }

    /// Replaces `ids` with the remembered entries (none are pending: only
    /// called when no chunk is open). Others notice the new inode.
    func rewrite() throws {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(seen.count * DedupStore.entrySize)
        seen.forEach { h, e in DedupStore.encode(.id, hash: h, partition: e.partition, timestampMs: e.timestampMs, offset: e.offset, into: &bytes) }
        try FileSystem.writeAtomically(path, bytes)
        let replacement = try OpenFile.open(path, O_RDWR)
        file.close()
        file = replacement
        inode = DedupStore.inode(of: file)
        readPosition = Int64(bytes.count)
        entriesInFile = seen.count
    }

    /// Drops ids past the window and rewrites the file now (tests).
    public func trim() throws {
        try withLock {
            let cutoff = currentTimeMillis() - retainMs
            seen = seen.filter { $0.timestampMs > cutoff }
            try rewrite()
            nextPrune = entriesInFile + max(65_536, entriesInFile)
        }
    }

    /// Housekeeping (`mq-compact --all`): rewrites the store at `directory`
    /// without the ids past its declared window, unless a chunk is open.
    /// - Returns: the ids dropped (or that would be, with `dryRun`).
    public static func housekeep(directory: String, now: Int64, dryRun: Bool) throws -> Int {
        guard FileSystem.exists(directory + "/ids"), let window = declaredWindow(directory), window > 0 else { return 0 }
        let store = try DedupStore(directory: directory, windowMs: window)
        store.finishesChunks = false
        return try store.withLock {
            guard store.openChunk.isEmpty else { return 0 }
            let kept = store.seen.filter { $0.timestampMs > now - window }
            let dropped = store.entriesInFile - kept.count
            guard dropped > 0, !dryRun else { return max(0, dropped) }
            store.seen = kept
            try store.rewrite()
            return dropped
        }
    }
}
