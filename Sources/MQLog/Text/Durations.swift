/// Durations on the command line: `500ms`, `30s`, `2m`, `1h`, `1d`, `1w`.
public enum Durations {
    /// Milliseconds per unit, or nil for an unknown unit.
    static func unitMs(_ unit: ArraySlice<UInt8>) -> Int64? {
        switch String(decoding: unit, as: UTF8.self) {
        case "ms": 1
        case "s": 1_000
        case "m": 60_000
        case "h": 3_600_000
        case "d": 86_400_000
        case "w": 604_800_000
        default: nil
        }
    }

    enum Problem: Error { case syntax, overflow }

    /// Reads digits followed by a unit (or no unit when `bareIsMs`) into ms.
    static func milliseconds(_ bytes: ArraySlice<UInt8>, bareIsMs: Bool) throws(Problem) -> Int64 {
        var i = bytes.startIndex
        var n: Int64 = 0
        var overflow = false
        while i < bytes.endIndex, bytes[i] >= 0x30 && bytes[i] <= 0x39 {
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(bytes[i] - 0x30))
            overflow = overflow || o1 || o2
            n = s
            i += 1
        }
        guard i > bytes.startIndex else { throw .syntax }
        let unit = bytes[i...]
        let scale: Int64
        if unit.isEmpty {
            guard bareIsMs else { throw .syntax }
            scale = 1
        } else {
            guard let s = unitMs(unit) else { throw .syntax }
            scale = s
        }
        if overflow { throw .overflow }
        let (ms, o) = n.multipliedReportingOverflow(by: scale)
        if o { throw .overflow }
        return ms
    }

    /// Milliseconds in `s`: a whole number with a unit `ms`, `s`, `m`, `h`,
    /// `d` or `w`; a bare number is milliseconds.
    public static func parseDuration(_ s: String) throws(MQError) -> Int64 {
        do {
            return try milliseconds(Array(s.utf8)[...], bareIsMs: true)
        } catch .overflow {
            throw MQError(.usage, "invalid duration '\(s)': too long (at most \(Int64.max) ms)")
        } catch {
            throw MQError(.usage, "invalid duration '\(s)': expected a whole number with a unit like 500ms, 30s, 2m, 1h, 1d or 1w (a bare number is milliseconds)")
        }
    }
}
