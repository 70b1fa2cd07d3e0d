import Testing
@testable import MQLog

/// `PublishChain` against a model of a JetStream stream's checks, in the
/// order nats-server makes them (stream.go, processJetStreamMsg): the
/// duplicate window first, then the expected last sequence, then the
/// expected last message id. The model loses messages of a burst the way a
/// leader change does (later ones still arrive), loses acknowledgements of
/// stored messages, delivers a lost message late, and forgets its last
/// message id (a restart past the duplicate window) or keeps a stale one (a
/// server that caught up from a snapshot).
@Suite struct PublishChainTests {
    final class ModelStream: ChainedStream {
        struct Stored { let id: String; let topic: String; let partition: Int32; let offset: Int64 }
        let name = "MODEL"
        var stored: [Stored] = []
        var window = Set<String>()
        var lastID = ""
        /// Indexes of the next burst lost on the way (not stored, not acknowledged).
        var lose: Set<Int> = []
        /// Indexes of the next burst stored whose acknowledgement is lost.
        var loseAck: Set<Int> = []
        /// Indexes of the next burst before which another publisher's message is stored.
        var interleave: Set<Int> = []
        /// Lost messages that arrive later: before or during the next burst.
        var late: [(StoredRecord, PublishChain.Link?)] = []
        var deliverLate = false
        var publishes = 0

        func messageID(of r: StoredRecord) -> String { "mq.\(r.topic).\(r.partition):\(r.offset)" }

        func lastMessage() throws -> (sequence: UInt64, ours: Bool?) {
            (UInt64(stored.count), stored.last.map { $0.topic != "other" })
        }

        func resumeOffset(topic: String, partition: Int32) throws -> Int64? {
            stored.last { $0.topic == topic && $0.partition == partition }.map { $0.offset + 1 }
        }

        /// One message as the server takes it: true when stored or a duplicate.
        @discardableResult
        func apply(_ r: StoredRecord, _ after: PublishChain.Link?) -> Bool {
            let id = messageID(of: r)
            if window.contains(id) { return true }
            switch after {
            case .sequence(let s) where s != UInt64(stored.count): return false
            case .messageID(let m) where m != lastID: return false
            default: break
            }
            stored.append(Stored(id: id, topic: r.topic, partition: r.partition, offset: r.offset))
            window.insert(id)
            lastID = id
            return true
        }

        func foreign() {
            stored.append(Stored(id: "x\(stored.count)", topic: "other", partition: 0, offset: 0))
            lastID = ""
        }

        func publish(_ records: ArraySlice<StoredRecord>, after: PublishChain.Link?) throws {
            publishes += 1
            let delayed = late
            late = []
            var failed = 0
            var previous = after
            for (i, r) in records.enumerated() {
                if deliverLate, i == records.count / 2 { for (m, link) in delayed { apply(m, link) } }
                defer { if after != nil { previous = .messageID(messageID(of: r)) } }
                if interleave.contains(i) { foreign() }
                if lose.contains(i) {
                    failed += 1
                    late.append((r, previous))
                    continue
                }
                if !apply(r, previous) || loseAck.contains(i) { failed += 1 }
            }
            if deliverLate, records.count < 2 { for (m, link) in delayed { apply(m, link) } }
            lose = []
            loseAck = []
            interleave = []
            if failed > 0 { throw MQError(.unavailable, "\(failed) of \(records.count) not acknowledged") }
        }

        /// Each partition's offsets in stream order.
        func offsets() -> [Int32: [Int64]] {
            var out: [Int32: [Int64]] = [:]
            for s in stored where s.topic == "t" { out[s.partition, default: []].append(s.offset) }
            return out
        }
    }

    /// Records of three partitions, interleaved as `PushMirror` collects them.
    static func chunks(count: Int, size: Int) -> [[StoredRecord]] {
        var next: [Int64] = [0, 0, 0]
        var all: [StoredRecord] = []
        for i in 0..<count {
            let p = Int32(i * 7 % 3)
            all.append(StoredRecord(topic: "t", partition: p, offset: next[Int(p)], timestamp: 0, value: [1]))
            next[Int(p)] += 1
        }
        return stride(from: 0, to: all.count, by: size).map { Array(all[$0..<min($0 + size, all.count)]) }
    }

