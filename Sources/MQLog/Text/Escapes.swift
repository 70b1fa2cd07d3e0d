/// Backslash escapes in command-line arguments.
enum BackslashEscape {
    /// Decodes the escape at `bytes[i]` (a backslash): \n \t \r \0 \\ and,
    /// when `allowHex`, \xHH. Returns the byte and the escape's length, or nil
    /// when the escape is unknown or incomplete.
    static func decode(_ bytes: [UInt8], at i: Int, allowHex: Bool) -> (byte: UInt8, length: Int)? {
        guard i + 1 < bytes.count else { return nil }
        switch bytes[i + 1] {
        case UInt8(ascii: "n"): return (0x0A, 2)
        case UInt8(ascii: "t"): return (0x09, 2)
        case UInt8(ascii: "r"): return (0x0D, 2)
        case UInt8(ascii: "0"): return (0x00, 2)
        case UInt8(ascii: "\\"): return (0x5C, 2)
        case UInt8(ascii: "x") where allowHex:
            guard i + 3 < bytes.count, let hi = hexValue(bytes[i + 2]), let lo = hexValue(bytes[i + 3]) else { return nil }
            return (hi << 4 | lo, 4)
        default: return nil
        }
    }

    static func hexValue(_ b: UInt8) -> UInt8? {
        switch b {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): b - 0x30
        case UInt8(ascii: "a")...UInt8(ascii: "f"): b - 0x61 + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): b - 0x41 + 10
        default: nil
        }
    }
}

/// The bytes of a `-d`/`-K` delimiter argument.
///
/// Backslash escapes \n \t \r \0 \\ and \xHH stand for one byte each; every
/// other character stands for its UTF-8 bytes.
public func parseDelimiter(_ s: String) throws(MQError) -> [UInt8] {
    let bytes = Array(s.utf8)
    if bytes.isEmpty {
        throw MQError(.usage, "invalid delimiter '': a delimiter must be at least one byte, e.g. '\\n' or ','")
    }
    var out: [UInt8] = []
    out.reserveCapacity(bytes.count)
    var i = 0
    while i < bytes.count {
        if bytes[i] != UInt8(ascii: "\\") {
            out.append(bytes[i])
            i += 1
            continue
        }
        guard let (byte, length) = BackslashEscape.decode(bytes, at: i, allowHex: true) else {
            let rest = String(decoding: bytes[i...].prefix(4), as: UTF8.self)
            let what = i + 1 == bytes.count ? "it ends with a lone '\\'" : "unknown escape at '\(rest)'"
            throw MQError(.usage, "invalid delimiter '\(s)': \(what); the escapes are \\n \\t \\r \\0 \\\\ and \\xHH (two hex digits)")
        }
        out.append(byte)
        i += length
    }
    return out
}
