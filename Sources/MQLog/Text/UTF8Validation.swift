/// Strict UTF-8 checks for the text writers and the JSON reader.
///
/// "Strict" follows the Unicode well-formed byte sequence table: overlong
/// forms, UTF-16 surrogates (U+D800...U+DFFF) and code points past U+10FFFF
/// are all rejected.

/// True when `bytes` is well-formed UTF-8. Runs of ASCII are checked eight
/// bytes at a time.
public func isValidUTF8(_ bytes: UnsafeRawBufferPointer) -> Bool {
    guard let base = bytes.baseAddress else { return true }
    let n = bytes.count
    var i = 0
    while i < n {
        if i &+ 8 <= n {
            let word = base.loadUnaligned(fromByteOffset: i, as: UInt64.self)
            if word & 0x8080_8080_8080_8080 == 0 { i &+= 8; continue }
        }
        let b0 = base.load(fromByteOffset: i, as: UInt8.self)
        if b0 < 0x80 { i &+= 1; continue }
        let length = UTF8Scan.sequenceLength(base, i, n)
        if length <= 0 { return false }
        i &+= length
    }
    return true
}

/// Shared single-sequence decoding step for validation, escaping and the JSON
/// reader.
@usableFromInline
enum UTF8Scan {
    /// The length of the well-formed sequence starting at `base[i]`
    /// (which must be below `n`), or, when it is ill-formed, minus the length
    /// of its maximal valid prefix (at least 1) — the bytes one U+FFFD stands
    /// for in a lossy conversion.
    @inline(__always)
    @usableFromInline
    static func sequenceLength(_ base: UnsafeRawPointer, _ i: Int, _ n: Int) -> Int {
        let b0 = base.load(fromByteOffset: i, as: UInt8.self)
        if b0 < 0x80 { return 1 }
        let need: Int
        var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
        switch b0 {
        case 0xC2...0xDF: need = 1
        case 0xE0: need = 2; lo = 0xA0
        case 0xE1...0xEC, 0xEE...0xEF: need = 2
        case 0xED: need = 2; hi = 0x9F
        case 0xF0: need = 3; lo = 0x90
        case 0xF1...0xF3: need = 3
        case 0xF4: need = 3; hi = 0x8F
        default: return -1
        }
        var k = 1
        while k <= need {
            if i &+ k >= n { return -k }
            let b = base.load(fromByteOffset: i &+ k, as: UInt8.self)
            if b < lo || b > hi { return -k }
            lo = 0x80; hi = 0xBF
            k &+= 1
        }
        return need &+ 1
    }
}
