/// What `OffsetIndex` and `TimeIndex` share (Kafka's `AbstractIndex`): a
/// file of fixed-size, big-endian entries with no header and no preallocated
/// tail, appended at the end, searched by binary search, never checksummed
/// (derived data: recovery rebuilds it). Nothing read from one may trap:
/// every read is bounded by the file's size and a partial last entry is not
/// an entry.
///
/// A conforming value is a view of an open file; it does not own it
/// (whoever opened it closes it). Not thread-safe.
public protocol SegmentIndex {
    associatedtype Entry: Equatable
    /// Bytes per entry.
    static var entrySize: Int { get }
    /// Writes `entry`'s `entrySize` bytes at `out`.
    static func encode(_ entry: Entry, into out: UnsafeMutableRawPointer)
    /// Decodes the `entrySize` bytes at `p`.
    static func decode(_ p: UnsafeRawPointer) -> Entry
    var file: OpenFile { get }
}

extension SegmentIndex {
    /// The whole entries in `bytes` (a partial last entry is left out).
    public static func entries(in bytes: UnsafeRawBufferPointer) -> [Entry] {
        guard let p = bytes.baseAddress else { return [] }
        return (0..<(bytes.count / entrySize)).map { decode(p + $0 * entrySize) }
    }

    /// Writes `entry` at byte `end` (the index's length). When the write
    /// fails (a full disk), cuts the file back to `end`: the index only gets
    /// sparser.
    /// - Returns: whether the entry was written.
    @inline(__always)
    public func append(_ entry: Entry, at end: Int64) -> Bool {
        let ok = withUnsafeTemporaryAllocation(byteCount: Self.entrySize, alignment: 8) { buffer in
            Self.encode(entry, into: buffer.baseAddress!)
            return (try? file.write(UnsafeRawBufferPointer(buffer), at: end)) != nil
        }
        if !ok { try? file.truncate(to: end) }
        return ok
    }

    /// The number of whole entries in the file.
    public func count() throws -> Int64 { try file.size() / Int64(Self.entrySize) }

    /// Entry `i`, or nil when the file does not hold it (out of range, or cut meanwhile).
    public func entry(at i: Int64) throws -> Entry? {
        guard i >= 0, i < Int64.max / Int64(Self.entrySize) else { return nil }
        return try withUnsafeTemporaryAllocation(byteCount: Self.entrySize, alignment: 8) { buffer in
            guard try file.read(into: buffer.baseAddress!, count: Self.entrySize, at: i * Int64(Self.entrySize)) == Self.entrySize else { return nil }
            return Self.decode(buffer.baseAddress!)
        }
    }

    /// The last whole entry, if any.
    public func lastEntry() throws -> Entry? {
        let n = try count()
        return n > 0 ? try entry(at: n - 1) : nil
    }

    /// The last entry for which `isAtOrBefore` holds, by binary search,
    /// assuming it holds for a prefix of the entries (they increase); nil
    /// when it holds for none, or when the file changed under the search.
    public func floorEntry(_ isAtOrBefore: (Entry) -> Bool) throws -> Entry? {
        var lo: Int64 = 0, hi = try count() - 1
        var found: Entry?
        while lo <= hi {
            let mid = lo + (hi - lo) / 2
            guard let e = try entry(at: mid) else { return nil }
            if isAtOrBefore(e) { found = e; lo = mid + 1 } else { hi = mid - 1 }
        }
        return found
    }
}

/// A problem in an index file: the byte it is at, and what.
public struct IndexProblem: Equatable, Sendable, CustomStringConvertible {
    public let position: Int
    public let message: String
    public init(_ position: Int, _ message: String) {
        self.position = position
        self.message = message
    }
    public var description: String { "at byte \(position): \(message)" }

    /// The problem of a file of `size` bytes that does not hold whole entries of `entrySize`.
    static func partialEntry(size: Int, entrySize: Int) -> IndexProblem? {
        size % entrySize == 0 ? nil : IndexProblem(size - size % entrySize, "size \(size) is not a multiple of \(entrySize)")
    }
}
