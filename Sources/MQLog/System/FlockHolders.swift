/// Who holds `flock(2)` locks, from `/proc/locks`: for messages that name the
/// process a tool is waiting for.
public enum FlockHolders {
    /// Process ids holding flock()s, by inode (empty when `/proc/locks` cannot be read).
    public static func byInode() -> [UInt64: [Int32]] {
        guard let bytes = try? FileSystem.readAll("/proc/locks") else { return [:] }
        var out: [UInt64: [Int32]] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(separator: "\n") {
            // "1: FLOCK  ADVISORY  WRITE 1234 00:2a:56789 0 EOF"
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 6, f[1] == "FLOCK", let pid = Int32(f[4]), let inode = f[5].split(separator: ":").last.flatMap({ UInt64($0) }) else { continue }
            out[inode, default: []].append(pid)
        }
        return out
    }
}
