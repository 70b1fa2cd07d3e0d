import Glibc
@testable import MQLog

/// A private directory for the targets that read files, emptied per input:
/// under `MQ_FUZZ_SCRATCH` (Fuzz/run.sh makes one on /dev/shm and removes it
/// afterwards, with the directories of processes that crashed), else on
/// /dev/shm when there is one, so that an input costs no disk I/O.
enum Scratch {
    static let directory: String = {
        let parent = environment("MQ_FUZZ_SCRATCH")
            ?? (FileSystem.isDirectory("/dev/shm") ? "/dev/shm" : (environment("TMPDIR") ?? "/tmp"))
        let dir = parent + "/mq-fuzz.\(getpid())"
        _ = try? FileSystem.makeDirectories(dir)
        atexit { _ = try? FileSystem.removeTree(Scratch.directory) }
        return dir
    }()

    /// A fresh, empty subdirectory `name`.
    static func empty(_ name: String) -> String {
        let dir = directory + "/" + name
        _ = try? FileSystem.removeTree(dir)
        _ = try? FileSystem.makeDirectories(dir)
        return dir
    }

    static func write(_ path: String, _ bytes: some Collection<UInt8>) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { fatalError("fuzz harness: cannot create \(path)") }
        Array(bytes).withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                guard n > 0 else { fatalError("fuzz harness: cannot write \(path)") }
                done += n
            }
        }
        close(fd)
    }
}

/// Splits a payload into length-prefixed parts (u16 little-endian lengths).
struct PartReader {
    var bytes: ArraySlice<UInt8>
    mutating func byte() -> UInt8 {
        guard let b = bytes.first else { return 0 }
        bytes = bytes.dropFirst()
        return b
    }
    mutating func part() -> ArraySlice<UInt8> {
        let n = Int(byte()) | Int(byte()) << 8
        let p = bytes.prefix(n)
        bytes = bytes.dropFirst(p.count)
        return p
    }
}

extension Targets {
    /// One partition directory made from the input, read the ways mq reads one.
    ///
    /// Payload: an options byte, then `head`, `.index` and `.timeindex` as
    /// u16-length-prefixed parts, then the rest is the segment's `.log`.
    /// Options: bit 0 writes `head` (else there is none), bit 1 takes the
    /// segment's base offset from the first batch (else 0), bit 2 reads
    /// uncommitted, bit 3 makes the segment count as active for the check.
    static func partition(_ payload: inout [UInt8], _ input: FuzzInput) {
        var parts = PartReader(bytes: payload[...])
        let options = parts.byte()
        var head = Array(parts.part())
        let index = parts.part()
        let timeIndex = parts.part()
        var log = Array(parts.bytes)
        if input.fixChecksums {
            if head.count >= 124 { storeCRC(&head, over: 0..<120, at: 120) }
            fixBatchCRCs(&log)
        }
        var base: Int64 = 0
        if options & 2 != 0 && log.count >= 8 {
            base = max(0, log.withUnsafeBytes { loadBE($0.baseAddress!, 0, as: Int64.self) })
        }
        let dir = Scratch.empty("partition")
        if options & 1 != 0 { Scratch.write(LogSegments.headPath(dir), head) }
        Scratch.write(Segment(dir, base).logPath, log)
        Scratch.write(Segment(dir, base).indexPath, index)
        Scratch.write(Segment(dir, base).timeIndexPath, timeIndex)
        let target = base &+ Int64(input.parameter)
        let time = Int64(input.parameter) << 8

        let reader = PartitionReader(directory: dir)
        var batches = 0
        while batches < 4096, let (header, bytes) = try? reader.nextBatch() {
            decodeRecords(header, bytes)
            batches += 1
        }
        _ = try? reader.logStartOffset()
        _ = try? reader.logEndOffset()
        _ = try? reader.offset(forTime: time)
        if (try? reader.seek(toOffset: target)) != nil {
            _ = try? reader.nextBatch()
        }

        let isolation: ReadIsolation = options & 4 != 0 ? .readUncommitted : .readCommitted
        if let cursor = try? PartitionCursor(partition: 0, directory: dir, startOffset: target, isolation: isolation) {
            var records = 0
            while records < 100_000, let r = try? cursor.peek() {
                touch(r.key)
                touch(r.value)
                cursor.advance()
                records += 1
            }
        }

        if let scanner = try? SegmentScanner.open(Segment(dir, base).logPath) {
            var steps = 0
            scan: while steps < 4096, let step = try? scanner.next() {
                steps += 1
                switch step {
                case .batch(_, let header, let bytes): decodeRecords(header, bytes)
                case .end, .problem: break scan
                }
            }
        }
        if let scanner = try? SegmentScanner.open(Segment(dir, base).logPath) {
            var steps = 0
            scan: while steps < 4096, let step = try? scanner.nextHeader() {
                steps += 1
                if case .batch = step { continue }
                break scan
            }
        }

        let check = LogCheck(log: LogDirectory(root: Scratch.directory), repair: false)
        _ = LogCheck.committedEnd(dir, base)
        if let scan = try? check.scanSegment(Segment(dir, base).logPath, base: base, nextBase: nil, after: nil, label: "fuzz") {
            check.checkIndexes(dir, base, scan: scan, label: "fuzz", active: options & 8 != 0)
        }
    }

    /// A dedup store's `ids` file (48-byte entries), refreshed, looked up
    /// and (parameter bit 0) trimmed.
    static func dedupStore(_ payload: inout [UInt8], _ input: FuzzInput) {
        let size = DedupStore.entrySize
        if input.fixChecksums {
            for start in stride(from: 0, to: payload.count - size + 1, by: size) {
                storeCRC(&payload, over: start..<start + 40, at: start + 40)
            }
        }
        let dir = Scratch.empty("dedup")
        Scratch.write(dir + "/ids", payload)
        guard let store = try? DedupStore(directory: dir, windowMs: Int64(input.parameter) * 1000 + 1) else { return }
        store.recoverPartition = { _ in nil }
        let now = currentTimeMillis()
        _ = try? store.withLock {
            for start in stride(from: 0, to: payload.count - size + 1, by: size) {
                let hash = payload.withUnsafeBytes {
                    IDHash(hi: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: start + 8, as: UInt64.self)),
                           lo: UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: start + 16, as: UInt64.self)))
                }
                blackHole(store.lookup(hash, nowMs: now))
            }
        }
        if input.parameter & 1 != 0 { try? store.trim() }
        _ = try? DedupStore.housekeep(directory: dir, now: now, dryRun: input.parameter & 2 != 0)
    }
}
