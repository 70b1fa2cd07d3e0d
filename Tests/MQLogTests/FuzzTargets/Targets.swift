import Glibc
@testable import MQLog

/// The decoders under test, one function per `Target`.
enum Targets {
    nonisolated(unsafe) static let decoder = BatchDecoder(limit: 8 << 20)
    nonisolated(unsafe) static let verifyDecoder = BatchDecoder(limit: 8 << 20)
    nonisolated(unsafe) static let rewriter = BatchRewriter()
    /// Only its per-batch record check is used here; it keeps no state for that.
    nonisolated(unsafe) static let logCheck = LogCheck(log: LogDirectory(root: "/nonexistent"), repair: false)

    // MARK: Batches, records, headers

    /// `bytes` as a log: batch after batch while their framing is valid (the
    /// CRC is checked, but a bad one does not stop the walk).
    static func batches(_ bytes: inout [UInt8], _ input: FuzzInput) {
        forEachBatch(&bytes, fixCRC: input.fixChecksums) { header, batch in
            decodeRecords(header, batch)
        }
    }

    static func forEachBatch(_ bytes: inout [UInt8], fixCRC: Bool, _ body: (BatchHeader, UnsafeRawBufferPointer) -> Void) {
        if fixCRC { fixBatchCRCs(&bytes) }
        bytes.withUnsafeBytes { all in
            var at = 0
            while at < all.count {
                let rest = UnsafeRawBufferPointer(rebasing: all[at...])
                _ = validateBatch(rest, checkCRC: true)
                guard case .success(let header) = validateBatch(rest, checkCRC: false) else { return }
                body(header, UnsafeRawBufferPointer(rebasing: rest[0..<header.totalSize]))
                at += header.totalSize
            }
        }
    }

    /// Decodes every record and header of a batch with valid framing, as the
    /// readers and `mq-compact --check` do.
    static func decodeRecords(_ header: BatchHeader, _ batch: UnsafeRawBufferPointer) {
        // Every reader computes these from any header that passed validation.
        blackHole(header.lastOffset)
        blackHole(header.nextOffset)
        blackHole(header.totalSize)
        _ = logCheck.checkRecords(header, batch)
        guard let records = try? decoder.records(of: batch, header: header) else { return }
        var iterator = RecordIterator(records: records, header: header)
        while let record = try? iterator.next() {
            touch(record.key)
            touch(record.value)
            touch(record.headerBytes)
            blackHole(record.offset)
            blackHole(record.timestamp)
            guard let headers = try? record.headers() else { continue }
            invariant(headers.count == record.headerCount, "headers() returned \(headers.count) of \(record.headerCount)")
            for h in headers {
                touch(h.name)
                touch(h.value)
            }
        }
        _ = iterator.isAtEnd
    }

    // MARK: Compaction's batch rewriter

    /// A record the rewriter was told to keep, copied out of the batch.
    struct KeptRecord: Equatable {
        var offset: Int64
        var timestamp: Int64
        var key: [UInt8]?
        var value: [UInt8]?
        var headerCount: Int
        var headerBytes: [UInt8]

        init(_ r: RecordView) {
            offset = r.offset
            timestamp = r.timestamp
            key = r.key.map { [UInt8]($0) }
            value = r.value.map { [UInt8]($0) }
            headerCount = r.headerCount
            headerBytes = [UInt8](r.headerBytes)
        }
    }

