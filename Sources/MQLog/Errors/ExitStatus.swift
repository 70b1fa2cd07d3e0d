/// Process exit statuses, in the style of BSD `sysexits.h`.
///
/// Every tool documents these under EXIT STATUS in its man page; a test checks
/// that the pages and this table agree.
public enum ExitStatus: Int32, Sendable, CaseIterable {
    /// Success.
    case ok = 0
    /// A handled, expected non-success that is not an error (e.g. interrupted by a signal
    /// after committing what was accepted is reported separately below).
    case failure = 1
    /// Bad command line: unknown flag, bad value, bad topic name (`EX_USAGE`).
    case usage = 64
    /// Bad input data: malformed line, message over the size limit, corrupt batch (`EX_DATAERR`).
    case dataError = 65
    /// A topic or file that must exist does not (`EX_NOINPUT`).
    case noInput = 66
    /// A service is unavailable: `mq-mirror`'s cluster could not be reached
    /// before `--timeout` (`EX_UNAVAILABLE`).
    case unavailable = 69
    /// Internal error: a bug (`EX_SOFTWARE`).
    case software = 70
    /// Cannot create a file or directory (`EX_CANTCREAT`).
    case cantCreate = 73
    /// A system error: a program could not be started (not an executable,
    /// out of processes or memory) (`EX_OSERR`).
    case osError = 71
    /// Read or write failed, including a full disk (`EX_IOERR`).
    case ioError = 74
    /// The remote side cannot go on with this client: `mq-mirror`'s Kafka
    /// producer was fenced by another of the same `transactional.id`, or hit
    /// another fatal error (`EX_PROTOCOL`). Not retried.
    case protocolError = 76
    /// Temporary failure: the resource is busy or in use (`EX_TEMPFAIL`).
    case tempFail = 75
    /// Permission denied (`EX_NOPERM`).
    case noPermission = 77
    /// Bad configuration: an unknown or invalid topic config value (`EX_CONFIG`).
    case config = 78
    /// Stopped by SIGINT (128 + 2), after committing what was accepted.
    case interrupted = 130
    /// Stopped by SIGTERM (128 + 15), after committing what was accepted.
    case terminated = 143
}
