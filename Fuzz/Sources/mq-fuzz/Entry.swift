// libFuzzer entry point of mq's fuzz target (docs/TESTING.md). The targets
// themselves are in Tests/MQLogTests/FuzzTargets (Sources/MQFuzzTargets here
// is a link to it), so that `swift test` replays the saved crashes too.

import MQFuzzTargets

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    runFuzzInput(data, size)
}
