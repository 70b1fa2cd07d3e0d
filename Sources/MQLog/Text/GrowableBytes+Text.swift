/// Text helpers for the writers: literals, decimal numbers and JSON strings,
/// appended in place without intermediate allocations.
extension GrowableBytes {
    /// Appends the bytes of a literal.
    @inline(__always)
    func appendLiteral(_ literal: StaticString) {
        append(UnsafeRawPointer(literal.utf8Start), count: literal.utf8CodeUnitCount)
    }

    /// Appends `value` in decimal, with a leading `-` when negative.
    func appendDecimal(_ value: Int64) {
        var cursor = TextCursor(self)
        cursor.decimal(value)
        cursor.finish()
    }

    /// Appends the UTF-8 bytes of `string`.
    func appendUTF8(of string: String) {
        var cursor = TextCursor(self)
        cursor.utf8(of: string)
        cursor.finish()
    }
}

/// A write position in a `GrowableBytes` kept in local variables.
///
/// The writers make many small appends per message; going through the
/// buffer's class properties for each would cost a dynamic exclusivity check
/// every time. The cursor touches the buffer only to grow it and, in
/// `finish()`, to publish the new count. Nothing else may use the buffer
/// until then.
struct TextCursor {
    let buffer: GrowableBytes
    var base: UnsafeMutableRawPointer
    var position: Int
    var capacity: Int

    @inline(__always)
    init(_ buffer: GrowableBytes) {
        self.buffer = buffer
        base = buffer.base
        position = buffer.count
        capacity = buffer.capacity
    }

    /// Makes room for `extra` more bytes.
    @inline(__always)
    mutating func ensure(_ extra: Int) {
        if position &+ extra > capacity { grow(extra) }
    }

    @inline(never)
    mutating func grow(_ extra: Int) {
        buffer.count = position
        buffer.reserve(extra)
        base = buffer.base
        capacity = buffer.capacity
    }

    /// Publishes what was written.
    @inline(__always)
    func finish() { buffer.count = position }

    @inline(__always)
    mutating func byte(_ b: UInt8) {
        ensure(1)
        base.storeBytes(of: b, toByteOffset: position, as: UInt8.self)
        position &+= 1
    }

    @inline(__always)
    mutating func bytes(_ p: UnsafeRawPointer, _ n: Int) {
        ensure(n)
        (base + position).copyMemory(from: p, byteCount: n)
        position &+= n
    }

    @inline(__always)
    mutating func bytes(_ b: UnsafeRawBufferPointer) {
        if let p = b.baseAddress { bytes(p, b.count) }
    }

    @inline(__always)
    mutating func literal(_ s: StaticString) {
        bytes(UnsafeRawPointer(s.utf8Start), s.utf8CodeUnitCount)
    }

    mutating func decimal(_ value: Int64) {
        ensure(20)
        var p = base + position
        if value < 0 {
            p.storeBytes(of: UInt8(ascii: "-"), as: UInt8.self)
            p += 1
        }
        var magnitude = value.magnitude
        var digits = 1
        var t = magnitude
        while t >= 10 { t /= 10; digits &+= 1 }
        let end = p + digits
        var q = end
        repeat {
            q -= 1
            q.storeBytes(of: UInt8(truncatingIfNeeded: magnitude % 10) &+ 0x30, as: UInt8.self)
            magnitude /= 10
        } while magnitude > 0
        position = end - base
    }

    mutating func utf8(of string: String) {
        let done: Void? = string.utf8.withContiguousStorageIfAvailable { bytes(UnsafeRawBufferPointer($0)) }
        if done == nil { Array(string.utf8).withUnsafeBytes { bytes($0) } }
    }

    /// Appends base64 of `bytes` (via the buffer, which is synced around it).
    mutating func base64(_ b: UnsafeRawBufferPointer) {
        finish()
        Base64.encode(b, into: buffer)
        base = buffer.base
        position = buffer.count
        capacity = buffer.capacity
    }
}

/// Escaping for JSON strings (RFC 8259 section 7).
enum JSONStringWriter {
    /// Appends `bytes` as a quoted JSON string when they are valid UTF-8 and
    /// returns true; otherwise leaves the cursor where it was and returns false.
    @inline(__always)
    static func appendIfUTF8(_ bytes: UnsafeRawBufferPointer, to out: inout TextCursor) -> Bool {
        let mark = out.position
        out.byte(UInt8(ascii: "\""))
        guard appendEscaped(bytes, to: &out, lossy: false) else {
            out.position = mark
            return false
        }
        out.byte(UInt8(ascii: "\""))
        return true
    }

