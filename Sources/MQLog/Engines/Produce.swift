import Glibc

/// How `mq-produce` cuts its input into messages.
public enum InputFraming: Sendable, Equatable {
    /// Messages end at a delimiter (newline by default; NUL for `-0`).
    case delimited([UInt8])
    /// All of the input is one message.
    case whole
    /// One JSON envelope per line.
    case json
}

public struct ProduceOptions: Sendable {
    public var topic: String
    public var framing: InputFraming = .delimited([10])
    public var keyDelimiter: [UInt8]? = nil
    public var fixedKey: [UInt8]? = nil
    public var headers: [Header] = []
    public var partition: Int32? = nil
    public var createPartitions: Int32? = nil
    public var create = true
    public var codec: CompressionCodec? = nil
    public var batchMessages = 100_000
    public var batchBytes: Int? = nil
    public var lingerMs: Int64 = 5
    public var sync: SyncPolicy = .exit
    public var printOffsets = false
    public var skipBad = false
    public var inputFD: Int32 = 0
    public var outputFD: Int32 = 1
    /// Deliver each message this long after it is accepted (`--delay`).
    public var delayMs: Int64? = nil
    /// Deliver every message at this time, ms since the epoch (`--at`).
    public var deliverAtMs: Int64? = nil

    /// Deduplicate by the id in this header (`--id-header`): with JSON input
    /// the envelope's header, with `-K` the key (also stored in the header).
    public var idHeader: String? = nil
    /// How long an id is remembered (`--dedup-window`).
    public var dedupWindowMs: Int64 = 120_000
    /// A named producer (`--producer`): an exactly-once copy of the input,
    /// record numbers as source offsets, so a rerun skips what was written.
    public var producerName: String? = nil
    /// Write all of the input as one transaction (`--atomic`, docs/FORMAT.md §18).
    public var atomic = false
    /// How long others wait for a live producer's transaction before they may abort it.
    public var transactionTimeoutMs: Int64 = 900_000
    /// Run this command and read its standard output instead of the input (`-- COMMAND`).
    public var command: [String]? = nil
    /// The command's exit statuses that abort the transaction (nil: any but 0).
    public var abortOnStatus: [ClosedRange<Int32>]? = nil
    /// Accept at most this many messages a second (`--rate`).
    public var ratePerSecond: Double? = nil
    /// Report waits for the topic's backlog bound on standard error (`-v`).
    public var verbose = false

    /// True when messages go to the topic's delay queue first.
    public var isDelayed: Bool { delayMs != nil || deliverAtMs != nil }

    public init(topic: String) { self.topic = topic }

    /// Parses `--abort-on-status`: exit statuses and ranges, comma-separated ("1,3-255").
    public static func parseStatusList(_ text: String) throws -> [ClosedRange<Int32>] {
        var ranges: [ClosedRange<Int32>] = []
        for part in text.split(separator: ",", omittingEmptySubsequences: false) {
            let bounds = part.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false).map { Int32($0) }
            guard !bounds.isEmpty, bounds.allSatisfy({ $0 != nil && $0! >= 0 && $0! <= 255 }) else {
                throw MQError.usage("'--abort-on-status': '\(part)' is not an exit status (0-255) or a range of them (N-M)")
            }
            let low = bounds[0]!, high = bounds.last!!
            guard low <= high else { throw MQError.usage("'--abort-on-status': range '\(part)' is empty") }
            ranges.append(low...high)
        }
        return ranges
    }
}

/// What a produce run did.
public struct ProduceSummary: Sendable {
    public var accepted = 0
    public var skipped = 0
    /// Messages not written: their id was written already (`--id-header`),
    /// or their record number was (`--producer`).
    public var duplicates = 0

    /// The `-v` summary: "accepted N messages into TOPIC" and what was skipped or not written again.
    public func line(topic: String) -> String {
        var text = "accepted \(accepted) message\(accepted == 1 ? "" : "s") into \(topic)"
        if duplicates > 0 { text += ", \(duplicates) of them duplicates not written again" }
        if skipped > 0 { text += ", \(skipped) bad input skipped" }
        return text
    }
}

