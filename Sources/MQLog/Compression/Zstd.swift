import CZstd

/// zstd: standard zstd frames (RFC 8878).
///
/// Kafka's `ZstdCompression` streams through zstd-jni, which leaves the content size
/// out of the frame header; this writes one frame per batch with `ZSTD_compressCCtx`,
/// which records it. Both are plain zstd frames that every Kafka client reads. The
/// decoder streams, so frames without a content size and frames back to back are fine.
enum Zstd {
    final class Compressor: @unchecked Sendable {
        let context: OpaquePointer

        init() throws(CompressionError) {
            guard let context = ZSTD_createCCtx() else { throw CompressionError.outOfMemory(.zstd) }
            self.context = context
        }

        deinit { ZSTD_freeCCtx(context) }
    }

    final class Decompressor: @unchecked Sendable {
        let context: OpaquePointer

        init() throws(CompressionError) {
            guard let context = ZSTD_createDCtx() else { throw CompressionError.outOfMemory(.zstd) }
            self.context = context
        }

        deinit { ZSTD_freeDCtx(context) }
    }

    private static let compressors = ContextPool<Compressor>()
    private static let decompressors = ContextPool<Decompressor>()

    static func compress(_ input: UnsafeRawBufferPointer, into output: GrowableBytes, level: Int32) throws(CompressionError) {
        let compressor = try compressors.take(orMake: Compressor.init)
        let bound = ZSTD_compressBound(input.count)
        if ZSTD_isError(bound) != 0 {
            compressors.give(compressor)
            throw CompressionError(.zstd, .limitExceeded, "input too large for zstd: \(input.count) bytes")
        }
        output.reserve(bound)
        let written = ZSTD_compressCCtx(compressor.context, output.base + output.count, bound,
                                        startAddress(input, output), input.count, level)
        if ZSTD_isError(written) != 0 {
            // A failed call leaves the context in an unknown state: drop it.
            if ZSTD_getErrorCode(written) == ZSTD_error_memory_allocation { throw CompressionError.outOfMemory(.zstd) }
            throw CompressionError.library(.zstd, "ZSTD_compressCCtx: \(String(cString: ZSTD_getErrorName(written)))")
        }
        output.count += written
        compressors.give(compressor)
    }

    static func decompress(_ input: UnsafeRawBufferPointer, into output: GrowableBytes, limit: Int) throws(CompressionError) {
        guard input.count > 0 else { throw CompressionError.truncated(.zstd, "frame (empty input)") }
        let decompressor = try decompressors.take(orMake: Decompressor.init)
        defer { decompressors.give(decompressor) }
        let context = decompressor.context
        _ = ZSTD_DCtx_reset(context, ZSTD_reset_session_only)

        // The first frame's content size, when recorded, sizes the output in one go.
        var want = input.count * 4
        let declared = ZSTD_getFrameContentSize(input.baseAddress, input.count)
        if declared < UInt64.max - 1 {  // neither ZSTD_CONTENTSIZE_UNKNOWN nor _ERROR
            want = Int(min(declared, UInt64(limit) &+ 1, UInt64(Int.max)))
        }

        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var produced = 0
        var pending = 0  // ZSTD_decompressStream's last result: 0 once a frame is complete
        while true {
            let room = decoderRoom(output, produced: produced, limit: limit, want: want)
            var sink = ZSTD_outBuffer(dst: output.base + output.count, size: room, pos: 0)
            let result = ZSTD_decompressStream(context, &sink, &source)
            if ZSTD_isError(result) != 0 {
                _ = ZSTD_DCtx_reset(context, ZSTD_reset_session_only)
                throw error(result)
            }
            output.count += sink.pos
            produced += sink.pos
            if produced > limit { throw CompressionError.limitExceeded(.zstd, limit) }
            pending = result
            // All input taken and output not full: the decoder has nothing more to give.
            if source.pos == source.size && sink.pos < sink.size { break }
        }
        if pending != 0 { throw CompressionError.truncated(.zstd, "frame") }
    }

    /// Maps a zstd decoding error to a `CompressionError`. Codes the library documents
    /// only for misuse of its API are reported as corrupt data too: what reaches the
    /// decoder came from disk, and no bytes may stop a tool.
    static func error(_ code: Int) -> CompressionError {
        let name = String(cString: ZSTD_getErrorName(code))
        switch ZSTD_getErrorCode(code) {
        case ZSTD_error_prefix_unknown:
            return .corrupt(.zstd, "corrupt frame (bad magic number)")
        case ZSTD_error_version_unsupported, ZSTD_error_frameParameter_unsupported:
            return CompressionError(.zstd, .unsupported, "unsupported frame (\(name))")
        case ZSTD_error_frameParameter_windowTooLarge:
            return CompressionError(.zstd, .unsupported, "frame window too large to decode")
        case ZSTD_error_dictionary_corrupted, ZSTD_error_dictionary_wrong:
            return CompressionError(.zstd, .unsupported, "frame needs a dictionary")
        case ZSTD_error_checksum_wrong:
            return .corrupt(.zstd, "corrupt frame (checksum mismatch)")
        case ZSTD_error_srcSize_wrong:
            return .corrupt(.zstd, "corrupt frame (content size mismatch)")
        case ZSTD_error_memory_allocation:
            return .outOfMemory(.zstd)
        case ZSTD_error_GENERIC, ZSTD_error_corruption_detected, ZSTD_error_literals_headerWrong,
             ZSTD_error_tableLog_tooLarge, ZSTD_error_maxSymbolValue_tooLarge, ZSTD_error_maxSymbolValue_tooSmall:
            return .corrupt(.zstd, "corrupt frame (\(name))")
        default:
            // dstSize_tooSmall, noForwardProgress_*, parameter_*, stage_wrong, init_missing,
            // buffer errors: the decoder is always given room and input, yet damaged
            // frames have been seen to end in some of these.
            return .corrupt(.zstd, "corrupt frame (\(name))")
        }
    }
}
