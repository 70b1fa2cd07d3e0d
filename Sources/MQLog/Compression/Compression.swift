import CZstd

/// Per-batch compression with the exact framing Kafka's Java client writes and reads
/// for record batch v2 (the bytes after a batch's `recordCount`).
///
/// | codec  | framing |
/// |--------|---------|
/// | gzip   | a gzip stream (RFC 1952); decoding accepts several members back to back |
/// | snappy | xerial snappy-java stream: magic, version 1, compatible version 1, then `[int32 BE length][raw snappy block]`, each block at most 32 KiB of input; decoding also takes one bare snappy block |
/// | lz4    | LZ4 frame as Kafka writes it: independent 64 KiB blocks, no content size, no checksums, end mark; decoding takes any valid frame |
/// | zstd   | zstd frames; decoding takes frames without a content size and several frames back to back |
///
/// Both calls append to a `GrowableBytes`; when they throw, the buffer is left as it was.
/// They are safe to call from several threads at once: codec contexts are kept in
/// small pools and reused across calls, so the producer's hot path does not set up a
/// compressor per batch.
public enum Compression {
    /// Appends `input` compressed with Kafka's framing for `codec` to `output`. `.none` copies.
    ///
    /// - Parameter level: the codec's level, as Kafka's `compression.<codec>.level` takes it;
    ///   `nil` for Kafka's default (see `defaultLevel(for:)`). Ignored by snappy and none.
    public static func compress(
        _ codec: CompressionCodec, _ input: UnsafeRawBufferPointer, into output: GrowableBytes, level: Int32? = nil
    ) throws(CompressionError) {
        let start = output.count
        do throws(CompressionError) {
            switch codec {
            case .none:
                output.append(input)
            case .gzip:
                try Gzip.compress(input, into: output, level: try checkedLevel(codec, level))
            case .snappy:
                try Snappy.compress(input, into: output)
            case .lz4:
                try LZ4.compress(input, into: output, level: try checkedLevel(codec, level))
            case .zstd:
                try Zstd.compress(input, into: output, level: try checkedLevel(codec, level))
            }
        } catch {
            output.count = start
            throw error
        }
    }

    /// Appends the decompressed form of `input` to `output`; throws if the result would exceed `limit` bytes
    /// (guards against decompression bombs), or if the input is corrupt or truncated.
    public static func decompress(
        _ codec: CompressionCodec, _ input: UnsafeRawBufferPointer, into output: GrowableBytes, limit: Int
    ) throws(CompressionError) {
        let limit = max(limit, 0)
        let start = output.count
        do throws(CompressionError) {
            switch codec {
            case .none:
                if input.count > limit { throw CompressionError.limitExceeded(codec, limit) }
                output.append(input)
            case .gzip:
                try Gzip.decompress(input, into: output, limit: limit)
            case .snappy:
                try Snappy.decompress(input, into: output, limit: limit)
            case .lz4:
                try LZ4.decompress(input, into: output, limit: limit)
            case .zstd:
                try Zstd.decompress(input, into: output, limit: limit)
            }
        } catch {
            output.count = start
            throw error
        }
    }

    /// The level used when none is given: Kafka's defaults. gzip 6 (`Deflater.DEFAULT_COMPRESSION`),
    /// lz4 9 (which Kafka, and so this, serves with LZ4's fast compressor, not LZ4HC), zstd 3.
    /// `nil` for codecs without levels.
    public static func defaultLevel(for codec: CompressionCodec) -> Int32? {
        switch codec {
        case .none, .snappy: nil
        case .gzip: 6
        case .lz4: LZ4.defaultLevel
        case .zstd: 3
        }
    }

    /// The levels `compress` accepts, as Kafka's config validation does: gzip 1...9 (and -1,
    /// meaning the default), lz4 1...17, zstd from zstd's negative minimum to 22.
    /// `nil` for codecs without levels.
    public static func levelRange(for codec: CompressionCodec) -> ClosedRange<Int32>? {
        switch codec {
        case .none, .snappy: nil
        case .gzip: 1...9
        case .lz4: 1...17
        case .zstd: Int32(ZSTD_minCLevel())...Int32(ZSTD_maxCLevel())
        }
    }

    private static func checkedLevel(_ codec: CompressionCodec, _ level: Int32?) throws(CompressionError) -> Int32 {
        guard let level else { return defaultLevel(for: codec)! }
        if codec == .gzip && level == -1 { return 6 }
        guard let range = levelRange(for: codec), range.contains(level) else {
            let range = levelRange(for: codec).map { " (\($0.lowerBound)...\($0.upperBound))" } ?? ""
            throw CompressionError(codec, .invalidLevel, "unsupported compression level \(level)\(range)")
        }
        return level
    }
}

// MARK: - Helpers shared by the codecs

/// How much room to give a decoder for its next step, after reserving it in `output`.
///
/// Decoders are allowed one byte past `limit`: producing it is how a bomb is noticed
/// without knowing the final size in advance. `want` is a size hint; the buffer grows
/// geometrically from there.
@inline(__always)
func decoderRoom(_ output: GrowableBytes, produced: Int, limit: Int, want: Int) -> Int {
    let left = limit - produced
    let allowance = left == Int.max ? left : left + 1
    output.reserve(min(allowance, max(want, produced, 64 * 1024)))
    return min(output.capacity - output.count, allowance)
}

/// A readable address for `input`, even when it is empty (C libraries want non-null).
@inline(__always)
func startAddress(_ input: UnsafeRawBufferPointer, _ output: GrowableBytes) -> UnsafeRawPointer {
    input.baseAddress ?? UnsafeRawPointer(output.base)
}