/// Reads messages from a file descriptor and appends them to a topic.
///
/// Contract: when `run` returns, every accepted message is written, and with
/// the `exit` or `batch` policies fsynced. When it throws on bad input, every
/// message before the bad one is written (and synced as the policy says).
/// Not thread-safe.
public final class Producer {
    /// How much is appended between two starts of writeback (`--sync exit`):
    /// 1,000,000 messages of 100 bytes took 18 % less time with 4 MiB than
    /// with none; 1, 2, 8 and 32 MiB were no faster (docs/BENCHMARKS.md).
    static let writebackBytes: Int64 = 4 << 20
    public let options: ProduceOptions
    public let log: LogDirectory
    /// Called with a line of text for standard error (no trailing newline).
    public var warn: (String) -> Void = { _ in }

    var topic: Topic!
    /// Partition choice, batches, writers and sync: the append path every mode shares.
    var appender: TopicAppender!
    /// Where accepted messages go: the writer of the mode (ProduceWriters.swift).
    var modeWriter: ProduceWriter!
    var codec: CompressionCodec = .none
    var maxMessageBytes = 1_048_588
    var batchBytes = 1 << 20
    /// The encoded headers every message gets (`-H`, and a delayed message's
    /// due time), in memory of their own: a stored array read per message
    /// would be retained and released each time (see `add`).
    private var fixedHeaders = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    var summary = ProduceSummary()
    /// The topic written to, when not the named one (the delay topic).
    private var writeTopicName: String?
    private var headersTimestamp: Int64 = .min
    /// Where messages are read from: the input, or the command's output.
    private var inputFD: Int32
    /// `--rate` and the topic's backlog bound; nil when neither holds back.
    private var admission: ProduceAdmission?

    public init(options: ProduceOptions, log: LogDirectory) {
        self.options = options
        self.log = log
        self.inputFD = options.inputFD
    }

    deinit { fixedHeaders.deallocate() }

    /// Runs until end of input, a fatal error, or SIGINT/SIGTERM.
    /// - Throws: `MQError`: bad input (dataError, with the line number), no
    ///   such topic (noInput), file-system failures, or a stop signal (with
    ///   status interrupted/terminated, after committing what was accepted).
    public func run() throws -> ProduceSummary {
        try openTopic()
        modeWriter = try makeWriter(appender: appender)
        StopSignals.install()
        if options.atomic { return try runAtomic() }
        // Plain and delayed messages need no offset when a round of batches
        // is handed over: it is written while the next is read.
        if modeWriter is AppendingProduceWriter { try appender.writeInBackground() }
        do {
            try readInput()
        } catch let error as MQError {
            // Keep what was accepted before the failure.
            // A failure to commit wins: the stop message would claim too much.
            try finishAll()
            throw error
        }
        try finishAll()
        reportRecoveries()
        modeWriter.close(warn: warn)
        return summary
    }

    /// Reads the input to its end through `InputFramer`, accepting each message.
    private func readInput() throws {
        let framer = InputFramer(fd: inputFD, framing: options.framing, maxMessageBytes: maxMessageBytes,
                                 requireFinalDelimiter: options.atomic)
        framer.limitDescription = "max.message.bytes (\(maxMessageBytes) bytes) of topic '\(options.topic)'"
        framer.waitForInput = { [unowned self] in try waitForInput() }
        framer.stopError = { StopSignals.signal != 0 ? self.stopError() : nil }
        let json = options.framing == .json
        // Held here, the mode's writer is called per message without a
        // retain and release of it (see `add`).
        let writer: ProduceWriter = modeWriter
        try framer.forEach({ bytes, number, timestamp in
            try accept(bytes, number: number, timestamp: timestamp, json: json, into: writer)
        }, oversized: { number in
            try reject("\(unitName) \(number): message is over \(framer.limitDescription)")
        })
    }

    // MARK: Transactions

    /// `--atomic`: everything read is one transaction, committed only after
    /// a clean end of input (and, with a command, its successful exit);
    /// aborted on a stop signal, bad input or a failed command.
    private func runAtomic() throws -> ProduceSummary {
        try TransactionRecovery.recoverOrphans(root: log.root)
        let txn = try ProducerTransaction(root: log.root, timeoutMs: options.transactionTimeoutMs)
        appender.transaction = txn
        var generator: GeneratorProcess?
        do {
            if let argv = options.command {
                generator = try GeneratorProcess(argv: argv)
                inputFD = generator!.outputFD
            }
            try readInput()
            try flushAll()
            if let g = generator {
                let outcome = try g.wait()
                generator = nil
                if let failure = commandFailure(outcome, argv: g.argv) { throw failure }
            }
        } catch let error as MQError {
            generator?.stop()
            try txn.abort(pool: appender.pool)
            let n = summary.accepted
            let what = "the transaction was aborted: none of its \(n) message\(n == 1 ? " is" : "s is") visible"
            if error.status == .interrupted || error.status == .terminated {
                throw MQError(error.status, "stopped by \(StopSignals.name); \(what)")
            }
            throw MQError(error.status, "\(error.description); \(what)")
        }
        try txn.commit(pool: appender.pool)
        reportRecoveries()
        return summary
    }

