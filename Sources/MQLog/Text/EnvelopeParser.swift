/// A strict RFC 8259 reader specialised for the message envelope.
///
/// Strings, numbers and nesting are checked in full, even inside fields that
/// are ignored, so a line is either valid JSON or rejected with the column of
/// the first problem.
struct EnvelopeParser {
    /// Objects and arrays may nest this deep, the envelope object included.
    static let maxDepth = 64

    private let base: UnsafeRawPointer
    private let end: Int
    private var pos = 0
    private var depth = 0

    init(_ line: UnsafeRawBufferPointer) {
        // An empty line has no base address; any valid pointer does, as no
        // byte is read from it.
        base = line.baseAddress ?? UnsafeRawPointer(Base64.alphabet.utf8Start)
        end = line.baseAddress == nil ? 0 : line.count
    }

    // MARK: Envelope

    /// The envelope's fields. The raw value is the bit of the name's spelling;
    /// aliases share a group mask for duplicate detection.
    private enum Field: Int, CaseIterable {
        case key, value, payload, headers, partition, timestamp, ts, topic, offset, tstype, broker

        var spelling: StaticString {
            switch self {
            case .key: "key"
            case .value: "value"
            case .payload: "payload"
            case .headers: "headers"
            case .partition: "partition"
            case .timestamp: "timestamp"
            case .ts: "ts"
            case .topic: "topic"
            case .offset: "offset"
            case .tstype: "tstype"
            case .broker: "broker"
            }
        }

        var canonical: Field {
            switch self {
            case .payload: .value
            case .ts: .timestamp
            default: self
            }
        }

        var bit: UInt32 { 1 << UInt32(rawValue) }
        /// The bits of every spelling of this field.
        var group: UInt32 {
            switch canonical {
            case .value: Field.value.bit | Field.payload.bit
            case .timestamp: Field.timestamp.bit | Field.ts.bit
            default: bit
            }
        }
    }

    mutating func parseEnvelope() throws(EnvelopeError) -> Message {
        skipWhitespace()
        guard pos < end else {
            throw error("empty line: expected a JSON object like {\"value\":\"…\"}")
        }
        guard byte(pos) == UInt8(ascii: "{") else {
            throw error("expected a JSON object starting with '{', found \(found())")
        }
        pos += 1
        depth = 1
        var message = Message(value: nil)
        var seen: UInt32 = 0
        skipWhitespace()
        if pos < end && byte(pos) == UInt8(ascii: "}") {
            pos += 1
        } else {
            while true {
                skipWhitespace()
                let nameColumn = pos
                let field = try fieldName()
                if seen & field.group != 0 {
                    if seen & field.bit != 0 {
                        throw error("duplicate field '\(field.spelling)'", at: nameColumn)
                    }
                    throw error("duplicate field: '\(field.spelling)' is another name for '\(otherSpelling(field, seen))', which was already given", at: nameColumn)
                }
                seen |= field.bit
                skipWhitespace()
                guard pos < end && byte(pos) == UInt8(ascii: ":") else {
                    throw error("expected ':' after field name, found \(found())")
                }
                pos += 1
                skipWhitespace()
                switch field {
                case .key: message.key = try bytesValue()
                case .value, .payload: message.value = try bytesValue()
                case .headers: message.headers = try headers()
                case .partition:
                    if let p = try integer(field: field.spelling, max: Int64(Int32.max)) { message.partition = Int32(p) }
                case .timestamp, .ts:
                    message.timestamp = try integer(field: field.spelling, max: Int64.max)
                case .topic, .offset, .tstype, .broker:
                    try skipValue()
                }
                if try endOfElement(close: "}", after: "object member", next: "a field name", nested: false) { break }
            }
        }
        skipWhitespace()
        if pos < end {
            throw error("unexpected \(found()) after the end of the JSON object; put one object on each line")
        }
        return message
    }

    /// The spelling of `field`'s group that was already seen.
    private func otherSpelling(_ field: Field, _ seen: UInt32) -> StaticString {
        for f in Self.fields where f.group == field.group && seen & f.bit != 0 { return f.spelling }
        return field.canonical.spelling
    }

