import ArgumentParser
import Glibc
import MQCommandSupport
import MQLog

@main
struct MQDlq: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mq-dlq",
        abstract: "List, show, redrive and purge dead letters.",
        discussion: """
            Dead letters are the messages mq-consume gave up on, in TOPIC.dlq with their failure headers. \
            A redrive writes them back to their original topic, each exactly once however often it is \
            interrupted and run again; a purge drops them from view. See mq-dlq(1).
            """,
        version: mqVersion,
        subcommands: [List.self, Show.self, Redrive.self, Purge.self])

    static func main() { runMain("mq-dlq") }

    /// Which dead letters a subcommand acts on.
    struct Filters: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("Only letters with this mq.dlq.reason (failed, permanent, timeout, expired).", valueName: "reason"), completion: LogCompletion.deadLetterReasons)
        var reason: String?
        @Option(name: .long, help: ArgumentHelp("Only letters whose handler exited with this status.", valueName: "n"))
        var status: Int32?
        @Option(name: .customLong("original-topic"), help: ArgumentHelp("Only letters that came from this topic.", valueName: "topic"))
        var originalTopic: String?
        @OptionGroup var message: FilterOptions
        @Option(name: .customLong("older-than"), help: ArgumentHelp("Only letters dead-lettered at least this long ago (a duration like 1h, or a time).", valueName: "age"))
        var olderThan: String?
        @Option(name: .customLong("newer-than"), help: ArgumentHelp("Only letters dead-lettered at most this long ago (a duration like 10m, or a time).", valueName: "age"))
        var newerThan: String?
        @Option(name: [.customShort("n"), .long], help: ArgumentHelp("At most this many letters.", valueName: "n"))
        var limit: Int?

        func validate() throws {
            if let limit, limit < 1 { throw ValidationError("invalid --limit \(limit): must be at least 1") }
        }

        func query(now: Int64) throws -> DeadLetterQuery {
            var q = DeadLetterQuery()
            q.reason = reason
            q.exitStatus = status
            q.originalTopic = originalTopic
            q.message = try message.filter()
            q.olderThanMs = try olderThan.map { try Filters.age($0, flag: "--older-than", now: now) }
            q.newerThanMs = try newerThan.map { try Filters.age($0, flag: "--newer-than", now: now) }
            q.limit = limit
            return q
        }

        /// A duration (`1h`), or a time (`2026-11-21T08:00Z`, `-2h`) turned into the age it means now.
        static func age(_ text: String, flag: String, now: Int64) throws -> Int64 {
            if let ms = try? Durations.parseDuration(text) { return ms }
            if let t = try? TimeSpec.parseTime(text, nowMs: now) { return max(0, now - t) }
            throw MQError.usage("invalid \(flag) '\(text)': expected a duration like 30m, 2h or 7d, or a time like 2026-11-21T08:00:00Z")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Count the dead letters not yet redriven or purged, per topic.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "Dead-letter topics (default: every topic whose name ends in .dlq).", completion: LogCompletion.deadLetterTopics) var topics: [String] = []
        @Flag(name: [.customShort("J"), .long], help: "Print one JSON object per topic.") var json = false

        func run() throws {
            try runReportingErrors("mq-dlq") {
                let log = logOptions.log
                let now = currentTimeMillis()
                let summaries = try DeadLetters.summarize(log, topics: try DeadLetters.topics(log, explicit: topics), now: now)
                print(json ? DeadLetters.listJSON(summaries, now: now) : DeadLetters.listText(summaries, now: now), terminator: "")
            }
        }
    }

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print dead letters with their failure headers.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "The dead-letter topic.", completion: LogCompletion.deadLetterTopics) var topic: String
        @OptionGroup var filters: Filters
        @Flag(name: .long, help: "Also letters already redriven or purged.") var all = false
        @Flag(name: [.customShort("J"), .long], help: "Print one JSON envelope per letter, as mq-tail --json.") var json = false

        func run() throws {
            try runReportingErrors("mq-dlq") {
                let log = logOptions.log
                let now = currentTimeMillis()
                var query = try filters.query(now: now)
                query.includeSettled = all
                let settled = try DeadLetters.savedSettled(log, topic: topic)
                let printer = RecordPrinter(mode: .json, fd: 1)
                let text = GrowableBytes(capacity: 1 << 16)
                try DeadLetters.scan(log, topic: topic, query: query, now: now, settled: settled) { r, letter in
                    if json {
                        try printer.print(r, topic: letter.topic, partition: letter.partition)
                    } else {
                        text.append(DeadLetters.block(letter, now: now, settled: settled(TopicPartition(letter.topic, letter.partition), letter.offset)))
                        if text.count > 1 << 16 { try flush(text) }
                    }
                    return true
                }
                try printer.flush()
                try flush(text)
            }
        }

        private func flush(_ text: GrowableBytes) throws {
            defer { text.count = 0 }
            do {
                try writeAll(1, text.bytes, what: "standard output")
            } catch {
                throw MQError.outputClosedOrSelf(error)
            }
        }
    }

    struct Redrive: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move dead letters back to their original topic, each exactly once.",
            discussion: "Interrupted (even by kill -9) and run again, a redrive moves only what the first run did not.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "The dead-letter topic.", completion: LogCompletion.deadLetterTopics) var topic: String
        @OptionGroup var filters: Filters
        @Option(name: .long, help: ArgumentHelp("Send the letters to this topic instead of their original ones.", valueName: "topic"), completion: LogCompletion.topics)
        var into: String?
        /// The name `--into` had before the tools shared one vocabulary (`--to` is the end of a range in mq-replay).
        @Option(name: .customLong("to"), help: .hidden)
        var deprecatedTo: String?
        @Option(name: .long, help: ArgumentHelp("Move at most this many letters a second: N, N/s, N/m or N/h.", valueName: "rate"))
        var rate: String?
        @Flag(name: .customLong("no-wait"), help: "Fail with status 75 instead of waiting when another redrive or purge of the topic runs.")
        var noWait = false
        @Flag(name: .customLong("dry-run"), help: "List what would move, and move nothing.")
        var dryRun = false
        @Flag(name: [.customShort("q"), .long], help: "Print no progress and no summary line.")
        var quiet = false

        func validate() throws {
            if into != nil && deprecatedTo != nil { throw ValidationError("'--to' is the old name of '--into': give one of them") }
        }

        func run() throws {
            if deprecatedTo != nil { printError("mq-dlq", "'redrive --to' is deprecated and will be removed: use '--into'") }
            try runReportingErrors("mq-dlq") {
                var options = RedriveOptions(topic: topic)
                options.query = try filters.query(now: currentTimeMillis())
                options.destination = into ?? deprecatedTo
                options.ratePerSecond = try rate.map { r in try usageValue { try RateLimiter.parse(r) } }
                options.wait = !noWait
                options.dryRun = dryRun
                let redriver = Redriver(options: options, log: logOptions.log)
                let terminal = isatty(2) != 0
                var shown = false
                if terminal && !dryRun && !quiet {
                    redriver.progress = { n in
                        printRaw("\rmq-dlq: moved \(n)…")
                        shown = true
                    }
                }
                redriver.dryRunLine = { print($0) }
                let summary: RedriveSummary
                do {
                    summary = try redriver.run()
                } catch {
                    if shown { printRaw("\n") }
                    throw error
                }
                if shown { printRaw("\r\u{1b}[K") }
                let n = summary.moved
                var line = dryRun ? "would move \(n) dead letter\(n == 1 ? "" : "s") from \(topic)" : "moved \(n) dead letter\(n == 1 ? "" : "s") from \(topic)"
                line += ", \(summary.alreadySettled) skipped as already redriven or purged"
                if summary.noOriginal > 0 { line += ", \(summary.noOriginal) left without mq.original.topic (use --into)" }
                if !quiet { printError("mq-dlq", line) }
            }
        }
    }

    struct Purge: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Drop dead letters from view without moving them.",
            discussion: "At a terminal it asks first, unless --yes; elsewhere it goes ahead.")
        @OptionGroup var logOptions: LogOptions
        @Argument(help: "The dead-letter topic.", completion: LogCompletion.deadLetterTopics) var topic: String
        @OptionGroup var filters: Filters
        @Flag(name: [.customShort("y"), .long], help: "Do not ask for confirmation.") var yes = false
        @Flag(name: .customLong("no-wait"), help: "Fail with status 75 instead of waiting when another redrive or purge of the topic runs.")
        var noWait = false
        @Flag(name: .customLong("dry-run"), help: "List what would be purged, and purge nothing.")
        var dryRun = false
        @Flag(name: [.customShort("q"), .long], help: "Print no summary line.")
        var quiet = false

        func run() throws {
            try runReportingErrors("mq-dlq") {
                if dryRun {
                    let n = try DeadLetterPurge.plan(logOptions.log, topic: topic, query: try filters.query(now: currentTimeMillis())) { print($0) }
                    if !quiet { printError("mq-dlq", "would purge \(n) dead letter\(n == 1 ? "" : "s") from \(topic)") }
                    return
                }
                let ask = !yes && isatty(0) != 0 && isatty(2) != 0
                let purged = try DeadLetterPurge.run(logOptions.log, topic: topic, query: try filters.query(now: currentTimeMillis()),
                                                     wait: !noWait) { n in
                    guard ask else { return true }
                    printRaw("purge \(n) dead letter\(n == 1 ? "" : "s") from \(topic)? [y/N] ")
                    let answer = (readLine() ?? "").filter { !$0.isWhitespace }.lowercased()
                    return answer == "y" || answer == "yes"
                }
                if quiet { return }
                if let purged {
                    printError("mq-dlq", "purged \(purged) dead letter\(purged == 1 ? "" : "s") from \(topic)")
                } else {
                    printError("mq-dlq", "nothing purged")
                }
            }
        }
    }
}