    /// The error that aborts the transaction after the command ended, if any.
    private func commandFailure(_ outcome: ChildProcess.Outcome, argv: [String]) -> MQError? {
        switch outcome {
        case .exited(let status):
            let aborts = options.abortOnStatus.map { ranges in ranges.contains { $0.contains(status) } } ?? (status != 0)
            return aborts ? MQError(.failure, "'\(argv[0])' exited with status \(status)") : nil
        case .signaled(let sig):
            return MQError(.failure, "'\(argv[0])' was killed by signal \(sig)")
        }
    }

    /// Tells the user when opening a partition cut a torn write left by a
    /// writer that died: those bytes were never reported as written.
    private func reportRecoveries() {
        for p in 0..<topic.partitions {
            let dropped = appender.recoveredBytesDropped(p)
            if dropped > 0 {
                warn("recovered partition \(p) of '\(options.topic)': cut \(dropped) bytes of an incomplete write left by a writer that died")
            }
        }
    }

    // MARK: Setup

    private func openTopic() throws {
        if options.isDelayed {
            // The target must exist (consumers of it move the messages); the
            // messages themselves go to its delay topic until they are due.
            if !log.topicExists(options.topic) {
                try LogDirectory.validateTopicName(options.topic)
                guard options.create else {
                    throw log.missingTopicError(options.topic, remedy: " (create it with 'mq-topic create \(options.topic)', or drop --no-create)")
                }
                try log.createTopic(options.topic, config: TopicConfig(partitions: options.createPartitions ?? 1))
            }
            let delayTopic = DelayQueue.topicName(for: options.topic)
            try LogDirectory.validateTopicName(delayTopic)
            if !log.topicExists(delayTopic) { try log.createTopic(delayTopic, config: TopicConfig(partitions: 1)) }
            writeTopicName = delayTopic
        }
        if !log.topicExists(options.topic) {
            try LogDirectory.validateTopicName(options.topic)
            guard options.create else {
                throw MQError(.noInput, "topic '\(options.topic)' does not exist in \(log.root) (create it with 'mq-topic create \(options.topic)', or drop --no-create)")
            }
            try log.createTopic(options.topic, config: TopicConfig(partitions: options.createPartitions ?? 1))
        }
        topic = try log.openTopic(writeTopicName ?? options.topic)
        let partitions = topic.partitions
        if let p = options.partition, p < 0 || p >= partitions {
            throw MQError.usage("partition \(p) does not exist: topic '\(options.topic)' has \(partitions) partition\(partitions == 1 ? "" : "s") (0-\(partitions - 1))")
        }
        codec = options.codec ?? topic.config.defaultCodec
        maxMessageBytes = topic.config.maxMessageBytes
        batchBytes = max(1024, min(options.batchBytes ?? (1 << 20), maxMessageBytes - BatchLayout.headerSize))
        setFixedHeaders(RecordBatchBuilder.encodeHeaders(options.headers))
        var settings = PartitionWriter.Settings(topic.config)
        // An fsync at exit will write everything: let the disk start early.
        if options.sync == .exit { settings.writebackBytes = Self.writebackBytes }
        appender = TopicAppender(topic: topic, pool: WriterPool(capacity: FileBudget.shared.writersAlone), sync: options.sync, codec: codec,
                                 batchMessages: options.batchMessages, batchBytes: batchBytes,
                                 settings: settings, fixedPartition: options.partition)
        admission = ProduceAdmission(log: log, topic: topic, ratePerSecond: options.ratePerSecond, lingerMs: options.lingerMs,
                                     atomic: options.atomic, hooks: admissionHooks())
    }

    /// What the admission asks of this producer.
    private func admissionHooks() -> ProduceAdmission.Hooks {
        ProduceAdmission.Hooks(
            flush: { [unowned self] in
                try flushAll()
                try appender.waitForWrites()
            },
            oldestPendingNanos: { [unowned self] in modeWriter.pendingCount > 0 ? modeWriter.oldestPendingNanos : nil },
            stopError: { [unowned self] in stopError() },
            report: options.verbose ? { [warn] in warn($0) } : nil)
    }