    /// Reads a field name (at `pos`, which must be `"`) and matches it.
    private mutating func fieldName() throws(EnvelopeError) -> Field {
        guard pos < end && byte(pos) == UInt8(ascii: "\"") else {
            throw error("expected a field name in double quotes, found \(found())")
        }
        let column = pos
        let s = try scanString()
        if !s.hasEscapes {
            if let f = Self.match(base + s.start, s.end - s.start) { return f }
        } else {
            let decoded = decodeString(s)
            if let f = decoded.withUnsafeBytes({ Self.match($0.baseAddress ?? base, $0.count) }) { return f }
        }
        throw error("unknown field '\(display(s))'; the fields are key, value, headers, partition and timestamp", at: column)
    }

    private static let fields = Field.allCases

    private static func match(_ p: UnsafeRawPointer, _ count: Int) -> Field? {
        for f in fields {
            let name = f.spelling
            if name.utf8CodeUnitCount == count && memcmpBytes(p, name.utf8Start, count) { return f }
        }
        return nil
    }

    private static func memcmpBytes(_ a: UnsafeRawPointer, _ b: UnsafePointer<UInt8>, _ n: Int) -> Bool {
        var i = 0
        while i < n {
            if a.load(fromByteOffset: i, as: UInt8.self) != b[i] { return false }
            i += 1
        }
        return true
    }

    // MARK: Field values

    /// null → nil; a string → its UTF-8 bytes; `{"base64":"…"}` → the decoded
    /// bytes; any other value → its JSON text as written.
    private mutating func bytesValue() throws(EnvelopeError) -> [UInt8]? {
        guard pos < end else { throw error("expected a JSON value, found end of line") }
        switch byte(pos) {
        case UInt8(ascii: "n"):
            try literal("null")
            return nil
        case UInt8(ascii: "\""):
            let s = try scanString()
            return decodeString(s)
        case UInt8(ascii: "{"):
            if let decoded = try base64Object() { return decoded }
        default:
            break
        }
        let start = pos
        try skipValue()
        return [UInt8](UnsafeRawBufferPointer(start: base + start, count: pos - start))
    }

    /// If the object at `pos` is exactly `{"base64":"…"}`, reads and decodes
    /// it; otherwise leaves `pos` where it was and returns nil.
    private mutating func base64Object() throws(EnvelopeError) -> [UInt8]? {
        let save = pos
        pos += 1
        skipWhitespace()
        guard pos < end, byte(pos) == UInt8(ascii: "\""),
              let name = try? scanString(), isBase64Name(name) else {
            pos = save
            return nil
        }
        skipWhitespace()
        guard pos < end, byte(pos) == UInt8(ascii: ":") else { pos = save; return nil }
        pos += 1
        skipWhitespace()
        let textColumn = pos
        guard pos < end, byte(pos) == UInt8(ascii: "\""), let text = try? scanString() else { pos = save; return nil }
        skipWhitespace()
        guard pos < end, byte(pos) == UInt8(ascii: "}") else { pos = save; return nil }
        pos += 1
        let decoded: [UInt8]?
        if text.hasEscapes {
            decoded = decodeString(text).withUnsafeBytes { Base64.decode($0) }
        } else {
            decoded = Base64.decode(UnsafeRawBufferPointer(start: base + text.start, count: text.end - text.start))
        }
        guard let decoded else {
            throw error("invalid base64 in {\"base64\": …}: expected the standard alphabet A-Z a-z 0-9 + / with optional '=' padding", at: textColumn)
        }
        return decoded
    }

