import Glibc

/// How many file descriptors a tool may keep open for partitions.
///
/// A topic may have up to `TopicConfig.maximumPartitions` partitions, far
/// more than the usual soft limit of 1,024 open files. Tools therefore
/// 1. raise their soft `RLIMIT_NOFILE` to the hard limit when they start
///    (`raiseOpenFileLimit()`, as most runtimes do), and
/// 2. keep partition files open through bounded pools (writers, readers)
///    and hold a bounded number of group leases, whose sizes come from `FileBudget.shared`, closing the least
///    recently used when full.
/// Whatever the limit, a tool never needs more than a fixed number of
/// descriptors outside these pools (`reserved`).
public struct FileBudget: Sendable {
    /// The soft limit of open files when the budget was computed.
    public let limit: Int
    /// Descriptors kept for everything that is not a pooled partition file:
    /// standard streams, inotify, locks of topics and groups, handler pipes,
    /// temporary files.
    public static let reserved = 64

    /// Descriptors the pools may hold between them.
    public var pooled: Int { max(limit - Self.reserved, 16) }

    /// Open partition writers allowed at once (each holds its head file and
    /// the active segment's `.log`, `.index` and `.timeindex`: up to 4 descriptors).
    public var writers: Int { max(pooled / 2 / Self.descriptorsPerWriter, 2) }

    /// Open partition writers allowed at once for a tool that opens no
    /// partition readers (`mq-produce`): the whole pooled budget.
    public var writersAlone: Int { max(pooled / Self.descriptorsPerWriter, 2) }

    /// Descriptors one open partition writer may hold: `head` and the active
    /// segment's `.log`, `.index` and `.timeindex` (the indexes from its first entry on).
    public static let descriptorsPerWriter = 4

    /// Descriptors partition readers may hold between them (`ReaderPool`):
    /// half the budget, the other half being the writers'.
    public var readerDescriptors: Int { max(pooled / 2, 4) }

    /// Group leases a consumer may hold at once: as many as readers (a lease
    /// is a lock in its topic's committed-offset file, one descriptor per
    /// topic; each partition held has a reader).
    public var leases: Int { max(pooled / 4, 2) }

    public init(limit: Int) { self.limit = limit }

    /// The budget from the current soft limit.
    public static func current() -> FileBudget {
        var rl = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 else { return FileBudget(limit: 1024) }
        if rl.rlim_cur == rlimInfinity { return FileBudget(limit: 1 << 20) }
        return FileBudget(limit: Int(clamping: rl.rlim_cur))
    }

    /// Raises the soft limit of open files to the hard limit (capped at
    /// 2^20), and returns the budget that results. Failing to raise it is not
    /// an error: the pools are sized from whatever the limit is.
    @discardableResult
    public static func raiseOpenFileLimit() -> FileBudget {
        var rl = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl) == 0 {
            let cap: rlim_t = 1 << 20
            let target = rl.rlim_max == rlimInfinity ? cap : min(rl.rlim_max, cap)
            if rl.rlim_cur != rlimInfinity && rl.rlim_cur < target {
                rl.rlim_cur = target
                _ = setrlimit(Int32(RLIMIT_NOFILE.rawValue), &rl)
            }
        }
        return current()
    }

    /// The budget tools use: the soft limit is raised once, on first use
    /// (every tool touches it when it starts, in `runReportingErrors`).
    public static let shared: FileBudget = raiseOpenFileLimit()
}

/// `RLIM_INFINITY` (all bits set), which Swift cannot import as a literal.
private let rlimInfinity = rlim_t.max
