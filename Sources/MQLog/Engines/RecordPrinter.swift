/// Prints records in one of the output modes of `mq-tail` and `mq-consume`,
/// buffering output and writing it in large pieces. Not thread-safe.
public final class RecordPrinter {
    public let mode: OutputMode
    public let fd: Int32
    private let out = GrowableBytes(capacity: 1 << 17)

    public init(mode: OutputMode, fd: Int32) {
        self.mode = mode
        self.fd = fd
    }

    /// Bytes buffered and not yet written.
    public var pendingBytes: Int { out.count }

    /// Appends one record; writes the buffer out when it is large.
    @inline(__always)
    public func print(_ r: RecordView, topic: String, partition: Int32) throws {
        try append(r, topic: topic, partition: partition, to: out)
        if out.count >= 1 << 17 { try flush() }
    }

    /// The record as this mode prints it.
    public func rendered(_ r: RecordView, topic: String, partition: Int32) throws -> [UInt8] {
        let buffer = GrowableBytes(capacity: (r.value?.count ?? 0) + 64)
        try append(r, topic: topic, partition: partition, to: buffer)
        return buffer.array
    }

    @inline(__always)
    private func append(_ r: RecordView, topic: String, partition: Int32, to out: GrowableBytes) throws {
        switch mode {
        case .values(let delimiter):
            if let v = r.value { out.append(v) }
            delimiter.withUnsafeBytes { out.append($0) }
        case .format(let format):
            let headers = format.needsHeaders ? try r.headers() : []
            format.render(topic: topic, partition: partition, offset: r.offset, timestamp: r.timestamp,
                          key: r.key, value: r.value, headers: headers, into: out)
        case .json:
            EnvelopeJSON.append(topic: topic, partition: partition, offset: r.offset, timestamp: r.timestamp,
                                key: r.key, value: r.value, headers: try r.headers(), to: out)
            out.append(byte: 10)
        }
    }

    /// Writes everything buffered.
    /// - Throws: `OutputClosed` when the reader of the output went away
    ///   (EPIPE), so that callers end quietly; other write errors as they are.
    public func flush() throws {
        defer { out.count = 0 }
        do {
            try writeAll(fd, out.bytes, what: "standard output")
        } catch {
            throw MQError.outputClosedOrSelf(error)
        }
    }
}
