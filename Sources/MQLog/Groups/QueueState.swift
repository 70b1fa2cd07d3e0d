import Glibc

/// The shared state of one partition in work-queue mode (`mq-consume --queue`).
///
/// Files, in `ROOT/groups/GROUP/queue/TOPIC/P/`:
///
///     lock     flock(LOCK_EX) around every read-modify-write (short)
///     a, b     two copies of the state, written in turn; the valid one
///              with the larger generation is current, so a torn write
///              leaves the previous state in place
///
/// A state file, integers little-endian:
///
///     0   8   magic "MQQUEUE1"
///     8   8   generation
///     16  8   low     every offset below is done (acknowledged or dead-lettered)
///     24  8   next    the first offset never claimed
///     32  4   entry count n
///     36  4   CRC-32C of bytes 40..<40+48n, then of bytes 0..<36
///     40  48n entries, ascending by offset, for offsets in [low, next) that are not done:
///             0  8  offset
///             8  8  leaseUntil   ms since the epoch; 0 when not leased
///             16 8  visibleAt    ms since the epoch: not claimable before (retry backoff)
///             24 4  attempts     deliveries so far
///             28 4  flags        1 = done (kept only while below it some are not)
///             32 16 owner        member id of the leaseholder, NUL-padded
///
/// Offsets in [low, next) without an entry are done. Claims are not
/// fsynced (a lost claim is simply claimed again); completions are fsynced
/// by their consumer at most a commit interval apart and before it exits
/// (a completion lost in a power failure only means a redelivery).
public struct QueueState: Equatable, Sendable {
    public struct Entry: Equatable, Sendable {
        public var offset: Int64
        public var leaseUntil: Int64 = 0
        public var visibleAt: Int64 = 0
        public var attempts: UInt32 = 0
        public var done = false
        public var owner: String = ""
    }

    public var generation: UInt64 = 0
    public var low: Int64 = 0
    public var next: Int64 = 0
    public var entries: [Entry] = []

    static let magic = Array("MQQUEUE1".utf8)
    static let headerSize = 40
    static let entrySize = 48

    public init() {}

    func encode() -> [UInt8] {
        var out = [UInt8](repeating: 0, count: QueueState.headerSize + QueueState.entrySize * entries.count)
        out.withUnsafeMutableBytes { raw in
            let p = raw.baseAddress!
            for i in 0..<8 { p.storeBytes(of: QueueState.magic[i], toByteOffset: i, as: UInt8.self) }
            p.storeBytes(of: generation.littleEndian, toByteOffset: 8, as: UInt64.self)
            p.storeBytes(of: low.littleEndian, toByteOffset: 16, as: Int64.self)
            p.storeBytes(of: next.littleEndian, toByteOffset: 24, as: Int64.self)
            p.storeBytes(of: UInt32(entries.count).littleEndian, toByteOffset: 32, as: UInt32.self)
            for (i, e) in entries.enumerated() {
                let at = QueueState.headerSize + QueueState.entrySize * i
                p.storeBytes(of: e.offset.littleEndian, toByteOffset: at, as: Int64.self)
                p.storeBytes(of: e.leaseUntil.littleEndian, toByteOffset: at + 8, as: Int64.self)
                p.storeBytes(of: e.visibleAt.littleEndian, toByteOffset: at + 16, as: Int64.self)
                p.storeBytes(of: e.attempts.littleEndian, toByteOffset: at + 24, as: UInt32.self)
                p.storeBytes(of: UInt32(e.done ? 1 : 0).littleEndian, toByteOffset: at + 28, as: UInt32.self)
                for (j, b) in e.owner.utf8.prefix(16).enumerated() { p.storeBytes(of: b, toByteOffset: at + 32 + j, as: UInt8.self) }
            }
            let body = CRC32C.checksum(UnsafeRawBufferPointer(start: p + QueueState.headerSize, count: raw.count - QueueState.headerSize))
            let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: 36), extending: body)
            p.storeBytes(of: crc.littleEndian, toByteOffset: 36, as: UInt32.self)
        }
        return out
    }

    static func decode(_ raw: UnsafeRawBufferPointer) -> QueueState? {
        guard raw.count >= headerSize, let p = raw.baseAddress else { return nil }
        for i in 0..<8 where p.load(fromByteOffset: i, as: UInt8.self) != magic[i] { return nil }
        let n = Int(UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 32, as: UInt32.self)))
        guard raw.count >= headerSize + entrySize * n else { return nil }
        let body = CRC32C.checksum(UnsafeRawBufferPointer(start: p + headerSize, count: entrySize * n))
        let crc = CRC32C.checksum(UnsafeRawBufferPointer(start: p, count: 36), extending: body)
        guard crc == UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 36, as: UInt32.self)) else { return nil }
        var s = QueueState()
        s.generation = UInt64(littleEndian: p.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        s.low = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 16, as: Int64.self))
        s.next = Int64(littleEndian: p.loadUnaligned(fromByteOffset: 24, as: Int64.self))
        // Offsets a log can hold, an entry per offset at most, so that no
        // step of a claim or of mq-stat's arithmetic leaves Int64.
        guard s.low >= 0, s.low <= s.next, s.next <= BatchLayout.maximumBaseOffset, Int64(n) <= s.next - s.low,
              s.generation < UInt64.max else { return nil }
        for i in 0..<n {
            let at = headerSize + entrySize * i
            var e = Entry(offset: Int64(littleEndian: p.loadUnaligned(fromByteOffset: at, as: Int64.self)))
            e.leaseUntil = Int64(littleEndian: p.loadUnaligned(fromByteOffset: at + 8, as: Int64.self))
            e.visibleAt = Int64(littleEndian: p.loadUnaligned(fromByteOffset: at + 16, as: Int64.self))
            e.attempts = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at + 24, as: UInt32.self))
            e.done = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: at + 28, as: UInt32.self)) & 1 != 0
            let ownerBytes = (0..<16).map { p.load(fromByteOffset: at + 32 + $0, as: UInt8.self) }.prefix { $0 != 0 }
            e.owner = String(decoding: ownerBytes, as: UTF8.self)
            let previous = s.entries.last?.offset ?? -1
            guard e.offset >= s.low && s.next > e.offset && e.offset > previous && e.attempts != UInt32.max else { return nil }
            s.entries.append(e)
        }
        return s
    }

    /// Drops done entries at the front and raises `low` past them.
    mutating func advanceLow() {
        var drop = 0
        while drop < entries.count && entries[drop].done { drop += 1 }
        entries.removeFirst(drop)
        low = entries.first?.offset ?? next
        // Done entries can also be dropped anywhere: offsets in [low, next)
        // without an entry count as done.
        entries.removeAll { $0.done }
    }
}