    /// Appends `bytes` as a quoted JSON string, writing U+FFFD for each
    /// ill-formed UTF-8 sequence.
    @inline(__always)
    static func appendLossy(_ bytes: UnsafeRawBufferPointer, to out: inout TextCursor) {
        out.byte(UInt8(ascii: "\""))
        _ = appendEscaped(bytes, to: &out, lossy: true)
        out.byte(UInt8(ascii: "\""))
    }

    /// Nonzero when some byte of `word` is not printable ASCII or is `"` or
    /// `\` — that is, when the eight bytes cannot be copied as they are.
    @inline(__always)
    static func attention(_ word: UInt64) -> UInt64 {
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let quote = word ^ (ones &* 0x22)
        let backslash = word ^ (ones &* 0x5C)
        let control = (word &- ones &* 0x20) & ~word
        let isQuote = (quote &- ones) & ~quote
        let isBackslash = (backslash &- ones) & ~backslash
        return (word | control | isQuote | isBackslash) & highs
    }

    /// Appends the escaped contents (no quotes). Returns false at the first
    /// ill-formed sequence when not `lossy`, having appended part of it.
    static func appendEscaped(_ bytes: UnsafeRawBufferPointer, to out: inout TextCursor, lossy: Bool) -> Bool {
        guard let base = bytes.baseAddress else { return true }
        let n = bytes.count
        out.ensure(n &+ 16)
        var i = 0
        var run = 0
        while i < n {
            if i &+ 8 <= n, attention(base.loadUnaligned(fromByteOffset: i, as: UInt64.self)) == 0 {
                i &+= 8
                continue
            }
            let b = base.load(fromByteOffset: i, as: UInt8.self)
            if b >= 0x20 && b != 0x22 && b != 0x5C && b < 0x80 { i &+= 1; continue }
            var length = 1
            if b >= 0x80 {
                length = UTF8Scan.sequenceLength(base, i, n)
                if length > 0 { i &+= length; continue }
                if !lossy { return false }
                length = -length
            }
            // Copy the verbatim run, then the escape or U+FFFD; reserve for
            // the rest of the input too so growth stays geometric.
            let pending = i &- run
            out.ensure(pending &+ 6 &+ (n &- i))
            (out.base + out.position).copyMemory(from: base + run, byteCount: pending)
            out.position &+= pending
            if b >= 0x80 {
                let p = out.base + out.position
                p.storeBytes(of: 0xEF, as: UInt8.self)
                (p + 1).storeBytes(of: 0xBF, as: UInt8.self)
                (p + 2).storeBytes(of: 0xBD, as: UInt8.self)
                out.position &+= 3
            } else {
                out.position &+= writeEscape(b, to: out.base + out.position)
            }
            i &+= length
            run = i
        }
        out.bytes(base + run, n &- run)
        return true
    }

    /// Writes the escape for ASCII byte `b` at `p` (room for 6 bytes) and
    /// returns its length.
    @inline(__always)
    static func writeEscape(_ b: UInt8, to p: UnsafeMutableRawPointer) -> Int {
        let short: UInt8
        switch b {
        case 0x22: short = 0x22
        case 0x5C: short = 0x5C
        case 0x0A: short = UInt8(ascii: "n")
        case 0x09: short = UInt8(ascii: "t")
        case 0x0D: short = UInt8(ascii: "r")
        case 0x08: short = UInt8(ascii: "b")
        case 0x0C: short = UInt8(ascii: "f")
        default: short = 0
        }
        p.storeBytes(of: 0x5C, as: UInt8.self)
        if short != 0 {
            (p + 1).storeBytes(of: short, as: UInt8.self)
            return 2
        }
        let hex: StaticString = "0123456789abcdef"
        (p + 1).storeBytes(of: UInt8(ascii: "u"), as: UInt8.self)
        (p + 2).storeBytes(of: UInt8(ascii: "0"), as: UInt8.self)
        (p + 3).storeBytes(of: UInt8(ascii: "0"), as: UInt8.self)
        (p + 4).storeBytes(of: hex.utf8Start[Int(b >> 4)], as: UInt8.self)
        (p + 5).storeBytes(of: hex.utf8Start[Int(b & 0x0F)], as: UInt8.self)
        return 6
    }
}
