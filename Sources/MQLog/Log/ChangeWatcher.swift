import Glibc

/// Waits for files to change in a set of directories, with inotify(7).
///
/// When inotify is not available (or `MQ_POLL=1` is set), it falls back to
/// waking every `pollInterval` milliseconds and reporting every directory as
/// changed; it never busy-waits. Directories that inotify refuses to watch
/// (past `fs.inotify.max_user_watches`: ENOSPC) are polled the same way while
/// the others are watched: they are reported as changed by every `drain` and
/// `wait`, and no wait lasts longer than the poll interval. The first refusal
/// prints one notice on standard error. Not thread-safe.
public final class ChangeWatcher {
    public let pollIntervalMs: Int32
    private let fd: Int32
    private var paths: [Int32: String] = [:]
    private let buffer = UnsafeMutableRawPointer.allocate(byteCount: 64 << 10, alignment: 8)

    public var usesInotify: Bool { fd >= 0 }

    /// Directories without a working watch, polled (see above).
    public private(set) var unwatched = Set<String>()
    private var noticed = false

    public init(pollIntervalMs: Int32 = 100) {
        self.pollIntervalMs = pollIntervalMs
        let forcePoll = environment("MQ_POLL") == "1"
        fd = forcePoll ? -1 : inotify_init1(Int32(IN_CLOEXEC | IN_NONBLOCK))
    }

    deinit {
        if fd >= 0 { close(fd) }
        buffer.deallocate()
    }

    /// Watches `directory` for files created, renamed in or removed, and
    /// its newest segment (`*.log`, by name) for data written to it.
    ///
    /// Only the segment is watched for writes: `head` and the indexes change
    /// with every append too, and a watch on the whole directory would wake a
    /// reader two or three times per append, once for the data and then for
    /// each of them. When a newer segment appears (a roll, or a segment
    /// renamed in), the watch moves to it; `drain` does that before it
    /// returns, so data written to the new segment before the watch existed
    /// is found by the read that follows the wake-up.
    ///
    /// - Parameter activeSegment: asked, after the directory is watched, for
    ///   the base offset of the active segment (`head` names it before the
    ///   segment's file exists); when it answers nil, the directory is listed
    ///   for the newest segment instead.
    public func watch(_ directory: String, activeSegment: () -> Int64? = { nil }) {
        guard addWatch(directory, mask: UInt32(IN_CREATE | IN_MOVED_TO | IN_DELETE)) else { pollInstead(directory); return }
        guard fd >= 0 else { return }
        if let active = activeSegment() ?? (try? LogSegments.baseOffsets(in: directory))?.last { watchSegment(active, in: directory) }
    }

    /// Watches `directory` for any file in it written, created, renamed in
    /// or removed: for state files that other processes rewrite in place.
    public func watchWrites(_ directory: String) {
        addWatch(directory, mask: UInt32(IN_MODIFY | IN_CLOSE_WRITE | IN_CREATE | IN_MOVED_TO | IN_DELETE))
    }

    /// Adds a watch on `directory` (when polling, just remembers it).
    /// - Returns: false when inotify refused it.
    @discardableResult
    private func addWatch(_ directory: String, mask: UInt32) -> Bool {
        guard fd >= 0 else { paths[Int32(paths.count)] = directory; return true }
        let wd = inotify_add_watch(fd, directory, mask)
        guard wd >= 0 else { return false }
        paths[wd] = directory
        return true
    }

    /// Polls `directory` from now on: inotify refused a watch it needs.
    private func pollInstead(_ directory: String) {
        unwatched.insert(directory)
        guard !noticed else { return }
        noticed = true
        let limit = (try? FileSystem.readAll("/proc/sys/fs/inotify/max_user_watches")).map { String(decoding: $0.prefix { $0 != 10 }, as: UTF8.self) } ?? "?"
        var text = Array("notice: inotify refused a watch (fs.inotify.max_user_watches is \(limit)): partitions past the limit are polled every \(pollIntervalMs) ms\n".utf8)
        _ = text.withUnsafeMutableBytes { write(2, $0.baseAddress, $0.count) }
    }

    /// The wait for events: at most one poll interval while some directories are polled.
    private func capped(_ timeoutMs: Int32) -> Int32 {
        guard !unwatched.isEmpty else { return timeoutMs }
        return timeoutMs < 0 ? pollIntervalMs : min(timeoutMs, pollIntervalMs)
    }

    /// The segment watched for writes in each directory: its base offset and watch.
    private var segments: [String: (base: Int64, wd: Int32)] = [:]

    /// Moves the directory's write watch to segment `base` (a new file, or
    /// a file renamed in under the name already watched).
    private func watchSegment(_ base: Int64, in directory: String) {
        let wd = inotify_add_watch(fd, Segment(directory, base).logPath, UInt32(IN_MODIFY | IN_CLOSE_WRITE))
        guard wd >= 0 else {
            if errno == ENOSPC || errno == ENOMEM { pollInstead(directory) }
            return  // else gone already: a newer one's event follows
        }
        if let old = segments[directory], old.wd != wd {
            inotify_rm_watch(fd, old.wd)
            paths[old.wd] = nil
        }
        segments[directory] = (base, wd)
        paths[wd] = directory
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
        let ready = waitReady([(fd: fd, events: Int16(POLLIN))] + others, timeoutMs: capped(timeoutMs))
        guard ready.contains(0) else { return unwatched }
        return drain()
    }

    /// Blocks until events are queued or `timeoutMs` passes (-1: no limit),
    /// and leaves them queued: a follower reads the new data first and then
    /// takes the events with `drain`, so that delivery does not wait for that
    /// read. When polling, it sleeps one interval and returns true.
    public func waitForEvents(timeoutMs: Int32) -> Bool {
        guard fd >= 0 else {
            _ = waitReady([], timeoutMs: timeoutMs < 0 ? pollIntervalMs : min(timeoutMs, pollIntervalMs))
            return true
        }
        return !waitReady([(fd: fd, events: Int16(POLLIN))], timeoutMs: capped(timeoutMs)).isEmpty || !unwatched.isEmpty
    }

    /// True when events are queued: a `wait` would return at once.
    var hasPendingEvents: Bool {
        guard fd >= 0 else { return false }
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) == 1
    }

    /// Reads pending events without blocking.
    public func drain() -> Set<String> {
        var changed = unwatched
        guard fd >= 0 else { return Set(paths.values) }
        while true {
            let n = read(fd, buffer, 64 << 10)
            if n <= 0 { break }
            var offset = 0
            while offset + MemoryLayout<inotify_event>.size <= n {
                let event = buffer.load(fromByteOffset: offset, as: inotify_event.self)
                if event.mask & UInt32(IN_Q_OVERFLOW) != 0 {
                    // Events were lost: any directory may have changed.
                    changed.formUnion(paths.values)
                } else if event.mask & UInt32(IN_IGNORED) != 0 {
                    forget(event.wd)
                } else if let path = paths[event.wd] {
                    changed.insert(path)
                    if event.mask & UInt32(IN_CREATE | IN_MOVED_TO) != 0 && event.len > 0 {
                        let name = String(cString: (buffer + offset + MemoryLayout<inotify_event>.size).assumingMemoryBound(to: CChar.self))
                        if let base = Segment.baseOffset(ofLogName: name), base >= segments[path]?.base ?? -1 {
                            watchSegment(base, in: path)
                        }
                    }
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

    /// A watch the kernel removed (its file was deleted or replaced).
    private func forget(_ wd: Int32) {
        guard let directory = paths.removeValue(forKey: wd) else { return }
        if segments[directory]?.wd == wd { segments[directory] = nil }
    }
}
