import Glibc

/// Walks the batches of one segment file from the start, in order, with
/// large sequential reads. Used by maintenance (compaction, retention, check,
/// repair), which reads whole segments that no writer appends to any more; the
/// live reading path with its torn-tail rules is `PartitionReader`.
/// Not thread-safe.
public final class SegmentScanner {
    public enum Step {
        /// A whole batch whose framing and CRC are valid; `bytes` stay valid until the next call.
        case batch(position: Int64, header: BatchHeader, bytes: UnsafeRawBufferPointer)
        /// The end of the file, exactly at a batch boundary.
        case end
        /// Bytes at `position` that are not a whole valid batch. `torn` is true
        /// when they run to the end of the file (a cut-off batch), false when
        /// the damage is followed by more bytes that could hold batches.
        case problem(position: Int64, problem: BatchProblem, torn: Bool)
    }

    public let path: String
    public let file: OpenFile
    public let size: Int64
    /// Position of the next batch.
    public private(set) var position: Int64 = 0
    private let buffer = GrowableBytes(capacity: 1 << 20)
    private var bufferStart: Int64 = 0

    /// Opens `path` for reading; nil when it does not exist.
    public static func open(_ path: String) throws -> SegmentScanner? {
        guard let file = try OpenFile.openIfExists(path, O_RDONLY) else { return nil }
        do {
            return SegmentScanner(path: path, file: file, size: try file.size())
        } catch {
            file.close()
            throw error
        }
    }

    init(path: String, file: OpenFile, size: Int64) {
        self.path = path
        self.file = file
        self.size = size
    }

    deinit { file.close() }

    /// The next batch's header only, without reading (or checking) the rest
    /// of the batch: for timestamps and offsets of large segments, at the
    /// cost of one small read per batch. `bytes` in the step is empty.
    public func nextHeader() throws -> Step {
        switch try peekHeader(window: 64 << 10) {
        case .stop(let step):
            return step
        case .header(let header):
            position += Int64(header.totalSize)
            return .batch(position: position - Int64(header.totalSize), header: header, bytes: UnsafeRawBufferPointer(start: nil, count: 0))
        }
    }

    /// The next batch, the end, or the problem found where a batch should start.
    /// After `.end` or `.problem` it keeps returning the same step.
    public func next(checkCRC: Bool = true) throws -> Step {
        let header: BatchHeader
        switch try peekHeader(window: 1 << 20) {
        case .stop(let step): return step
        case .header(let h): header = h
        }
        let total = Int64(header.totalSize)
        _ = try ensure(total)
        let bytes = UnsafeRawBufferPointer(start: buffer.base + Int(position - bufferStart), count: Int(total))
        switch validateBatch(bytes, checkCRC: checkCRC) {
        case .success(let h):
            position += total
            return .batch(position: position - total, header: h, bytes: bytes)
        case .failure(let p):
            // A bad last batch that ends exactly at the end of the file is
            // what a torn write leaves as well as damage: call it torn.
            return .problem(position: position, problem: p, torn: position + total == size)
        }
    }

    /// The header at `position` when its framing is plausible (magic, length,
    /// the whole batch inside the file); otherwise the step to return.
    private func peekHeader(window: Int) throws -> Peek {
        if position >= size { return .stop(.end) }
        let remaining = size - position
        guard try ensure(min(Int64(BatchLayout.headerSize), remaining), window: window) >= BatchLayout.headerSize else {
            let bytes = UnsafeRawBufferPointer(start: buffer.base + Int(position - bufferStart), count: Int(remaining))
            if case .failure(let p) = validateBatch(bytes), p != .incomplete {
                return .stop(.problem(position: position, problem: p, torn: true))
            }
            return .stop(.problem(position: position, problem: .incomplete, torn: true))
        }
        let header = BatchHeader(buffer.base + Int(position - bufferStart))
        if let problem = header.problem {
            return .stop(.problem(position: position, problem: problem, torn: false))
        }
        if Int64(header.totalSize) > remaining {
            return .stop(.problem(position: position, problem: .incomplete, torn: true))
        }
        return .header(header)
    }

    private enum Peek {
        case header(BatchHeader)
        /// The end, or a problem: the step to return.
        case stop(Step)
    }

    /// Makes at least `need` bytes from `position` available in the buffer,
    /// as far as the file has them. Returns how many are.
    private func ensure(_ need: Int64, window: Int = 1 << 20) throws -> Int {
        let have = bufferStart + Int64(buffer.count) - position
        if position >= bufferStart && have >= need { return Int(have) }
        let want = Int(max(need, Int64(window)))
        let keep = max(0, Int(have))
        if keep > 0 && position > bufferStart {
            let from = buffer.base + Int(position - bufferStart)
            memmove(buffer.base, from, keep)
        }
        buffer.count = keep
        bufferStart = position
        buffer.reserve(want - keep)
        let n = try file.read(into: buffer.base + keep, count: min(want - keep, Int(size - position) - keep), at: position + Int64(keep))
        buffer.count = keep + n
        return buffer.count
    }
}
