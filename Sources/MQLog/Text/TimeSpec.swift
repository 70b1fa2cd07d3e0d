import Glibc

/// Points in time on the command line (`--from TIME`).
public enum TimeSpec {
    /// Milliseconds since the epoch for `s`, which is one of:
    /// - ISO-8601: `2026-11-21`, `2026-11-21T08:00`, `2026-11-21T08:00:00`,
    ///   with an optional fraction (`.123`), a space instead of `T`, and an
    ///   optional zone `Z`, `+02:00`, `+0200` or `-05`. No zone means local time.
    /// - relative to `nowMs`: `-500ms`, `-30s`, `-10m`, `-2h`, `-1d`, `-1w`;
    /// - `now`;
    /// - `@1700000000000`: milliseconds since the epoch.
    public static func parseTime(_ s: String, nowMs: Int64) throws(MQError) -> Int64 {
        let bytes = Array(s.utf8)
        let invalid = MQError(.usage, "invalid time '\(s)': expected ISO-8601 like 2026-11-21T08:00:00Z or a relative time like -10m")
        if s == "now" { return nowMs }
        if bytes.first == UInt8(ascii: "@") {
            let digits = bytes.dropFirst()
            guard !digits.isEmpty, digits.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let ms = Int64(String(decoding: digits, as: UTF8.self)) else {
                throw invalid
            }
            return ms
        }
        if bytes.first == UInt8(ascii: "-") {
            let back: Int64
            do {
                back = try Durations.milliseconds(bytes.dropFirst(), bareIsMs: false)
            } catch .overflow {
                throw MQError(.usage, "invalid time '\(s)': too far back")
            } catch {
                throw invalid
            }
            let (t, o) = nowMs.subtractingReportingOverflow(back)
            if o { throw MQError(.usage, "invalid time '\(s)': too far back") }
            return t
        }
        return try parseISO(bytes, s, invalid)
    }

    private static func parseISO(_ b: [UInt8], _ s: String, _ invalid: MQError) throws(MQError) -> Int64 {
        var i = 0
        func number(_ digits: Int) -> Int? {
            guard i + digits <= b.count else { return nil }
            var v = 0
            for j in i..<i + digits {
                guard b[j] >= 0x30 && b[j] <= 0x39 else { return nil }
                v = v * 10 + Int(b[j] - 0x30)
            }
            i += digits
            return v
        }
        func take(_ c: Character) -> Bool {
            if i < b.count && b[i] == c.asciiValue! { i += 1; return true }
            return false
        }
        guard let year = number(4), take("-"), let month = number(2), take("-"), let day = number(2) else { throw invalid }
        var hour = 0, minute = 0, second = 0, millis = 0
        var zoneOffset: Int? = nil // seconds east of UTC
        if i < b.count {
            guard take("T") || take("t") || take(" ") else { throw invalid }
            guard let h = number(2), take(":"), let m = number(2) else { throw invalid }
            hour = h; minute = m
            if take(":") {
                guard let sec = number(2) else { throw invalid }
                second = sec
                if take(".") || take(",") {
                    let start = i
                    while i < b.count && b[i] >= 0x30 && b[i] <= 0x39 { i += 1 }
                    guard i > start, i - start <= 9 else { throw invalid }
                    for j in 0..<3 { millis = millis * 10 + (start + j < i ? Int(b[start + j] - 0x30) : 0) }
                }
            }
            if take("Z") || take("z") {
                zoneOffset = 0
            } else if i < b.count && (b[i] == UInt8(ascii: "+") || b[i] == UInt8(ascii: "-")) {
                let sign = b[i] == UInt8(ascii: "-") ? -1 : 1
                i += 1
                guard let zh = number(2) else { throw invalid }
                var zm = 0
                if take(":") {
                    guard let m = number(2) else { throw invalid }
                    zm = m
                } else if i < b.count {
                    guard let m = number(2) else { throw invalid }
                    zm = m
                }
                guard zh <= 18 && zm <= 59 else { throw MQError(.usage, "invalid time '\(s)': zone offset out of range (at most ±18:00)") }
                zoneOffset = sign * (zh * 3600 + zm * 60)
            }
            guard i == b.count else { throw invalid }
        }
        guard month >= 1 && month <= 12 else { throw MQError(.usage, "invalid time '\(s)': month \(month) does not exist") }
        let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
        let monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
        guard day >= 1 && day <= monthDays else { throw MQError(.usage, "invalid time '\(s)': day \(day) does not exist in month \(month) of \(year)") }
        guard hour <= 23 && minute <= 59 && second <= 59 else { throw MQError(.usage, "invalid time '\(s)': the time of day is out of range (00:00:00 to 23:59:59)") }

        var parts = tm()
        parts.tm_year = Int32(year - 1900)
        parts.tm_mon = Int32(month - 1)
        parts.tm_mday = Int32(day)
        parts.tm_hour = Int32(hour)
        parts.tm_min = Int32(minute)
        parts.tm_sec = Int32(second)
        let seconds: Int64
        if let zoneOffset {
            seconds = Int64(timegm(&parts)) - Int64(zoneOffset)
        } else {
            parts.tm_isdst = -1
            seconds = Int64(mktime(&parts))
        }
        return seconds * 1000 + Int64(millis)
    }
}
