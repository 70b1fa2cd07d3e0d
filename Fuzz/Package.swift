// swift-tools-version:6.1
import PackageDescription

/// mq's libFuzzer target, kept out of the root package so that `swift build`
/// and `swift test` there neither build nor wait for it. Build it with the
/// sanitizers applied to every target (`make fuzz`, or see docs/TESTING.md):
///
///   swift build -c release --package-path Fuzz \
///       -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -enable-testing
///
/// `-enable-testing` lets the harness reach MQLog's internal decoders with
/// `@testable import`, so MQLog needs no public entry points for fuzzing.
let package = Package(
    name: "mq-fuzz",
    dependencies: [
        .package(name: "mq", path: ".."),
    ],
    targets: [
        .executableTarget(name: "mq-fuzz", dependencies: ["CFuzzMain", "MQFuzzTargets"]),
        // The targets: a link to Tests/MQLogTests/FuzzTargets, which `swift test`
        // in the root package also compiles, to replay Fuzz/crashes.
        .target(name: "MQFuzzTargets", dependencies: [.product(name: "MQLog", package: "mq")]),
        // The entry point: hands over to libFuzzer's driver.
        .target(name: "CFuzzMain"),
    ]
)
