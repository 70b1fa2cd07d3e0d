import CLZ4

/// lz4: the LZ4 frame exactly as Kafka's `Lz4BlockOutputStream` (formerly
/// `KafkaLZ4BlockOutputStream`) writes it for magic v1 and later:
///
///     04 22 4D 18   magic 0x184D2204, little-endian
///     60            FLG: version 01, independent blocks, no block checksum,
///                   no content size, no content checksum
///     40            BD: 64 KiB maximum block size
///     HC            (xxh32(FLG BD) >> 8) & 0xFF
///     { uint32 LE size (high bit: stored uncompressed), block } ...
///     00 00 00 00   end mark
///
/// Kafka compresses with lz4-java's fast compressor at its default level (9) and with
/// LZ4HC at any other level; liblz4's frame API here makes the same frame with the same
/// choice of compressor. Decoding takes any valid LZ4 frame (with checksums, content
/// size, linked blocks, several frames in a row).
enum LZ4 {
    /// Kafka's default `compression.lz4.level`, served by the fast compressor.
    static let defaultLevel: Int32 = 9

    final class Compressor: @unchecked Sendable {
        let context: OpaquePointer

        init() throws(CompressionError) {
            var context: OpaquePointer?
            let code = LZ4F_createCompressionContext(&context, UInt32(LZ4F_VERSION))
            guard LZ4F_isError(code) == 0, let context else { throw LZ4.error(code) }
            self.context = context
        }

        deinit { LZ4F_freeCompressionContext(context) }
    }

    final class Decompressor: @unchecked Sendable {
        let context: OpaquePointer

        init() throws(CompressionError) {
            var context: OpaquePointer?
            let code = LZ4F_createDecompressionContext(&context, UInt32(LZ4F_VERSION))
            guard LZ4F_isError(code) == 0, let context else { throw LZ4.error(code) }
            self.context = context
        }

        deinit { LZ4F_freeDecompressionContext(context) }
    }

    private static let compressors = ContextPool<Compressor>()
    private static let decompressors = ContextPool<Decompressor>()

    /// The frame preferences that reproduce Kafka's header byte for byte.
    static func preferences(level: Int32) -> LZ4F_preferences_t {
        var preferences = LZ4F_preferences_t()
        preferences.frameInfo.blockSizeID = LZ4F_max64KB
        preferences.frameInfo.blockMode = LZ4F_blockIndependent
        preferences.frameInfo.contentChecksumFlag = LZ4F_noContentChecksum
        preferences.frameInfo.blockChecksumFlag = LZ4F_noBlockChecksum
        preferences.frameInfo.frameType = LZ4F_frame
        preferences.frameInfo.contentSize = 0
        // 0 selects LZ4_compress_default, what lz4-java's fastCompressor runs;
        // 3 and up select LZ4HC at that level.
        preferences.compressionLevel = level == defaultLevel ? 0 : level
        preferences.autoFlush = 1  // blocks go straight to the output, no staging copy
        return preferences
    }

    static func compress(_ input: UnsafeRawBufferPointer, into output: GrowableBytes, level: Int32) throws(CompressionError) {
        let compressor = try compressors.take(orMake: Compressor.init)
        var preferences = preferences(level: level)
        let bound = Int(LZ4F_HEADER_SIZE_MAX) + LZ4F_compressBound(input.count, &preferences)
        output.reserve(bound)
        let start = output.base + output.count
        var written = 0

        var code = LZ4F_compressBegin(compressor.context, start, bound, &preferences)
        guard LZ4F_isError(code) == 0 else { throw error(code) }
        written += code
        if input.count > 0 {
            code = LZ4F_compressUpdate(compressor.context, start + written, bound - written,
                                       input.baseAddress, input.count, nil)
            guard LZ4F_isError(code) == 0 else { throw error(code) }
            written += code
        }
        code = LZ4F_compressEnd(compressor.context, start + written, bound - written, nil)
        guard LZ4F_isError(code) == 0 else { throw error(code) }
        written += code

        output.count += written
        compressors.give(compressor)  // LZ4F_compressBegin starts afresh on reuse
    }

