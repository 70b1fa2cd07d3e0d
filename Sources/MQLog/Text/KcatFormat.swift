/// A compiled kcat-style `--format` string for `mq-tail`.
///
/// Tokens: `%s` value, `%S` value size (-1 for null), `%k` key, `%K` key size
/// (-1 for null), `%t` topic, `%p` partition, `%o` offset, `%T` timestamp in
/// ms, `%h` headers as `name=value,name=value`, `%%` a percent sign. Escapes:
/// `\n` `\t` `\r` `\\` `\0`. A null key or value renders as nothing.
public struct KcatFormat: Sendable {
    enum Piece: Sendable, Equatable {
        /// Bytes `start..<start+count` of `literals`.
        case literal(start: Int, count: Int)
        case value, valueSize, key, keySize, topic, partition, offset, timestamp, headers
    }

    let pieces: [Piece]
    let literals: [UInt8]
    /// True when the format shows headers, so the reader must decode them.
    public private(set) var needsHeaders: Bool

    public init(_ format: String) throws(MQError) {
        let bytes = Array(format.utf8)
        var pieces: [Piece] = []
        var literals: [UInt8] = []
        var literalStart = 0
        func flush() {
            if literals.count > literalStart {
                pieces.append(.literal(start: literalStart, count: literals.count - literalStart))
            }
            literalStart = literals.count
        }
        /// 1-based position of byte `i`, counted in Unicode scalars.
        func position(_ i: Int) -> Int {
            bytes[..<i].reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 }
        }
        var i = 0
        while i < bytes.count {
            let b = bytes[i]
            if b == UInt8(ascii: "\\") {
                guard let (byte, length) = BackslashEscape.decode(bytes, at: i, allowHex: false) else {
                    let shown = Self.scalarText(bytes, at: i + 1)
                    throw MQError(.usage, "unknown --format escape '\\\(shown)' at position \(position(i)); the escapes are \\n \\t \\r \\\\ and \\0")
                }
                literals.append(byte)
                i += length
                continue
            }
            if b != UInt8(ascii: "%") {
                literals.append(b)
                i += 1
                continue
            }
            guard i + 1 < bytes.count else {
                throw MQError(.usage, "unknown --format token '%' at position \(position(i)): the format ends with a lone '%'; write %% for a percent sign")
            }
            let piece: Piece
            switch bytes[i + 1] {
            case UInt8(ascii: "%"):
                literals.append(UInt8(ascii: "%"))
                i += 2
                continue
            case UInt8(ascii: "s"): piece = .value
            case UInt8(ascii: "S"): piece = .valueSize
            case UInt8(ascii: "k"): piece = .key
            case UInt8(ascii: "K"): piece = .keySize
            case UInt8(ascii: "t"): piece = .topic
            case UInt8(ascii: "p"): piece = .partition
            case UInt8(ascii: "o"): piece = .offset
            case UInt8(ascii: "T"): piece = .timestamp
            case UInt8(ascii: "h"): piece = .headers
            default:
                let shown = Self.scalarText(bytes, at: i + 1)
                throw MQError(.usage, "unknown --format token '%\(shown)' at position \(position(i)); the tokens are %s %S %k %K %t %p %o %T %h and %%")
            }
            flush()
            pieces.append(piece)
            i += 2
        }
        flush()
        self.pieces = pieces
        self.literals = literals
        self.needsHeaders = pieces.contains(.headers)
    }

    /// The (whole) character starting at byte `i`, for error messages.
    private static func scalarText(_ bytes: [UInt8], at i: Int) -> String {
        guard i < bytes.count else { return "" }
        var j = i + 1
        while j < bytes.count && bytes[j] & 0xC0 == 0x80 { j += 1 }
        return String(decoding: bytes[i..<j], as: UTF8.self)
    }

    /// Appends one message rendered by the format to `out`.
    public func render(
        topic: String, partition: Int32, offset: Int64, timestamp: Int64,
        key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        headers: [HeaderView], into out: GrowableBytes
    ) {
        var o = TextCursor(out)
        literals.withUnsafeBytes { lit in
            for piece in pieces {
                switch piece {
                case let .literal(start, count):
                    o.bytes(lit.baseAddress! + start, count)
                case .value:
                    if let value { o.bytes(value) }
                case .valueSize:
                    o.decimal(value.map { Int64($0.count) } ?? -1)
                case .key:
                    if let key { o.bytes(key) }
                case .keySize:
                    o.decimal(key.map { Int64($0.count) } ?? -1)
                case .topic:
                    o.utf8(of: topic)
                case .partition:
                    o.decimal(Int64(partition))
                case .offset:
                    o.decimal(offset)
                case .timestamp:
                    o.decimal(timestamp)
                case .headers:
                    var first = true
                    for header in headers {
                        if first { first = false } else { o.byte(UInt8(ascii: ",")) }
                        o.bytes(header.name)
                        o.byte(UInt8(ascii: "="))
                        if let v = header.value { o.bytes(v) }
                    }
                }
            }
        }
        o.finish()
    }
}
