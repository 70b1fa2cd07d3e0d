/// Base64 with the standard alphabet (RFC 4648 section 4) and `=` padding.
///
/// The JSON envelope carries bytes that are not UTF-8 as `{"base64":"…"}`.
public enum Base64 {
    @usableFromInline
    static let alphabet: StaticString = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

    /// Bytes `encode` writes for `count` input bytes.
    @inline(__always)
    public static func encodedCount(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    /// Appends the padded encoding of `bytes` to `out`.
    public static func encode(_ bytes: UnsafeRawBufferPointer, into out: GrowableBytes) {
        let n = bytes.count
        guard n > 0, let src = bytes.baseAddress else { return }
        let total = encodedCount(n)
        out.reserve(total)
        let table = alphabet.utf8Start
        var dst = out.base + out.count
        var i = 0
        @inline(__always) func put(_ sextet: UInt32) {
            dst.storeBytes(of: table[Int(sextet & 0x3F)], as: UInt8.self)
            dst += 1
        }
        while i &+ 3 <= n {
            let v = UInt32(src.load(fromByteOffset: i, as: UInt8.self)) << 16
                | UInt32(src.load(fromByteOffset: i &+ 1, as: UInt8.self)) << 8
                | UInt32(src.load(fromByteOffset: i &+ 2, as: UInt8.self))
            put(v >> 18); put(v >> 12); put(v >> 6); put(v)
            i &+= 3
        }
        let rest = n &- i
        if rest > 0 {
            var v = UInt32(src.load(fromByteOffset: i, as: UInt8.self)) << 16
            if rest == 2 { v |= UInt32(src.load(fromByteOffset: i &+ 1, as: UInt8.self)) << 8 }
            put(v >> 18); put(v >> 12)
            if rest == 2 { put(v >> 6) } else { dst.storeBytes(of: UInt8(ascii: "="), as: UInt8.self); dst += 1 }
            dst.storeBytes(of: UInt8(ascii: "="), as: UInt8.self); dst += 1
        }
        out.count &+= total
    }

    /// The encoding of `bytes` as a string.
    public static func encode(_ bytes: [UInt8]) -> String {
        let out = GrowableBytes(capacity: encodedCount(bytes.count))
        bytes.withUnsafeBytes { encode($0, into: out) }
        return String(decoding: out.bytes, as: UTF8.self)
    }

    /// The value of one alphabet character, or 0xFF.
    @inline(__always)
    static func sextet(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"): return c &- UInt8(ascii: "A")
        case UInt8(ascii: "a")...UInt8(ascii: "z"): return c &- UInt8(ascii: "a") &+ 26
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c &- UInt8(ascii: "0") &+ 52
        case UInt8(ascii: "+"): return 62
        case UInt8(ascii: "/"): return 63
        default: return 0xFF
        }
    }

    /// Decodes `text`, or returns nil when it is not base64.
    ///
    /// Padding may be present (then the length is a multiple of 4) or left
    /// out entirely. Whitespace, the URL-safe alphabet and non-zero unused
    /// bits in the last character are rejected.
    public static func decode(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        var n = text.count
        guard n > 0, let src = text.baseAddress else { return [] }
        @inline(__always) func at(_ i: Int) -> UInt8 { src.load(fromByteOffset: i, as: UInt8.self) }
        if at(n - 1) == UInt8(ascii: "=") {
            guard n % 4 == 0 else { return nil }
            n -= 1
            if at(n - 1) == UInt8(ascii: "=") { n -= 1 }
        }
        let rest = n % 4
        if rest == 1 { return nil }
        let outCount = n / 4 * 3 + (rest == 0 ? 0 : rest - 1)
        var ok = true
        let result = [UInt8](unsafeUninitializedCapacity: outCount) { buffer, initialized in
            var i = 0, o = 0
            while i + 4 <= n {
                let a = sextet(at(i)), b = sextet(at(i + 1)), c = sextet(at(i + 2)), d = sextet(at(i + 3))
                if (a | b | c | d) & 0xC0 != 0 { ok = false; return }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6 | UInt32(d)
                buffer[o] = UInt8(truncatingIfNeeded: v >> 16)
                buffer[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
                buffer[o + 2] = UInt8(truncatingIfNeeded: v)
                i += 4; o += 3
                initialized = o
            }
            if rest >= 2 {
                let a = sextet(at(i)), b = sextet(at(i + 1))
                let c = rest == 3 ? sextet(at(i + 2)) : 0
                if (a | b | c) & 0xC0 != 0 { ok = false; return }
                let v = UInt32(a) << 18 | UInt32(b) << 12 | UInt32(c) << 6
                // The bits past the last whole byte must be zero.
                if (rest == 2 && v & 0xFFFF != 0) || (rest == 3 && v & 0xFF != 0) { ok = false; return }
                buffer[o] = UInt8(truncatingIfNeeded: v >> 16)
                if rest == 3 { buffer[o + 1] = UInt8(truncatingIfNeeded: v >> 8) }
                initialized = outCount
            }
        }
        return ok ? result : nil
    }

    /// Decodes `text`, or returns nil when it is not base64.
    public static func decode(_ text: String) -> [UInt8]? {
        var s = text
        return s.withUTF8 { decode(UnsafeRawBufferPointer($0)) }
    }
}