    /// Each batch through `BatchRewriter`, keeping the records the parameter
    /// bits choose (record i is kept when bit i % 7 is set); the rewritten
    /// batch must be valid and hold exactly the kept records.
    static func rewrite(_ bytes: inout [UInt8], _ input: FuzzInput) {
        forEachBatch(&bytes, fixCRC: input.fixChecksums) { header, batch in
            var index = 0
            var kept: [KeptRecord] = []
            let outcome: BatchRewriter.Outcome
            let removed: Int
            do {
                (outcome, removed) = try rewriter.rewrite(header: header, bytes: batch) { r in
                    defer { index += 1 }
                    let keep = (input.parameter >> (index % 7)) & 1 == 1
                    if keep { kept.append(KeptRecord(r)) }
                    return keep
                }
            } catch {
                return
            }
            let total = index
            switch outcome {
            case .verbatim:
                invariant(kept.count == total && removed == 0, "verbatim with \(kept.count) of \(total) kept, \(removed) removed")
            case .dropped:
                invariant(kept.isEmpty && removed == total, "dropped with \(kept.count) of \(total) kept, \(removed) removed")
            case .rewritten(let out):
                invariant(removed == total - kept.count, "removed \(removed), expected \(total - kept.count)")
                guard case .success(let h) = validateBatch(out, checkCRC: true) else {
                    invariant(false, "rewritten batch does not validate: \(validateBatch(out))")
                    return
                }
                invariant(h.totalSize == out.count, "rewritten batch is \(out.count) bytes, its header says \(h.totalSize)")
                invariant(h.baseOffset == header.baseOffset && h.lastOffsetDelta == header.lastOffsetDelta
                          && h.attributes == header.attributes && h.producerId == header.producerId
                          && h.producerEpoch == header.producerEpoch && h.baseSequence == header.baseSequence
                          && h.partitionLeaderEpoch == header.partitionLeaderEpoch,
                          "rewritten header \(h) does not keep the fields of \(header)")
                invariant(Int(h.recordsCount) == kept.count, "rewritten batch has \(h.recordsCount) records, \(kept.count) kept")
                var again: [KeptRecord] = []
                do {
                    var it = RecordIterator(records: try verifyDecoder.records(of: out, header: h), header: h)
                    while let r = try it.next() { again.append(KeptRecord(r)) }
                } catch {
                    invariant(false, "rewritten batch does not decode: \(error)")
                }
                invariant(again == kept, "rewritten batch holds other records than those kept")
            }
        }
    }

    // MARK: Codecs

    /// Decompression of arbitrary bytes (with a generous limit and with a
    /// small one), then a round trip of the same bytes through the codec.
    static func codec(_ codec: CompressionCodec, _ payload: [UInt8], _ input: FuzzInput) {
        payload.withUnsafeBytes { raw in
            let out = GrowableBytes(capacity: 64)
            out.append([1, 2, 3])
            for limit in [4 << 20, Int(input.parameter) * 61] {
                out.count = 3
                do {
                    try Compression.decompress(codec, raw, into: out, limit: limit)
                    invariant(out.count - 3 <= limit, "\(codec.name): \(out.count - 3) bytes out, limit \(limit)")
                    touch(out.bytes)
                } catch {
                    invariant(out.count == 3, "\(codec.name): a failed decompression left \(out.count - 3) bytes in the buffer")
                }
            }
            let packed = GrowableBytes(capacity: 64)
            do {
                try Compression.compress(codec, raw, into: packed)
            } catch {
                invariant(false, "\(codec.name): compressing \(raw.count) bytes failed: \(error)")
            }
            let back = GrowableBytes(capacity: 64)
            do {
                try Compression.decompress(codec, packed.bytes, into: back, limit: raw.count)
            } catch {
                invariant(false, "\(codec.name): decompressing what it compressed failed: \(error)")
            }
            invariant(back.count == raw.count && (raw.isEmpty || memcmp(back.base, raw.baseAddress!, raw.count) == 0),
                      "\(codec.name): round trip changed \(raw.count) bytes")
        }
    }

    // MARK: Small state files

    static func head(_ bytes: inout [UInt8], _ input: FuzzInput) {
        if input.fixChecksums && bytes.count >= 124 { storeCRC(&bytes, over: 0..<120, at: 120) }
        bytes.withUnsafeBytes { raw in
            let base = HeadState.activeBase(raw)
            guard let state = HeadState.decode(raw) else { return }
            invariant(base == state.activeBase, "activeBase \(String(describing: base)) but decode says \(state.activeBase)")
            let again = state.encode().withUnsafeBytes { HeadState.decode($0) }
            invariant(again == state, "head state does not survive encode/decode")
        }
    }

    /// The two 32-byte slots of a group's committed-offset file, decoded one
    /// by one and through a file as a reader reads it (short files zero-padded).
    static func committedOffsets(_ bytes: inout [UInt8], _ input: FuzzInput) {
        let slot = CommittedOffsetFile.slotSize
        if input.fixChecksums {
            for start in stride(from: 0, to: min(bytes.count, 2 * slot), by: slot) where start + 28 <= bytes.count {
                storeCRC(&bytes, over: start..<start + 24, at: start + 24)
            }
        }
        bytes.withUnsafeBytes { raw in
            for start in stride(from: 0, to: raw.count, by: slot) {
                let s = UnsafeRawBufferPointer(rebasing: raw[start..<min(raw.count, start + slot)])
                guard let decoded = CommittedOffsetFile.decode(s) else { continue }
                let again = CommittedOffsetFile.encode(decoded).withUnsafeBytes { CommittedOffsetFile.decode($0) }
                invariant(again == decoded, "committed-offset slot does not survive encode/decode")
            }
        }
        let path = Scratch.directory + "/offsets"
        Scratch.write(path, bytes)
        if let handle = try? OpenFile.open(path, O_RDONLY) {
            _ = try? CommittedOffsetFile.read(handle)
            handle.close()
        }
    }

