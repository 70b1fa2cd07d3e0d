import ArgumentParser
import Glibc
import MQBench
import MQCommandSupport
import MQLog

@main
struct MQBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-bench",
        abstract: "Measure mq's own tools: produce, consume, end-to-end latency, work queues, cost against partitions, mirroring to NATS.",
        discussion: "Runs the real mq-* tools (found beside mq-bench, or in $MQ_BIN) on generated data in a temporary log directory, removed afterwards; mirror also starts a nats-server from PATH. See mq-bench(1).",
        version: mqVersion)

    static func main() { runMain("mq-bench") }

    @Argument(help: ArgumentHelp("Scenarios to run: produce, consume, e2e, queue, compact, partitions, mirror (default: produce consume e2e).", valueName: "scenario"))
    var scenarios: [String] = []

    @Option(name: .long, help: ArgumentHelp("Run in a directory made inside DIR instead of a temporary one.", valueName: "dir"))
    var dir: String?
    @Option(name: [.customShort("n"), .long], help: "Messages per scenario (e2e: default 5000).")
    var messages: Int?
    @Option(name: [.customShort("s"), .long], help: "Bytes per message, newline included.")
    var size: Int = 100
    @Option(name: .long, help: "produce: producer processes.")
    var producers: Int = 1
    @Option(name: .long, help: ArgumentHelp("Partitions of the benchmark topic; a comma-separated list runs each scenario once per count (partitions: default 1,10,100,1000).", valueName: "n[,n...]"))
    var partitions: String?
    @Option(name: [.customShort("z"), .long], help: "Compression codec for producers (default: none).")
    var compression: CompressionCodec?
    @Option(name: .long, help: "Producers' --sync policy: exit, batch or none.")
    var sync: SyncPolicy = .exit
    @Option(name: .customLong("batch-bytes"), help: ArgumentHelp("Producers' --batch-bytes.", valueName: "size"))
    var batchBytes: String?
    @Flag(name: .long, help: "consume: read with mq-tail instead of a consumer group.")
    var plain = false
    @Option(name: .long, help: ArgumentHelp("e2e: messages a second: N, N/s, N/m or N/h.", valueName: "rate"))
    var rate: String = "1000/s"
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
        if let partitions, Bench.parsePartitionCounts(partitions) == nil {
            throw ValidationError("'--partitions' must be a count or a comma-separated list of counts, each from 1 to \(TopicConfig.maximumPartitions)")
        }
        if csv && scenarios.contains("partitions") && scenarios.contains(where: { $0 != "partitions" }) {
            throw ValidationError("'--csv' prints the 'partitions' scenario alone")
        }
        _ = try usageValue { try RateLimiter.parse(rate) }
        if size < 2 || producers < 1 || workers < 1 || handlerBatch < 1 || keys < 1 {
            throw ValidationError("'--size' must be at least 2, and counts at least 1")
        }
    }

    func run() throws {
        try runReportingErrors("mq-bench") {
            var options = BenchOptions(binDirectory: toolDirectory())
            options.size = size
            options.producers = producers
            options.codec = (compression ?? .none).name
            options.sync = sync.rawValue
            options.batchBytes = batchBytes
            options.group = !plain
            options.rate = try usageValue { try RateLimiter.parse(rate) }
            options.workers = workers
            options.handlerBatch = handlerBatch
            options.keys = keys
            options.directory = dir
            options.progress = isatty(2) != 0
            if scenarios.contains("mirror") && Bench.natsServerPath() == nil {
                throw MQError(.unavailable, Bench.natsServerMissing)
            }
            let counts = partitions.flatMap(Bench.parsePartitionCounts)
            var results: [BenchResult] = [], scaling: [PartitionScalingRow] = []
            for scenario in scenarios.isEmpty ? ["produce", "consume", "e2e"] : scenarios {
                options.messages = messages ?? (scenario == "e2e" ? 5000 : (scenario == "queue" ? 100_000 : 1_000_000))
                if scenario == "partitions" {
                    scaling = try Bench(options: options).runPartitions(counts ?? Bench.defaultPartitionCounts)
                    if json { for row in scaling { print(BenchReport.partitionsJSON(row, rows: scaling)) } }
                    continue
                }
                for count in counts ?? [1] {
                    options.partitions = count
                    var result = try Bench(options: options).run(scenario)
                    if (counts?.count ?? 1) > 1 { result.scenario += ", \(count) partition" + (count == 1 ? "" : "s") }
                    results.append(result)
                    if json { print(BenchReport.json(result)) }
                }
            }
            if csv { print(scaling.isEmpty ? BenchReport.csv(results) : BenchReport.partitionsCSV(scaling), terminator: "") }
            if !json && !csv {
                if !results.isEmpty { print(BenchReport.table(results), terminator: "") }
                if !scaling.isEmpty { print((results.isEmpty ? "" : "\n") + BenchReport.partitionsTable(scaling), terminator: "") }
            }
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
