import Glibc

/// The permission bits of what the tools create, and `MQ_UMASK`.
///
/// Invariants:
/// - Every file is created with `FileSystem.newFileMode` (0666) and every
///   directory with `FileSystem.newDirectoryMode` (0777), so the process
///   umask alone decides who else may read and write them, as open(2) and
///   mkdir(2) intend: umask 022 gives 0644/0755, umask 002 gives 0664/0775
///   (a log directory shared by a group).
/// - No tool changes the owner, group or mode of a file after creating it.
///   On a setgid directory the kernel gives each new entry the directory's
///   group, and each new subdirectory the setgid bit, so a file replaced by
///   rename (written under a temporary name in the same directory) keeps the
///   group too.
/// - `MQ_UMASK`, when set and not empty, replaces the process umask once,
///   when a tool starts (`applyEnvironment`), for the tool and the commands
///   it runs (handlers inherit the umask, as any child does).
public enum Umask {
    /// The environment variable read by `applyEnvironment`.
    public static let variable = "MQ_UMASK"

    /// Parses a umask written as umask(1) prints it: one to four octal
    /// digits, at most 0777 (`2`, `002`, `0027`).
    /// - Throws: `MQError` (usage) naming `MQ_UMASK` and what it expects.
    public static func parse(_ text: String) throws(MQError) -> mode_t {
        let digits = text.utf8
        guard (1...4).contains(digits.count), digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "7")).contains($0) }),
              let mask = mode_t(text, radix: 8), mask <= 0o777 else {
            throw MQError.usage("invalid \(variable) '\(text)': expected an octal umask such as 002 (the group may write) or 022 (only the owner writes)")
        }
        return mask
    }

    /// Sets the process umask from `MQ_UMASK` when it is set and not empty;
    /// otherwise leaves the umask inherited from the caller. Called once by
    /// every tool as it starts.
    /// - Throws: `MQError` (usage) when the value is not a umask.
    public static func applyEnvironment() throws {
        guard let text = environment(variable), !text.isEmpty else { return }
        set(try parse(text))
    }

    /// Replaces the process umask and returns the previous one. The C
    /// function is `umask`.
    @discardableResult
    public static func set(_ mask: mode_t) -> mode_t { umask(mask) }
}
