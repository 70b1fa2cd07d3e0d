import ArgumentParser
import MQCommandSupport
import MQLog

@main
struct MQTopic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-topic",
        abstract: "Create, list, describe, alter and delete topics.",
        discussion: "Config names are Kafka's topic configs (cleanup.policy, retention.ms, segment.bytes, ...), and mq's backlog bound (mq.max.backlog.messages, mq.max.backlog.bytes, mq.backlog.group, mq.backlog.policy). See mq-topic(1).",
        version: mqVersion,
        subcommands: [Create.self, List.self, Describe.self, Alter.self, Delete.self])

    static func main() { runMain("mq-topic") }

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a topic.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "The topic name: 1-249 of letters, digits, '.', '_', '-'.") var name: String
        @Option(name: .long, help: "Number of partitions, fixed for the topic's life.") var partitions: Int32 = 1
        @Option(name: .long, help: ArgumentHelp("Set a topic config (repeatable).", valueName: "name=value"), completion: LogCompletion.configAssignments) var config: [String] = []
        @Flag(name: .customLong("if-not-exists"), help: "Succeed without change when the topic exists.") var ifNotExists = false
        @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "Check the name and configs, say what would be created, create nothing.") var dryRun = false

        func run() throws {
            try runReportingErrors("mq-topic") {
                guard partitions >= 1 else { throw MQError.usage("invalid --partitions \(partitions): must be at least 1") }
                var topicConfig = TopicConfig(partitions: partitions)
                for c in config {
                    let (k, v) = try TopicConfig.parseAssignment(c)
                    if k == "partitions" { throw MQError.usage("set the partition count with --partitions") }
                    topicConfig.overrides[k] = v
                }
                let log = logOptions.log
                let created = try log.createTopic(name, config: topicConfig, dryRun: dryRun)
                if !created && !ifNotExists {
                    throw MQError(.cantCreate, "topic '\(name)' already exists (use --if-not-exists to accept that)")
                }
                if dryRun {
                    print(created ? "would create topic '\(name)':\n" + topicConfig.serialize() : "topic '\(name)' exists: nothing to create", terminator: created ? "" : "\n")
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List topics, one per line.")
        @OptionGroup var logOptions: LogOptions
        func run() throws {
            try runReportingErrors("mq-topic") {
                for name in try logOptions.log.listTopics() { print(name) }
            }
        }
    }

    struct Describe: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show topics' partitions, offsets, sizes and configs.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "Topics to describe (default: all).", completion: LogCompletion.topics) var names: [String] = []
        @Flag(name: [.customShort("J"), .long], help: "Print one JSON object per topic.") var json = false
        func run() throws {
            try runReportingErrors("mq-topic") {
                let log = logOptions.log
                for name in names.isEmpty ? try log.listTopics() : names {
                    let d = try TopicDescription.read(log, name)
                    print(json ? d.json() : d.text(), terminator: json ? "\n" : "")
                }
            }
        }
    }

    struct Alter: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change a topic's configs.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "The topic.", completion: LogCompletion.topics) var name: String
        @Option(name: .long, help: ArgumentHelp("Set a topic config (repeatable).", valueName: "name=value"), completion: LogCompletion.configAssignments) var config: [String] = []
        @Option(name: .customLong("delete-config"), help: ArgumentHelp("Return a config to its default (repeatable).", valueName: "name"), completion: LogCompletion.configNames) var deleteConfig: [String] = []
        @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "Check the changes, print the configs as they would be, change nothing.") var dryRun = false
        func validate() throws {
            if config.isEmpty && deleteConfig.isEmpty { throw ValidationError("nothing to change: give '--config' or '--delete-config'") }
        }
        func run() throws {
            try runReportingErrors("mq-topic") {
                let set = try config.map { c -> (String, String) in
                    if c.hasPrefix("partitions=") { throw MQError.config("the partition count of a topic is fixed at creation") }
                    return try TopicConfig.parseAssignment(c)
                }
                let config = try logOptions.log.alterTopic(name, set: set, remove: deleteConfig, dryRun: dryRun)
                if dryRun { print("would change topic '\(name)' to:\n" + config.serialize(), terminator: "") }
            }
        }
    }

    struct Delete: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Delete topics and all their messages.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "Topics to delete.", completion: LogCompletion.topics) var names: [String]
        @Flag(name: .long, help: "Delete even while a producer or reader has the topic open.") var force = false
        @Flag(name: [.customShort("n"), .customLong("dry-run")], help: "Make every check, say what would be deleted, delete nothing.") var dryRun = false
        func run() throws {
            try runReportingErrors("mq-topic") {
                for name in names {
                    let bytes = try logOptions.log.deleteTopic(name, force: force, dryRun: dryRun)
                    if dryRun { print("would delete topic '\(name)' (\(Sizes.format(bytes)))") }
                }
            }
        }
    }
}
