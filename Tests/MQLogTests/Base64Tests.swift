import Foundation
import Testing
@testable import MQLog


@Suite struct Base64Tests {
    // RFC 4648 section 10.
    static let vectors: [(String, String)] = [
        ("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"),
        ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy"),
    ]

    @Test func rfc4648Vectors() {
        for (plain, encoded) in Self.vectors {
            #expect(Base64.encode(Array(plain.utf8)) == encoded)
            #expect(Base64.decode(encoded) == Array(plain.utf8))
        }
    }

    @Test func decodesWithoutPadding() {
        #expect(Base64.decode("Zg") == Array("f".utf8))
        #expect(Base64.decode("Zm8") == Array("fo".utf8))
        #expect(Base64.decode("Zm9vYmE") == Array("fooba".utf8))
        #expect(Base64.decode("/wA") == [0xFF, 0x00])
    }

    @Test(arguments: [
        "Z", "Zm9vY", "Zg=", "Zg===", "Z===", "====", "=", "Zm9v!", "Zm 9v", "Zm9v\n",
        "Zh==", "Zm9=", "Zg==Zg==", "=Zg=", "-_8=", "Zm8=Zm8=",
    ])
    func rejectsInvalid(_ text: String) {
        #expect(Base64.decode(text) == nil)
    }

    @Test func encodeAppendsToExistingContents() {
        let out = GrowableBytes(capacity: 16)
        out.append("x:")
        [UInt8](repeating: 0xFF, count: 100).withUnsafeBytes { Base64.encode($0, into: out) }
        let text = String(decoding: out.bytes, as: UTF8.self)
        #expect(text.hasPrefix("x:////"))
        #expect(text.hasSuffix("/w=="))
        #expect(out.count == 2 + Base64.encodedCount(100))
    }

    /// Matches Foundation on random data, and decodes back.
    @Test func randomRoundTripAgreesWithFoundation() {
        var rng = SplitMix64(state: 0xBA5E_64)
        for _ in 0..<2_000 {
            let bytes = (0..<Int.random(in: 0...80, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            let encoded = Base64.encode(bytes)
            #expect(encoded == Data(bytes).base64EncodedString())
            #expect(Base64.decode(encoded) == bytes)
            let unpadded = String(encoded.prefix { $0 != "=" })
            #expect(Base64.decode(unpadded) == bytes)
        }
    }
}
