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
    /// The indexes are asked for only when an entry is due (a writer opens
    /// them then); nil is an index that cannot be written, which gets no entry.
    @inline(__always)
    public static func add(_ state: inout HeadState, index: @autoclosure () -> OffsetIndex?, timeIndex: @autoclosure () -> TimeIndex?,
                           interval: Int64, position: Int64, size: Int64, lastOffset: Int64, maxTimestamp: Int64) {
        if maxTimestamp > state.maxTimestamp {
            state.maxTimestamp = maxTimestamp
            state.offsetOfMaxTimestamp = lastOffset
        }
        if state.bytesSinceIndex > interval {
            let entry = OffsetIndex.Entry(lastOffset: lastOffset, position: position, baseOffset: state.activeBase)
            if index()?.append(entry, at: state.indexBytes) == true { state.indexBytes += Int64(OffsetIndex.entrySize) }
            appendTimeEntry(&state, timeIndex: timeIndex())
            state.bytesSinceIndex = 0
        }
        state.bytesSinceIndex += size
    }

    /// Appends a time-index entry for the segment's largest timestamp if it
    /// grew since the last entry (also the final entry of a finished segment).
    public static func appendTimeEntry(_ state: inout HeadState, timeIndex: @autoclosure () -> TimeIndex?) {
        guard state.maxTimestamp > state.lastTimeIndexTimestamp else { return }
        let entry = TimeIndex.Entry(timestamp: state.maxTimestamp, offset: state.offsetOfMaxTimestamp, baseOffset: state.activeBase)
        if timeIndex()?.append(entry, at: state.timeIndexBytes) == true {
            state.timeIndexBytes += Int64(TimeIndex.entrySize)
            state.lastTimeIndexTimestamp = state.maxTimestamp
        }
    }
}
