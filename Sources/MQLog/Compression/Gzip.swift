import CZlib

/// gzip: what Kafka's `GzipCompression` writes (`java.util.zip` deflate in a gzip
/// wrapper, RFC 1952) and reads (`GZIPInputStream`).
enum Gzip {
    /// zlib's windowBits for "15-bit window, gzip wrapper".
    private static let gzipWindowBits: Int32 = 15 + 16
    /// zlib counts in `uInt`; feed it at most this much per call.
    private static let step = 1 << 30

    /// A deflate stream at a fixed level. zlib keeps a pointer back to the `z_stream`,
    /// so it lives at a stable heap address.
    final class Deflater: @unchecked Sendable {
        let stream: UnsafeMutablePointer<z_stream>
        let level: Int32

        init(level: Int32) throws(CompressionError) {
            stream = .allocate(capacity: 1)
            stream.initialize(to: z_stream())
            self.level = level
            let status = mq_deflateInit2(stream, level, Z_DEFLATED, Gzip.gzipWindowBits, 8, Z_DEFAULT_STRATEGY)
            guard status == Z_OK else {
                stream.deallocate()
                if status == Z_MEM_ERROR { throw CompressionError.outOfMemory(.gzip) }
                throw CompressionError.library(.gzip, "deflateInit2 returned \(status)")
            }
        }

        deinit {
            deflateEnd(stream)
            stream.deallocate()
        }
    }

    final class Inflater: @unchecked Sendable {
        let stream: UnsafeMutablePointer<z_stream>

        init() throws(CompressionError) {
            stream = .allocate(capacity: 1)
            stream.initialize(to: z_stream())
            let status = mq_inflateInit2(stream, Gzip.gzipWindowBits)
            guard status == Z_OK else {
                stream.deallocate()
                if status == Z_MEM_ERROR { throw CompressionError.outOfMemory(.gzip) }
                throw CompressionError.library(.gzip, "inflateInit2 returned \(status)")
            }
        }

        deinit {
            inflateEnd(stream)
            stream.deallocate()
        }
    }

    private static let deflaters = ContextPool<Deflater>()
    private static let inflaters = ContextPool<Inflater>()

    static func compress(_ input: UnsafeRawBufferPointer, into output: GrowableBytes, level: Int32) throws(CompressionError) {
        let deflater = try deflaters.take(where: { $0.level == level }) { () throws(CompressionError) in
            try Deflater(level: level)
        }
        let z = deflater.stream
        guard deflateReset(z) == Z_OK else { throw CompressionError.library(.gzip, "deflateReset failed") }

        let source = UnsafeMutablePointer(mutating: startAddress(input, output).assumingMemoryBound(to: Bytef.self))
        var fed = 0
        // Room for the whole stream up front, so the usual batch is one deflate call.
        output.reserve(Int(deflateBound(z, uLong(min(input.count, step)))))
        while true {
            if z.pointee.avail_in == 0 {
                let chunk = min(input.count - fed, step)
                z.pointee.next_in = source + fed
                z.pointee.avail_in = uInt(chunk)
                fed += chunk
            }
            let flush = fed == input.count ? Z_FINISH : Z_NO_FLUSH
            if output.capacity == output.count { output.reserve(max(output.count / 2, 64 * 1024)) }
            let room = min(output.capacity - output.count, step)
            z.pointee.next_out = (output.base + output.count).assumingMemoryBound(to: Bytef.self)
            z.pointee.avail_out = uInt(room)
            let status = deflate(z, flush)
            output.count += room - Int(z.pointee.avail_out)
            switch status {
            case Z_STREAM_END:
                deflaters.give(deflater)
                return
            case Z_OK, Z_BUF_ERROR:
                continue  // more input to feed or more output to make
            default:
                throw CompressionError.library(.gzip, "deflate returned \(status)")
            }
        }
    }

    static func decompress(_ input: UnsafeRawBufferPointer, into output: GrowableBytes, limit: Int) throws(CompressionError) {
        guard input.count > 0 else { throw CompressionError.truncated(.gzip, "stream (empty input)") }
        let inflater = try inflaters.take(orMake: Inflater.init)
        let z = inflater.stream
        guard inflateReset(z) == Z_OK else { throw CompressionError.library(.gzip, "inflateReset failed") }
        defer { inflaters.give(inflater) }  // inflateReset on the next take makes any state reusable

        guard let base = input.baseAddress else { throw CompressionError.truncated(.gzip, "stream (empty input)") }
        let source = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        // The trailer's ISIZE is the size of a single-member stream (mod 2^32): a good first guess.
        var want = 0
        if input.count >= 18 {
            let isize = Int(input.loadUnaligned(fromByteOffset: input.count - 4, as: UInt32.self).littleEndian)
            want = min(isize, input.count * 1032)  // deflate cannot expand beyond ~1032:1
        }
        var fed = 0
        var produced = 0
        z.pointee.avail_in = 0
        while true {
            if z.pointee.avail_in == 0 && fed < input.count {
                let chunk = min(input.count - fed, step)
                z.pointee.next_in = source + fed
                z.pointee.avail_in = uInt(chunk)
                fed += chunk
            }
            let room = min(decoderRoom(output, produced: produced, limit: limit, want: want), step)
            z.pointee.next_out = (output.base + output.count).assumingMemoryBound(to: Bytef.self)
            z.pointee.avail_out = uInt(room)
            let status = inflate(z, Z_NO_FLUSH)
            let made = room - Int(z.pointee.avail_out)
            output.count += made
            produced += made
            if produced > limit { throw CompressionError.limitExceeded(.gzip, limit) }

            switch status {
            case Z_STREAM_END:
                // Another member may follow. Like GZIPInputStream, bytes after a member
                // that do not start a new one are ignored.
                let consumed = fed - Int(z.pointee.avail_in)
                if input.count - consumed >= 2 && input[consumed] == 0x1F && input[consumed + 1] == 0x8B {
                    guard inflateReset(z) == Z_OK else { throw CompressionError.library(.gzip, "inflateReset failed") }
                    continue
                }
                return
            case Z_OK, Z_BUF_ERROR:
                // Z_BUF_ERROR: no progress possible. Output room is never zero, so inflate
                // ran out of input; so does Z_OK with room to spare and nothing left to feed.
                if fed == input.count && z.pointee.avail_in == 0 && (status == Z_BUF_ERROR || z.pointee.avail_out > 0) {
                    throw CompressionError.truncated(.gzip, "stream")
                }
            case Z_DATA_ERROR:
                let detail = z.pointee.msg.map { String(cString: $0) } ?? "invalid deflate data"
                throw CompressionError.corrupt(.gzip, "corrupt stream (\(detail))")
            case Z_NEED_DICT:
                throw CompressionError(.gzip, .unsupported, "stream needs a preset dictionary")
            case Z_MEM_ERROR:
                throw CompressionError.outOfMemory(.gzip)
            default:
                // Z_STREAM_ERROR and anything undocumented: the stream's state is
                // inconsistent, which only bad input can have made it.
                throw CompressionError.corrupt(.gzip, "corrupt stream (inflate returned \(status))")
            }
        }
    }
}
