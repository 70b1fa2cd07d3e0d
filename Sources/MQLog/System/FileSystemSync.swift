import Glibc

/// One syncfs(2) per file system in place of one fsync per file, where that
/// is as durable: for a tool that has written to many files at once (a
/// producer's thousands of partitions, a consumer's thousands of commits, a
/// new topic's partition directories).
public enum FileSystemSync {
    /// Below this many files to make durable, each gets its own fsync: a
    /// syncfs also writes back whatever else the file system holds dirty.
    public static let threshold = 32

    /// Makes every file on the file systems holding `paths` durable, with
    /// one syncfs per file system, when each of them is one whose syncfs
    /// does (`OpenFile.fileSystemSyncMakesDurable`: local disk file systems
    /// and tmpfs, not FUSE or NFS).
    /// - Returns: false, having synced nothing, when one of them is not; the
    ///   caller then syncs file by file.
    /// - Throws: `MQError` when a path cannot be opened or the sync fails.
    public static func syncAll(holding paths: some Sequence<String>) throws -> Bool {
        var devices = Set<UInt64>()
        var handles: [OpenFile] = []
        defer { for h in handles { h.close() } }
        for path in paths {
            var st = stat()
            if stat(path, &st) != 0 { throw MQError.system("cannot stat", path: path, currentErrno()) }
            guard devices.insert(UInt64(st.st_dev)).inserted else { continue }
            let handle = try OpenFile.open(path, O_RDONLY)
            handles.append(handle)
            guard handle.fileSystemSyncMakesDurable else { return false }
        }
        for handle in handles { try handle.syncFileSystem() }
        return true
    }
}
