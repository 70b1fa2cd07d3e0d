import Glibc

/// The reader of a tool's standard output went away (`write` failed with
/// `EPIPE`), as with `mq-tail … | head`. Not a failure: the tool ends quietly
/// with status 0 after settling what it had delivered, like `yes | head`.
public struct OutputClosed: Error, Sendable {
    public init() {}
}

/// The one place where an error becomes what the user sees: a message and an
/// exit status. Every tool ends through it (`runReportingErrors`).
public enum ErrorReport {
    /// The status and the line to print (`nil`: print nothing) for `error`.
    public static func classify(_ error: any Error) -> (status: ExitStatus, message: String?) {
        switch error {
        case is OutputClosed:
            return (.ok, nil)
        case let e as MQError:
            return (e.status, e.description)
        case let e as CompressionError:
            return (.dataError, "corrupt data: \(e)")
        case let e as BatchProblem:
            return (.dataError, "corrupt data: \(e)")
        case let e as EnvelopeError:
            return (.dataError, "\(e)")
        default:
            return (.software, "internal error (a bug; please report it): \(error)")
        }
    }
}

extension MQError {
    /// A write to standard output failed: `OutputClosed` when its reader went
    /// away, else the error itself.
    public static func outputClosedOrSelf(_ error: any Error) -> any Error {
        if let e = error as? MQError, e.cause == .brokenPipe { return OutputClosed() }
        return error
    }
}
