/// A batch's compressed payload could not be compressed or decompressed.
///
/// `description` reads as "<codec>: <reason>", e.g. "lz4: corrupt frame (bad block size)".
public struct CompressionError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The input is not valid data for the codec: bad magic, bad checksum, bad block.
        case corrupt
        /// The input ends before the compressed stream does.
        case truncated
        /// The decompressed data would be larger than the caller's limit.
        case limitExceeded
        /// Valid data that uses a feature this build does not read (a zstd dictionary,
        /// a window larger than the decoder allows, a newer format version).
        case unsupported
        /// The requested compression level is outside the codec's range.
        case invalidLevel
        /// The codec library could not allocate memory.
        case outOfMemory
        /// The codec library returned a result it documents only for misuse. Nothing
        /// decoded from disk ends in this: a decoder's unexpected result is `corrupt`.
        case library
    }

    public var codec: CompressionCodec
    public var kind: Kind
    /// What went wrong, without the codec name.
    public var reason: String

    public init(_ codec: CompressionCodec, _ kind: Kind, _ reason: String) {
        self.codec = codec
        self.kind = kind
        self.reason = reason
    }

    public var description: String { "\(codec.name): \(reason)" }

    static func corrupt(_ codec: CompressionCodec, _ reason: String) -> CompressionError {
        CompressionError(codec, .corrupt, reason)
    }

    static func truncated(_ codec: CompressionCodec, _ what: String = "input") -> CompressionError {
        CompressionError(codec, .truncated, "truncated \(what)")
    }

    static func limitExceeded(_ codec: CompressionCodec, _ limit: Int) -> CompressionError {
        CompressionError(codec, .limitExceeded, "decompressed size exceeds the limit of \(limit) bytes")
    }

    static func outOfMemory(_ codec: CompressionCodec) -> CompressionError {
        CompressionError(codec, .outOfMemory, "out of memory")
    }

    static func library(_ codec: CompressionCodec, _ what: String) -> CompressionError {
        CompressionError(codec, .library, "unexpected result from the \(codec.name) library: \(what)")
    }
}