    /// Sends every chunk until it is taken, as `PushMirror` does; `trouble`
    /// sets up the failures of each attempt.
    static func run(_ stream: ModelStream, chained: Bool, seed: UInt64,
                    trouble: (ModelStream, inout SplitMix64) -> Void) throws -> [[StoredRecord]] {
        var rng = SplitMix64(state: seed)
        var chain = PublishChain()
        let chunks = chunks(count: 600, size: 40)
        for chunk in chunks {
            var attempts = 0
            while true {
                attempts += 1
                #expect(attempts < 50, "a chunk is never taken")
                if attempts >= 50 { break }
                trouble(stream, &rng)
                do {
                    if chained { try chain.send(chunk, to: stream) } else { try stream.publish(chunk[...], after: nil) }
                    break
                } catch let e as MQError where e.status == .unavailable {
                    continue
                }
            }
        }
        return chunks
    }

    static func inOrderOnce(_ stream: ModelStream) -> Bool {
        stream.offsets().values.allSatisfy { $0 == Array(0..<Int64($0.count)) }
    }

    @Test func failuresInsideABurstKeepEachPartitionInOrderAndOnce() throws {
        for seed in UInt64(1)...40 {
            let stream = ModelStream()
            _ = try Self.run(stream, chained: true, seed: seed) { s, rng in
                switch rng.next() % 8 {
                case 0: s.lose = [Int(rng.next() % 40)]
                case 1: s.lose = [Int(rng.next() % 40), Int(rng.next() % 40)]; s.deliverLate = true
                case 2: s.loseAck = [Int(rng.next() % 40)]
                case 3: s.lastID = ""; s.window = []                   // restarted past the window
                case 4: s.lastID = s.stored.dropLast(3).last?.id ?? ""  // a stale last id
                case 5: s.window = []                                   // the window passed
                case 6: s.interleave = [Int(rng.next() % 40)]           // another publisher
                default: break
                }
            }
            let offsets = stream.offsets()
            #expect(Self.inOrderOnce(stream), "seed \(seed): \(offsets)")
            #expect(offsets.values.map(\.count).reduce(0, +) == 600, "seed \(seed)")
        }
    }

    /// The model shows the gap the chain closes: without it, a message lost
    /// in a burst is stored after later ones of its partition when resent.
    @Test func withoutTheChainAResendStoresAnEarlierRecordAfterALaterOne() throws {
        let stream = ModelStream()
        var first = true
        _ = try Self.run(stream, chained: false, seed: 1) { s, _ in
            if first { s.lose = [3] }
            first = false
        }
        #expect(!Self.inOrderOnce(stream))
    }

    @Test func aStoredMessageIsNotSentAgainAfterTheWindowPassed() throws {
        let stream = ModelStream()
        var chain = PublishChain()
        let chunk = Self.chunks(count: 10, size: 10)[0]
        stream.loseAck = [9]
        #expect(throws: MQError.self) { try chain.send(chunk, to: stream) }
        stream.window = []
        try chain.send(chunk, to: stream)
        #expect(stream.stored.count == 10)
        #expect(stream.publishes == 1, "everything was stored: nothing to send again")
    }

    @Test func anotherPublisherBreaksTheChainAndTheResendFollowsIt() throws {
        let stream = ModelStream()
        stream.foreign()                                   // before the mirror
        var chain = PublishChain()
        let chunks = Self.chunks(count: 20, size: 10)
        try chain.send(chunks[0], to: stream)
        #expect(chain.anchoredAt == 1)
        stream.foreign()
        #expect(throws: MQError.self) { try chain.send(chunks[1], to: stream) }  // the chain breaks
        try chain.send(chunks[1], to: stream)                                     // anchored after it
        #expect(chain.interruptions == 0)
        #expect(stream.stored.map(\.topic) == ["other"] + Array(repeating: "t", count: 10) + ["other"] + Array(repeating: "t", count: 10))
        #expect(Self.inOrderOnce(stream))
    }

    @Test func anotherPublisherBetweenEverySendIsReportedWith76() throws {
        let stream = ModelStream()
        var chain = PublishChain()
        let chunks = Self.chunks(count: 20, size: 10)
        try chain.send(chunks[0], to: stream)
        var error: MQError?
        for _ in 0..<(2 * PublishChain.interruptionLimit) {
            do {
                stream.interleave = [0]                    // just before each first message
                try chain.send(chunks[1], to: stream)
            } catch let e as MQError where e.status == .unavailable {
                continue
            } catch let e as MQError {
                error = e
                break
            }
        }
        #expect(error?.status == .protocolError)
        #expect(error?.description.contains("another publisher") == true && error?.description.contains("--shared-stream") == true)
        #expect(stream.offsets().values.map(\.count).reduce(0, +) == 10, "nothing of the second chunk was stored")
    }
}