/// Work-queue access to one partition's `QueueState`. Not thread-safe.
public final class QueuePartition {
    public let directory: String
    private let lockFile: OpenFile
    private let files: [OpenFile]

    public init(directory: String) throws {
        self.directory = directory
        try FileSystem.makeDirectoriesDurably(directory)
        let created = !FileSystem.exists(directory + "/b")
        lockFile = try OpenFile.open(directory + "/lock", O_RDWR | O_CREAT, creating: true)
        files = [try OpenFile.open(directory + "/a", O_RDWR | O_CREAT, creating: true),
                 try OpenFile.open(directory + "/b", O_RDWR | O_CREAT, creating: true)]
        // The state files' names must survive a crash as their contents do.
        if created { try FileSystem.syncDirectory(directory) }
    }

    deinit {
        lockFile.close()
        files.forEach { $0.close() }
    }

    /// The current state, read without the lock (for monitoring).
    public func read() throws -> QueueState { try Self.current(of: files, directory: directory) }

    /// The current state of the queue in `directory`, read without the lock
    /// through read-only opens, creating nothing (for a reader that may not
    /// write there: a producer measuring its backlog); nil when neither copy
    /// exists.
    public static func peek(directory: String) throws -> QueueState? {
        let files = try ["a", "b"].compactMap { try OpenFile.openIfExists(directory + "/" + $0, O_RDONLY) }
        defer { files.forEach { $0.close() } }
        return files.isEmpty ? nil : try current(of: files, directory: directory)
    }

    /// The state the copies `files` hold: the valid one with the larger generation.
    private static func current(of files: [OpenFile], directory: String) throws -> QueueState {
        // Decode the copy with the larger generation first; the other only if it is damaged.
        var generations: [(UInt64, OpenFile)] = []
        for f in files {
            var header = [UInt8](repeating: 0, count: 16)
            guard try header.withUnsafeMutableBytes({ try f.read(into: $0.baseAddress!, count: 16, at: 0) }) == 16 else { continue }
            let g = header.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
            generations.append((g, f))
        }
        var damaged = false
        for (_, f) in generations.sorted(by: { $0.0 > $1.0 }) {
            let size = Int(try f.size())
            guard size >= QueueState.headerSize else { continue }
            var raw = [UInt8](repeating: 0, count: size)
            let n = try raw.withUnsafeMutableBytes { try f.read(into: $0.baseAddress!, count: size, at: 0) }
            if let s = raw.withUnsafeBytes({ QueueState.decode(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }) { return s }
            damaged = true
        }
        // A copy is rewritten only after the other is whole, so two copies
        // that are both there and both unreadable are damage, not a torn write.
        if damaged && generations.count == 2 && files.allSatisfy({ ((try? $0.size()) ?? 0) >= Int64(QueueState.headerSize) }) {
            throw MQError.corrupt("corrupt work-queue state in \(directory) (both copies, a and b, fail their checks): restore them, or remove the directory to start the queue again from --from")
        }
        return QueueState()
    }

    /// Makes the stored state durable (`fdatasync` of both copies).
    public func sync() throws {
        for f in files { try f.sync() }
    }

    /// Runs `change` on the current state under the lock and stores the result.
    /// - Parameter durable: fdatasync the new state before unlocking.
    @discardableResult
    public func update<R>(durable: Bool, _ change: (inout QueueState) throws -> R) throws -> R {
        try lockFile.lock(exclusive: true)
        defer { lockFile.unlock() }
        var state = try read()
        let before = state
        let result = try change(&state)
        if state != before {
            state.generation = before.generation + 1
            let bytes = state.encode()
            let f = files[Int(state.generation % 2)]
            try bytes.withUnsafeBytes { try f.write($0, at: 0) }
            try f.truncate(to: Int64(bytes.count))
            if durable { try f.sync() }
        }
        return result
    }
}
