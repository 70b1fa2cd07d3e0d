/// FNV-1a, 64 bits: the stable, unkeyed hash behind copy ids (`replay.HEX`)
/// and the producer ids of copies. Stable across runs and machines, which
/// Swift's `Hasher` is not. (Message ids use the 128-bit variant, `IDHash`.)
public enum FNV1a {
    public static func hash64<S: Sequence>(_ bytes: S) -> UInt64 where S.Element == UInt8 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes { h = (h ^ UInt64(b)) &* 0x0000_0100_0000_01b3 }
        return h
    }
}
