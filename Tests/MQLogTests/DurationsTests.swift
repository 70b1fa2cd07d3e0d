import Testing
@testable import MQLog

@Suite struct DurationsTests {
    @Test(arguments: [
        ("500ms", 500), ("30s", 30_000), ("2m", 120_000), ("1h", 3_600_000), ("1d", 86_400_000),
        ("1w", 604_800_000), ("0", 0), ("250", 250), ("0s", 0),
        ("9223372036854775807", Int64.max), ("106751991167d", 106_751_991_167 * 86_400_000),
    ] as [(String, Int64)])
    func parses(_ text: String, _ ms: Int64) throws {
        #expect(try Durations.parseDuration(text) == ms)
    }

    @Test(arguments: ["", "ms", "-5s", "1.5s", "5 s", "5sec", "5M", "1y", "s5", "+5s"])
    func rejectsSyntax(_ text: String) {
        do {
            _ = try Durations.parseDuration(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.status == .usage)
            #expect(error.message == "invalid duration '\(text)': expected a whole number with a unit like 500ms, 30s, 2m, 1h, 1d or 1w (a bare number is milliseconds)")
        }
    }

    @Test(arguments: ["9223372036854775808", "106751991168d", "99999999999999999999999s"])
    func rejectsOverflow(_ text: String) {
        do {
            _ = try Durations.parseDuration(text)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.status == .usage)
            #expect(error.message.hasPrefix("invalid duration '\(text)': too long"))
        }
    }
}
