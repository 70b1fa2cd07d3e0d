/// Where `mq-produce` puts the messages its input framing accepted: one type
/// per mode, each over the shared append path (`TopicAppender`).
///
/// - `AppendingProduceWriter`: plain, delayed (`--delay`, `--at`: the topic
///   is the delay topic) and `--atomic` (the appender writes as a transaction);
/// - `IDDedupProduceWriter`: `--id-header` (Produce+Dedup.swift);
/// - `NamedProduceWriter`: `--producer` (Produce+Dedup.swift).
///
/// Messages reach `add` already checked against `max.message.bytes`.
protocol ProduceWriter: AnyObject {
    /// Messages accepted and not yet written.
    var pendingCount: Int { get }
    /// When the oldest pending message was accepted (monotonic ns).
    var oldestPendingNanos: UInt64 { get }
    /// Messages not written because they were written before.
    var duplicates: Int { get }
    /// Accepts one message.
    /// - Parameters:
    ///   - partition: the envelope's partition, if any.
    ///   - number: its record number in the input (1-based).
    ///   - recordSize: `RecordBatchBuilder.maxRecordSize` of the message.
    ///   - id: its id (`--id-header` only).
    func add(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer,
             partition: Int32?, timestamp: Int64, number: Int, recordSize: Int, id: [UInt8]?) throws
    /// Writes everything pending (and prints its offsets with `--print-offsets`).
    func flush() throws
    /// Makes everything written durable as `--sync` says.
    func sync() throws
    /// At the end of input: `flush`, then `sync`.
    func finish() throws
    /// After a clean end: reports what recovery did, closes journals.
    func close(warn: (String) -> Void)
}

extension ProduceWriter {
    func finish() throws {
        try flush()
        try sync()
    }
}

/// `--print-offsets` output: "PARTITION OFFSET" lines (or "dup P O"), written
/// to standard output once per flush.
final class OffsetPrinter {
    let fd: Int32
    private let buffer = GrowableBytes(capacity: 1 << 16)

    init(fd: Int32) { self.fd = fd }

    func line(_ text: String) { buffer.append(text + "\n") }

    func emit() throws {
        defer { buffer.count = 0 }
        try writeAll(fd, buffer.bytes, what: "standard output")
    }
}

/// Plain, delayed and `--atomic` produce: straight into the appender's batches.
final class AppendingProduceWriter: ProduceWriter {
    let appender: TopicAppender

    init(appender: TopicAppender, printer: OffsetPrinter?) {
        self.appender = appender
        if let printer {
            appender.placed = { offsets in
                for (p, o) in offsets { printer.line("\(p) \(o)") }
                try printer.emit()
            }
        }
    }

    var pendingCount: Int { appender.pendingCount }
    var oldestPendingNanos: UInt64 { appender.oldestPendingNanos }
    var duplicates: Int { 0 }

    @inline(__always)
    func add(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer,
             partition: Int32?, timestamp: Int64, number: Int, recordSize: Int, id: [UInt8]?) throws {
        try appender.add(key: key, value: value, headers: headers, partition: partition, timestamp: timestamp, recordSize: recordSize)
    }

    func flush() throws { try appender.flushAll() }
    func sync() throws { try appender.syncAll() }
    func finish() throws { try appender.finishAll() }
    func close(warn: (String) -> Void) {}
}
