import Testing
import Glibc
@testable import MQLog

/// mq-produce's input framing, apart from what is done with the messages.
@Suite struct InputFramerTests {
    struct Frame: Equatable {
        var bytes: [UInt8]
        var number: Int
    }

    /// Frames `input` (read from a file) and returns the messages and the
    /// numbers reported as oversized.
    private func frame(_ input: [UInt8], _ framing: InputFraming, max: Int = 1 << 20,
                       requireFinalDelimiter: Bool = false) throws -> (frames: [Frame], oversized: [Int]) {
        let root = makeTempDirectory()
        defer { try? FileSystem.removeTree(root) }
        let path = root + "/input"
        try FileSystem.writeAtomically(path, input)
        let fd = open(path, O_RDONLY)
        #expect(fd >= 0)
        defer { close(fd) }
        let framer = InputFramer(fd: fd, framing: framing, maxMessageBytes: max, requireFinalDelimiter: requireFinalDelimiter)
        var frames: [Frame] = []
        var oversized: [Int] = []
        try framer.forEach({ bytes, number, _ in
            frames.append(Frame(bytes: Array(bytes), number: number))
        }, oversized: { oversized.append($0) })
        return (frames, oversized)
    }

    private func frames(_ texts: [String]) -> [Frame] {
        texts.enumerated().map { Frame(bytes: Array($1.utf8), number: $0 + 1) }
    }

    @Test func linesAreNumberedAndALastLineWithoutNewlineCounts() throws {
        let got = try frame(Array("a\nbb\n\nccc".utf8), .delimited([10]))
        #expect(got.frames == frames(["a", "bb", "", "ccc"]))
        #expect(try frame(Array("a\n".utf8), .delimited([10])).frames == frames(["a"]))
        #expect(try frame([], .delimited([10])).frames == [])
    }

    @Test func aDelimiterSplitAcrossReadsIsFound() throws {
        // A two-byte delimiter whose bytes straddle the first read's end.
        let first = String(repeating: "x", count: InputFramer.readSize - 1)
        let got = try frame(Array((first + "||second||third").utf8), .delimited(Array("||".utf8)))
        #expect(got.frames == frames([first, "second", "third"]))
    }

    @Test func anOversizedMessageIsReportedAndSkippedWithoutBufferingIt() throws {
        let long = String(repeating: "y", count: 3 * InputFramer.readSize)
        let got = try frame(Array("short\n\(long)\nok\n".utf8), .delimited([10]), max: 100)
        #expect(got.oversized == [2])
        #expect(got.frames == [Frame(bytes: Array("short".utf8), number: 1), Frame(bytes: Array("ok".utf8), number: 3)])
    }

    @Test func anOversizedReportThatThrowsStopsReading() throws {
        struct Stop: Error {}
        let root = makeTempDirectory()
        defer { try? FileSystem.removeTree(root) }
        // Over the limit before its delimiter is read (a complete message
        // over the limit is the caller's to check, with its record overhead).
        try FileSystem.writeAtomically(root + "/in", Array(("a\n" + String(repeating: "z", count: 2 * InputFramer.readSize) + "\nb\n").utf8))
        let fd = open(root + "/in", O_RDONLY)
        defer { close(fd) }
        var seen: [Int] = []
        #expect(throws: Stop.self) {
            try InputFramer(fd: fd, framing: .delimited([10]), maxMessageBytes: 100).forEach({ _, n, _ in seen.append(n) },
                                                                                             oversized: { _ in throw Stop() })
        }
        #expect(seen == [1])
    }

    @Test func aCutOffLastMessageIsAnErrorWhenAFinalDelimiterIsRequired() throws {
        #expect(throws: MQError.self) {
            _ = try frame(Array("a\nb".utf8), .delimited([10]), requireFinalDelimiter: true)
        }
        do {
            _ = try frame(Array("a\nb".utf8), .delimited([10]), requireFinalDelimiter: true)
        } catch let error as MQError {
            #expect(error.status == .dataError)
            #expect(error.description.contains("line 2"))
        }
        #expect(try frame(Array("a\nb\n".utf8), .delimited([10]), requireFinalDelimiter: true).frames == frames(["a", "b"]))
    }

    @Test func nulDelimitedRecordsAreCalledRecords() throws {
        let got = try frame([65, 0, 66, 0], .delimited([0]))
        #expect(got.frames == frames(["A", "B"]))
        #expect(InputFramer.unitName(.delimited([0])) == "record")
        #expect(InputFramer.unitName(.json) == "line")
    }

    @Test func wholeInputIsOneMessageWithinTheLimit() throws {
        let text = "line one\nline two\n"
        #expect(try frame(Array(text.utf8), .whole).frames == frames([text]))
        #expect(throws: MQError.self) { _ = try frame(Array(text.utf8), .whole, max: 5) }
    }
}
