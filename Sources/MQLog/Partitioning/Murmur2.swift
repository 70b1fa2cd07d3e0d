/// Kafka's default partitioner for keyed messages: the 32-bit murmur2 hash of
/// the key bytes, made non-negative, modulo the partition count.
///
/// Bit-exact with the Java client's `Utils.murmur2` and `Utils.toPositive`,
/// so a key lands in the same partition as with any Kafka producer.
public enum Partitioner {
    private static let seed: UInt32 = 0x9747_B28C
    private static let m: UInt32 = 0x5BD1_E995

    /// The murmur2 hash of `key`, as the Java client's signed `int`.
    public static func murmur2(_ key: UnsafeRawBufferPointer) -> Int32 {
        let length = key.count
        var h = seed ^ UInt32(truncatingIfNeeded: length)
        guard let p = key.baseAddress else { return finish(h) }
        var i = 0
        while i &+ 4 <= length {
            var k = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            k &*= m
            k ^= k >> 24
            k &*= m
            h &*= m
            h ^= k
            i &+= 4
        }
        let rest = length & 3
        if rest >= 3 { h ^= UInt32(p.load(fromByteOffset: i &+ 2, as: UInt8.self)) << 16 }
        if rest >= 2 { h ^= UInt32(p.load(fromByteOffset: i &+ 1, as: UInt8.self)) << 8 }
        if rest >= 1 {
            h ^= UInt32(p.load(fromByteOffset: i, as: UInt8.self))
            h &*= m
        }
        return finish(h)
    }

    @inline(__always)
    private static func finish(_ hash: UInt32) -> Int32 {
        var h = hash
        h ^= h >> 13
        h &*= m
        h ^= h >> 15
        return Int32(bitPattern: h)
    }

    /// The partition, in `0..<partitions`, for a message with `key`.
    public static func partition(forKey key: UnsafeRawBufferPointer, partitions: Int32) -> Int32 {
        precondition(partitions > 0, "a topic has at least one partition")
        return (murmur2(key) & 0x7FFF_FFFF) % partitions
    }
}
