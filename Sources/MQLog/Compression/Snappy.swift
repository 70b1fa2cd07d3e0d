import CSnappy

/// snappy: the stream framing of xerial snappy-java's `SnappyOutputStream`, which
/// Kafka's `SnappyCompression` wraps around a batch's records:
///
///     0x82 'S' 'N' 'A' 'P' 'P' 'Y' 0x00   magic
///     int32 BE 1                          version
///     int32 BE 1                          compatible version
///     { int32 BE length, raw snappy block } ...   each block from at most 32 KiB of input
///
/// The header is written even for empty input, as `SnappyOutputStream` does.
enum Snappy {
    static let magic: [UInt8] = [0x82, 0x53, 0x4E, 0x41, 0x50, 0x50, 0x59, 0x00]
    static let headerSize = 16
    /// xerial's default block size, which Kafka uses.
    static let blockSize = 32 * 1024

    static func compress(_ input: UnsafeRawBufferPointer, into output: GrowableBytes) throws(CompressionError) {
        output.reserve(headerSize + 4 + snappy_max_compressed_length(min(input.count, blockSize)))
        output.append(magic)
        output.appendBigEndian(Int32(1))
        output.appendBigEndian(Int32(1))
        guard let source = input.baseAddress else { return }
        var offset = 0
        while offset < input.count {
            let chunk = min(blockSize, input.count - offset)
            var length = snappy_max_compressed_length(chunk)
            output.reserve(4 + length)
            let block = output.base + output.count + 4
            let status = snappy_compress(
                (source + offset).assumingMemoryBound(to: CChar.self), chunk,
                block.assumingMemoryBound(to: CChar.self), &length)
            guard status == SNAPPY_OK else { throw CompressionError.library(.snappy, "snappy_compress returned \(status.rawValue)") }
            output.count += 4
            output.setBigEndian(Int32(length), at: output.count - 4)
            output.count += length
            offset += chunk
        }
    }

    static func decompress(_ input: UnsafeRawBufferPointer, into output: GrowableBytes, limit: Int) throws(CompressionError) {
        guard input.count > 0 else { throw CompressionError.truncated(.snappy, "block (empty input)") }
        var produced = 0
        guard hasMagic(input, at: 0) else {
            // Not xerial-framed: some writers send the whole payload as one bare snappy block.
            try decodeBlock(input, into: output, produced: &produced, limit: limit)
            return
        }
        // Version fields are not checked: some writers get their byte order wrong,
        // and there has only ever been version 1.
        var position = headerSize
        guard input.count >= position else { throw CompressionError.truncated(.snappy, "stream header") }
        while position < input.count {
            guard input.count - position >= 4 else { throw CompressionError.truncated(.snappy, "block length") }
            if hasMagic(input, at: position) {
                // Streams written one after another: SnappyInputStream reads on past a repeated header.
                guard input.count - position >= headerSize else {
                    throw CompressionError.truncated(.snappy, "stream header")
                }
                position += headerSize
                continue
            }
            let length = Int(Int32(bigEndian: input.loadUnaligned(fromByteOffset: position, as: Int32.self)))
            position += 4
            guard length > 0 else { throw CompressionError.corrupt(.snappy, "corrupt stream (bad block length \(length))") }
            guard length <= input.count - position else { throw CompressionError.truncated(.snappy, "block") }
            let block = UnsafeRawBufferPointer(rebasing: input[position..<position + length])
            try decodeBlock(block, into: output, produced: &produced, limit: limit)
            position += length
        }
    }

    private static func hasMagic(_ input: UnsafeRawBufferPointer, at position: Int) -> Bool {
        guard input.count - position >= magic.count else { return false }
        for i in 0..<magic.count where input[position + i] != magic[i] { return false }
        return true
    }

    /// Decodes one raw snappy block; its declared size is checked against `limit` first.
    private static func decodeBlock(
        _ block: UnsafeRawBufferPointer, into output: GrowableBytes, produced: inout Int, limit: Int
    ) throws(CompressionError) {
        guard let base = block.baseAddress else { throw CompressionError.truncated(.snappy, "block") }
        let compressed = base.assumingMemoryBound(to: CChar.self)
        var size = 0
        guard snappy_uncompressed_length(compressed, block.count, &size) == SNAPPY_OK else {
            throw CompressionError.corrupt(.snappy, "corrupt block (bad length header)")
        }
        guard size >= 0, size <= limit - produced else { throw CompressionError.limitExceeded(.snappy, limit) }
        output.reserve(size)
        var made = size
        let status = snappy_uncompress(
            compressed, block.count, (output.base + output.count).assumingMemoryBound(to: CChar.self), &made)
        switch status {
        case SNAPPY_OK:
            guard made == size else {
                throw CompressionError.corrupt(.snappy, "corrupt block (\(made) bytes decoded where its header says \(size))")
            }
        case SNAPPY_INVALID_INPUT:
            throw CompressionError.corrupt(.snappy, "corrupt block")
        default:
            throw CompressionError.corrupt(.snappy, "corrupt block (snappy_uncompress returned \(status.rawValue))")
        }
        output.count += made
        produced += made
    }
}
