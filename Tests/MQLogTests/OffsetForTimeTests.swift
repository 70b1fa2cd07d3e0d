import Testing
import Glibc
@testable import MQLog

/// `PartitionReader.offset(forTime:)` against a brute-force walk of what was
/// written: timestamps that go back and forth, several segments, indexes
/// that point close to the answer, and indexes that lie.
@Suite struct OffsetForTimeTests {
    /// The batches written: each one's records' timestamps, in offset order.
    struct Written {
        var batches: [[Int64]] = []

        /// Kafka's answer: the first record at or after `time` of the first
        /// batch whose largest timestamp is at or after it, else the end.
        func offset(forTime time: Int64) -> Int64 {
            var offset: Int64 = 0
            for batch in batches {
                if batch.max()! >= time { return offset + Int64(batch.firstIndex { $0 >= time }!) }
                offset += Int64(batch.count)
            }
            return offset
        }

        var timestamps: [Int64] { batches.flatMap { $0 } }
    }

    /// Writes `batches` batches of 1 to 4 records whose timestamps drift
    /// upwards with jumps back, in small segments with dense indexes.
    static func write(_ dir: String, batches: Int, seed: UInt64) throws -> Written {
        var rng = SplitMix64(state: seed)
        let writer = try PartitionWriter(directory: dir, settings: .init(segmentBytes: 6000, indexIntervalBytes: 150))
        let builder = RecordBatchBuilder(codec: .none)
        let noHeaders = RecordBatchBuilder.encodeHeaders([])
        var written = Written()
        var clock: Int64 = 1_700_000_000_000
        for _ in 0..<batches {
            builder.reset()
            var stamps: [Int64] = []
            for _ in 0..<Int.random(in: 1...4, using: &rng) {
                clock += Int64.random(in: 0...50, using: &rng)
                // Now and then a record from well before, or from the future.
                let t = switch Int.random(in: 0..<10, using: &rng) {
                case 0: clock - Int64.random(in: 100...5_000, using: &rng)
                case 1: clock + Int64.random(in: 50...300, using: &rng)
                default: clock
                }
                stamps.append(t)
                let value = Array("m\(t)".utf8)
                value.withUnsafeBytes { v in noHeaders.withUnsafeBytes { h in
                    builder.append(timestamp: t, key: nil, value: v, headers: h)
                } }
            }
            _ = try builder.finish()
            try writer.append(builder.output)
            written.batches.append(stamps)
        }
        return written
    }

    /// Every timestamp written, one on each side of it, and beyond both ends.
    static func targets(_ written: Written) -> [Int64] {
        let stamps = Set(written.timestamps)
        return (stamps.flatMap { [$0 - 1, $0, $0 + 1] } + [stamps.min()! - 10_000, stamps.max()! + 10_000, .min, .max]).sorted()
    }

    @Test func matchesABruteForceWalk() throws {
        for seed: UInt64 in [1, 2, 3] {
            let dir = makeTempDirectory()
            defer { try? FileSystem.removeTree(dir) }
            let written = try Self.write(dir, batches: 600, seed: seed)
            let segments = try LogSegments.baseOffsets(in: dir)
            #expect(segments.count > 5)
            // The time indexes have entries to start from.
            #expect(segments.map { FileSystem.size(Segment(dir, $0).timeIndexPath) ?? 0 }.max()! > 4 * Int64(TimeIndex.entrySize))
            let shared = PartitionReader(directory: dir)
            let listed = PartitionReader(directory: dir, segments: segments)
            for time in Self.targets(written) {
                let expected = written.offset(forTime: time)
                #expect(try PartitionReader(directory: dir).offset(forTime: time) == expected, "seed \(seed), time \(time)")
                #expect(try shared.offset(forTime: time) == expected, "seed \(seed), time \(time), one reader")
                #expect(try listed.offset(forTime: time) == expected, "seed \(seed), time \(time), one listing")
            }
        }
    }

    @Test func damagedTimeIndexesFallBackToReading() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let written = try Self.write(dir, batches: 300, seed: 7)
        let segments = try LogSegments.baseOffsets(in: dir)
        let targets = Self.targets(written)
        let expected = targets.map { written.offset(forTime: $0) }
        var rng = SplitMix64(state: 99)
        let last = written.timestamps.max()!
        // Entries that claim early timestamps for late offsets (which would
        // skip the answer), random bytes, and entries shifted by one.
        let damages: [(Int, [UInt8]) -> [UInt8]] = [
            { i, bytes in
                var out = bytes
                for e in stride(from: 0, to: bytes.count - TimeIndex.entrySize + 1, by: TimeIndex.entrySize) {
                    let entry = TimeIndex.Entry(timestamp: 1_600_000_000_000 + Int64(e), relativeOffset: UInt32(1_000 + e))
                    out.withUnsafeMutableBytes { TimeIndex.encode(entry, into: $0.baseAddress! + e) }
                }
                return out
            },
            { _, bytes in bytes.map { _ in UInt8.random(in: 0...255, using: &rng) } },
            { _, bytes in Array(bytes.dropFirst(4)) + [0, 0, 0, 0] },
            { _, bytes in
                // The largest timestamp moved to an earlier, real batch.
                var out = bytes
                for e in stride(from: 0, to: bytes.count - TimeIndex.entrySize + 1, by: TimeIndex.entrySize) {
                    let entry = TimeIndex.Entry(timestamp: last + 1, relativeOffset: 0)
                    out.withUnsafeMutableBytes { TimeIndex.encode(entry, into: $0.baseAddress! + e) }
                }
                return out
            },
        ]
        let originals = try segments.map { try FileSystem.readAll(Segment(dir, $0).timeIndexPath) }
        for (d, damage) in damages.enumerated() {
            for (i, base) in segments.enumerated() {
                let damaged = damage(i, originals[i])
                let f = try OpenFile.open(Segment(dir, base).timeIndexPath, O_WRONLY | O_TRUNC)
                try damaged.withUnsafeBytes { try f.write($0, at: 0) }
                f.close()
            }
            let reader = PartitionReader(directory: dir, segments: segments)
            for (time, answer) in zip(targets, expected) {
                #expect(try reader.offset(forTime: time) == answer, "damage \(d), time \(time)")
            }
        }
    }
}
