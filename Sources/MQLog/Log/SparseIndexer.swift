/// Kafka's sparse indexing rule (docs/FORMAT.md §6), shared by the writer
/// (appends and recovery) and by compaction (segments built from scratch).
///
/// The indexing state lives in a `HeadState` (`activeBase`, `bytesSinceIndex`,
/// `indexBytes`, `timeIndexBytes`, `maxTimestamp`, `offsetOfMaxTimestamp`,
/// `lastTimeIndexTimestamp`): the writer's shared state, or a scratch one for
/// a segment being rewritten. A failed index write is undone and ignored: the
/// index only gets sparser, and recovery rebuilds it.
public enum SparseIndexer {
    /// Records one batch of `size` bytes at `position` (last offset, largest
    /// timestamp): an offset-index entry once more than `interval` bytes were
    /// added since the last one, with a time-index entry when the segment's
    /// largest timestamp grew.
    @inline(__always)
    public static func add(_ state: inout HeadState, index: FileHandle, timeIndex: FileHandle, interval: Int64,
                           position: Int64, size: Int64, lastOffset: Int64, maxTimestamp: Int64) {
        if maxTimestamp > state.maxTimestamp {
            state.maxTimestamp = maxTimestamp
            state.offsetOfMaxTimestamp = lastOffset
        }
        if state.bytesSinceIndex > interval {
            var entry = (UInt32(truncatingIfNeeded: lastOffset - state.activeBase).bigEndian, UInt32(truncatingIfNeeded: position).bigEndian)
            let at = state.indexBytes
            let ok = withUnsafeBytes(of: &entry) { raw in (try? index.write(raw, at: at)) != nil }
            if ok { state.indexBytes += 8 } else { try? index.truncate(to: at) }
            appendTimeEntry(&state, timeIndex: timeIndex)
            state.bytesSinceIndex = 0
        }
        state.bytesSinceIndex += size
    }

    /// Appends a time-index entry for the segment's largest timestamp if it
    /// grew since the last entry (also the final entry of a finished segment).
    public static func appendTimeEntry(_ state: inout HeadState, timeIndex: FileHandle) {
        guard state.maxTimestamp > state.lastTimeIndexTimestamp else { return }
        var bytes = [UInt8](repeating: 0, count: TimeIndexEntry.size)
        bytes.withUnsafeMutableBytes { raw in
            raw.storeBytes(of: state.maxTimestamp.bigEndian, toByteOffset: 0, as: Int64.self)
            raw.storeBytes(of: UInt32(truncatingIfNeeded: state.offsetOfMaxTimestamp - state.activeBase).bigEndian, toByteOffset: 8, as: UInt32.self)
        }
        let at = state.timeIndexBytes
        let ok = bytes.withUnsafeBytes { raw in (try? timeIndex.write(raw, at: at)) != nil }
        if ok {
            state.timeIndexBytes += Int64(TimeIndexEntry.size)
            state.lastTimeIndexTimestamp = state.maxTimestamp
        } else {
            try? timeIndex.truncate(to: at)
        }
    }
}
