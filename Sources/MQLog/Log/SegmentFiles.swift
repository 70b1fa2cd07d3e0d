/// Names of the files of one partition directory.
///
/// Segments are named by their base offset, zero-padded to 20 digits so that
/// `ls` sorts them, with Kafka's suffixes. `head` is mq's lock and state file.
public enum SegmentFiles {
    public static let logSuffix = ".log"
    public static let indexSuffix = ".index"
    public static let timeIndexSuffix = ".timeindex"
    public static let headName = "head"

    /// `00000000000000000042` for 42.
    public static func baseName(_ baseOffset: Int64) -> String {
        let digits = String(baseOffset)
        return String(repeating: "0", count: max(0, 20 - digits.count)) + digits
    }

    public static func log(_ dir: String, _ base: Int64) -> String { dir + "/" + baseName(base) + logSuffix }
    public static func index(_ dir: String, _ base: Int64) -> String { dir + "/" + baseName(base) + indexSuffix }
    public static func timeIndex(_ dir: String, _ base: Int64) -> String { dir + "/" + baseName(base) + timeIndexSuffix }

    /// The base offset of a `.log` file name, or nil if the name is not one.
    public static func baseOffset(ofLogName name: String) -> Int64? {
        guard name.hasSuffix(logSuffix) else { return nil }
        let stem = name.utf8.prefix(name.utf8.count - logSuffix.utf8.count)
        guard stem.count == 20, stem.allSatisfy({ $0 >= 48 && $0 <= 57 }),
              let base = Int64(String(decoding: stem, as: UTF8.self)), base <= BatchLayout.maximumBaseOffset else { return nil }
        return base
    }

    /// Base offsets of the segments in `dir`, ascending.
    public static func list(_ dir: String) throws -> [Int64] {
        try FileSystem.list(dir).compactMap(baseOffset(ofLogName:)).sorted()
    }
}

/// Kafka's sparse offset index: 8-byte entries, a 4-byte big-endian offset
/// relative to the segment's base, then the 4-byte big-endian position of a
/// batch in the `.log` file. An entry (o, p) says the batch at position p
/// holds offsets up to o. Derived data, never checksummed: rebuilt on recovery.
public enum OffsetIndexEntry {
    public static let size = 8
    public static func encode(relativeOffset: UInt32, position: UInt32, into out: UnsafeMutableRawPointer) {
        out.storeBytes(of: relativeOffset.bigEndian, toByteOffset: 0, as: UInt32.self)
        out.storeBytes(of: position.bigEndian, toByteOffset: 4, as: UInt32.self)
    }
}

/// Kafka's time index: 12-byte entries, an 8-byte big-endian timestamp and the
/// 4-byte big-endian relative offset of the last record of the batch that
/// raised the segment's largest timestamp to it. Timestamps never decrease.
public enum TimeIndexEntry {
    public static let size = 12
}
