import CCRC32C

/// CRC-32C (Castagnoli), the checksum of Kafka record batches v2.
public enum CRC32C {
    /// Extends `crc` (0 to start) over `bytes`.
    @inline(__always)
    public static func checksum(_ bytes: UnsafeRawBufferPointer, extending crc: UInt32 = 0) -> UInt32 {
        mq_crc32c_extend(crc, bytes.baseAddress, bytes.count)
    }

    public static func checksum(_ bytes: [UInt8], extending crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { checksum($0, extending: crc) }
    }

    /// The portable table implementation, whatever the CPU; for tests.
    public static func softwareChecksum(_ bytes: [UInt8], extending crc: UInt32 = 0) -> UInt32 {
        bytes.withUnsafeBytes { mq_crc32c_extend_software(crc, $0.baseAddress, $0.count) }
    }

    /// True when the CPU's crc32 instruction is used.
    public static var isHardwareAccelerated: Bool { mq_crc32c_is_hardware() != 0 }
}
