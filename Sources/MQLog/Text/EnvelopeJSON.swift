/// The one-line JSON envelope of a message, written by `mq-tail --json` and
/// read by `mq-produce --json`:
///
///     {"topic":"t","partition":0,"offset":5,"timestamp":1700000000000,"key":null,"value":"hi","headers":[["h","v"]]}
///
/// Key, value and header values are `null`, a string (when the bytes are
/// valid UTF-8) or `{"base64":"…"}` (when they are not).
public enum EnvelopeJSON {
    /// Appends the envelope of one message to `out`, without a newline.
    public static func append(
        topic: String, partition: Int32, offset: Int64, timestamp: Int64,
        key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
        headers: [HeaderView], to out: GrowableBytes
    ) {
        var o = TextCursor(out)
        o.literal("{\"topic\":")
        let done: Void? = topic.utf8.withContiguousStorageIfAvailable {
            JSONStringWriter.appendLossy(UnsafeRawBufferPointer($0), to: &o)
        }
        if done == nil {
            Array(topic.utf8).withUnsafeBytes { JSONStringWriter.appendLossy($0, to: &o) }
        }
        o.literal(",\"partition\":")
        o.decimal(Int64(partition))
        o.literal(",\"offset\":")
        o.decimal(offset)
        o.literal(",\"timestamp\":")
        o.decimal(timestamp)
        o.literal(",\"key\":")
        appendBytes(key, to: &o)
        o.literal(",\"value\":")
        appendBytes(value, to: &o)
        o.literal(",\"headers\":[")
        var first = true
        for header in headers {
            if first { first = false } else { o.byte(UInt8(ascii: ",")) }
            o.byte(UInt8(ascii: "["))
            JSONStringWriter.appendLossy(header.name, to: &o)
            o.byte(UInt8(ascii: ","))
            appendBytes(header.value, to: &o)
            o.byte(UInt8(ascii: "]"))
        }
        o.literal("]}")
        o.finish()
    }

    /// `null`, a JSON string, or `{"base64":"…"}`.
    @inline(__always)
    static func appendBytes(_ bytes: UnsafeRawBufferPointer?, to o: inout TextCursor) {
        guard let bytes else {
            o.literal("null")
            return
        }
        if JSONStringWriter.appendIfUTF8(bytes, to: &o) { return }
        o.literal("{\"base64\":\"")
        o.base64(bytes)
        o.literal("\"}")
    }

    /// Reads one envelope line (without or with its trailing newline).
    ///
    /// Accepts what `append` writes and kcat's `-J` output: `payload` for
    /// `value`, `ts` for `timestamp`, flat `[name, value, …]` header lists;
    /// `topic`, `offset`, `tstype` and `broker` are ignored. A value that is
    /// any other JSON (object, array, number, boolean) is kept as its JSON
    /// text, exactly as written.
    public static func parse(_ line: UnsafeRawBufferPointer) throws(EnvelopeError) -> Message {
        var parser = EnvelopeParser(line)
        return try parser.parseEnvelope()
    }

    /// Reads one envelope line; see `parse(_: UnsafeRawBufferPointer)`.
    public static func parse(_ line: String) throws(EnvelopeError) -> Message {
        var s = line
        let result = s.withUTF8 { p in
            Result { () throws(EnvelopeError) -> Message in try parse(UnsafeRawBufferPointer(p)) }
        }
        return try result.get()
    }
}
