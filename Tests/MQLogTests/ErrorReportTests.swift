import Glibc
import Testing
@testable import MQLog

@Suite struct ErrorReportTests {
    struct Unexpected: Error {}

    @Test func everyKindOfErrorHasOneStatus() {
        #expect(ErrorReport.classify(OutputClosed()).status == .ok)
        #expect(ErrorReport.classify(OutputClosed()).message == nil)
        let e = MQError(.tempFail, "busy", cause: .resourceTemporarilyUnavailable)
        #expect(ErrorReport.classify(e).status == .tempFail)
        #expect(ErrorReport.classify(e).message == e.description)
        #expect(ErrorReport.classify(BatchProblem.badMagic(1)).status == .dataError)
        let unknown = ErrorReport.classify(Unexpected())
        #expect(unknown.status == .software)
        #expect(unknown.message?.contains("internal error") == true)
    }

    @Test func aClosedPipeIsItsOwnCase() {
        let pipe = MQError.system("cannot write", path: "standard output", .brokenPipe)
        #expect(MQError.outputClosedOrSelf(pipe) is OutputClosed)
        let full = MQError.system("cannot write", path: "standard output", .noSpace)
        #expect((MQError.outputClosedOrSelf(full) as? MQError)?.status == .ioError)
    }

    @Test func spawnFailuresMapToDocumentedStatuses() {
        #expect(SpawnFailure.status(ENOENT) == .noInput)
        #expect(SpawnFailure.status(EACCES) == .noPermission)
        #expect(SpawnFailure.status(ENOEXEC) == .osError)
        #expect(SpawnFailure.status(EAGAIN) == .osError)
    }
}
