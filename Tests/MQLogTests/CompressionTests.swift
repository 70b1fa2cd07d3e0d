import Foundation
import Testing
@testable import MQLog

@Suite struct CompressionTests {
    static let codecs: [CompressionCodec] = [.gzip, .snappy, .lz4, .zstd]

    // MARK: Inputs

    /// Deterministic pseudo-random bytes (SplitMix64).
    static func randomBytes(_ count: Int, seed: UInt64) -> [UInt8] {
        var state = seed
        var bytes = [UInt8]()
        bytes.reserveCapacity(count)
        while bytes.count < count {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            withUnsafeBytes(of: z) { bytes.append(contentsOf: $0.prefix(count - bytes.count)) }
        }
        return bytes
    }

    static func compressible(_ count: Int) -> [UInt8] {
        var text = [UInt8]()
        var i = 0
        while text.count < count {
            text += Array("{\"offset\":\(i),\"key\":\"user-\(i % 97)\",\"value\":\"hello, world\"}\n".utf8)
            i += 1
        }
        return Array(text.prefix(count))
    }

    /// Random and compressible stretches alternating, 300 KiB: several blocks of every
    /// codec, some stored uncompressed.
    static let mixed: [UInt8] = {
        var bytes = [UInt8]()
        for part in 0..<6 {
            bytes += part % 2 == 0 ? compressible(50 * 1024) : randomBytes(50 * 1024, seed: UInt64(part))
        }
        return bytes
    }()

    static let inputs: [(String, [UInt8])] = [
        ("empty", []),
        ("one byte", [0x42]),
        ("random 10 KiB", randomBytes(10 * 1024, seed: 7)),
        ("compressible 100 KiB", compressible(100 * 1024)),
        ("mixed 300 KiB", mixed),
    ]

    // MARK: Helpers

    static func compress(_ codec: CompressionCodec, _ input: [UInt8], level: Int32? = nil) throws -> [UInt8] {
        let output = GrowableBytes()
        try input.withUnsafeBytes { try Compression.compress(codec, $0, into: output, level: level) }
        return output.array
    }

    static func decompress(_ codec: CompressionCodec, _ input: [UInt8], limit: Int = 64 << 20) throws -> [UInt8] {
        let output = GrowableBytes()
        try input.withUnsafeBytes { try Compression.decompress(codec, $0, into: output, limit: limit) }
        return output.array
    }

    /// The `CompressionError` that `body` throws; any other error is a test failure.
    static func error(_ body: () throws -> Void) -> CompressionError? {
        do {
            try body()
        } catch let error as CompressionError {
            return error
        } catch {
            Issue.record("unexpected error: \(error)")
        }
        return nil
    }

    static func rotl(_ x: UInt32, _ r: UInt32) -> UInt32 { x << r | x >> (32 - r) }

    static var fixtures: URL {
        Bundle.module.url(forResource: "Fixtures", withExtension: nil)!.appendingPathComponent("compression")
    }

