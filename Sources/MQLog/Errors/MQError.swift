import SystemPackage

/// An error meant for a person: what went wrong, where, and what to do about it.
///
/// Every error carries the exit status its tool ends with. The message names the
/// path, topic or input line involved; `cause` keeps the system error when there
/// is one.
public struct MQError: Error, CustomStringConvertible, Sendable {
    public var status: ExitStatus
    public var message: String
    public var cause: Errno?

    public init(_ status: ExitStatus, _ message: String, cause: Errno? = nil) {
        self.status = status
        self.message = message
        self.cause = cause
    }

    public var description: String {
        if let cause { return "\(message): \(cause.description)" }
        return message
    }

    /// Classifies a failed system call on `path` into the right exit status.
    /// - Parameters:
    ///   - operation: what was being done, e.g. "cannot open segment".
    ///   - path: the file involved.
    ///   - errno: the system error.
    ///   - creating: true when the call was creating something (maps to `EX_CANTCREAT`).
    public static func system(_ operation: String, path: String, _ errno: Errno, creating: Bool = false) -> MQError {
        let status: ExitStatus
        switch errno {
        case .permissionDenied, .notPermitted, .readOnlyFileSystem:
            status = .noPermission
        case .noSpace, .diskQuotaExceeded:
            status = .ioError
        case .noSuchFileOrDirectory where !creating:
            status = .noInput
        default:
            status = creating ? .cantCreate : .ioError
        }
        var message = "\(operation) '\(path)'"
        if errno == .noSpace { message += " (the disk is full; free space and run again: what was accepted before is kept)" }
        if errno == .readOnlyFileSystem { message += " (read-only file system)" }
        return MQError(status, message, cause: errno)
    }

    public static func usage(_ message: String) -> MQError { MQError(.usage, message) }
    public static func data(_ message: String) -> MQError { MQError(.dataError, message) }
    public static func corrupt(_ message: String) -> MQError { MQError(.dataError, message) }
    public static func config(_ message: String) -> MQError { MQError(.config, message) }
    public static func internalError(_ message: String) -> MQError { MQError(.software, message) }
}
