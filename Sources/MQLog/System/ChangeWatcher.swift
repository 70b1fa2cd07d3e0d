import Glibc

/// Waits for files to change in a set of directories, with inotify(7).
///
/// When inotify is not available (or `MQ_POLL=1` is set), it falls back to
/// waking every `pollInterval` milliseconds and reporting every directory as
/// changed; it never busy-waits. Not thread-safe.
public final class ChangeWatcher {
    public let pollIntervalMs: Int32
    private let fd: Int32
    private var paths: [Int32: String] = [:]
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64 << 10, alignment: 8)

    public var usesInotify: Bool { fd >= 0 }

    public init(pollIntervalMs: Int32 = 100) {
        self.pollIntervalMs = pollIntervalMs
        let forcePoll = environment("MQ_POLL") == "1"
        fd = forcePoll ? -1 : inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
    }

    deinit {
        if fd >= 0 { close(fd) }
        buffer.deallocate()
    }

    /// Watches `directory` for files created, renamed in, written or removed.
    public func watch(_ directory: String) {
        guard fd >= 0 else { paths[Int32(paths.count)] = directory; return }
        let mask = UInt32(IN_MODIFY | IN_CREATE | IN_MOVED_TO | IN_DELETE | IN_CLOSE_WRITE)
        let wd = inotify_add_watch(fd, directory, mask)
        if wd >= 0 { paths[wd] = directory }
    }

    /// Blocks until something changes, a descriptor in `alsoWake` is readable,
    /// or `timeoutMs` passes (-1: no limit).
    /// - Returns: the watched directories that changed (all of them when polling).
    public func wait(timeoutMs: Int32, alsoWake: [Int32] = [], alsoWatch: [(fd: Int32, events: Int16)] = []) -> Set<String> {
        let others = alsoWake.map { (fd: $0, events: Int16(POLLIN)) } + alsoWatch
        guard fd >= 0 else {
            let wait = timeoutMs < 0 ? pollIntervalMs : min(timeoutMs, pollIntervalMs)
            _ = waitReady(others, timeoutMs: wait)
            return Set(paths.values)
        }
        let ready = waitReady([(fd: fd, events: Int16(POLLIN))] + others, timeoutMs: timeoutMs)
        guard ready.contains(0) else { return [] }
        return drain()
    }

    /// Data written to a segment, or any file created, renamed in or removed:
    /// writes to indexes and `head` follow every append and would only wake
    /// readers a second and third time.
    private func isInteresting(_ event: inotify_event, nameAt name: UnsafeMutableRawPointer) -> Bool {
        if event.mask & UInt32(IN_MODIFY | IN_CLOSE_WRITE) == 0 || event.len == 0 { return true }
        let cString = name.assumingMemoryBound(to: CChar.self)
        let length = strnlen(cString, Int(event.len))
        guard length >= 4 else { return true }
        return memcmp(cString + length - 4, ".log", 4) == 0
    }

    /// Reads pending events without blocking.
    public func drain() -> Set<String> {
        var changed = Set<String>()
        guard fd >= 0 else { return Set(paths.values) }
        while true {
            let n = read(fd, buffer, 64 << 10)
            if n <= 0 { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                if let path = paths[event.wd], isInteresting(event, nameAt: buffer + offset + MemoryLayout<inotify_event>.size) {
                    changed.insert(path)
                }
                offset += MemoryLayout<inotify_event>.size + Int(event.len)
            }
            // A read returns every queued event that fits: with room left for
            // the largest one, the queue was empty, and the read that would
            // say so (EAGAIN) is one system call more on the way to a message.
            if n + MemoryLayout<inotify_event>.size + Int(NAME_MAX) + 1 <= 64 << 10 { break }
        }
        return changed
    }
}