    private func isBase64Name(_ s: StringSpan) -> Bool {
        let word: StaticString = "base64"
        if !s.hasEscapes {
            return s.end - s.start == word.utf8CodeUnitCount && Self.memcmpBytes(base + s.start, word.utf8Start, word.utf8CodeUnitCount)
        }
        return decodeString(s).elementsEqual(UnsafeBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount))
    }

    /// A whole number in 0...max, or nil for `null`.
    private mutating func integer(field: StaticString, max: Int64) throws(EnvelopeError) -> Int64? {
        let start = pos
        func problem(_ found: String? = nil) -> String {
            "'\(field)' must be a whole number from 0 to \(max)" + (found.map { ", found \($0)" } ?? "")
        }
        guard pos < end else { throw error(problem("end of line")) }
        let b = byte(pos)
        if b == UInt8(ascii: "n") {
            try literal("null")
            return nil
        }
        guard b == UInt8(ascii: "-") || isDigit(b) else {
            throw error(problem(found()))
        }
        let isInteger = try scanNumber()
        guard isInteger else { throw error(problem(), at: start) }
        var i = start
        var negative = false
        if byte(i) == UInt8(ascii: "-") { negative = true; i += 1 }
        var value: Int64 = 0
        while i < pos {
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.addingReportingOverflow(Int64(byte(i) - 0x30))
            if o1 || o2 || s > max { throw error(problem(), at: start) }
            value = s
            i += 1
        }
        if negative && value != 0 { throw error(problem(), at: start) }
        return value
    }

    private mutating func headers() throws(EnvelopeError) -> [Header] {
        guard pos < end else { throw error("expected the headers, found end of line") }
        switch byte(pos) {
        case UInt8(ascii: "n"):
            try literal("null")
            return []
        case UInt8(ascii: "["):
            return try headerList()
        case UInt8(ascii: "{"):
            return try headerObject()
        default:
            throw error("'headers' must be a list of [name, value] pairs, a flat list [name, value, …] or an object {\"name\": value, …}, found \(found())")
        }
    }

    private mutating func headerList() throws(EnvelopeError) -> [Header] {
        try enter()
        pos += 1
        skipWhitespace()
        var result: [Header] = []
        if pos < end && byte(pos) == UInt8(ascii: "]") {
            pos += 1
            depth -= 1
            return result
        }
        let pairs = pos < end && byte(pos) == UInt8(ascii: "[")
        while true {
            skipWhitespace()
            if pairs {
                guard pos < end && byte(pos) == UInt8(ascii: "[") else {
                    throw error("expected a header as a [name, value] pair, found \(found())")
                }
                try enter()
                pos += 1
                skipWhitespace()
                let nameColumn = pos
                let name = try headerName()
                skipWhitespace()
                if pos < end && byte(pos) == UInt8(ascii: "]") {
                    throw error("header \(quoted(name)) has no value: write [name, value] (value may be null)", at: nameColumn)
                }
                guard pos < end && byte(pos) == UInt8(ascii: ",") else {
                    throw error("expected ',' between header name and value, found \(found())")
                }
                pos += 1
                skipWhitespace()
                let value = try bytesValue()
                skipWhitespace()
                guard pos < end && byte(pos) == UInt8(ascii: "]") else {
                    throw error("expected ']' after the header value: a header pair has exactly two elements, found \(found())")
                }
                pos += 1
                depth -= 1
                result.append(Header(name: name, value: value))
            } else {
                let nameColumn = pos
                guard pos < end && byte(pos) == UInt8(ascii: "\"") else {
                    throw error("a header must be a [name, value] pair or, in a flat list, a name string followed by its value; found \(found())")
                }
                let name = try headerName()
                skipWhitespace()
                if pos < end && byte(pos) == UInt8(ascii: "]") {
                    throw error("header \(quoted(name)) has no value: a flat headers list alternates names and values", at: nameColumn)
                }
                guard pos < end && byte(pos) == UInt8(ascii: ",") else {
                    throw error("expected ',' after header name, found \(found())")
                }
                pos += 1
                skipWhitespace()
                let value = try bytesValue()
                result.append(Header(name: name, value: value))
            }
            if try endOfElement(close: "]", after: "header", next: "a header") { return result }
        }
    }

    private mutating func headerObject() throws(EnvelopeError) -> [Header] {
        try enter()
        pos += 1
        skipWhitespace()
        var result: [Header] = []
        if pos < end && byte(pos) == UInt8(ascii: "}") {
            pos += 1
            depth -= 1
            return result
        }
        while true {
            skipWhitespace()
            guard pos < end && byte(pos) == UInt8(ascii: "\"") else {
                throw error("expected a header name in double quotes, found \(found())")
            }
            let name = try headerName()
            skipWhitespace()
            guard pos < end && byte(pos) == UInt8(ascii: ":") else {
                throw error("expected ':' after header name, found \(found())")
            }
            pos += 1
            skipWhitespace()
            result.append(Header(name: name, value: try bytesValue()))
            if try endOfElement(close: "}", after: "header", next: "a header name") { return result }
        }
    }

    private mutating func headerName() throws(EnvelopeError) -> String {
        guard pos < end && byte(pos) == UInt8(ascii: "\"") else {
            throw error("a header name must be a string, found \(found())")
        }
        let s = try scanString()
        if !s.hasEscapes {
            return String(decoding: UnsafeRawBufferPointer(start: base + s.start, count: s.end - s.start), as: UTF8.self)
        }
        return String(decoding: decodeString(s), as: UTF8.self)
    }

    // MARK: JSON grammar

    private struct StringSpan {
        /// Contents between the quotes.
        var start: Int
        var end: Int
        var hasEscapes: Bool
    }

    /// Checks the string at `pos` (which is `"`) and moves past it.
    private mutating func scanString() throws(EnvelopeError) -> StringSpan {
        let open = pos
        pos += 1
        var hasEscapes = false
        while true {
            if pos + 8 <= end, JSONStringWriter.attention(base.loadUnaligned(fromByteOffset: pos, as: UInt64.self)) == 0 {
                pos += 8
                continue
            }
            guard pos < end else {
                throw error("unterminated string: no closing '\"' before the end of the line", at: open)
            }
            let b = byte(pos)
            if b == UInt8(ascii: "\"") {
                pos += 1
                return StringSpan(start: open + 1, end: pos - 1, hasEscapes: hasEscapes)
            }
            if b == UInt8(ascii: "\\") {
                hasEscapes = true
                try scanEscape(open: open)
                continue
            }
            if b < 0x20 {
                throw error("control character \(hexByte(b)) must be escaped in a string (e.g. \\n, \\t or \\u00XX)")
            }
            if b >= 0x80 {
                let length = UTF8Scan.sequenceLength(base, pos, end)
                if length <= 0 {
                    throw error("invalid UTF-8 in string: byte \(hexByte(b)) does not start a valid sequence; JSON text must be UTF-8 (send binary as {\"base64\":\"…\"})")
                }
                pos += length
                continue
            }
            pos += 1
        }
    }

    /// Checks the escape at `pos` (a backslash) and moves past it.
    private mutating func scanEscape(open: Int) throws(EnvelopeError) {
        guard pos + 1 < end else {
            throw error("unterminated string: no closing '\"' before the end of the line", at: open)
        }
        switch byte(pos + 1) {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"), UInt8(ascii: "b"),
             UInt8(ascii: "f"), UInt8(ascii: "n"), UInt8(ascii: "r"), UInt8(ascii: "t"):
            pos += 2
        case UInt8(ascii: "u"):
            guard let unit = hex4(pos + 2) else {
                throw error("invalid \\u escape: expected 4 hex digits after \\u")
            }
            if unit >= 0xDC00 && unit <= 0xDFFF {
                throw error("unpaired surrogate \\u\(hex4Text(unit)): a low surrogate must follow a high surrogate \\uD800-\\uDBFF")
            }
            if unit >= 0xD800 && unit <= 0xDBFF {
                guard pos + 7 < end, byte(pos + 6) == UInt8(ascii: "\\"), byte(pos + 7) == UInt8(ascii: "u"),
                      let low = hex4(pos + 8), low >= 0xDC00 && low <= 0xDFFF else {
                    throw error("unpaired surrogate \\u\(hex4Text(unit)): a high surrogate must be followed by a low surrogate \\uDC00-\\uDFFF")
                }
                pos += 12
            } else {
                pos += 6
            }
        default:
            let shown = describe(pos + 1)
            throw error("invalid escape '\\' followed by \(shown) in string; the escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t and \\uXXXX")
        }
    }

    private func hex4(_ at: Int) -> UInt32? {
        guard at + 4 <= end else { return nil }
        var v: UInt32 = 0
        for i in at..<at + 4 {
            let b = byte(i)
            let d: UInt8
            switch b {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): d = b - 0x30
            case UInt8(ascii: "a")...UInt8(ascii: "f"): d = b - 0x61 + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): d = b - 0x41 + 10
            default: return nil
            }
            v = v << 4 | UInt32(d)
        }
        return v
    }

    /// The bytes a checked string stands for.
    private func decodeString(_ s: StringSpan) -> [UInt8] {
        let raw = UnsafeRawBufferPointer(start: base + s.start, count: s.end - s.start)
        if !s.hasEscapes { return [UInt8](raw) }
        var out: [UInt8] = []
        out.reserveCapacity(raw.count)
        var i = s.start
        while i < s.end {
            var j = i
            while j < s.end && byte(j) != UInt8(ascii: "\\") { j += 1 }
            if j > i {
                out.append(contentsOf: UnsafeRawBufferPointer(start: base + i, count: j - i))
                i = j
                continue
            }
            let e = byte(i + 1)
            switch e {
            case UInt8(ascii: "b"): out.append(0x08); i += 2
            case UInt8(ascii: "f"): out.append(0x0C); i += 2
            case UInt8(ascii: "n"): out.append(0x0A); i += 2
            case UInt8(ascii: "r"): out.append(0x0D); i += 2
            case UInt8(ascii: "t"): out.append(0x09); i += 2
            case UInt8(ascii: "u"):
                var scalar = hex4(i + 2)!
                i += 6
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    let low = hex4(i + 2)!
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                    i += 6
                }
                appendUTF8(scalar, to: &out)
            default: out.append(e); i += 2 // \" \\ \/
            }
        }
        return out
    }

    private func appendUTF8(_ v: UInt32, to out: inout [UInt8]) {
        switch v {
        case 0..<0x80:
            out.append(UInt8(v))
        case 0x80..<0x800:
            out.append(UInt8(0xC0 | v >> 6))
            out.append(UInt8(0x80 | v & 0x3F))
        case 0x800..<0x10000:
            out.append(UInt8(0xE0 | v >> 12))
            out.append(UInt8(0x80 | v >> 6 & 0x3F))
            out.append(UInt8(0x80 | v & 0x3F))
        default:
            out.append(UInt8(0xF0 | v >> 18))
            out.append(UInt8(0x80 | v >> 12 & 0x3F))
            out.append(UInt8(0x80 | v >> 6 & 0x3F))
            out.append(UInt8(0x80 | v & 0x3F))
        }
    }

    /// Checks a number at `pos` and moves past it; true when it has neither
    /// fraction nor exponent.
    private mutating func scanNumber() throws(EnvelopeError) -> Bool {
        if byte(pos) == UInt8(ascii: "-") { pos += 1 }
        guard pos < end && isDigit(byte(pos)) else {
            throw error("invalid number: expected a digit after '-', found \(found())")
        }
        if byte(pos) == UInt8(ascii: "0") {
            pos += 1
            if pos < end && isDigit(byte(pos)) {
                throw error("invalid number: JSON numbers cannot have leading zeros", at: pos - 1)
            }
        } else {
            while pos < end && isDigit(byte(pos)) { pos += 1 }
        }
        var integer = true
        if pos < end && byte(pos) == UInt8(ascii: ".") {
            pos += 1
            guard pos < end && isDigit(byte(pos)) else {
                throw error("invalid number: expected a digit after '.', found \(found())")
            }
            while pos < end && isDigit(byte(pos)) { pos += 1 }
            integer = false
        }
        if pos < end && (byte(pos) == UInt8(ascii: "e") || byte(pos) == UInt8(ascii: "E")) {
            pos += 1
            if pos < end && (byte(pos) == UInt8(ascii: "+") || byte(pos) == UInt8(ascii: "-")) { pos += 1 }
            guard pos < end && isDigit(byte(pos)) else {
                throw error("invalid number: expected a digit in the exponent, found \(found())")
            }
            while pos < end && isDigit(byte(pos)) { pos += 1 }
            integer = false
        }
        return integer
    }

    /// Checks the literal `word` at `pos` and moves past it.
    private mutating func literal(_ word: StaticString) throws(EnvelopeError) {
        let n = word.utf8CodeUnitCount
        guard pos + n <= end, Self.memcmpBytes(base + pos, word.utf8Start, n) else {
            throw error("expected '\(word)', found \(found())")
        }
        pos += n
    }

    private mutating func enter() throws(EnvelopeError) {
        depth += 1
        if depth > Self.maxDepth {
            throw error("too deeply nested: more than \(Self.maxDepth) levels of objects and arrays")
        }
    }

    /// After an element of an object or array: consumes a ',' and returns
    /// false (another element follows), or the closing bracket and returns
    /// true (leaving the nesting level when `nested`).
    /// - Parameters:
    ///   - after: what the element is, for messages ("header").
    ///   - next: what must follow a ',' ("a header name").
    private mutating func endOfElement(close: Unicode.Scalar, after: String, next: String, nested: Bool = true) throws(EnvelopeError) -> Bool {
        let closing = UInt8(ascii: close)
        skipWhitespace()
        if pos < end && byte(pos) == UInt8(ascii: ",") {
            pos += 1
            skipWhitespace()
            if pos < end && byte(pos) == closing {
                throw error("expected \(next) after ',' (JSON does not allow a trailing comma), found '\(close)'")
            }
            return false
        }
        if pos < end && byte(pos) == closing {
            pos += 1
            if nested { depth -= 1 }
            return true
        }
        throw error("expected ',' or '\(close)' after \(after), found \(found())")
    }

    /// Checks any JSON value at `pos` and moves past it.
    private mutating func skipValue() throws(EnvelopeError) {
        guard pos < end else { throw error("expected a JSON value, found end of line") }
        switch byte(pos) {
        case UInt8(ascii: "{"):
            try enter()
            pos += 1
            skipWhitespace()
            if pos < end && byte(pos) == UInt8(ascii: "}") { pos += 1; depth -= 1; return }
            while true {
                skipWhitespace()
                guard pos < end && byte(pos) == UInt8(ascii: "\"") else {
                    throw error("expected a field name in double quotes, found \(found())")
                }
                _ = try scanString()
                skipWhitespace()
                guard pos < end && byte(pos) == UInt8(ascii: ":") else {
                    throw error("expected ':' after field name, found \(found())")
                }
                pos += 1
                skipWhitespace()
                try skipValue()
                if try endOfElement(close: "}", after: "object member", next: "a field name") { return }
            }
        case UInt8(ascii: "["):
            try enter()
            pos += 1
            skipWhitespace()
            if pos < end && byte(pos) == UInt8(ascii: "]") { pos += 1; depth -= 1; return }
            while true {
                skipWhitespace()
                try skipValue()
                if try endOfElement(close: "]", after: "array element", next: "a value") { return }
            }
        case UInt8(ascii: "\""):
            _ = try scanString()
        case UInt8(ascii: "t"):
            try literal("true")
        case UInt8(ascii: "f"):
            try literal("false")
        case UInt8(ascii: "n"):
            try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            _ = try scanNumber()
        default:
            throw error("expected a JSON value, found \(found())")
        }
    }

    // MARK: Helpers

    @inline(__always)
    private func byte(_ i: Int) -> UInt8 { base.load(fromByteOffset: i, as: UInt8.self) }

    @inline(__always)
    private func isDigit(_ b: UInt8) -> Bool { b >= 0x30 && b <= 0x39 }

    @inline(__always)
    private mutating func skipWhitespace() {
        while pos < end {
            switch byte(pos) {
            case 0x20, 0x09, 0x0A, 0x0D: pos += 1
            default: return
            }
        }
    }

    private func error(_ message: String, at position: Int? = nil) -> EnvelopeError {
        EnvelopeError(message: message, column: (position ?? pos) + 1)
    }

    /// What is at `pos`, for an error message.
    private func found() -> String { describe(pos) }

    private func describe(_ i: Int) -> String {
        guard i < end else { return "end of line" }
        let b = byte(i)
        if b > 0x20 && b < 0x7F { return "'\(Character(Unicode.Scalar(b)))'" }
        if b == 0x20 { return "a space" }
        if b < 0x80 { return "control character \(hexByte(b))" }
        let length = UTF8Scan.sequenceLength(base, i, end)
        if length > 0 {
            return "'\(String(decoding: UnsafeRawBufferPointer(start: base + i, count: length), as: UTF8.self))'"
        }
        return "byte \(hexByte(b)) (not UTF-8)"
    }

    private func hexByte(_ b: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return "0x" + String(decoding: [digits[Int(b >> 4)], digits[Int(b & 15)]], as: UTF8.self)
    }

    private func hex4Text(_ v: UInt32) -> String {
        let digits = Array("0123456789ABCDEF".utf8)
        return String(decoding: (0..<4).map { digits[Int(v >> (12 - 4 * UInt32($0)) & 15)] }, as: UTF8.self)
    }

    /// A string's text for an error message: control characters escaped,
    /// long text cut short.
    private func display(_ s: StringSpan) -> String {
        var text = String(decoding: decodeString(s), as: UTF8.self)
        if text.unicodeScalars.count > 60 { text = String(String.UnicodeScalarView(text.unicodeScalars.prefix(57))) + "..." }
        var out = ""
        for scalar in text.unicodeScalars {
            if scalar.value < 0x20 || scalar.value == 0x7F {
                out += "\\u" + hex4Text(scalar.value)
            } else {
                out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    private func quoted(_ name: String) -> String {
        var out = "'"
        for scalar in name.unicodeScalars.prefix(60) {
            if scalar.value < 0x20 || scalar.value == 0x7F { out += "\\u" + hex4Text(scalar.value) } else { out.unicodeScalars.append(scalar) }
        }
        return out + "'"
    }
}