    /// The error of the `reject` policy before message `number`: the bound
    /// reached, and exactly how much was accepted (all of it written, and
    /// synced as `--sync` says, by the time the error is reported).
    private func backlogFull(_ reason: String, number: Int) -> MQError {
        // --atomic: the transaction is aborted, and the error says so.
        guard !options.atomic else { return MQError(.tempFail, "\(reason) (mq.backlog.policy=reject)") }
        let n = summary.accepted
        var text = "\(reason) (mq.backlog.policy=reject): \(n) message\(n == 1 ? " was" : "s were") accepted and written"
        if summary.duplicates > 0 { text += " (\(summary.duplicates) of them duplicates, written before)" }
        return MQError(.tempFail, text + "; \(unitName) \(number) and the rest of the input were not")
    }

    // MARK: Input

    /// What to call a unit of input in messages.
    var unitName: String { InputFramer.unitName(options.framing) }

    /// Blocks until input is readable, flushing pending batches when they have
    /// lingered long enough. Throws when a stop signal arrives.
    private func waitForInput() throws {
        while true {
            if StopSignals.signal != 0 { throw stopError() }
            var timeout: Int32 = -1
            let pendingCount = modeWriter.pendingCount
            if pendingCount > 0 {
                let waited = Int64((monotonicNanos() &- modeWriter.oldestPendingNanos) / 1_000_000)
                timeout = Int32(max(0, min(options.lingerMs - waited, 60_000)))
            }
            let ready = waitReadable([inputFD, StopSignals.fd], timeoutMs: timeout)
            if StopSignals.signal != 0 { throw stopError() }
            if ready.contains(1) { StopSignals.drain() }  // a SIGCHLD of the --atomic command
            if ready.contains(0) { return }
            if ready.isEmpty && pendingCount > 0 { try flushAll() }
        }
    }

    private func stopError() -> MQError {
        let name = StopSignals.name
        let n = summary.accepted
        return MQError(StopSignals.exitStatus, "stopped by \(name); \(n) message\(n == 1 ? " was" : "s were") committed")
    }

    func reject(_ message: String) throws {
        guard options.skipBad else { throw MQError.data(message) }
        summary.skipped += 1
        warn(message + " (skipped)")
    }

    // MARK: Accepting messages

    @inline(__always)
    private func accept(_ bytes: UnsafeRawBufferPointer, number: Int, timestamp: Int64, json: Bool, into writer: ProduceWriter) throws {
        if json {
            try acceptJSON(bytes, number: number, timestamp: timestamp, into: writer)
            return
        }
        var key: UnsafeRawBufferPointer? = nil
        var value = bytes
        if let kd = options.keyDelimiter {
            if let at = kd.withUnsafeBytes({ findDelimiter(bytes.baseAddress ?? UnsafeRawPointer(bitPattern: 1)!, bytes.count, $0) }) {
                key = UnsafeRawBufferPointer(rebasing: bytes[0..<at])
                value = UnsafeRawBufferPointer(rebasing: bytes[(at + kd.count)...])
            }
            if let idHeader = options.idHeader {
                try acceptKeyed(key: key, value: value, number: number, timestamp: timestamp, idHeader: idHeader)
                return
            }
        } else if let fixed = options.fixedKey {
            if options.isDelayed { refreshDelayHeaders(timestamp) }
            try fixed.withUnsafeBytes { k in
                try add(key: k, value: value, headers: UnsafeRawBufferPointer(fixedHeaders), partition: nil, timestamp: timestamp, number: number, to: writer)
            }
            return
        }
        if options.isDelayed { refreshDelayHeaders(timestamp) }
        try add(key: key, value: value, headers: UnsafeRawBufferPointer(fixedHeaders), partition: nil, timestamp: timestamp, number: number, to: writer)
    }

    /// The due time of a message accepted at `timestamp`.
    private func dueTime(_ timestamp: Int64) -> Int64 {
        options.deliverAtMs ?? timestamp + (options.delayMs ?? 0)
    }

    /// Delayed messages carry their due time in a header; it changes with the
    /// acceptance time (at most once per read from the input).
    private func refreshDelayHeaders(_ timestamp: Int64) {
        guard timestamp != headersTimestamp else { return }
        headersTimestamp = timestamp
        setFixedHeaders(RecordBatchBuilder.encodeHeaders(options.headers + DelayQueue.headers(target: options.topic, due: dueTime(timestamp))))
    }

