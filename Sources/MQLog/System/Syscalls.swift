// The one door to the kernel: every Glibc file-system call the log makes goes
// through here, retries EINTR, and turns failure into an `MQError` that names
// the path. Pointers to caller buffers appear only in this file and in
// Compression/.
import Glibc
import CLinux
import SystemPackage

@inline(__always)
public func currentErrno() -> Errno { Errno(rawValue: errno) }

/// An open file descriptor plus the path it was opened from (for messages).
/// Not thread-safe; the owner closes it.
public struct OpenFile: Sendable {
    public let fd: Int32
    public let path: String

    /// Opens `path`; a file it creates gets `FileSystem.newFileMode` less
    /// the process umask (see `Umask`). The corresponding C function is `open`.
    ///
    /// Without `updatingAccessTime`, reads through it leave the file's access
    /// time alone (`O_NOATIME`) where the flag is allowed (to the file's
    /// owner), else it opens as usual. For a partition's `head`, which a
    /// writer reads under its lock just after some writer wrote it: with
    /// relatime, each such read would dirty the inode again, one more
    /// journal update per append.
    public static func open(_ path: String, _ flags: Int32, creating: Bool = false, updatingAccessTime: Bool = true) throws -> OpenFile {
        var flags = flags | (updatingAccessTime ? 0 : noAccessTime)
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, FileSystem.newFileMode)
            if fd >= 0 { return OpenFile(fd: fd, path: path) }
            if errno == EINTR { continue }
            if errno == EPERM && flags & noAccessTime != 0 { flags &= ~noAccessTime; continue }
            throw MQError.system(creating ? "cannot create" : "cannot open", path: path, currentErrno(), creating: creating)
        }
    }

    /// Like `open`, but returns nil when the file does not exist.
    public static func openIfExists(_ path: String, _ flags: Int32, updatingAccessTime: Bool = true) throws -> OpenFile? {
        var flags = flags | (updatingAccessTime ? 0 : noAccessTime)
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC)
            if fd >= 0 { return OpenFile(fd: fd, path: path) }
            if errno == EINTR { continue }
            if errno == ENOENT { return nil }
            if errno == EPERM && flags & noAccessTime != 0 { flags &= ~noAccessTime; continue }
            throw MQError.system("cannot open", path: path, currentErrno())
        }
    }

    /// Opens an existing file to read it without updating its access time
    /// (`O_NOATIME`), or nil when it does not exist. A reader of thousands
    /// of partitions would otherwise dirty every segment's inode it reads
    /// first after a write (relatime), each a journal update of the file
    /// system. The flag is allowed only to the file's owner: for anyone
    /// else the file is opened as usual.
    public static func openForReading(_ path: String) throws -> OpenFile? {
        try openIfExists(path, O_RDONLY, updatingAccessTime: false)
    }

    private static let noAccessTime = mq_o_noatime()

    public func close() { _ = Glibc.close(fd) }

    /// Reads up to `count` bytes at `position`, looping over short reads until
    /// `count` bytes or end of file. Returns the number read. The C function is `pread`.
    public func read(into buffer: UnsafeMutableRawPointer, count: Int, at position: Int64) throws -> Int {
        var done = 0
        while done < count {
            let n = pread(fd, buffer + done, count - done, off_t(position) + off_t(done))
            if n > 0 { done += n; continue }
            if n == 0 { break }
            if errno == EINTR { continue }
            throw MQError.system("cannot read", path: path, currentErrno())
        }
        return done
    }

    /// One read of up to `count` bytes at `position`; a short count is not
    /// retried (for readers at the growing end of a file). The C function is `pread`.
    public func readOnce(into buffer: UnsafeMutableRawPointer, count: Int, at position: Int64) throws -> Int {
        while true {
            let n = pread(fd, buffer, count, off_t(position))
            if n >= 0 { return n }
            if errno == EINTR { continue }
            throw MQError.system("cannot read", path: path, currentErrno())
        }
    }

    /// Writes all of `bytes` at `position`. The C function is `pwrite`.
    public func write(_ bytes: UnsafeRawBufferPointer, at position: Int64) throws {
        var done = 0
        while done < bytes.count {
            let n = pwrite(fd, bytes.baseAddress! + done, bytes.count - done, off_t(position) + off_t(done))
            if n > 0 { done += n; continue }
            if n < 0 && errno == EINTR { continue }
            throw MQError.system("cannot write", path: path, n < 0 ? currentErrno() : .noSpace)
        }
    }

    /// Maps `length` bytes of the file from `start` (a multiple of
    /// `FileMapping.pageSize`, the file holding them all now) read-only into
    /// memory, or nil when it cannot be (the process holds as many mappings
    /// as it allows itself, or mmap failed): the caller then reads. The C
    /// function is `mmap` (through `mq_map_for_reading`, which also makes a
    /// page cut from the file later read as zeros instead of a SIGBUS).
    public func mapForReading(from start: Int64, length: Int) -> FileMapping? {
        guard length > 0, let base = mq_map_for_reading(fd, start, Int64(length)) else { return nil }
        return FileMapping(base: base, start: start, length: length)
    }

    /// Size in bytes. The C function is `fstat`.
    public func size() throws -> Int64 {
        var st = stat()
        if fstat(fd, &st) != 0 { throw MQError.system("cannot stat", path: path, currentErrno()) }
        return Int64(st.st_size)
    }

    /// The device of the file system holding the file. The C function is `fstat`.
    public func deviceID() throws -> UInt64 {
        var st = stat()
        if fstat(fd, &st) != 0 { throw MQError.system("cannot stat", path: path, currentErrno()) }
        return UInt64(st.st_dev)
    }

    /// Cuts the file to `length` bytes. The C function is `ftruncate`.
    public func truncate(to length: Int64) throws {
        while ftruncate(fd, off_t(length)) != 0 {
            if errno == EINTR { continue }
            throw MQError.system("cannot truncate", path: path, currentErrno())
        }
    }

    /// Flushes file data (and the metadata needed to read it) to stable storage.
    /// The C function is `fdatasync`.
    public func sync() throws {
        while fdatasync(fd) != 0 {
            if errno == EINTR { continue }
            throw MQError.system("cannot sync", path: path, currentErrno())
        }
    }

    /// Flushes every file of the file system holding this one to stable
    /// storage: one call in place of many `sync`s of files written together.
    /// The C function is `syncfs`.
    public func syncFileSystem() throws {
        while mq_syncfs(fd) != 0 {
            if errno == EINTR { continue }
            throw MQError.system("cannot sync the file system of", path: path, currentErrno())
        }
    }

    /// True when `syncFileSystem` makes this file durable: on the local
    /// disk file systems whose `syncfs` writes back and flushes every file
    /// (ext2/3/4, XFS, Btrfs, F2FS) and on tmpfs (nothing to lose). Not on
    /// FUSE, NFS and the like, where `syncfs` may leave data with the server
    /// or daemon: there each file gets its own `sync`. The C function is
    /// `fstatfs` (its `f_type`).
    public var fileSystemSyncMakesDurable: Bool {
        switch mq_file_system_type(fd) {
        case 0xEF53, 0x5846_5342, 0x9123_683E, 0xF2F5_2010, 0x0102_1994: return true
        default: return false
        }
    }

    /// Takes an advisory whole-file lock. With `wait == false`, returns false
    /// instead of blocking when another open file description holds a
    /// conflicting lock. The C function is `flock`.
    @discardableResult
    public func lock(exclusive: Bool, wait: Bool = true) throws -> Bool {
        let op = (exclusive ? LOCK_EX : LOCK_SH) | (wait ? 0 : LOCK_NB)
        while flock(fd, op) != 0 {
            if errno == EINTR { continue }
            if errno == EWOULDBLOCK && !wait { return false }
            throw MQError.system("cannot lock", path: path, currentErrno())
        }
        return true
    }

    public func unlock() { _ = flock(fd, LOCK_UN) }

    /// Takes an exclusive (or shared) lock on bytes `[start, start + length)`
    /// (`length` 0: to the end, however far), without waiting: an
    /// open-file-description lock (fcntl F_OFD_SETLK), which conflicts with
    /// the locks taken through any other `open` of the file, in this process
    /// or another, and goes when this file is closed or the process dies.
    /// - Returns: false when another holds a conflicting lock.
    public func lockRange(start: Int64, length: Int64, exclusive: Bool = true) throws -> Bool {
        switch mq_ofd_lock(fd, mq_lock_type(exclusive ? 1 : 0, 0), start, length) {
        case 0: return true
        case 1: return false
        default: throw MQError.system("cannot lock", path: path, currentErrno())
        }
    }

    /// True when a lock taken through another open of the file covers some
    /// of bytes `[start, start + length)` (fcntl F_OFD_GETLK); false when it
    /// cannot tell.
    public func isRangeLocked(start: Int64, length: Int64) -> Bool {
        mq_ofd_is_locked(fd, start, length) == 1
    }

    /// Drops this file's lock on bytes `[start, start + length)`.
    public func unlockRange(start: Int64, length: Int64) {
        _ = mq_ofd_lock(fd, mq_lock_type(0, 1), start, length)
    }
}

