import CLinux

/// Messages of a topic of many partitions, held back for a moment so that
/// they reach their partitions' batches partition by partition instead of
/// in input order (`TopicAppender.writeInBackground`).
///
/// Over thousands of partitions, consecutive messages go to different
/// batches, and each message added in input order costs the cache misses of
/// its batch's builder, record buffer and buffer tail, lines that left the
/// cache since that batch's previous message. Held here, a message is a
/// copy into one arena (stores in order) and an entry; `drain` then hands
/// out each partition's messages in a row, in the order they came, so that
/// those misses are paid once per partition and drain, not per message.
/// Order within a partition is kept; between partitions there is none to keep.
/// Not thread-safe.
final class StagedRecords {
    /// One message held: where its bytes are in the arena (key, value,
    /// headers, one after the other; a length of -1 is no key or no value)
    /// and the next message of its partition.
    private struct Entry {
        var partition: Int32
        var next: Int32
        var start: Int32
        var keyLength: Int32
        var valueLength: Int32
        var headersLength: Int32
        var recordSize: Int32
        var timestamp: Int64
    }

    /// Partitions from which messages are held back. Below, the builders'
    /// own lines stay in the cache between two messages of a partition, and
    /// holding back gained nothing measurable (1,000 partitions: the same
    /// user time; 3,000: 7 % less; 10,000: 18 % less).
    static let minimumPartitions: Int32 = 2048

    private let arena: UnsafeMutableRawPointer
    /// Bytes the arena holds.
    let capacity: Int
    private var used = 0
    private var entries: [Entry] = []
    /// Each partition's first and last entry, -1 for none (only those in `touched` are set).
    private var first: [Int32]
    private var last: [Int32]
    /// The partitions with entries, in the order of their first.
    private var touched: [Int32] = []

    /// For `partitions` partitions: an arena of 1 KiB per partition, from
    /// 1 MiB to 16 MiB, so that a drain finds several messages per partition.
    init(partitions: Int32) {
        capacity = min(max(Int(partitions) << 10, 1 << 20), 16 << 20)
        arena = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        first = Array(repeating: -1, count: Int(partitions))
        last = Array(repeating: -1, count: Int(partitions))
        entries.reserveCapacity(capacity / 64)
    }

    deinit { arena.deallocate() }

    var isEmpty: Bool { entries.isEmpty }

    /// The largest record (`RecordBatchBuilder.maxRecordSize`) that is held
    /// back; a larger one is added at once.
    var largestRecord: Int { capacity / 8 }

    /// Holds one message of `partition` (valid, and below the arena's
    /// `largestRecord`). Copies its bytes.
    /// - Returns: false, holding nothing, when the arena has no room left.
    @inline(__always)
    func stage(partition: Int32, timestamp: Int64, key: UnsafeRawBufferPointer?, value: UnsafeRawBufferPointer?,
               headers: UnsafeRawBufferPointer, recordSize: Int) -> Bool {
        let keyCount = key?.count ?? 0, valueCount = value?.count ?? 0
        let size = keyCount &+ valueCount &+ headers.count
        guard size <= capacity &- used, entries.count < Int(Int32.max) else { return false }
        var p = arena + used
        if let k = key?.baseAddress, keyCount > 0 { p.copyMemory(from: k, byteCount: keyCount); p += keyCount }
        if let v = value?.baseAddress, valueCount > 0 { p.copyMemory(from: v, byteCount: valueCount); p += valueCount }
        if let h = headers.baseAddress, headers.count > 0 { p.copyMemory(from: h, byteCount: headers.count) }
        let index = Int32(truncatingIfNeeded: entries.count)
        entries.append(Entry(partition: partition, next: -1, start: Int32(truncatingIfNeeded: used),
                             keyLength: key == nil ? -1 : Int32(truncatingIfNeeded: keyCount),
                             valueLength: value == nil ? -1 : Int32(truncatingIfNeeded: valueCount),
                             headersLength: Int32(truncatingIfNeeded: headers.count),
                             recordSize: Int32(truncatingIfNeeded: recordSize), timestamp: timestamp))
        used &+= size
        let tail = last[Int(partition)]
        if tail < 0 {
            first[Int(partition)] = index
            touched.append(partition)
        } else {
            entries[Int(tail)].next = index
        }
        last[Int(partition)] = index
        return true
    }

    /// Hands every message held to `add`, partition by partition (in the
    /// order of each partition's first message), each partition's in the
    /// order they came, then holds nothing (also when `add` throws: the
    /// rest is dropped with the error).
    func drain(_ add: (_ partition: Int32, _ timestamp: Int64, _ key: UnsafeRawBufferPointer?, _ value: UnsafeRawBufferPointer?,
                       _ headers: UnsafeRawBufferPointer, _ recordSize: Int) throws -> Void) rethrows {
        defer {
            for p in touched {
                first[Int(p)] = -1
                last[Int(p)] = -1
            }
            touched.removeAll(keepingCapacity: true)
            entries.removeAll(keepingCapacity: true)
            used = 0
        }
        try entries.withUnsafeBufferPointer { entries in
            for (k, p) in touched.enumerated() {
                // The next partition's first message, while this one's are added.
                if k + 1 < touched.count {
                    let e = entries[Int(first[Int(touched[k + 1])])]
                    mq_prefetch(arena + Int(e.start), 256)
                }
                var i = first[Int(p)]
                while i >= 0 {
                    let e = entries[Int(i)]
                    var at = arena + Int(e.start)
                    let key = e.keyLength < 0 ? nil : UnsafeRawBufferPointer(start: at, count: Int(e.keyLength))
                    at += Int(max(e.keyLength, 0))
                    let value = e.valueLength < 0 ? nil : UnsafeRawBufferPointer(start: at, count: Int(e.valueLength))
                    at += Int(max(e.valueLength, 0))
                    let headers = UnsafeRawBufferPointer(start: at, count: Int(e.headersLength))
                    if e.next >= 0 { mq_prefetch(arena + Int(entries[Int(e.next)].start), 256) }
                    try add(p, e.timestamp, key, value, headers, Int(e.recordSize))
                    i = e.next
                }
            }
        }
    }
}
