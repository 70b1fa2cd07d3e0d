import Glibc
import SystemPackage
import MQLog

/// A tool process started by the benchmark, with its standard input from a
/// file (or /dev/null) and standard output to /dev/null or a pipe.
final class ToolProcess {
    let pid: pid_t
    /// Our end of the child's standard output, when piped.
    let stdoutFD: Int32?

    init(_ argv: [String], stdinPath: String = "/dev/null", pipeStdout: Bool = false, environment: [String]? = nil) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, stdinPath, O_RDONLY, 0)
        var out: [Int32] = [-1, -1]
        if pipeStdout {
            guard pipe(&out) == 0 else { throw MQError.system("cannot create a pipe for", path: argv[0], currentErrno()) }
            posix_spawn_file_actions_adddup2(&actions, out[1], 1)
            posix_spawn_file_actions_addclose(&actions, out[0])
            posix_spawn_file_actions_addclose(&actions, out[1])
        } else {
            posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        }
        let cArgs = argv.map { strdup($0) } + [nil]
        let env = environment ?? processEnvironment()
        let cEnv = env.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        // The child starts with no signal blocked and the usual dispositions,
        // whatever mq-bench blocked for itself (see ScenarioCleanup).
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t(), all = sigset_t()
        sigemptyset(&none)
        sigemptyset(&all)
        for s in [SIGINT, SIGTERM, SIGHUP] { sigaddset(&all, s) }
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, argv[0], &actions, &attributes, cArgs, cEnv)
        if pipeStdout { close(out[1]) }
        guard rc == 0 else {
            if pipeStdout { close(out[0]) }
            throw MQError(.noInput, "cannot run '\(argv[0])': \(String(cString: strerror(rc))) (set MQ_BIN to the directory of the mq tools)")
        }
        self.pid = pid
        ScenarioCleanup.shared.add(pid)
        self.stdoutFD = pipeStdout ? out[0] : nil
    }

    deinit { if let fd = stdoutFD { close(fd) } }

    /// Waits for the process; returns its exit status (128 + N when killed
    /// by signal N, as a shell reports it) and resource usage.
    func wait() -> (status: Int32, usage: rusage) {
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        ScenarioCleanup.shared.remove(pid)
        let signal = status & 0x7F
        return (signal == 0 ? (status >> 8) & 0xFF : 128 + signal, usage)
    }
}


func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
