/// Byte counts on the command line: `1048576`, `64KiB`, `64KB`, `1g`.
public enum Sizes {
    /// Bytes in `s`: a whole number with an optional unit. `k`, `m`, `g`, `t`
    /// and `KiB`, `MiB`, `GiB`, `TiB` are powers of 1024; `KB`, `MB`, `GB`,
    /// `TB` are powers of 1000; `B` is bytes. Letters may be either case.
    public static func parseByteCount(_ s: String) throws(MQError) -> Int64 {
        let bytes = Array(s.utf8)
        if bytes.first == UInt8(ascii: "-") {
            throw MQError(.usage, "invalid size '\(s)': a size cannot be negative")
        }
        var i = 0
        var n: Int64 = 0
        var overflow = false
        while i < bytes.count, bytes[i] >= 0x30 && bytes[i] <= 0x39 {
            let (m, o1) = n.multipliedReportingOverflow(by: 10)
            let (sum, o2) = m.addingReportingOverflow(Int64(bytes[i] - 0x30))
            overflow = overflow || o1 || o2
            n = sum
            i += 1
        }
        let syntax = MQError(.usage, "invalid size '\(s)': expected a whole number of bytes with an optional unit, like 1048576, 64KiB, 64KB, 1MiB or 1GB (k, m, g alone are powers of 1024)")
        guard i > 0 else { throw syntax }
        let unit = String(decoding: bytes[i...], as: UTF8.self).lowercased()
        let scale: Int64
        switch unit {
        case "", "b": scale = 1
        case "k", "kib": scale = 1 << 10
        case "m", "mib": scale = 1 << 20
        case "g", "gib": scale = 1 << 30
        case "t", "tib": scale = 1 << 40
        case "kb": scale = 1_000
        case "mb": scale = 1_000_000
        case "gb": scale = 1_000_000_000
        case "tb": scale = 1_000_000_000_000
        default: throw syntax
        }
        let (total, o) = n.multipliedReportingOverflow(by: scale)
        if overflow || o {
            throw MQError(.usage, "invalid size '\(s)': too large (at most \(Int64.max) bytes)")
        }
        return total
    }

    /// `n` bytes for a person: `512B`, `1.5KiB`, `20.0MiB` (binary units, one
    /// decimal, truncated).
    public static func format(_ n: Int64) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var v = Double(n), u = 0
        while v >= 1024 && u < units.count - 1 { v /= 1024; u += 1 }
        return u == 0 ? "\(n)B" : String(Int(v * 10) / 10) + "." + String(Int(v * 10) % 10) + units[u]
    }
}
