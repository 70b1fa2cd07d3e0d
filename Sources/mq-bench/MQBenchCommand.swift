import ArgumentParser
import Glibc
import MQBench
import MQCommandSupport
import MQLog

@main
struct MQBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-bench",
        abstract: "Measure mq's own tools: produce, consume, end-to-end latency, work queues.",
        discussion: "Runs the real mq-* tools (found beside mq-bench, or in $MQ_BIN) on generated data in a temporary log directory, removed afterwards. See mq-bench(1).",
        version: mqVersion)

    static func main() { runMain("mq-bench") }

    @Argument(help: ArgumentHelp("Scenarios to run: produce, consume, e2e, queue, compact (default: produce consume e2e).", valueName: "scenario"))
    var scenarios: [String] = []

    @Option(name: .long, help: ArgumentHelp("Run in a directory made inside DIR instead of a temporary one.", valueName: "dir"))
    var dir: String?
    @Option(name: [.customShort("n"), .long], help: "Messages per scenario (e2e: default 5000).")
    var messages: Int?
    @Option(name: [.customShort("s"), .long], help: "Bytes per message, newline included.")
    var size: Int = 100
    @Option(name: .long, help: "produce: producer processes.")
    var producers: Int = 1
    @Option(name: .long, help: "Partitions of the benchmark topic.")
    var partitions: Int = 1
    @Option(name: [.customShort("z"), .long], help: "Compression codec for producers.")
    var compression: CompressionCodec = .none
    @Option(name: .long, help: "Producers' --sync policy: exit, batch or none.")
    var sync: SyncPolicy = .exit
    @Option(name: .customLong("batch-bytes"), help: ArgumentHelp("Producers' --batch-bytes.", valueName: "size"))
    var batchBytes: String?
    @Flag(name: .long, help: "consume: read with mq-tail instead of a consumer group.")
    var plain = false
    @Option(name: .long, help: "e2e: messages per second.")
    var rate: Int = 1000
    @Option(name: .long, help: "queue: worker processes.")
    var workers: Int = 4
    @Option(name: .customLong("handler-batch"), help: "queue: messages per handler run (1: one run of 'true' per message).")
    var handlerBatch: Int = 1000
    @Option(name: .long, help: "compact: distinct keys the messages cycle through.")
    var keys: Int = 1000
    @Flag(name: [.customShort("J"), .long], help: "Print one JSON object per scenario.")
    var json = false
    @Flag(name: .long, help: "Print CSV with a header line.")
    var csv = false

    func validate() throws {
        if json && csv { throw ValidationError("'--json' and '--csv' are mutually exclusive") }
        for s in scenarios where !Bench.scenarios.contains(s) {
            throw ValidationError("unknown scenario '\(s)' (scenarios: \(Bench.scenarios.joined(separator: ", ")))")
        }
        if let messages, messages < 1 { throw ValidationError("'--messages' must be at least 1") }
        if size < 2 || producers < 1 || partitions < 1 || rate < 1 || workers < 1 || handlerBatch < 1 || keys < 1 {
            throw ValidationError("'--size' must be at least 2, and counts at least 1")
        }
    }

    func run() throws {
        try runReportingErrors("mq-bench") {
            var options = BenchOptions(binDirectory: toolDirectory())
            options.size = size
            options.producers = producers
            options.partitions = partitions
            options.codec = compression.name
            options.sync = sync.rawValue
            options.batchBytes = batchBytes
            options.group = !plain
            options.rate = rate
            options.workers = workers
            options.handlerBatch = handlerBatch
            options.keys = keys
            options.directory = dir
            options.progress = isatty(2) != 0
            var results: [BenchResult] = []
            for scenario in scenarios.isEmpty ? ["produce", "consume", "e2e"] : scenarios {
                options.messages = messages ?? (scenario == "e2e" ? 5000 : (scenario == "queue" ? 100_000 : 1_000_000))
                let result = try Bench(options: options).run(scenario)
                results.append(result)
                if json { print(BenchReport.json(result)) }
            }
            if csv { print(BenchReport.csv(results), terminator: "") }
            if !json && !csv { print(BenchReport.table(results), terminator: "") }
        }
    }

    /// $MQ_BIN, else the directory mq-bench itself was run from.
    func toolDirectory() -> String {
        if let v = environment("MQ_BIN") { return v }
        var buffer = [CChar](repeating: 0, count: 4096)
        let n = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buffer[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return FileSystem.dirname(of: path)
    }
}
