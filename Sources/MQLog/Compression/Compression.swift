// Placeholder until the codecs land: only `none` works.
public struct CompressionError: Error, CustomStringConvertible, Sendable {
    public var description: String
}
public enum Compression {
    public static func compress(_ codec: CompressionCodec, _ input: UnsafeRawBufferPointer, into output: ByteBuffer, level: Int32? = nil) throws(CompressionError) {
        guard codec == .none else { throw CompressionError(description: "\(codec.name) not built yet") }
        output.append(input)
    }
    public static func decompress(_ codec: CompressionCodec, _ input: UnsafeRawBufferPointer, into output: ByteBuffer, limit: Int) throws(CompressionError) {
        guard codec == .none else { throw CompressionError(description: "\(codec.name) not built yet") }
        output.append(input)
    }
}
