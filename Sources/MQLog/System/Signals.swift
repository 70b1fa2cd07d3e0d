import Glibc

/// SIGINT, SIGTERM and SIGCHLD as events a loop can wait for: the handler
/// writes the signal number to a pipe (async-signal-safe), which `poll`
/// watches beside the input. `signal` reports only SIGINT and SIGTERM; a
/// SIGCHLD just wakes the loop to reap children. Installed once per process.
public enum StopSignals {
    nonisolated(unsafe) private static var pipeFDs: (read: Int32, write: Int32) = (-1, -1)
    nonisolated(unsafe) private static var received: Int32 = 0

    /// The read end to poll, after `install`.
    public static var fd: Int32 { pipeFDs.read }

    /// The signal received, or 0.
    public static var signal: Int32 { received }

    /// Installs the handlers (without SA_RESTART, so blocking calls return EINTR).
    public static func install() {
        guard pipeFDs.read < 0 else { return }
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return }
        for f in fds {
            _ = fcntl(f, F_SETFD, FD_CLOEXEC)
            _ = fcntl(f, F_SETFL, fcntl(f, F_GETFL) | O_NONBLOCK)
        }
        pipeFDs = (fds[0], fds[1])
        for sig in [SIGINT, SIGTERM, SIGCHLD] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                if sig != SIGCHLD { StopSignals.received = sig }
                var byte = UInt8(truncatingIfNeeded: sig)
                _ = Glibc.write(StopSignals.pipeFDs.write, &byte, 1)
            }
            sigemptyset(&action.sa_mask)
            action.sa_flags = 0
            sigaction(sig, &action, nil)
        }
    }

    /// Empties the pipe after a wake-up.
    public static func drain() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while Glibc.read(pipeFDs.read, &bytes, 64) > 0 {}
    }

    /// The exit status for the signal received: 130 for SIGINT, 143 for SIGTERM.
    public static var exitStatus: ExitStatus { received == SIGINT ? .interrupted : .terminated }
    /// "SIGINT" or "SIGTERM": the stop signal received, for messages.
    public static var name: String { received == SIGINT ? "SIGINT" : "SIGTERM" }
}

/// Waits on file descriptors. The C function is `poll`.
/// - Returns: the indexes of the descriptors that are ready (readable or hung up).
public func waitReadable(_ fds: [Int32], timeoutMs: Int32) -> [Int] {
    var pollfds = fds.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
    let n = poll(&pollfds, nfds_t(pollfds.count), timeoutMs)
    guard n > 0 else { return [] }
    return pollfds.indices.filter { pollfds[$0].revents != 0 }
}
