import Testing
@testable import MQLog

@Suite struct CRC32CTests {
    // Check values from RFC 3720 (iSCSI), appendix B.4, and the common "123456789" vector.
    @Test func knownVectors() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32C.checksum((0..<32).map { UInt8($0) }) == 0x46DD_794E)
        #expect(CRC32C.checksum([]) == 0)
    }

    @Test func hardwareAndSoftwareAgreeAtEveryLengthAndAlignment() {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<1100).map { _ in UInt8.random(in: 0...255, using: &rng) }
        for start in 0..<9 {
            for length in [0, 1, 7, 8, 9, 31, 32, 33, 100, 1000] where start + length <= data.count {
                let slice = Array(data[start..<start + length])
                #expect(CRC32C.checksum(slice) == CRC32C.softwareChecksum(slice))
            }
        }
    }

    /// Large buffers run as three joined streams: lengths around every block
    /// boundary, and a megabyte, must match the table path.
    @Test func hardwareAndSoftwareAgreeAcrossTheThreeStreamBlocks() {
        var rng = SystemRandomNumberGenerator()
        let data = (0..<(1 << 20) + 9).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var lengths = [1 << 20]
        for boundary in [3 * 1024, 3 * 4096, 2 * 3 * 4096 + 3 * 1024] {
            lengths += [boundary - 9, boundary - 1, boundary, boundary + 1, boundary + 8, boundary + 1000]
        }
        for start in [0, 3] {
            for length in lengths {
                let slice = Array(data[start..<start + length])
                #expect(CRC32C.checksum(slice, extending: 0x1234_5678) == CRC32C.softwareChecksum(slice, extending: 0x1234_5678), "length \(length)")
            }
        }
    }

    @Test func extendingEqualsWhole() {
        let a = Array("hello, ".utf8), b = Array("world".utf8)
        #expect(CRC32C.checksum(b, extending: CRC32C.checksum(a)) == CRC32C.checksum(a + b))
    }
}
