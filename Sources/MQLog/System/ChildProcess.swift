import Glibc
import SystemPackage

/// A handler process started with `posix_spawn`: its standard input and
/// standard error are pipes (non-blocking on our side), its standard output is
/// ours. It runs in a process group of its own, so that a timeout can stop
/// the whole tree a shell script may start. Not thread-safe.
public final class ChildProcess {
    public let pid: pid_t
    /// Our end of the child's standard input; -1 once closed.
    public private(set) var stdinFD: Int32
    /// Our end of the child's standard error; -1 once it reached end of file.
    public private(set) var stderrFD: Int32
    private var input: [UInt8]
    private var written = 0
    /// The last bytes the child wrote to standard error.
    public private(set) var stderrTail: [UInt8] = []
    private let stderrLimit: Int

    /// Starts `argv[0]` (searched in PATH) with `environment` (NAME=value).
    /// - Parameters:
    ///   - input: written to the child's standard input, which is then closed.
    ///   - stderrLimit: how many trailing bytes of standard error to keep.
    /// - Throws: `MQError` when the program cannot be started.
    public init(argv: [String], environment: [String], input: [UInt8], stderrLimit: Int = 4096) throws {
        var inPipe: [Int32] = [-1, -1], errPipe: [Int32] = [-1, -1]
        guard pipe(&inPipe) == 0 else { throw MQError.system("cannot create a pipe for", path: argv[0], currentErrno()) }
        guard pipe(&errPipe) == 0 else {
            close(inPipe[0]); close(inPipe[1])
            throw MQError.system("cannot create a pipe for", path: argv[0], currentErrno())
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, inPipe[0], 0)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in inPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }
        var attributes = SpawnAttributes(newProcessGroup: true)
        defer { attributes.destroy() }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = environment.map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, &attributes.value, cArgs, cEnv)
        close(inPipe[0])
        close(errPipe[1])
        guard rc == 0 else {
            close(inPipe[1]); close(errPipe[0])
            throw MQError(SpawnFailure.status(rc), "cannot run handler '\(argv[0])'", cause: Errno(rawValue: rc))
        }
        for fd in [inPipe[1], errPipe[0]] {
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        self.pid = pid
        self.stdinFD = inPipe[1]
        self.stderrFD = errPipe[0]
        self.input = input
        self.stderrLimit = stderrLimit
        pump()
    }

    deinit {
        if stdinFD >= 0 { close(stdinFD) }
        if stderrFD >= 0 { close(stderrFD) }
    }

    /// Moves data without blocking: more input to the child, its standard error to ours.
    public func pump() {
        while stdinFD >= 0 {
            if written >= input.count { close(stdinFD); stdinFD = -1; input = []; break }
            let n = input.withUnsafeBytes { Glibc.write(stdinFD, $0.baseAddress! + written, $0.count - written) }
            if n > 0 { written += n; continue }
            if n < 0 && errno == EINTR { continue }
            if n < 0 && errno == EAGAIN { break }
            close(stdinFD); stdinFD = -1; input = []  // the child closed its input (EPIPE): fine
        }
        var chunk = [UInt8](repeating: 0, count: 8192)
        while stderrFD >= 0 {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(stderrFD, $0.baseAddress!, $0.count) }
            if n > 0 {
                _ = chunk.withUnsafeBytes { Glibc.write(2, $0.baseAddress!, n) }  // the user sees it too
                stderrTail.append(contentsOf: chunk[0..<n])
                if stderrTail.count > stderrLimit { stderrTail.removeFirst(stderrTail.count - stderrLimit) }
                continue
            }
            if n < 0 && (errno == EINTR) { continue }
            if n < 0 && errno == EAGAIN { break }
            close(stderrFD); stderrFD = -1
        }
    }

    /// Descriptors to poll, with the events that would let `pump` progress.
    public var pollRequests: [(fd: Int32, events: Int16)] {
        var r: [(Int32, Int16)] = []
        if stdinFD >= 0 { r.append((stdinFD, Int16(POLLOUT))) }
        if stderrFD >= 0 { r.append((stderrFD, Int16(POLLIN))) }
        return r
    }

    /// Sends `signal` to the child's process group.
    public func signal(_ sig: Int32) { _ = kill(-pid, sig) }

    /// How a child ended.
    public enum Outcome: Equatable, Sendable {
        case exited(Int32)
        case signaled(Int32)
    }

    /// Reaps the child if it has ended (never blocks).
    public func reap() -> Outcome? {
        var status: Int32 = 0
        let r = waitpid(pid, &status, WNOHANG)
        guard r == pid else { return nil }
        pump()
        let termSig = status & 0x7F
        return termSig == 0 ? .exited((status >> 8) & 0xFF) : .signaled(termSig)
    }
}