    private func setFixedHeaders(_ bytes: [UInt8]) {
        fixedHeaders.deallocate()
        fixedHeaders = .allocate(byteCount: bytes.count, alignment: 1)
        fixedHeaders.copyBytes(from: bytes)
    }

    private func acceptJSON(_ line: UnsafeRawBufferPointer, number: Int, timestamp: Int64, into writer: ProduceWriter) throws {
        // Blank lines carry no message.
        if line.allSatisfy({ $0 == 32 || $0 == 9 || $0 == 13 }) { return }
        let message: Message
        do {
            message = try EnvelopeJSON.parse(line)
        } catch {
            try reject("line \(number): malformed JSON: \(error)")
            return
        }
        if let p = message.partition, p >= topic.partitions {
            try reject("line \(number): partition \(p) does not exist: topic '\(options.topic)' has \(topic.partitions) partition\(topic.partitions == 1 ? "" : "s")")
            return
        }
        if let idHeader = options.idHeader {
            try acceptEnvelope(message, number: number, timestamp: timestamp, idHeader: idHeader)
            return
        }
        let delay = options.isDelayed ? DelayQueue.headers(target: options.topic, due: dueTime(timestamp)) : []
        let headers = RecordBatchBuilder.encodeHeaders(message.headers + options.headers + delay)
        let key = message.key ?? options.fixedKey
        try headers.withUnsafeBytes { h in
            try withOptionalBytes(key) { k in
                try withOptionalBytes(message.value) { v in
                    try add(key: k, value: v, headers: h, partition: message.partition, timestamp: message.timestamp ?? timestamp, number: number, to: writer)
                }
            }
        }
    }

    /// Checks a message against `max.message.bytes` and hands it to the mode's
    /// writer, `writer` (`modeWriter`, passed in: a call through the property
    /// would retain and release it per message, locked instructions that
    /// each wait for the stores into the batch the message went to, in a
    /// cold cache line when there are many partitions).
    @inline(__always)
    func add(key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?, headers: UnsafeRawBufferPointer, partition forced: Int32?,
             timestamp: Int64, number: Int, id: [UInt8]? = nil, to writer: ProduceWriter) throws {
        let recordSize = RecordBatchBuilder.maxRecordSize(keyCount: key?.count, valueCount: value?.count, encodedHeadersCount: headers.count)
        if recordSize + BatchLayout.headerSize > maxMessageBytes {
            try reject("\(unitName) \(number): message of \(recordSize) bytes (with record overhead) is over max.message.bytes (\(maxMessageBytes) bytes) of topic '\(options.topic)'")
            return
        }
        if let admission, let full = try admission.admit(size: recordSize) { throw backlogFull(full, number: number) }
        summary.accepted += 1
        try writer.add(key: key, value: value, headers: headers, partition: forced, timestamp: timestamp, number: number, recordSize: recordSize, id: id)
    }

    // MARK: Writing

    /// Writes every pending message (and prints offsets with `--print-offsets`).
    func flushAll() throws {
        try modeWriter.flush()
        summary.duplicates = modeWriter.duplicates
    }

    /// Writes and syncs everything pending at the end of input.
    private func finishAll() throws {
        try modeWriter.finish()
        summary.duplicates = modeWriter.duplicates
    }
}

/// Position of `delimiter` in `count` bytes at `p`, or nil.
@inline(__always)
func findDelimiter(_ p: UnsafeRawPointer, _ count: Int, _ delimiter: UnsafeRawBufferPointer) -> Int? {
    guard count > 0 else { return nil }
    if delimiter.count == 1 {
        guard let hit = memchr(p, Int32(delimiter[0]), count) else { return nil }
        return UnsafeRawPointer(hit) - p
    }
    // memchr for the first byte, then compare the rest.
    let first = Int32(delimiter[0])
    var from = 0
    while count - from >= delimiter.count {
        guard let hit = memchr(p + from, first, count - from - delimiter.count + 1) else { return nil }
        let at = UnsafeRawPointer(hit) - p
        if memcmp(p + at, delimiter.baseAddress!, delimiter.count) == 0 { return at }
        from = at + 1
    }
    return nil
}

@inline(__always)
func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawBufferPointer?) throws -> R) rethrows -> R {
    guard let bytes else { return try body(nil) }
    return try bytes.withUnsafeBytes { try body($0) }
}
