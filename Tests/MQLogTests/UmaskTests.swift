import Glibc
import Testing
@testable import MQLog

@Suite struct UmaskTests {
    @Test(arguments: [("2", 0o002), ("002", 0o002), ("0002", 0o002), ("022", 0o022), ("0027", 0o027),
                      ("0", 0), ("777", 0o777), ("0777", 0o777)] as [(String, mode_t)])
    func parses(_ text: String, _ mask: mode_t) throws {
        #expect(try Umask.parse(text) == mask)
    }

    @Test(arguments: ["", "8", "0008", "1000", "00002", "u=rwx", "0x12", " 002", "002 ", "-2", "+2"])
    func rejects(_ text: String) {
        do {
            _ = try Umask.parse(text)
            Issue.record("accepted '\(text)'")
        } catch {
            #expect(error.status == .usage)
            #expect(error.message == "invalid MQ_UMASK '\(text)': expected an octal umask such as 002 (the group may write) or 022 (only the owner writes)")
        }
    }

    /// What open(2) and mkdir(2) leave of the modes the tools create with,
    /// under two umasks: the umask alone decides.
    @Test func newFilesAndDirectoriesFollowTheUmask() throws {
        let dir = makeTempDirectory()
        defer { try? FileSystem.removeTree(dir) }
        let saved = Umask.set(0o022)
        defer { Umask.set(saved) }
        for (mask, file, directory) in [(mode_t(0o022), mode_t(0o644), mode_t(0o755)), (0o002, 0o664, 0o775), (0o077, 0o600, 0o700)] {
            Umask.set(mask)
            let path = dir + "/f\(mask)"
            try OpenFile.open(path, O_RDWR | O_CREAT, creating: true).close()
            try FileSystem.makeDirectory(dir + "/d\(mask)")
            try FileSystem.writeAtomically(dir + "/w\(mask)", [1])
            #expect(permissions(path) == file)
            #expect(permissions(dir + "/w\(mask)") == file)
            #expect(permissions(dir + "/d\(mask)") == directory)
        }
    }

    private func permissions(_ path: String) -> mode_t {
        var st = stat()
        guard stat(path, &st) == 0 else { return 0o7777 }
        return st.st_mode & 0o7777
    }
}
