import Glibc
import Testing
@testable import MQLog

private let now: Int64 = 1_700_000_000_000
/// 2026-11-21T08:00:00Z.
private let base: Int64 = 1_795_248_000_000

@Suite struct TimeSpecTests {
    @Test(arguments: [
        ("2026-11-21T08:00:00Z", base),
        ("2026-11-21T08:00Z", base),
        ("2026-11-21 08:00:00Z", base),
        ("2026-11-21t08:00:00z", base),
        ("2026-11-21T08:00:00.123Z", base + 123),
        ("2026-11-21T08:00:00.5Z", base + 500),
        ("2026-11-21T08:00:00,25Z", base + 250),
        ("2026-11-21T08:00:00.123456789Z", base + 123),
        ("2026-11-21T10:00:00+02:00", base),
        ("2026-11-21T10:00:00+0200", base),
        ("2026-11-21T03:00:00-05", base),
        ("2026-11-21T02:30:00-05:30", base),
        ("2026-11-21T08:00:00+00:00", base),
        ("1970-01-01T00:00:00Z", 0),
        ("1969-12-31T23:59:59Z", -1_000),
        ("2024-02-29T00:00:00Z", 1_709_164_800_000),
    ] as [(String, Int64)])
    func isoWithZone(_ text: String, _ ms: Int64) throws {
        #expect(try TimeSpec.parseTime(text, nowMs: now) == ms)
    }

    /// Without a zone the time is local: converting back with localtime_r
    /// gives the same wall-clock fields.
    @Test(arguments: ["2026-11-21", "2026-11-21T08:00", "2026-07-04 23:59:58", "2026-03-29T12:34:56.789"])
    func isoLocal(_ text: String) throws {
        let ms = try TimeSpec.parseTime(text, nowMs: now)
        let utc = try TimeSpec.parseTime(text.count == 10 ? text + "T00:00Z" : text + "Z", nowMs: now)
        var seconds = time_t(ms / 1000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        #expect(ms - utc == -Int64(parts.tm_gmtoff) * 1000)
        #expect(ms % 1000 == utc % 1000)
        let chars = Array(text)
        #expect(Int(parts.tm_year) + 1900 == Int(String(chars[0..<4])))
        #expect(Int(parts.tm_mon) + 1 == Int(String(chars[5..<7])))
        #expect(Int(parts.tm_mday) == Int(String(chars[8..<10])))
        if chars.count > 10 {
            #expect(Int(parts.tm_hour) == Int(String(chars[11..<13])))
            #expect(Int(parts.tm_min) == Int(String(chars[14..<16])))
        } else {
            #expect(parts.tm_hour == 0 && parts.tm_min == 0)
        }
    }

    @Test(arguments: [
        ("-10m", now - 600_000), ("-2h", now - 7_200_000), ("-1d", now - 86_400_000),
        ("-30s", now - 30_000), ("-500ms", now - 500), ("-1w", now - 604_800_000), ("-0s", now),
        ("now", now), ("@1700000000123", 1_700_000_000_123), ("@0", 0),
    ] as [(String, Int64)])
    func relativeAndEpoch(_ text: String, _ ms: Int64) throws {
        #expect(try TimeSpec.parseTime(text, nowMs: now) == ms)
    }

    @Test(arguments: [
        "", "yesterday", "NOW", "10m", "-10", "-10x", "-", "@", "@-5", "@12a", "2026-11-21T08", "2026-11-21T8:00",
        "2026-11-21T08:00:00.", "2026-11-21T08:00:00.1234567890Z", "2026-11-21Z", "2026-11-21T08:00:00+2",
        "2026-11-21T08:00:00 Z", "26-11-21", "2026/11/21", "2026-11-21T08:00:00Zjunk", "2026-11-21T",
    ])
    func rejectsSyntax(_ text: String) {
        do {
            _ = try TimeSpec.parseTime(text, nowMs: now)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.status == .usage)
            #expect(error.message == "invalid time '\(text)': expected ISO-8601 like 2026-11-21T08:00:00Z or a relative time like -10m")
        }
    }

    @Test(arguments: [
        ("2026-13-01", "month 13 does not exist"),
        ("2026-00-10", "month 0 does not exist"),
        ("2026-02-29", "day 29 does not exist in month 2 of 2026"),
        ("2026-04-31T00:00Z", "day 31 does not exist in month 4 of 2026"),
        ("2026-11-21T24:00Z", "the time of day is out of range"),
        ("2026-11-21T08:60Z", "the time of day is out of range"),
        ("2026-11-21T08:00:60Z", "the time of day is out of range"),
        ("2026-11-21T08:00+19:00", "zone offset out of range"),
        ("-9999999999999999w", "too far back"),
    ])
    func rejectsOutOfRange(_ text: String, _ detail: String) {
        do {
            _ = try TimeSpec.parseTime(text, nowMs: now)
            Issue.record("accepted \(text)")
        } catch {
            #expect(error.status == .usage)
            #expect(error.message.hasPrefix("invalid time '\(text)': \(detail)"), "\(error.message)")
        }
    }

    @Test func relativeOverflowFromNowIsReported() {
        #expect(throws: MQError.self) { try TimeSpec.parseTime("-1w", nowMs: Int64.min + 5) }
    }
}