    static func decompress(_ input: UnsafeRawBufferPointer, into output: GrowableBytes, limit: Int) throws(CompressionError) {
        guard input.count > 0 else { throw CompressionError.truncated(.lz4, "frame (empty input)") }
        let decompressor = try decompressors.take(orMake: Decompressor.init)
        let context = decompressor.context
        LZ4F_resetDecompressionContext(context)
        // Back to the pool only after a whole, valid input: liblz4's reset
        // keeps some state of a frame that failed (its declared content
        // size), which would make the next, valid frame fail.
        try decode(input, with: context, into: output, limit: limit)
        decompressors.give(decompressor)
    }

    private static func decode(_ input: UnsafeRawBufferPointer, with context: OpaquePointer, into output: GrowableBytes, limit: Int) throws(CompressionError) {
        guard let source = input.baseAddress else { throw CompressionError.truncated(.lz4, "frame (empty input)") }
        var position = 0
        var produced = 0
        var inFrame = false
        let want = input.count * 4
        while position < input.count || inFrame {
            let room = decoderRoom(output, produced: produced, limit: limit, want: want)
            var made = room
            var used = input.count - position
            let hint = LZ4F_decompress(context, output.base + output.count, &made, source + position, &used, nil)
            if LZ4F_isError(hint) != 0 {
                LZ4F_resetDecompressionContext(context)
                throw error(hint)
            }
            position += used
            output.count += made
            produced += made
            if produced > limit { throw CompressionError.limitExceeded(.lz4, limit) }
            inFrame = hint != 0  // 0: a frame ended exactly here
            if inFrame && position == input.count && made < room {
                // All input taken, output not full, and the frame still expects more.
                throw CompressionError.truncated(.lz4, "frame")
            }
            if used == 0 && made == 0 && position < input.count {
                throw CompressionError.corrupt(.lz4, "corrupt frame (the decoder makes no progress)")
            }
        }
    }

    /// Maps an LZ4F error code to a `CompressionError`. Codes that only a misuse of
    /// the API can cause are `library` errors, never a stop: the decoder's input
    /// comes from disk.
    static func error(_ code: Int) -> CompressionError {
        let kind = LZ4F_getErrorCode(code)
        switch kind {
        case LZ4F_ERROR_maxBlockSize_invalid:
            return .corrupt(.lz4, "corrupt frame (bad block size)")
        case LZ4F_ERROR_blockMode_invalid:
            return .corrupt(.lz4, "corrupt frame (bad block mode)")
        case LZ4F_ERROR_contentChecksumFlag_invalid:
            return .corrupt(.lz4, "corrupt frame (bad content checksum flag)")
        case LZ4F_ERROR_headerVersion_wrong:
            return CompressionError(.lz4, .unsupported, "unsupported frame version")
        case LZ4F_ERROR_blockChecksum_invalid:
            return .corrupt(.lz4, "corrupt frame (block checksum mismatch)")
        case LZ4F_ERROR_reservedFlag_set:
            return .corrupt(.lz4, "corrupt frame (reserved flag set)")
        case LZ4F_ERROR_allocation_failed:
            return .outOfMemory(.lz4)
        case LZ4F_ERROR_frameHeader_incomplete:
            return .truncated(.lz4, "frame header")
        case LZ4F_ERROR_frameType_unknown:
            return .corrupt(.lz4, "corrupt frame (bad magic number)")
        case LZ4F_ERROR_frameSize_wrong:
            return .corrupt(.lz4, "corrupt frame (content size mismatch)")
        case LZ4F_ERROR_decompressionFailed:
            return .corrupt(.lz4, "corrupt frame (bad block data)")
        case LZ4F_ERROR_headerChecksum_invalid:
            return .corrupt(.lz4, "corrupt frame (header checksum mismatch)")
        case LZ4F_ERROR_contentChecksum_invalid:
            return .corrupt(.lz4, "corrupt frame (content checksum mismatch)")
        case LZ4F_ERROR_GENERIC:
            return .corrupt(.lz4, "corrupt frame")
        default:
            // dstMaxSize_tooSmall (outputs are sized by LZ4F_compressBound), srcSize_tooLarge,
            // srcPtr_wrong, compressionLevel_invalid, frameDecoding_alreadyStarted,
            // compressionState_uninitialized, parameter_null: all API misuse.
            return .library(.lz4, String(cString: LZ4F_getErrorName(code)))
        }
    }
}
