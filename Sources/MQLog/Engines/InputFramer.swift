import Glibc

/// Cuts `mq-produce`'s input (a descriptor: standard input, or a command's
/// output) into messages, as `InputFraming` says, and hands each to the
/// caller with its 1-based number in the input. What happens to a message
/// (checks, keys, envelopes, writing) is the caller's; this type only reads
/// and frames.
///
/// - Delimited input (and JSON lines): a message ends at the delimiter; a
///   last message without one is a message too, unless `requireFinalDelimiter`
///   (`--atomic`: a generator that died mid-write leaves a cut-off message).
///   A message that grows past `maxMessageBytes` without a delimiter is
///   reported to `oversized` at once (not buffered without bound), and the
///   rest of it is skipped if `oversized` returns.
/// - Whole input: one message; more than `maxMessageBytes` is a data error.
///
/// Each read waits through `waitForInput` first, which may throw (a stop
/// signal) or write lingering batches. Not thread-safe.
final class InputFramer {
    let fd: Int32
    let framing: InputFraming
    let maxMessageBytes: Int
    let requireFinalDelimiter: Bool
    /// The bound in messages: "max.message.bytes (N bytes) of topic 'T'".
    var limitDescription: String
    /// Blocks until `fd` is readable (the producer's linger and stop signals).
    var waitForInput: () throws -> Void = {}
    /// Throws the error that stops reading when a read is interrupted by a
    /// stop signal; nil when there is none.
    var stopError: () -> MQError? = { nil }

    /// Read size, and the initial buffer.
    static let readSize = 1 << 20

    init(fd: Int32, framing: InputFraming, maxMessageBytes: Int, requireFinalDelimiter: Bool = false) {
        self.fd = fd
        self.framing = framing
        self.maxMessageBytes = maxMessageBytes
        self.requireFinalDelimiter = requireFinalDelimiter
        self.limitDescription = "max.message.bytes (\(maxMessageBytes) bytes)"
    }

    /// What to call a unit of input in messages: "line" or "record".
    static func unitName(_ framing: InputFraming) -> String {
        switch framing {
        case .delimited(let d) where d == [10]: "line"
        case .json: "line"
        default: "record"
        }
    }

    var unitName: String { Self.unitName(framing) }

    /// Reads to the end of the input.
    /// - Parameters:
    ///   - message: called with each message's bytes (valid during the
    ///     call), its number, and the time it was read (ms since the epoch).
    ///   - oversized: called with the number of a message over
    ///     `maxMessageBytes`; throws to stop, returns to skip it.
    @inline(__always)  // so that `message` is inlined into the caller's loop
    func forEach(_ message: (UnsafeRawBufferPointer, _ number: Int, _ timestamp: Int64) throws -> Void,
                 oversized: (_ number: Int) throws -> Void) throws {
        switch framing {
        case .delimited(let delimiter): try readDelimited(delimiter, message, oversized: oversized)
        case .json: try readDelimited([10], message, oversized: oversized)
        case .whole: try readWhole(message)
        }
    }

    /// Reads more input into `buffer`. Returns false at end of input.
    private func fill(_ buffer: GrowableBytes) throws -> Bool {
        try waitForInput()
        buffer.reserve(Self.readSize)
        while true {
            let n = read(fd, buffer.base + buffer.count, buffer.capacity - buffer.count)
            if n > 0 { buffer.count += n; return true }
            if n == 0 { return false }
            if errno == EINTR || errno == EAGAIN {
                if let stop = stopError() { throw stop }
                try waitForInput()
                continue
            }
            throw MQError.system("cannot read standard input", path: "-", currentErrno())
        }
    }

    @inline(__always)
    private func readDelimited(_ delimiter: [UInt8], _ message: (UnsafeRawBufferPointer, Int, Int64) throws -> Void,
                               oversized: (Int) throws -> Void) throws {
        let buffer = GrowableBytes(capacity: Self.readSize)
        var scanFrom = 0       // where to look for the next delimiter
        var start = 0          // start of the current message
        var number = 0         // 1-based number of the current message
        var discarding = false // skipping the rest of an oversized message
        var eof = false
        var now = currentTimeMillis()
        let limit = maxMessageBytes
        while true {
            // Find complete messages in the buffer.
            while true {
                let found = delimiter.withUnsafeBytes { d -> Int? in
                    findDelimiter(buffer.base + scanFrom, buffer.count - scanFrom, d)
                }
                guard let rel = found else { break }
                let end = scanFrom + rel
                number += 1
                if discarding {
                    discarding = false
                } else {
                    try message(UnsafeRawBufferPointer(start: buffer.base + start, count: end - start), number, now)
                }
                start = end + delimiter.count
                scanFrom = start
            }
            if eof {
                if start < buffer.count && requireFinalDelimiter {
                    throw MQError.data("input ended inside \(unitName) \(number + 1) (no final delimiter): not a clean end of input")
                }
                if start < buffer.count && !discarding {
                    number += 1
                    try message(UnsafeRawBufferPointer(start: buffer.base + start, count: buffer.count - start), number, now)
                }
                return
            }
            // An unfinished message longer than any allowed one: report it
            // now instead of buffering without bound.
            if !discarding && buffer.count - start > limit + delimiter.count {
                try oversized(number + 1)
                discarding = true
            }
            if discarding {
                // Keep only enough to find a delimiter split across reads.
                let keep = min(buffer.count - start, delimiter.count - 1)
                start = buffer.count - keep
            }
            // Move the unfinished message to the front and read more.
            scanFrom = max(start, buffer.count - (delimiter.count - 1))
            if start > 0 {
                buffer.removeFirst(start)
                scanFrom -= start
                start = 0
            }
            eof = try !fill(buffer)
            now = currentTimeMillis()
        }
    }

    private func readWhole(_ message: (UnsafeRawBufferPointer, Int, Int64) throws -> Void) throws {
        let buffer = GrowableBytes(capacity: Self.readSize)
        while try fill(buffer) {
            if buffer.count > maxMessageBytes {
                throw MQError.data("input: message is over \(limitDescription)")
            }
        }
        try message(buffer.bytes, 1, currentTimeMillis())
    }
}
