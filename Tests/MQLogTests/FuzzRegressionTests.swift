import Testing
import Glibc
@testable import MQLog

/// Every input the fuzzer ever crashed on (Fuzz/crashes) runs through the
/// same targets again and must now pass: decode or throw, never trap, and
/// every target's invariants hold (docs/TESTING.md, "When it finds a crash").
@Suite struct FuzzRegressionTests {
    static let crashes: [String] = {
        // Tests/MQLogTests/FuzzRegressionTests.swift -> the repository root.
        var root = "\(#filePath)"
        for _ in 0..<3 { root = FileSystem.dirname(of: root) }
        let dir = root + "/Fuzz/crashes"
        return ((try? FileSystem.list(dir)) ?? []).filter { !$0.hasSuffix(".md") }.sorted().map { dir + "/" + $0 }
    }()

    @Test func savedCrashesExist() {
        #expect(Self.crashes.count >= 7)
    }

    @Test(arguments: crashes)
    func savedCrashNoLongerCrashes(path: String) throws {
        let bytes = try FileSystem.readAll(path)
        bytes.withUnsafeBufferPointer { _ = runFuzzInput($0.baseAddress, $0.count) }
        // Twice: pooled codec contexts must be as good after a bad input as before.
        bytes.withUnsafeBufferPointer { _ = runFuzzInput($0.baseAddress, $0.count) }
    }
}
