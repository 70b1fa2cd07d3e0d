import Testing
@testable import MQLog

@Suite struct EscapesTests {
    @Test func decodesEscapesAndLiterals() throws {
        #expect(try parseDelimiter("\\n") == [0x0A])
        #expect(try parseDelimiter("\\r\\n") == [0x0D, 0x0A])
        #expect(try parseDelimiter("\\t") == [0x09])
        #expect(try parseDelimiter("\\0") == [0x00])
        #expect(try parseDelimiter("\\\\") == [0x5C])
        #expect(try parseDelimiter("\\x1f\\xFF\\x00") == [0x1F, 0xFF, 0x00])
        #expect(try parseDelimiter(",") == [0x2C])
        #expect(try parseDelimiter("::") == [0x3A, 0x3A])
        #expect(try parseDelimiter("é") == [0xC3, 0xA9])
        #expect(try parseDelimiter("a\\tb") == [0x61, 0x09, 0x62])
        // A real newline character (not an escape) is taken as it is.
        #expect(try parseDelimiter("\n") == [0x0A])
    }

    @Test func emptyIsAUsageError() {
        do {
            _ = try parseDelimiter("")
            Issue.record("expected an error")
        } catch {
            #expect(error.status == .usage)
            #expect(error.message.hasPrefix("invalid delimiter ''"))
        }
    }

    @Test(arguments: [
        ("\\q", "unknown escape at '\\q'"),
        ("ab\\", "it ends with a lone '\\'"),
        ("\\x4", "unknown escape at '\\x4'"),
        ("\\xZZ", "unknown escape at '\\xZZ'"),
    ])
    func badEscapesAreUsageErrors(_ argument: String, _ detail: String) {
        do {
            _ = try parseDelimiter(argument)
            Issue.record("expected an error for \(argument)")
        } catch {
            #expect(error.status == .usage)
            #expect(error.message.hasPrefix("invalid delimiter '\(argument)': \(detail)"), "\(error.message)")
        }
    }
}
