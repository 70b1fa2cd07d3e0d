import Foundation
import Testing
@testable import MQLog


private func hash(_ bytes: [UInt8]) -> Int32 { bytes.withUnsafeBytes { Partitioner.murmur2($0) } }
private func partition(_ bytes: [UInt8], _ n: Int32) -> Int32 {
    bytes.withUnsafeBytes { Partitioner.partition(forKey: $0, partitions: n) }
}

@Suite struct PartitionerTests {
    /// The vectors of Kafka's own `UtilsTest.testMurmur2`.
    @Test(arguments: [
        ("21", -973_932_308),
        ("foobar", -790_332_482),
        ("a-little-bit-long-string", -985_981_536),
        ("a-little-bit-longer-string", -1_486_304_829),
        ("lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8", -58_897_971),
        ("abc", 479_470_107),
    ] as [(String, Int32)])
    func kafkaVectors(_ key: String, _ expected: Int32) {
        #expect(hash(Array(key.utf8)) == expected)
    }

    /// Tail bytes at or above 0x80 are taken unsigned (Java masks them with
    /// `& 0xff`); values from kafka-python 3.0.
    @Test func highBytesAndEmptyKey() {
        #expect(hash([]) == 275_646_681)
        #expect(hash([0xFF]) == -311_467_685)
        #expect(hash([0x80, 0x81, 0x82]) == -1_975_640_061)
        #expect(hash([0xFF, 0xFE, 0xFD, 0xFC, 0xFB]) == 524_068_735)
    }

    @Test func partitionIsToPositiveModuloCount() {
        // "21" hashes to -973932308; & 0x7fffffff = 1173551340.
        #expect(partition(Array("21".utf8), 1) == 0)
        #expect(partition(Array("21".utf8), 7) == Int32(1_173_551_340 % 7))
        #expect(partition(Array("21".utf8), 1000) == 340)
        #expect(partition(Array("abc".utf8), 12) == Int32(479_470_107 % 12))
        var rng = SplitMix64(state: 7)
        for _ in 0..<500 {
            let key = (0..<Int.random(in: 0...20, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let n = Int32.random(in: 1...64, using: &rng)
            #expect((0..<n).contains(partition(key, n)))
        }
    }

    /// 1000 random keys agree with kafka-python's murmur2 (a port of the Java
    /// client's) on hash and partition.
    @Test func agreesWithKafkaPython() throws {
        var rng = SplitMix64(state: 0x4B41_464B_41)
        let keys: [[UInt8]] = (0..<1000).map { i in
            (0..<(i % 70)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        }
        let counts: [Int32] = [1, 3, 7, 12, 100, 2_147_483_647]
        let script = """
            import sys
            try:
                from kafka.partitioner.default import murmur2
            except ImportError:
                try:
                    from kafka.partitioner.hashed import murmur2
                except ImportError as e:
                    sys.stderr.write("kafka-python is not installed for this python3: %s\\n" % e)
                    sys.exit(3)
            counts = [int(c) for c in sys.argv[1:]]
            for line in sys.stdin:
                h = murmur2(bytes.fromhex(line.strip()))
                parts = [str((h & 0x7fffffff) % n) for n in counts]
                if h >= 2**31: h -= 2**32
                print(h, *parts)
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", script] + counts.map { String($0) }
        let input = Pipe(), output = Pipe(), errors = Pipe()
        process.standardInput = input
        process.standardOutput = output
        process.standardError = errors
        do {
            try process.run()
        } catch {
            Issue.record("cannot run python3 (needed to cross-check murmur2 with kafka-python): \(error)")
            return
        }
        let hexLines = keys.map { key in key.map { String(format: "%02x", $0) }.joined() + "\n" }.joined()
        // Write on another thread so a full pipe cannot block both sides.
        let writer = Thread {
            input.fileHandleForWriting.write(Data(hexLines.utf8))
            try? input.fileHandleForWriting.close()
        }
        writer.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let problems = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            Issue.record("python3 with kafka-python is needed for this cross-check (pip install kafka-python); python3 exited with \(process.terminationStatus): \(problems)")
            return
        }
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        try #require(lines.count == keys.count, "python3 printed \(lines.count) lines for \(keys.count) keys")
        var mismatches = 0
        for (key, line) in zip(keys, lines) {
            let fields = line.split(separator: " ").map { Int64($0)! }
            let expected = [Int64(hash(key))] + counts.map { Int64(partition(key, $0)) }
            if fields != expected {
                mismatches += 1
                if mismatches <= 5 { Issue.record("key \(key): kafka-python \(fields), ours \(expected)") }
            }
        }
        #expect(mismatches == 0)
    }
}
