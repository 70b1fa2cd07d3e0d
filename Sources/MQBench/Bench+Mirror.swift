import Glibc
import MQLog

extension Bench {
    /// `nats-server` on PATH, or nil.
    public static func natsServerPath() -> String? {
        for dir in (environment("PATH") ?? "/usr/local/bin:/usr/bin:/bin").split(separator: ":") {
            let path = (dir.isEmpty ? "." : String(dir)) + "/nats-server"
            if access(path, X_OK) == 0 { return path }
        }
        return nil
    }

    public static let natsServerMissing = "the 'mirror' scenario needs nats-server on PATH, and there is none (Debian: apt-get install nats-server)"

    /// The `mirror` scenario: `messages` of `size` bytes are produced into a
    /// topic (untimed), a `nats-server` with JetStream is started on
    /// 127.0.0.1 on a free port with its store in the work directory, and
    /// one `mq-mirror -e --create` pushing everything to a new stream is
    /// timed from start to exit. The count reported is what the mirror's
    /// consumer group committed, which must be every message. The server is
    /// stopped and its store removed at the end, after a failure, and when
    /// mq-bench is stopped by SIGINT, SIGTERM or SIGHUP.
    func mirror() throws -> BenchResult {
        guard let server = Bench.natsServerPath() else { throw MQError(.unavailable, Bench.natsServerMissing) }
        let cleanup = ScenarioCleanup.shared
        cleanup.install()
        cleanup.directory = workDirectory
        defer { cleanup.directory = nil }
        try createTopic("bench")
        let input = try makeInput("input", count: options.messages)
        _ = try timed { [try ToolProcess(produceArguments("bench"), stdinPath: input)] }

        let port = try freePort()
        let logPath = workDirectory + "/nats-server.log"
        let nats = try ToolProcess([server, "-js", "-a", "127.0.0.1", "-p", String(port),
                                    "-sd", workDirectory + "/nats", "-l", logPath])
        defer {
            cleanup.stop(nats.pid)
            cleanup.remove(nats.pid)
        }
        try awaitReady(nats.pid, logPath: logPath)

        let argv = [tool("mq-mirror"), "--dir", logDirectory, "-e", "--create", "--name", "bench",
                    "--timeout", "60s", "bench", "nats://127.0.0.1:\(port)/BENCH"]
        let t = try timed { [try ToolProcess(argv)] }
        let forwarded = try committed(group: "mirror.bench", topic: "bench")
        guard forwarded == options.messages else {
            throw MQError.internalError("mq-mirror committed \(forwarded) of \(options.messages) messages")
        }
        return BenchResult(scenario: "mirror (JetStream)", messages: forwarded, bytes: forwarded * options.size,
                           seconds: t.seconds, userCPU: t.user, systemCPU: t.system, maxRSSKiB: t.rss)
    }

    /// The sum of the group's committed offsets over the topic's partitions.
    private func committed(group: String, topic: String) throws -> Int {
        let g = try GroupDirectory(log: LogDirectory(root: logDirectory), group: group)
        let slots = try g.committedSlots(topic, partitions: Int32(options.partitions))
        return slots.reduce(0) { $0 + Int($1?.offset ?? 0) }
    }

    /// A TCP port on 127.0.0.1 that was free a moment ago.
    private func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw MQError.system("cannot create a socket for", path: "nats-server", currentErrno()) }
        defer { close(fd) }
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        addr.sin_port = 0
        var len = socklen_t(MemoryLayout<sockaddr_in>.size)
        let ok = withUnsafeMutablePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { sa in
                bind(fd, sa, len) == 0 && getsockname(fd, sa, &len) == 0
            }
        }
        guard ok else { throw MQError.system("cannot find a free port for", path: "nats-server", currentErrno()) }
        return Int(UInt16(bigEndian: addr.sin_port))
    }

    /// Waits (at most 20 s) until the server's log says it is ready.
    private func awaitReady(_ pid: pid_t, logPath: String) throws {
        let deadline = monotonicNanos() + 20_000_000_000
        while true {
            let log = FileSystem.exists(logPath) ? String(decoding: (try? FileSystem.readAll(logPath)) ?? [], as: UTF8.self) : ""
            if log.contains("Server is ready") { return }
            var status: Int32 = 0
            let exited = waitpid(pid, &status, WNOHANG) == pid
            if exited || monotonicNanos() > deadline {
                let tail = log.split(separator: "\n").suffix(3).joined(separator: " / ")
                throw MQError(.unavailable, "nats-server " + (exited ? "exited" : "was not ready within 20 s")
                              + (tail.isEmpty ? "" : ": " + tail))
            }
            usleep(50_000)
        }
    }
}

/// What a scenario leaves running or on disk while it runs: the processes
/// started and not yet waited for (every `ToolProcess`) and the work
/// directory of the `mirror` scenario, cleaned up on SIGINT, SIGTERM and
/// SIGHUP once `install` was called (the `mirror` scenario does). Those signals are blocked in every
/// thread of mq-bench and taken by a thread of their own (children get the
/// default mask and dispositions back, see `ToolProcess`), which stops the
/// processes, removes the directory and exits with 130 after SIGINT, else 143.
final class ScenarioCleanup: @unchecked Sendable {
    static let shared = ScenarioCleanup()
    static let signals = [SIGINT, SIGTERM, SIGHUP]

    private var mutex = pthread_mutex_t()
    private var pids: [pid_t] = []
    private var directoryPath: String?
    private var installed = false

    private init() { pthread_mutex_init(&mutex, nil) }

    private func locked<T>(_ body: () -> T) -> T {
        pthread_mutex_lock(&mutex)
        defer { pthread_mutex_unlock(&mutex) }
        return body()
    }

    var directory: String? {
        get { locked { directoryPath } }
        set { locked { directoryPath = newValue } }
    }

    func add(_ pid: pid_t) { locked { pids.append(pid) } }
    func remove(_ pid: pid_t) { locked { pids.removeAll { $0 == pid } } }

    /// Blocks the signals and starts the thread that waits for them (once).
    func install() {
        guard !locked({ let was = installed; installed = true; return was }) else { return }
        var set = sigset_t()
        sigemptyset(&set)
        for s in Self.signals { sigaddset(&set, s) }
        pthread_sigmask(SIG_BLOCK, &set, nil)
        var thread = pthread_t()
        _ = pthread_create(&thread, nil, { arg in
            Unmanaged<ScenarioCleanup>.fromOpaque(arg!).takeUnretainedValue().waitForSignal()
            return nil
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    private func waitForSignal() {
        var set = sigset_t()
        sigemptyset(&set)
        for s in Self.signals { sigaddset(&set, s) }
        var signal: Int32 = 0
        while sigwait(&set, &signal) != 0 {}
        pthread_mutex_lock(&mutex)  // held until exit: nothing else starts or cleans up meanwhile
        for pid in pids.reversed() { stop(pid) }  // the latest first: mq-mirror before its server
        if let d = directoryPath { try? FileSystem.removeTree(d) }
        _exit(signal == SIGINT ? ExitStatus.interrupted.rawValue : ExitStatus.terminated.rawValue)
    }

    /// SIGTERM, up to 10 s for it to exit, then SIGKILL. A process already
    /// reaped elsewhere counts as stopped.
    func stop(_ pid: pid_t) {
        guard kill(pid, SIGTERM) == 0 else { return }
        var status: Int32 = 0
        for _ in 0..<200 {
            let r = waitpid(pid, &status, WNOHANG)
            if r == pid || (r < 0 && errno != EINTR) { return }
            usleep(50_000)
        }
        kill(pid, SIGKILL)
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}