/// File-system operations on paths.
public enum FileSystem {
    /// The mode every file is created with: the umask decides the rest (`Umask`).
    public static let newFileMode: mode_t = 0o666
    /// The mode every directory is created with: the umask decides the rest,
    /// and a setgid parent passes on its group and its setgid bit (`Umask`).
    public static let newDirectoryMode: mode_t = 0o777

    public static func exists(_ path: String) -> Bool { access(path, F_OK) == 0 }

    /// Size in bytes of the file at `path`, or nil when it cannot be
    /// stat'ed (gone, say). The C function is `stat`.
    public static func size(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    /// When the file at `path` was last modified, in ms since the epoch
    /// (saturating: the time comes from the file system), or nil when it
    /// cannot be stat'ed. The C function is `stat`.
    public static func modifiedMs(_ path: String) -> Int64? {
        var st = stat()
        guard stat(path, &st) == 0 else { return nil }
        let (ms, overflow) = Int64(st.st_mtim.tv_sec).multipliedReportingOverflow(by: 1000)
        return overflow ? (st.st_mtim.tv_sec < 0 ? .min : .max) : saturatingSum(ms, Int64(st.st_mtim.tv_nsec) / 1_000_000)
    }

    /// Why `path` cannot be found: nil when it exists, else the error:
    /// `.noSuchFileOrDirectory` when it is not there, `.permissionDenied`
    /// when a directory on the way may not be searched. The C function is `stat`.
    public static func lookupError(_ path: String) -> Errno? {
        var st = stat()
        return stat(path, &st) == 0 ? nil : currentErrno()
    }

    public static func isDirectory(_ path: String) -> Bool {
        var st = stat()
        return stat(path, &st) == 0 && (st.st_mode & S_IFMT) == S_IFDIR
    }

    /// Creates a directory with `newDirectoryMode` less the umask; returns
    /// false if it already existed. The C function is `mkdir`.
    @discardableResult
    public static func makeDirectory(_ path: String) throws -> Bool {
        if mkdir(path, newDirectoryMode) == 0 { return true }
        if errno == EEXIST && isDirectory(path) { return false }
        throw MQError.system("cannot create directory", path: path, currentErrno(), creating: true)
    }

    /// Creates a directory and its missing parents.
    public static func makeDirectories(_ path: String) throws {
        if isDirectory(path) { return }
        let parent = dirname(of: path)
        if parent != path && !parent.isEmpty { try makeDirectories(parent) }
        try makeDirectory(path)
    }

    /// Creates a directory and its missing parents so that they survive a
    /// crash of the machine: the parent of each directory created here is
    /// fsynced after it.
    /// - Returns: true when `path` was created by this call.
    @discardableResult
    public static func makeDirectoriesDurably(_ path: String) throws -> Bool {
        if isDirectory(path) { return false }
        let parent = dirname(of: path)
        if parent != path && !parent.isEmpty { try makeDirectoriesDurably(parent) }
        guard try makeDirectory(path) else { return false }
        try syncDirectory(parent.isEmpty ? "." : parent)
        return true
    }

    public static func dirname(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    /// Names in a directory, excluding `.` and `..`. The C function is `readdir`.
    public static func list(_ path: String) throws -> [String] {
        guard let dir = opendir(path) else {
            throw MQError.system("cannot list", path: path, currentErrno())
        }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafePointer(to: entry.pointee.d_name) {
                $0.withMemoryRebound(to: CChar.self, capacity: 256) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Atomically renames. The C function is `rename`.
    public static func rename(_ from: String, to: String) throws {
        if Glibc.rename(from, to) != 0 {
            throw MQError.system("cannot rename '\(from)' to", path: to, currentErrno())
        }
    }

    /// Gives `from` the second name `to`; returns false, changing nothing,
    /// when `to` exists. The C function is `link`.
    public static func link(_ from: String, to: String) throws -> Bool {
        if Glibc.link(from, to) == 0 { return true }
        if errno == EEXIST { return false }
        throw MQError.system("cannot link '\(from)' to", path: to, currentErrno(), creating: true)
    }

    /// Removes a file; a missing file is not an error. The C function is `unlink`.
    public static func remove(_ path: String) throws {
        if unlink(path) != 0 && errno != ENOENT {
            throw MQError.system("cannot remove", path: path, currentErrno())
        }
    }

    /// Removes an empty directory; a missing one is not an error. The C function is `rmdir`.
    public static func removeDirectory(_ path: String) throws {
        if rmdir(path) != 0 && errno != ENOENT {
            throw MQError.system("cannot remove", path: path, currentErrno())
        }
    }

    /// Removes a directory tree (no symlinks are followed).
    public static func removeTree(_ path: String) throws {
        var st = stat()
        guard lstat(path, &st) == 0 else { return }
        if (st.st_mode & S_IFMT) == S_IFDIR {
            for name in try list(path) { try removeTree(path + "/" + name) }
            if rmdir(path) != 0 && errno != ENOENT { throw MQError.system("cannot remove", path: path, currentErrno()) }
        } else {
            try remove(path)
        }
    }

    /// Bytes in the regular files of a tree (no symlinks followed); 0 if it is gone.
    public static func treeSize(_ path: String) -> Int64 {
        var st = stat()
        guard lstat(path, &st) == 0 else { return 0 }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { return (st.st_mode & S_IFMT) == S_IFREG ? Int64(st.st_size) : 0 }
        return ((try? list(path)) ?? []).reduce(0) { $0 + treeSize(path + "/" + $1) }
    }

    /// Makes a directory's entries durable (after create, rename or unlink inside it).
    public static func syncDirectory(_ path: String) throws {
        let handle = try OpenFile.open(path, O_RDONLY | O_DIRECTORY)
        defer { handle.close() }
        while fsync(handle.fd) != 0 {
            if errno == EINTR { continue }
            throw MQError.system("cannot sync directory", path: path, currentErrno())
        }
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same
    /// directory, fsync, rename over `path`, fsync the directory.
    public static func writeAtomically(_ path: String, _ bytes: [UInt8]) throws {
        let tmp = path + ".~tmp.\(getpid())"
        let handle = try OpenFile.open(tmp, O_WRONLY | O_CREAT | O_TRUNC, creating: true)
        do {
            try bytes.withUnsafeBytes { (raw) throws in try handle.write(raw, at: 0) }
            try handle.sync()
            handle.close()
            try rename(tmp, to: path)
        } catch {
            handle.close()
            try? remove(tmp)
            throw error
        }
        try syncDirectory(dirname(of: path))
    }

    /// Reads a whole (small) file. Reads until end of file rather than
    /// trusting the size `fstat` reports, which is 0 for procfs files.
    public static func readAll(_ path: String) throws -> [UInt8] {
        let handle = try OpenFile.open(path, O_RDONLY)
        defer { handle.close() }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: max(4096, Int(try handle.size()) + 1))
        while true {
            let n = try chunk.withUnsafeMutableBytes { (raw) throws in
                try handle.read(into: raw.baseAddress!, count: raw.count, at: Int64(bytes.count))
            }
            bytes.append(contentsOf: chunk[0..<n])
            if n < chunk.count { return bytes }
        }
    }
}

/// Writes all of `bytes` to a descriptor that is not a file we own
/// (standard output), retrying short writes and EINTR. The C function is `write`.
/// - Parameter what: names the stream in the error, e.g. "standard output".
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer, what: String) throws {
    var done = 0
    while done < bytes.count {
        let n = write(fd, bytes.baseAddress! + done, bytes.count - done)
        if n > 0 { done += n; continue }
        if n < 0 && errno == EINTR { continue }
        throw MQError.system("cannot write to", path: what, n < 0 ? currentErrno() : .ioError)
    }
}

/// The value of environment variable `name`, or nil. The C function is `getenv`.
public func environment(_ name: String) -> String? {
    guard let v = getenv(name) else { return nil }
    return String(cString: v)
}

/// This process's environment as `NAME=value` entries.
public func processEnvironment() -> [String] {
    var out: [String] = []
    var p = environ
    while let entry = p.pointee {
        out.append(String(cString: entry))
        p += 1
    }
    return out
}

/// Wall-clock milliseconds since the epoch.
public func currentTimeMillis() -> Int64 {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Int64(ts.tv_sec) * 1000 + Int64(ts.tv_nsec) / 1_000_000
}

/// Monotonic nanoseconds, for measuring intervals.
public func monotonicNanos() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// This boot's identity (`/proc/sys/kernel/random/boot_id`, or the file
/// `MQ_BOOT_ID_FILE` names), as 16 bytes. A process crash keeps the page
/// cache; only a new boot can lose unsynced writes, so recovery compares boot
/// ids to decide how much to re-validate. The override exists for tests that
/// simulate a power loss (a file system that drops unsynced writes): they
/// give the "rebooted" tools a new id, as a real reboot would.
public let currentBootID: [UInt8] = {
    let path = getenv("MQ_BOOT_ID_FILE").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
        ?? "/proc/sys/kernel/random/boot_id"
    guard let bytes = try? FileSystem.readAll(path) else {
        return [UInt8](repeating: 0, count: 16)
    }
    var out: [UInt8] = []
    var pending: UInt8? = nil
    for c in bytes {
        let v: UInt8
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): v = c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): v = c - UInt8(ascii: "a") + 10
        default: continue
        }
        if let hi = pending { out.append(hi << 4 | v); pending = nil } else { pending = v }
    }
    return out.count == 16 ? out : [UInt8](repeating: 0, count: 16)
}()

/// Bytes of a file mapped read-only into memory (`OpenFile.mapForReading`):
/// `length` bytes from file position `start`, at `base`. The owner unmaps it
/// once; pointers into it are not used after that.
public struct FileMapping {
    public let base: UnsafeRawPointer
    public let start: Int64
    public let length: Int

    /// The size of a memory page: where a mapping may start in a file.
    public static let pageSize = Int64(mq_page_size())

    /// Unmaps it. The C function is `munmap`.
    public func unmap() { mq_unmap(base, Int64(length)) }
}