    static func queueState(_ bytes: inout [UInt8], _ input: FuzzInput) {
        let headerSize = QueueState.headerSize, entrySize = QueueState.entrySize
        if input.fixChecksums && bytes.count >= headerSize {
            let n = Int(bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: 32, as: UInt32.self)) })
            if n <= (bytes.count - headerSize) / entrySize {
                let body = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[headerSize..<headerSize + entrySize * n])) }
                let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[0..<36]), extending: body) }
                storeLE(&bytes, crc, at: 36)
            }
        }
        guard let state = bytes.withUnsafeBytes({ QueueState.decode($0) }) else { return }
        var copy = state
        copy.advanceLow()
        // Owners are kept in 16 bytes: longer ones (invalid UTF-8 decodes to
        // 3-byte replacement characters) are cut, so only shorter ones round-trip.
        guard state.entries.allSatisfy({ $0.owner.utf8.count <= 16 }) else { return }
        let again = state.encode().withUnsafeBytes { QueueState.decode($0) }
        invariant(again == state, "queue state does not survive encode/decode")
    }

    static func swapJournal(_ bytes: inout [UInt8], _ input: FuzzInput) {
        if input.fixChecksums && bytes.count >= 32 && (bytes.count - 24) % 8 == 0 {
            let n = (bytes.count - 24) / 8
            storeLE(&bytes, UInt32(n), at: 16)
            storeCRC(&bytes, over: 0..<20 + 8 * n, at: 20 + 8 * n)
        }
        guard let journal = SwapJournal.decode(bytes) else { return }
        invariant(SwapJournal.decode(journal.encode()) == journal, "swap journal does not survive encode/decode")
    }

    static func copyState(_ bytes: inout [UInt8], _ input: FuzzInput) {
        if input.fixChecksums && bytes.count >= 16 {
            storeLE(&bytes, UInt32(bytes.count - 16), at: 8)
            storeLE(&bytes, CRC32C.checksum(Array(bytes[16...])), at: 12)
        }
        guard let state = CopyState.decode(bytes) else { return }
        for ranges in state.settled.values {
            blackHole(ranges.firstMissing(atOrAfter: 0))
        }
        invariant(CopyState.decode(state.encode()) == state, "copy state does not survive encode/decode")
    }

    // MARK: Helpers

    /// Recomputes the CRC-32C of each batch whose framing fits in `bytes`.
    static func fixBatchCRCs(_ bytes: inout [UInt8]) {
        var at = 0
        while bytes.count - at >= BatchLayout.headerSize {
            let length = bytes.withUnsafeBytes { loadBE($0.baseAddress!, at + BatchLayout.batchLength, as: Int32.self) }
            guard length >= Int32(BatchLayout.headerSize - BatchLayout.logOverhead) else { return }
            let total = Int(length) + BatchLayout.logOverhead
            guard total <= bytes.count - at else { return }
            let crc = bytes.withUnsafeBytes {
                CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[at + BatchLayout.attributes..<at + total]))
            }
            bytes.withUnsafeMutableBytes { $0.storeBytes(of: crc.bigEndian, toByteOffset: at + BatchLayout.crc, as: UInt32.self) }
            at += total
        }
    }

    static func storeCRC(_ bytes: inout [UInt8], over range: Range<Int>, at offset: Int) {
        let crc = bytes.withUnsafeBytes { CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[range])) }
        storeLE(&bytes, crc, at: offset)
    }

    static func storeLE<T: FixedWidthInteger>(_ bytes: inout [UInt8], _ value: T, at offset: Int) {
        bytes.withUnsafeMutableBytes { $0.storeBytes(of: value.littleEndian, toByteOffset: offset, as: T.self) }
    }
}

/// Reads every byte, so that the address sanitizer sees any read out of bounds.
@inline(never)
func touch(_ bytes: UnsafeRawBufferPointer?) {
    guard let bytes else { return }
    var sum: UInt8 = 0
    for b in bytes { sum &+= b }
    blackHole(sum)
}

@inline(never)
func blackHole<T>(_ value: T) {
    withExtendedLifetime(value) {}
}
