import Testing
@testable import MQLog


private func valid(_ bytes: [UInt8]) -> Bool { bytes.withUnsafeBytes { isValidUTF8($0) } }

@Suite struct UTF8ValidationTests {
    @Test(arguments: [
        [], Array("hello, world".utf8), Array("héllo €uro 😀".utf8),
        [0x7F], [0xC2, 0x80], [0xDF, 0xBF], [0xE0, 0xA0, 0x80], [0xED, 0x9F, 0xBF],
        [0xEE, 0x80, 0x80], [0xEF, 0xBF, 0xBF], [0xF0, 0x90, 0x80, 0x80], [0xF4, 0x8F, 0xBF, 0xBF],
    ] as [[UInt8]])
    func acceptsWellFormed(_ bytes: [UInt8]) {
        #expect(valid(bytes))
        #expect(valid(Array("0123456789abcdef".utf8) + bytes + Array("xyz".utf8)))
    }

    @Test(arguments: [
        [0x80], [0xBF], [0xC0, 0x80], [0xC1, 0xBF],            // stray continuation, overlong 2-byte
        [0xE0, 0x80, 0x80], [0xE0, 0x9F, 0xBF],                // overlong 3-byte
        [0xF0, 0x80, 0x80, 0x80], [0xF0, 0x8F, 0xBF, 0xBF],    // overlong 4-byte
        [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],                // surrogates U+D800, U+DFFF
        [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80],    // past U+10FFFF
        [0xF8, 0x88, 0x80, 0x80, 0x80], [0xFE], [0xFF],
        [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98],              // truncated
        [0xC3, 0x41], [0xE2, 0x28, 0xA1], [0xF0, 0x9F, 0x41, 0x80],
    ] as [[UInt8]])
    func rejectsIllFormed(_ bytes: [UInt8]) {
        #expect(!valid(bytes))
        #expect(!valid(Array("0123456789abcdef".utf8) + bytes))
        #expect(!valid(bytes + Array("0123456789abcdef".utf8)))
    }

    /// A bad byte at every position around the 8-byte fast-path boundaries.
    @Test func findsABadByteAtEveryPosition() {
        for length in [1, 7, 8, 9, 15, 16, 17, 33] {
            for position in 0..<length {
                var bytes = [UInt8](repeating: UInt8(ascii: "a"), count: length)
                bytes[position] = 0xFF
                #expect(!valid(bytes), "0xFF at \(position) of \(length)")
                bytes[position] = 0x7F
                #expect(valid(bytes))
            }
        }
    }

    /// Agrees with the standard library's decoder on random near-UTF-8 input.
    @Test func agreesWithStandardLibrary() {
        var rng = SplitMix64(state: 0x5EED_0001)
        var rejected = 0
        for _ in 0..<20_000 {
            var bytes: [UInt8] = []
            for _ in 0..<Int.random(in: 0...12, using: &rng) {
                switch Int.random(in: 0..<6, using: &rng) {
                case 0: bytes.append(UInt8.random(in: 0...255, using: &rng))
                case 1: bytes.append(UInt8.random(in: 0x80...0xBF, using: &rng))
                case 2: bytes.append(UInt8.random(in: 0xC0...0xFF, using: &rng))
                default:
                    let scalar = Unicode.Scalar(UInt32.random(in: 0...0x10FFFF, using: &rng)) ?? "x"
                    bytes += Array(String(scalar).utf8)
                }
            }
            let expected = String(validating: bytes, as: UTF8.self) != nil
            if !expected { rejected += 1 }
            #expect(valid(bytes) == expected, "\(bytes)")
        }
        #expect(rejected > 1_000, "the generator should produce plenty of ill-formed input")
    }
}