/// Waits until a descriptor is ready for its events, or the timeout passes.
/// - Returns: the indexes of the descriptors that are ready.
public func waitReady(_ requests: [(fd: Int32, events: Int16)], timeoutMs: Int32) -> [Int] {
    var pollfds = requests.map { pollfd(fd: $0.fd, events: $0.events, revents: 0) }
    let n = poll(&pollfds, nfds_t(pollfds.count), timeoutMs)
    guard n > 0 else { return [] }
    return pollfds.indices.filter { pollfds[$0].revents != 0 }
}

/// Spawn attributes for our children: the signals we catch or ignore back
/// to their defaults, no signal blocked, and optionally a process group of
/// their own.
struct SpawnAttributes {
    var value = posix_spawnattr_t()

    init(newProcessGroup: Bool) {
        posix_spawnattr_init(&value)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for sig in [SIGINT, SIGTERM, SIGCHLD, SIGPIPE] { sigaddset(&defaults, sig) }
        posix_spawnattr_setsigdefault(&value, &defaults)
        var noMask = sigset_t()
        sigemptyset(&noMask)
        posix_spawnattr_setsigmask(&value, &noMask)
        var flags = POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK
        if newProcessGroup {
            posix_spawnattr_setpgroup(&value, 0)
            flags |= POSIX_SPAWN_SETPGROUP
        }
        posix_spawnattr_setflags(&value, Int16(flags))
    }

    mutating func destroy() { posix_spawnattr_destroy(&value) }
}

/// A command whose standard output we read (`mq-produce --atomic -- COMMAND`):
/// its standard input and standard error are ours, and it stays in our
/// process group, so a ^C at the terminal reaches it too.
public final class GeneratorProcess {
    public let argv: [String]
    public let pid: pid_t
    /// Our end of the command's standard output.
    public let outputFD: Int32
    private var reaped = false

    /// Starts `argv[0]` (searched in PATH) with our environment.
    /// - Throws: `MQError` (noInput when the program is not found).
    public init(argv: [String]) throws {
        self.argv = argv
        var out: [Int32] = [-1, -1]
        guard pipe(&out) == 0 else { throw MQError.system("cannot create a pipe for", path: argv[0], currentErrno()) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, out[1], 1)
        posix_spawn_file_actions_addclose(&actions, out[0])
        posix_spawn_file_actions_addclose(&actions, out[1])
        var attributes = SpawnAttributes(newProcessGroup: false)
        defer { attributes.destroy() }
        let cArgs = argv.map { strdup($0) } + [nil]
        let cEnv = processEnvironment().map { strdup($0) } + [nil]
        defer { (cArgs + cEnv).forEach { free($0) } }
        var pid: pid_t = 0
        let rc = posix_spawnp(&pid, argv[0], &actions, &attributes.value, cArgs, cEnv)
        close(out[1])
        guard rc == 0 else {
            close(out[0])
            throw MQError(SpawnFailure.status(rc), "cannot run '\(argv[0])'", cause: Errno(rawValue: rc))
        }
        _ = fcntl(out[0], F_SETFD, FD_CLOEXEC)
        self.pid = pid
        self.outputFD = out[0]
    }

    deinit {
        close(outputFD)
        if !reaped { stop() }
    }

    /// Waits for the command to end; a stop signal ends the wait with its error.
    public func wait() throws -> ChildProcess.Outcome {
        while true {
            var status: Int32 = 0
            let r = waitpid(pid, &status, 0)
            if r == pid {
                reaped = true
                let termSig = status & 0x7F
                return termSig == 0 ? .exited((status >> 8) & 0xFF) : .signaled(termSig)
            }
            if r < 0 && errno == EINTR {
                if StopSignals.signal != 0 { throw MQError(StopSignals.exitStatus, "stopped") }
                continue
            }
            throw MQError.system("cannot wait for", path: argv[0], currentErrno())
        }
    }

    /// Terminates the command (SIGTERM) and reaps it.
    public func stop() {
        guard !reaped else { return }
        reaped = true
        _ = kill(pid, SIGTERM)
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    }
}

/// What a failed `posix_spawn` means for the exit status.
public enum SpawnFailure {
    /// The status for a program that `posix_spawn` could not start:
    /// not found 66, not permitted 77, anything else (not an executable,
    /// out of processes or memory) 71.
    public static func status(_ errno: Int32) -> ExitStatus {
        switch errno {
        case ENOENT, ENOTDIR: return .noInput
        case EACCES, EPERM: return .noPermission
        default: return .osError
        }
    }
}
