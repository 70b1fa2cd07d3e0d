import Testing
@testable import MQLog

@Suite struct SizesTests {
    @Test(arguments: [
        ("1048576", 1_048_576), ("0", 0), ("100B", 100), ("100b", 100),
        ("64k", 65_536), ("64K", 65_536), ("64KiB", 65_536), ("64kib", 65_536), ("64KB", 64_000), ("64kb", 64_000),
        ("1m", 1_048_576), ("1M", 1_048_576), ("1MiB", 1_048_576), ("1MB", 1_000_000),
        ("1g", 1_073_741_824), ("1G", 1_073_741_824), ("1GiB", 1_073_741_824), ("1GB", 1_000_000_000),
        ("2t", 2 << 40), ("2TB", 2_000_000_000_000),
        ("8589934591g", 8_589_934_591 << 30), ("9223372036854775807", Int64.max),
    ] as [(String, Int64)])
    func parses(_ text: String, _ bytes: Int64) throws {
        #expect(try Sizes.parseByteCount(text) == bytes)
    }

    @Test(arguments: ["", "k", "1.5M", "64 KiB", "64KIBB", "1x", "1Ki", "0x10", "+1"])
    func rejectsSyntax(_ text: String) {
        do {
            _ = try Sizes.parseByteCount(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.status == .usage)
            #expect(error.message.hasPrefix("invalid size '\(text)': expected a whole number of bytes"))
        }
    }

    @Test(arguments: ["-1", "-64k"])
    func rejectsNegatives(_ text: String) {
        #expect(throws: MQError.self) { try Sizes.parseByteCount(text) }
        do { _ = try Sizes.parseByteCount(text) } catch {
            #expect(error.message == "invalid size '\(text)': a size cannot be negative")
        }
    }

    @Test(arguments: ["8589934592g", "9223372036854775808", "9300000TB", "99999999999999999999"])
    func rejectsOverflow(_ text: String) {
        do {
            _ = try Sizes.parseByteCount(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.message.hasPrefix("invalid size '\(text)': too large"), "\(error.message)")
        }
    }
}