    static func fixture(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    // MARK: Round trips

    @Test(arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func roundTrip(_ codec: CompressionCodec) throws {
        for (name, input) in Self.inputs {
            let compressed = try Self.compress(codec, input)
            let restored = try Self.decompress(codec, compressed, limit: input.count)
            #expect(restored == input, "\(codec.name) \(name)")
        }
    }

    @Test(arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func appendsAfterExistingBytes(_ codec: CompressionCodec) throws {
        let prefix: [UInt8] = [1, 2, 3]
        let output = GrowableBytes(capacity: 16)
        output.append(prefix)
        try Self.mixed.withUnsafeBytes { try Compression.compress(codec, $0, into: output, level: nil) }
        let compressed = Array(output.array.dropFirst(3))
        #expect(Array(output.array.prefix(3)) == prefix)

        let restored = GrowableBytes(capacity: 16)
        restored.append(prefix)
        try compressed.withUnsafeBytes { try Compression.decompress(codec, $0, into: restored, limit: Self.mixed.count) }
        #expect(restored.array == prefix + Self.mixed)
    }

    @Test func levels() throws {
        let cases: [(CompressionCodec, [Int32])] = [
            (.gzip, [-1, 1, 6, 9]),
            (.lz4, [1, 2, 3, 9, 12, 17]),
            (.zstd, [-5, 0, 1, 3, 19]),
            (.snappy, [5]),  // no levels: ignored
        ]
        for (codec, levels) in cases {
            for level in levels {
                let compressed = try Self.compress(codec, Self.mixed, level: level)
                #expect(try Self.decompress(codec, compressed) == Self.mixed, "\(codec.name) level \(level)")
            }
        }
        #expect(Compression.defaultLevel(for: .gzip) == 6)
        #expect(Compression.defaultLevel(for: .lz4) == 9)
        #expect(Compression.defaultLevel(for: .zstd) == 3)
        #expect(Compression.defaultLevel(for: .snappy) == nil)
        #expect(Compression.levelRange(for: .zstd)?.upperBound == 22)
    }

    @Test func invalidLevelsAreRejected() {
        let bad: [(CompressionCodec, Int32)] = [(.gzip, 0), (.gzip, 10), (.lz4, 0), (.lz4, 18), (.zstd, 23)]
        for (codec, level) in bad {
            let output = GrowableBytes()
            let error = Self.error {
                try [UInt8](repeating: 1, count: 100).withUnsafeBytes { raw in
                    try Compression.compress(codec, raw, into: output, level: level)
                }
            }
            #expect(error?.kind == .invalidLevel, "\(codec.name) level \(level)")
            #expect(output.count == 0)
        }
    }

    @Test func lz4HighCompressionLevelsCompressBetter() throws {
        let input = Self.compressible(256 * 1024)
        let fast = try Self.compress(.lz4, input)
        let high = try Self.compress(.lz4, input, level: 12)
        #expect(high.count < fast.count)
        #expect(Array(high.prefix(7)) == Array(fast.prefix(7)))
    }

    // MARK: Framing

    @Test func snappyUsesXerialFraming() throws {
        let header: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00, 0, 0, 0, 1, 0, 0, 0, 1]
        #expect(try Self.compress(.snappy, []) == header)

        let input = Self.mixed
        let framed = try Self.compress(.snappy, input)
        #expect(Array(framed.prefix(16)) == header)
        // Walk the blocks: [int32 BE length][snappy block], each from at most 32 KiB of input.
        var position = 16
        var sizes = [Int]()
        while position < framed.count {
            let length = framed[position..<position + 4].reduce(0) { $0 << 8 | Int($1) }
            position += 4
            // A raw snappy block starts with its uncompressed length as a varint.
            var size = 0, shift = 0, i = position
            while true {
                size |= Int(framed[i] & 0x7F) << shift
                shift += 7
                if framed[i] & 0x80 == 0 { break }
                i += 1
            }
            sizes.append(size)
            position += length
        }
        #expect(position == framed.count)
        #expect(sizes == Array(repeating: 32 * 1024, count: input.count / (32 * 1024)) + [input.count % (32 * 1024)])
    }

    /// XXH32 of a short input (under 16 bytes), seed 0: the LZ4 frame header checksum.
    static func xxh32Short(_ bytes: [UInt8]) -> UInt32 {
        let p1: UInt32 = 2_654_435_761, p2: UInt32 = 2_246_822_519, p3: UInt32 = 3_266_489_917
        let p4: UInt32 = 668_265_263, p5: UInt32 = 374_761_393
        precondition(bytes.count < 16)
        var h = p5 &+ UInt32(bytes.count)
        var i = 0
        while i + 4 <= bytes.count {
            let word = UInt32(bytes[i]) | UInt32(bytes[i + 1]) << 8 | UInt32(bytes[i + 2]) << 16 | UInt32(bytes[i + 3]) << 24
            h = rotl(h &+ word &* p3, 17) &* p4
            i += 4
        }
        while i < bytes.count {
            h = rotl(h &+ UInt32(bytes[i]) &* p5, 11) &* p1
            i += 1
        }
        h ^= h >> 15; h = h &* p2
        h ^= h >> 13; h = h &* p3
        h ^= h >> 16
        return h
    }

    @Test func lz4UsesKafkasFrameHeader() throws {
        // Magic, FLG 0x60 (version 01, independent blocks), BD 0x40 (64 KiB), header checksum.
        let checksum = UInt8((Self.xxh32Short([0x60, 0x40]) >> 8) & 0xFF)
        #expect(checksum == 0x82)
        let header: [UInt8] = [0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, checksum]
        #expect(try Self.compress(.lz4, []) == header + [0, 0, 0, 0])

        let input = Self.mixed
        for level: Int32? in [nil, 12] {
            let frame = try Self.compress(.lz4, input, level: level)
            #expect(Array(frame.prefix(7)) == header)
            // Blocks of at most 64 KiB, no block checksums, then the end mark.
            var position = 7
            var blocks = 0, stored = 0
            while true {
                let word = frame[position..<position + 4].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
                position += 4
                if word == 0 { break }
                let size = Int(word & 0x7FFF_FFFF)
                #expect(size <= 64 * 1024)
                if word & 0x8000_0000 != 0 { stored += 1 }
                blocks += 1
                position += size
            }
            #expect(position == frame.count, "no content checksum after the end mark")
            #expect(blocks == (input.count + 65535) / 65536)
            #expect(stored > 0, "incompressible blocks are stored as they are")
        }
    }

    @Test func gzipAndZstdMagic() throws {
        let gzip = try Self.compress(.gzip, Self.mixed)
        #expect(Array(gzip.prefix(4)) == [0x1F, 0x8B, 0x08, 0x00])
        let zstd = try Self.compress(.zstd, Self.mixed)
        #expect(Array(zstd.prefix(4)) == [0x28, 0xB5, 0x2F, 0xFD])
    }

    // MARK: Interoperability

    static let fixtureFiles: [(String, CompressionCodec)] = [
        ("gzip.bin", .gzip), ("gzip-multimember.bin", .gzip),
        ("snappy.bin", .snappy), ("snappy-raw.bin", .snappy), ("snappy-concatenated.bin", .snappy),
        ("lz4.bin", .lz4), ("lz4-checksums.bin", .lz4),
        ("zstd.bin", .zstd), ("zstd-streamed.bin", .zstd),
    ]

    @Test func decodesFixturesFromKafkaPython() throws {
        let payload = try Self.fixture("payload.bin")
        #expect(payload.count > 64 * 1024)
        for (name, codec) in Self.fixtureFiles {
            let compressed = try Self.fixture(name)
            #expect(try Self.decompress(codec, compressed, limit: payload.count) == payload, "\(name)")
            let error = Self.error {
                _ = try Self.decompress(codec, compressed, limit: payload.count - 1)
            }
            #expect(error?.kind == .limitExceeded, "\(name)")
        }
    }

    /// Runs a program; returns its exit status and combined output, or nil if it could not start.
    static func run(_ arguments: [String]) -> (status: Int32, output: String)? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        do { try process.run() } catch { return nil }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test func kafkaPythonDecodesOurOutput() throws {
        let probe = Self.run(["python3", "-c", "import kafka.codec, lz4.frame, snappy, zstandard"])
        guard let probe, probe.status == 0 else {
            Issue.record("""
                python3 with kafka-python, lz4, python-snappy and zstandard is needed to check that \
                another implementation reads mq's compressed output (pip install kafka-python lz4 \
                python-snappy zstandard): \(probe?.output ?? "python3 did not start")
                """)
            return
        }
        let directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("mq-compression-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        let high: [CompressionCodec: Int32] = [.gzip: 9, .lz4: 12, .zstd: 19]  // lz4 12: LZ4HC
        let cases: [(String, [UInt8], [CompressionCodec: Int32])] = [
            ("fixture", try Self.fixture("payload.bin"), [:]),
            ("mixed", Self.mixed, [:]),
            ("one-byte", [0x42], [:]),
            ("high-levels", Self.mixed, high),
        ]
        for (name, payload, levels) in cases {
            try Data(payload).write(to: directory.appendingPathComponent("\(name).payload"))
            for codec in Self.codecs {
                let compressed = try Self.compress(codec, payload, level: levels[codec])
                try Data(compressed).write(to: directory.appendingPathComponent("\(name).\(codec.name)"))
            }
        }
        let script = Self.fixtures.appendingPathComponent("check_decode.py").path
        let result = Self.run(["python3", script, directory.path])
        #expect(result?.status == 0, "check_decode.py: \(result?.output ?? "did not start")")
    }

    // MARK: Damaged input

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func truncatedInputThrows(_ codec: CompressionCodec) throws {
        let compressed = try Self.compress(codec, Self.mixed)
        for cut in [0, 1, 5, 12, compressed.count / 2, compressed.count - 1] {
            let output = GrowableBytes()
            let error = Self.error {
                try Array(compressed.prefix(cut)).withUnsafeBytes { raw in
                    try Compression.decompress(codec, raw, into: output, limit: 1 << 30)
                }
            }
            #expect(error != nil, "\(codec.name) cut at \(cut) of \(compressed.count)")
            #expect(error?.codec == codec)
            #expect(output.count == 0, "output left as it was")
        }
    }

    @Test func corruptInputThrows() throws {
        func expectCorrupt(_ codec: CompressionCodec, _ bytes: [UInt8], _ what: String,
                           _ kinds: [CompressionError.Kind] = [.corrupt]) {
            let error = Self.error { _ = try Self.decompress(codec, bytes) }
            #expect(error.map { kinds.contains($0.kind) } == true, "\(codec.name) \(what): \(String(describing: error))")
            if let error { #expect(error.description.hasPrefix("\(codec.name): ")) }
        }
        let input = Self.mixed
        let garbage = Array("this is not compressed data, not at all, not even a little".utf8)
        for codec in Self.codecs {
            expectCorrupt(codec, garbage, "garbage")
        }

        var gzip = try Self.compress(.gzip, input)
        gzip[gzip.count - 6] ^= 0x01  // CRC-32 in the trailer
        expectCorrupt(.gzip, gzip, "bad CRC")

        let snappy = try Self.compress(.snappy, input)
        var negative = snappy
        negative[16] = 0xFF  // first block length negative
        expectCorrupt(.snappy, negative, "negative block length")
        var damaged = snappy
        for i in 23..<28 { damaged[i] = 0xFF }  // first tag: a copy from before the start
        expectCorrupt(.snappy, damaged, "damaged block")
        var long = snappy
        long[17] = 0x7F  // first block longer than the input
        expectCorrupt(.snappy, long, "block past the end", [.truncated])

        let lz4 = try Self.compress(.lz4, input)
        var magic = lz4
        magic[0] = 0x05
        expectCorrupt(.lz4, magic, "bad magic")
        var headerChecksum = lz4
        headerChecksum[6] ^= 0xFF
        expectCorrupt(.lz4, headerChecksum, "bad header checksum")
        var blockSize = lz4
        blockSize.replaceSubrange(7..<11, with: [0xFF, 0xFF, 0x0F, 0x00])  // 1 MiB block in a 64 KiB frame
        expectCorrupt(.lz4, blockSize, "bad block size")
        var trailing = lz4
        trailing += [1, 2, 3, 4, 5, 6, 7, 8]
        expectCorrupt(.lz4, trailing, "garbage after the frame")

        var zstd = try Self.compress(.zstd, input)
        zstd[0] = 0x29
        expectCorrupt(.zstd, zstd, "bad magic")
        var zstdTrailing = try Self.compress(.zstd, input)
        zstdTrailing += Array(repeating: 0xAB, count: 32)
        expectCorrupt(.zstd, zstdTrailing, "garbage after the frame")
    }

    @Test func lz4ErrorMessage() {
        let error = Self.error {
            _ = try Self.decompress(.lz4, [0x04, 0x22, 0x4D, 0x18, 0x60, 0x40, 0x82, 0xFF, 0xFF, 0x0F, 0x00])
        }
        #expect(error?.description == "lz4: corrupt frame (bad block size)")
    }

    @Test(arguments: [CompressionCodec.none, .gzip, .snappy, .lz4, .zstd])
    func limitIsEnforced(_ codec: CompressionCodec) throws {
        let input = Self.mixed
        let compressed = try Self.compress(codec, input)
        #expect(try Self.decompress(codec, compressed, limit: input.count) == input)
        for limit in [0, 1, 1000, input.count - 1] {
            let output = GrowableBytes()
            let error = Self.error {
                try compressed.withUnsafeBytes { raw in
                    try Compression.decompress(codec, raw, into: output, limit: limit)
                }
            }
            #expect(error?.kind == .limitExceeded, "\(codec.name) limit \(limit)")
            #expect(output.count == 0)
        }
    }

    @Test(arguments: [CompressionCodec.gzip, .snappy, .lz4, .zstd])
    func bombStopsAtTheLimit(_ codec: CompressionCodec) throws {
        let zeros = [UInt8](repeating: 0, count: 64 << 20)
        let compressed = try Self.compress(codec, zeros)
        #expect(compressed.count < zeros.count / 10)
        let output = GrowableBytes()
        let error = Self.error {
            try compressed.withUnsafeBytes { raw in
                try Compression.decompress(codec, raw, into: output, limit: 1 << 20)
            }
        }
        #expect(error?.kind == .limitExceeded)
        #expect(error?.description == "\(codec.name): decompressed size exceeds the limit of 1048576 bytes")
        #expect(output.capacity <= 4 << 20, "the decoder never held much more than the limit")
    }

    @Test func emptyInputIsTruncated() throws {
        for codec in Self.codecs {
            let error = Self.error { _ = try Self.decompress(codec, []) }
            #expect(error?.kind == .truncated, "\(codec.name)")
        }
        #expect(try Self.decompress(.none, []) == [])
    }

    // MARK: Concurrency

    @Test func concurrentCallsShareContextsSafely() async throws {
        let input = Self.mixed
        try await withThrowingTaskGroup(of: Bool.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var ok = true
                    for round in 0..<6 {
                        let codec = Self.codecs[(task + round) % Self.codecs.count]
                        let level: Int32? = codec == .gzip && round % 2 == 1 ? 1 : nil
                        let compressed = try Self.compress(codec, input, level: level)
                        let restored = try Self.decompress(codec, compressed)
                        ok = ok && restored == input
                    }
                    return ok
                }
            }
            for try await ok in group { #expect(ok) }
        }
    }
}
