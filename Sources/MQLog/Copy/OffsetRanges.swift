/// A set of offsets kept as sorted, disjoint, non-adjacent closed ranges
/// (`[0...9, 20...20]`): what a copy has settled in one source partition.
public struct OffsetRanges: Sendable, Equatable, CustomStringConvertible {
    public private(set) var ranges: [ClosedRange<Int64>] = []

    public init() {}

    /// Ranges in any order, overlapping or not; they are merged.
    public init(_ ranges: [ClosedRange<Int64>]) {
        for r in ranges { insert(r) }
    }

    public var isEmpty: Bool { ranges.isEmpty }

    /// Number of offsets in the set.
    public var count: Int64 { ranges.reduce(0) { $0 + $1.upperBound - $1.lowerBound + 1 } }

    /// Index of the first range whose upper bound is ≥ `offset`.
    private func firstIndex(endingAtOrAfter offset: Int64) -> Int {
        var lo = 0, hi = ranges.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if ranges[mid].upperBound < offset { lo = mid + 1 } else { hi = mid }
        }
        return lo
    }

    public func contains(_ offset: Int64) -> Bool {
        let i = firstIndex(endingAtOrAfter: offset)
        return i < ranges.count && ranges[i].lowerBound <= offset
    }

    /// Adds `range`, merging it with the ranges it overlaps or touches.
    public mutating func insert(_ range: ClosedRange<Int64>) {
        // The first range that could merge: one ending at lowerBound - 1 or later.
        let start = firstIndex(endingAtOrAfter: range.lowerBound == .min ? .min : range.lowerBound - 1)
        var end = start
        var lower = range.lowerBound, upper = range.upperBound
        while end < ranges.count && (upper == .max || ranges[end].lowerBound <= upper + 1) {
            lower = min(lower, ranges[end].lowerBound)
            upper = max(upper, ranges[end].upperBound)
            end += 1
        }
        ranges.replaceSubrange(start..<end, with: [lower...upper])
    }

    public mutating func insert(_ offset: Int64) { insert(offset...offset) }

    public mutating func formUnion(_ other: OffsetRanges) {
        for r in other.ranges { insert(r) }
    }

    /// The smallest offset ≥ `start` that is not in the set.
    public func firstMissing(atOrAfter start: Int64) -> Int64 {
        let i = firstIndex(endingAtOrAfter: start)
        if i < ranges.count && ranges[i].lowerBound <= start { return ranges[i].upperBound &+ 1 }
        return start
    }

    /// The parts of `range` that are not in the set, in order.
    public func gaps(in range: ClosedRange<Int64>) -> [ClosedRange<Int64>] {
        var out: [ClosedRange<Int64>] = []
        var next = range.lowerBound
        var i = firstIndex(endingAtOrAfter: range.lowerBound)
        while next <= range.upperBound {
            guard i < ranges.count, ranges[i].lowerBound <= range.upperBound else {
                out.append(next...range.upperBound)
                break
            }
            if ranges[i].lowerBound > next { out.append(next...(ranges[i].lowerBound - 1)) }
            if ranges[i].upperBound >= range.upperBound { break }
            next = ranges[i].upperBound + 1
            i += 1
        }
        return out
    }

    /// How many offsets of `range` are in the set.
    public func count(in range: ClosedRange<Int64>) -> Int64 {
        let missing = gaps(in: range).reduce(Int64(0)) { $0 + $1.upperBound - $1.lowerBound + 1 }
        return range.upperBound - range.lowerBound + 1 - missing
    }

    public var description: String {
        "[" + ranges.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" }.joined(separator: ",") + "]"
    }
}
