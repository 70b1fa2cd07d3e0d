// swift-tools-version:6.1
import PackageDescription

/// mq: a message log made of small Unix tools.
///
/// `MQLog` holds every piece of log logic; each `mq-*` executable is a thin
/// ArgumentParser front end over it (see `MQCommandSupport`).
let tools = ["mq-produce", "mq-tail", "mq-topic", "mq-consume", "mq-stat", "mq-bench", "mq-replay", "mq-dlq", "mq-compact", "mq-group"]

/// `mq-mirror` forwards topics to and from the engines users run; only it
/// links their client libraries (through `MQMirrorNATS` and `MQMirrorKafka`).
let mirror = "mq-mirror"

let package = Package(
    name: "mq",
    products: (tools + [mirror]).map { .executable(name: $0, targets: [$0]) } + [
        .library(name: "MQLog", targets: ["MQLog"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-system", from: "1.8.1"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CLZ4", pkgConfig: "liblz4", providers: [.apt(["liblz4-dev"])]),
        .systemLibrary(name: "CSnappy", pkgConfig: "snappy", providers: [.apt(["libsnappy-dev"])]),
        .systemLibrary(name: "CZstd", pkgConfig: "libzstd", providers: [.apt(["libzstd-dev"])]),
        .target(name: "CCRC32C", cSettings: [.unsafeFlags(["-O3"])]),
        .target(name: "CLinux"),
        .systemLibrary(name: "CNats", pkgConfig: "libnats", providers: [.apt(["libnats-dev"])]),
        .systemLibrary(name: "CRdKafka", pkgConfig: "rdkafka", providers: [.apt(["librdkafka-dev"])]),
        .target(
            name: "MQLog",
            dependencies: [
                "CZlib", "CLZ4", "CSnappy", "CZstd", "CCRC32C", "CLinux",
                .product(name: "SystemPackage", package: "swift-system"),
            ],
            swiftSettings: [
                // The hot paths touch ByteBuffer's stored properties per byte
                // run; run-time exclusivity checks cost ~40% of a read
                // (docs/BENCHMARKS.md). Debug builds, and so the tests, keep them.
                .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
            ]
        ),
        .target(
            name: "MQCommandSupport",
            dependencies: [
                "MQLog",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .target(
            name: "MQBench",
            dependencies: ["MQLog", .product(name: "Histogram", package: "hdrhistogram-swift")]
        ),
    ] + tools.map {
        .executableTarget(name: $0, dependencies: ["MQLog", "MQCommandSupport",
            .product(name: "ArgumentParser", package: "swift-argument-parser")] + ($0 == "mq-bench" ? ["MQBench"] : []))
    } + [
        .target(name: "MQMirrorNATS", dependencies: ["MQLog", "CNats"]),
        .target(name: "MQMirrorKafka", dependencies: ["MQLog", "CRdKafka"]),
        .executableTarget(name: mirror, dependencies: ["MQLog", "MQCommandSupport", "MQMirrorNATS", "MQMirrorKafka",
            .product(name: "ArgumentParser", package: "swift-argument-parser")]),
        .testTarget(name: "MQLogTests", dependencies: ["MQLog"], resources: [.copy("Fixtures")]),
    ]
)
