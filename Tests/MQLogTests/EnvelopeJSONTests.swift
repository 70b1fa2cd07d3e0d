import Foundation
import Testing
@testable import MQLog


private func withOptional<R>(_ a: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
    guard let a else { return body(nil) }
    return a.withUnsafeBytes { body($0) }
}

/// Writes one envelope for headers given as (name bytes, value bytes).
private func writeBytes(topic: String = "t", partition: Int32 = 0, offset: Int64 = 5, timestamp: Int64 = 1_700_000_000_000,
                        key: [UInt8]?, value: [UInt8]?, headers: [([UInt8], [UInt8]?)] = [], into out: GrowableBytes = GrowableBytes()) -> [UInt8] {
    var views: [HeaderView] = []
    func build(_ i: Int) {
        if i == headers.count {
            withOptional(key) { k in
                withOptional(value) { v in
                    EnvelopeJSON.append(topic: topic, partition: partition, offset: offset, timestamp: timestamp,
                                        key: k, value: v, headers: views, to: out)
                }
            }
            return
        }
        headers[i].0.withUnsafeBytes { n in
            withOptional(headers[i].1) { v in
                views.append(HeaderView(name: n, value: v))
                build(i + 1)
                views.removeLast()
            }
        }
    }
    build(0)
    return out.array
}

private func write(topic: String = "t", partition: Int32 = 0, offset: Int64 = 5, timestamp: Int64 = 1_700_000_000_000,
                   key: [UInt8]?, value: [UInt8]?, headers: [([UInt8], [UInt8]?)] = []) -> String {
    String(decoding: writeBytes(topic: topic, partition: partition, offset: offset, timestamp: timestamp,
                                key: key, value: value, headers: headers), as: UTF8.self)
}

private func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

private func parse(_ line: String) throws(EnvelopeError) -> Message { try EnvelopeJSON.parse(line) }

private func parse(_ line: [UInt8]) throws(EnvelopeError) -> Message {
    let result = line.withUnsafeBytes { p in Result { () throws(EnvelopeError) in try EnvelopeJSON.parse(p) } }
    return try result.get()
}

private func failure(_ line: String) -> EnvelopeError? {
    do {
        _ = try parse(line)
        return nil
    } catch {
        return error
    }
}

@Suite struct EnvelopeJSONWriterTests {
    @Test func writesFieldsInOrder() {
        let line = write(key: nil, value: bytes("hi"), headers: [(bytes("h"), bytes("v")), (bytes("n"), nil)])
        #expect(line == #"{"topic":"t","partition":0,"offset":5,"timestamp":1700000000000,"key":null,"value":"hi","headers":[["h","v"],["n",null]]}"#)
    }

    @Test func emptyAndNull() {
        #expect(write(key: [], value: nil) == #"{"topic":"t","partition":0,"offset":5,"timestamp":1700000000000,"key":"","value":null,"headers":[]}"#)
    }

    @Test func numbersAtTheirLimits() {
        let line = write(partition: Int32.max, offset: Int64.max, timestamp: Int64.min, key: nil, value: nil)
        #expect(line.hasPrefix(#"{"topic":"t","partition":2147483647,"offset":9223372036854775807,"timestamp":-9223372036854775808,"#))
        #expect(write(partition: -1, offset: 0, timestamp: -1, key: nil, value: nil).hasPrefix(#"{"topic":"t","partition":-1,"offset":0,"timestamp":-1,"#))
    }

    @Test func escapesOnlyWhatJSONRequires() {
        let value = bytes("\"\\/\n\t\r\u{08}\u{0C}\u{01}\u{1F}\u{7F} é€😀")
        let line = write(key: nil, value: value)
        #expect(line.contains(#""value":"\"\\/\n\t\r\b\f\u0001\u001f"# + "\u{7F} é€😀\","))
    }

    @Test func escapesAcrossTheFastPathBoundaries() {
        for position in 0..<20 {
            var value = [UInt8](repeating: UInt8(ascii: "a"), count: 20)
            value[position] = UInt8(ascii: "\"")
            let expected = String(repeating: "a", count: position) + "\\\"" + String(repeating: "a", count: 19 - position)
            #expect(write(key: nil, value: value).contains("\"value\":\"\(expected)\""))
        }
    }

    @Test func binaryIsBase64() {
        #expect(write(key: [0xFF, 0x00], value: [0x80]).contains(#""key":{"base64":"/wA="},"value":{"base64":"gA=="}"#))
        // Invalid UTF-8 after text that was already escaped: the partial string is dropped.
        let value = bytes("0123456789\n\"abcdefgh") + [0xC3]
        let line = write(key: nil, value: value)
        #expect(line.contains(#""value":{"base64":""# + Base64.encode(value) + #""},"headers""#))
        // Surrogates and overlongs are not UTF-8.
        #expect(write(key: nil, value: [0xED, 0xA0, 0x80]).contains(#""value":{"base64":"7aCA"}"#))
        #expect(write(key: nil, value: [0xC0, 0xAF]).contains(#""value":{"base64":"wK8="}"#))
    }

    @Test func headerNamesAreAlwaysStrings() {
        let line = write(key: nil, value: nil, headers: [([0x61, 0xFF, 0x62], [0xFF]), ([0xE2, 0x82], bytes("ok")), ([], [])])
        #expect(line.hasSuffix(#""headers":[["a"# + "\u{FFFD}" + #"b",{"base64":"/w=="}],[""# + "\u{FFFD}" + #"","ok"],["",""]]}"#))
    }

    @Test func appendsWithoutNewline() {
        let out = GrowableBytes()
        out.append("> ")
        let written = writeBytes(key: nil, value: bytes("x"), into: out)
        #expect(written.starts(with: bytes("> {\"topic\"")))
        #expect(written.last == UInt8(ascii: "}"))
    }

    @Test func topicIsEscaped() {
        #expect(write(topic: "a\"b", key: nil, value: nil).hasPrefix(#"{"topic":"a\"b","#))
    }

    /// Foundation's JSON reader reads what we write back to the same strings.
    @Test func outputIsJSONThatFoundationReads() throws {
        var rng = SplitMix64(state: 0xF00D)
        for _ in 0..<300 {
            let text = randomText(&rng, maxScalars: 30)
            let line = write(key: Array(text.utf8), value: Array(text.utf8), headers: [(Array(text.utf8), Array(text.utf8))])
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(object["value"] as? String == text)
            #expect(object["key"] as? String == text)
            let headers = try #require(object["headers"] as? [[Any]])
            #expect(headers.first?.first as? String == text)
        }
    }
}

private func randomText(_ rng: inout SplitMix64, maxScalars: Int) -> String {
    var s = String.UnicodeScalarView()
    for _ in 0..<Int.random(in: 0...maxScalars, using: &rng) {
        let range: ClosedRange<UInt32>
        switch Int.random(in: 0..<6, using: &rng) {
        case 0: range = 0...0x1F
        case 1: range = 0x80...0x7FF
        case 2: range = 0x800...0xFFFF
        case 3: range = 0x10000...0x10FFFF
        default: range = 0x20...0x7F
        }
        if let scalar = Unicode.Scalar(UInt32.random(in: range, using: &rng)) { s.append(scalar) }
    }
    return String(s)
}

@Suite struct EnvelopeJSONParserTests {
    @Test func minimal() throws {
        let m = try parse(#"{"value":"hello"}"#)
        #expect(m == Message(key: nil, value: bytes("hello"), headers: [], partition: nil, timestamp: nil))
        #expect(try parse("{}") == Message(value: nil))
        #expect(try parse(" \t{ \"key\" : \"k\" }\r\n") == Message(key: bytes("k"), value: nil))
    }

    @Test func everyField() throws {
        let m = try parse(#"{"topic":"ignored","partition":7,"offset":99,"timestamp":1700000000000,"key":"k","value":"v","headers":[["a","1"],["a",null]]}"#)
        #expect(m == Message(key: bytes("k"), value: bytes("v"), headers: [Header(name: "a", value: bytes("1")), Header(name: "a", value: nil)],
                             partition: 7, timestamp: 1_700_000_000_000))
    }

    @Test func kcatStyle() throws {
        let line = #"{"topic":"t","partition":2,"offset":10,"tstype":"create","ts":1700000000001,"broker":1,"headers":["h1","v1","h2","v2","h1",null],"key":null,"payload":"p"}"#
        let m = try parse(line)
        #expect(m.value == bytes("p"))
        #expect(m.key == nil)
        #expect(m.timestamp == 1_700_000_000_001)
        #expect(m.partition == 2)
        #expect(m.headers == [Header(name: "h1", value: bytes("v1")), Header(name: "h2", value: bytes("v2")), Header(name: "h1", value: nil)])
    }

    @Test func headersAsObjectKeepOrderAndDuplicates() throws {
        let m = try parse(#"{"headers":{"z":"1","a":{"base64":"/w=="},"z":null,"n":{"x":1}}}"#)
        #expect(m.headers == [Header(name: "z", value: bytes("1")), Header(name: "a", value: [0xFF]),
                              Header(name: "z", value: nil), Header(name: "n", value: bytes(#"{"x":1}"#))])
        #expect(try parse(#"{"headers":{}}"#).headers == [])
        #expect(try parse(#"{"headers":[]}"#).headers == [])
        #expect(try parse(#"{"headers":null}"#).headers == [])
        #expect(try parse(#"{"headers":[[ "\u00e9" , 5 ]]}"#).headers == [Header(name: "é", value: bytes("5"))])
    }

    @Test func otherJSONValuesAreKeptAsWritten() throws {
        #expect(try parse(#"{"value":{"a":1}}"#).value == bytes(#"{"a":1}"#))
        #expect(try parse(#"{"value": [1, 2 ,{"b" : [true,false,null]}] }"#).value == bytes(#"[1, 2 ,{"b" : [true,false,null]}]"#))
        #expect(try parse(#"{"value":-12.5e+3}"#).value == bytes("-12.5e+3"))
        #expect(try parse(#"{"value":0}"#).value == bytes("0"))
        #expect(try parse(#"{"value":true,"key":false}"#) == Message(key: bytes("false"), value: bytes("true")))
        #expect(try parse(#"{"value":{"base64":"aGk=","x":1}}"#).value == bytes(#"{"base64":"aGk=","x":1}"#))
        #expect(try parse(#"{"value":{"base64":5}}"#).value == bytes(#"{"base64":5}"#))
        #expect(try parse(#"{"value":{"BASE64":"aGk="}}"#).value == bytes(#"{"BASE64":"aGk="}"#))
        #expect(try parse(#"{"value":{}}"#).value == bytes("{}"))
    }

    @Test func base64Objects() throws {
        #expect(try parse(#"{"key":{"base64":"/wA="}}"#).key == [0xFF, 0x00])
        #expect(try parse(#"{"key":{ "base64" : "/wA" }}"#).key == [0xFF, 0x00])
        #expect(try parse(#"{"key":{"base64":""}}"#).key == [])
        #expect(try parse(#"{"key":{"\u0062ase64":"\u0061Gk="}}"#).key == bytes("hi"))
    }

    @Test func stringEscapes() throws {
        let m = try parse(#"{"value":"\"\\\/\b\f\n\r\t\u0000\u00e9\u20AC\ud83d\ude00 é😀"}"#)
        #expect(m.value == bytes("\"\\/\u{08}\u{0C}\n\r\t\u{0}é€😀 é😀"))
        #expect(try parse(#"{"value":"\uDBFF\uDFFF"}"#).value == [0xF4, 0x8F, 0xBF, 0xBF])
    }

    @Test func aliasesAndNulls() throws {
        #expect(try parse(#"{"payload":"p","ts":5}"#) == Message(value: bytes("p"), timestamp: 5))
        #expect(try parse(#"{"partition":null,"timestamp":null,"key":null,"value":null}"#) == Message(value: nil))
        #expect(try parse(#"{"partition":2147483647,"timestamp":9223372036854775807}"#) == Message(value: nil, partition: Int32.max, timestamp: Int64.max))
        #expect(try parse(#"{"partition":0,"timestamp":-0}"#) == Message(value: nil, partition: 0, timestamp: 0))
    }

    @Test func ignoredFieldsMayHoldAnyJSON() throws {
        #expect(try parse(#"{"topic":{"deep":[1,2,{"x":null}]},"offset":-1.5e3,"tstype":null,"broker":[],"value":"v"}"#).value == bytes("v"))
    }

    @Test func depthLimit() throws {
        let prefix = #"{"value":"#
        let ok = prefix + String(repeating: "[", count: 63) + String(repeating: "]", count: 63) + "}"
        #expect(try parse(ok).value?.count == 126)
        let deep = prefix + String(repeating: "[", count: 64) + String(repeating: "]", count: 64) + "}"
        #expect(failure(deep) == EnvelopeError(message: "too deeply nested: more than 64 levels of objects and arrays", column: 9 + 64))
        let deepIgnored = #"{"topic":"# + String(repeating: "{\"a\":", count: 64) + "1" + String(repeating: "}", count: 64) + "}"
        #expect(failure(deepIgnored)?.message.hasPrefix("too deeply nested") == true)
    }

    @Test(arguments: [
        (#"{"value":"x" "key":null}"#, 14, #"expected ',' or '}' after object member, found '"'"#),
        (#"{"value":"x",}"#, 14, "expected a field name after ',' (JSON does not allow a trailing comma), found '}'"),
        (#"{"value":"x""#, 13, "expected ',' or '}' after object member, found end of line"),
        (#"{"value" "x"}"#, 10, #"expected ':' after field name, found '"'"#),
        (#"{value:1}"#, 2, "expected a field name in double quotes, found 'v'"),
        (#"{"valeu":1}"#, 2, "unknown field 'valeu'; the fields are key, value, headers, partition and timestamp"),
        (#"{"value":"a","value":"b"}"#, 14, "duplicate field 'value'"),
        (#"{"value":"a","payload":"b"}"#, 14, "duplicate field: 'payload' is another name for 'value', which was already given"),
        (#"{"ts":1,"timestamp":2}"#, 9, "duplicate field: 'timestamp' is another name for 'ts', which was already given"),
        (#"{"topic":"a","topic":"b"}"#, 14, "duplicate field 'topic'"),
        (#"{"partition":-1}"#, 14, "'partition' must be a whole number from 0 to 2147483647"),
        (#"{"partition":1.5}"#, 14, "'partition' must be a whole number from 0 to 2147483647"),
        (#"{"partition":1e2}"#, 14, "'partition' must be a whole number from 0 to 2147483647"),
        (#"{"partition":2147483648}"#, 14, "'partition' must be a whole number from 0 to 2147483647"),
        (#"{"timestamp":"x"}"#, 14, #"'timestamp' must be a whole number from 0 to 9223372036854775807, found '"'"#),
        (#"{"ts":9223372036854775808}"#, 7, "'ts' must be a whole number from 0 to 9223372036854775807"),
        ("[1]", 1, "expected a JSON object starting with '{', found '['"),
        ("", 1, "empty line: expected a JSON object like {\"value\":\"…\"}"),
        ("   ", 4, "empty line: expected a JSON object like {\"value\":\"…\"}"),
        (#"{"value":"x"} x"#, 15, "unexpected 'x' after the end of the JSON object; put one object on each line"),
        (#"{"value":"x"}{}"#, 14, "unexpected '{' after the end of the JSON object; put one object on each line"),
        (#"{"value":"abc"#, 10, "unterminated string: no closing '\"' before the end of the line"),
        (#"{"value":"ab\"#, 10, "unterminated string: no closing '\"' before the end of the line"),
        (#"{"value":"a\qb"}"#, 12, #"invalid escape '\' followed by 'q' in string; the escapes are \" \\ \/ \b \f \n \r \t and \uXXXX"#),
        (#"{"value":"\ud800"}"#, 11, #"unpaired surrogate \uD800: a high surrogate must be followed by a low surrogate \uDC00-\uDFFF"#),
        (#"{"value":"\ud800\u0041"}"#, 11, #"unpaired surrogate \uD800: a high surrogate must be followed by a low surrogate \uDC00-\uDFFF"#),
        (#"{"value":"\udc00"}"#, 11, #"unpaired surrogate \uDC00: a low surrogate must follow a high surrogate \uD800-\uDBFF"#),
        (#"{"value":"\u12"}"#, 11, #"invalid \u escape: expected 4 hex digits after \u"#),
        (#"{"value":"\u12G4"}"#, 11, #"invalid \u escape: expected 4 hex digits after \u"#),
        ("{\"value\":\"a\tb\"}", 12, #"control character 0x09 must be escaped in a string (e.g. \n, \t or \u00XX)"#),
        (#"{"value":01}"#, 10, "invalid number: JSON numbers cannot have leading zeros"),
        (#"{"value":1.}"#, 12, "invalid number: expected a digit after '.', found '}'"),
        (#"{"value":1e}"#, 12, "invalid number: expected a digit in the exponent, found '}'"),
        (#"{"value":-}"#, 11, "invalid number: expected a digit after '-', found '}'"),
        (#"{"value":+1}"#, 10, "expected a JSON value, found '+'"),
        (#"{"value":tru}"#, 10, "expected 'true', found 't'"),
        (#"{"value":nul"#, 10, "expected 'null', found 'n'"),
        (#"{"value":}"#, 10, "expected a JSON value, found '}'"),
        (#"{"value":[1,]}"#, 13, "expected a value after ',' (JSON does not allow a trailing comma), found ']'"),
        (#"{"value":[1 2]}"#, 13, "expected ',' or ']' after array element, found '2'"),
        (#"{"value":{"a" 1}}"#, 15, "expected ':' after field name, found '1'"),
        (#"{"value":{"base64":"!!"}}"#, 20, "invalid base64 in {\"base64\": …}: expected the standard alphabet A-Z a-z 0-9 + / with optional '=' padding"),
        (#"{"headers":[["a"]]}"#, 14, "header 'a' has no value: write [name, value] (value may be null)"),
        (#"{"headers":["a","b","c"]}"#, 21, "header 'c' has no value: a flat headers list alternates names and values"),
        (#"{"headers":[[1,"v"]]}"#, 14, "a header name must be a string, found '1'"),
        (#"{"headers":[["a","b","c"]]}"#, 21, "expected ']' after the header value: a header pair has exactly two elements, found ','"),
        (#"{"headers":[["a","b"],"c"]}"#, 23, #"expected a header as a [name, value] pair, found '"'"#),
        (#"{"headers":["a","b",["c","d"]]}"#, 21, "a header must be a [name, value] pair or, in a flat list, a name string followed by its value; found '['"),
        (#"{"headers":[5]}"#, 13, "a header must be a [name, value] pair or, in a flat list, a name string followed by its value; found '5'"),
        (#"{"headers":5}"#, 12, "'headers' must be a list of [name, value] pairs, a flat list [name, value, …] or an object {\"name\": value, …}, found '5'"),
        (#"{"headers":{"a":1,}}"#, 19, "expected a header name after ',' (JSON does not allow a trailing comma), found '}'"),
        (#"{"headers":[["a","b"],]}"#, 23, "expected a header after ',' (JSON does not allow a trailing comma), found ']'"),
    ] as [(String, Int, String)])
    func errorsNameTheColumn(_ line: String, _ column: Int, _ message: String) {
        let error = failure(line)
        #expect(error == EnvelopeError(message: message, column: column), "\(line)")
    }

    @Test func errorDescriptionAndMQError() {
        let error = failure(#"{"value":"x" "key":null}"#)
        #expect(error?.description == #"column 14: expected ',' or '}' after object member, found '"'"#)
        let mq = error?.mqError(lineNumber: 3)
        #expect(mq?.status == .dataError)
        #expect(mq?.message == #"line 3, column 14: expected ',' or '}' after object member, found '"'"#)
    }

    @Test func rejectsInvalidUTF8AndNamesOddBytes() {
        let line = bytes(#"{"value":"ab"#) + [0xFF] + bytes(#""}"#)
        do {
            _ = try parse(line)
            Issue.record("accepted invalid UTF-8")
        } catch {
            #expect(error.column == 13)
            #expect(error.message.hasPrefix("invalid UTF-8 in string: byte 0xFF"))
        }
        do {
            _ = try parse(bytes("{") + [0xC3, 0xA9] + bytes("}"))
            Issue.record("accepted a bare character")
        } catch {
            #expect(error == EnvelopeError(message: "expected a field name in double quotes, found 'é'", column: 2))
        }
        #expect(failure("{\u{01}}") == EnvelopeError(message: "expected a field name in double quotes, found control character 0x01", column: 2))
        #expect(failure(#"{"a\nb":1}"#)?.message.hasPrefix(#"unknown field 'a\u000Ab'"#) == true)
    }

    /// Whatever the writer writes, the reader gives back.
    @Test func randomRoundTrip() throws {
        var rng = SplitMix64(state: 0x0E17_E10E)
        func randomBytes() -> [UInt8]? {
            switch Int.random(in: 0..<6, using: &rng) {
            case 0: return nil
            case 1: return []
            case 2: return (0..<Int.random(in: 1...40, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 3: return Array(String(repeating: "plain ascii text ", count: Int.random(in: 1...4, using: &rng)).utf8)
            default: return Array(randomText(&rng, maxScalars: 24).utf8)
            }
        }
        for _ in 0..<3_000 {
            let key = randomBytes(), value = randomBytes()
            let headers: [([UInt8], [UInt8]?)] = (0..<Int.random(in: 0...4, using: &rng)).map { _ in
                (Array(randomText(&rng, maxScalars: 8).utf8), randomBytes())
            }
            let partition = Int32.random(in: 0...Int32.max, using: &rng)
            let timestamp = Int.random(in: 0..<3, using: &rng) == 0 ? 0 : Int64.random(in: 0...Int64.max, using: &rng)
            let line = writeBytes(partition: partition, offset: Int64.random(in: 0...Int64.max, using: &rng), timestamp: timestamp,
                                  key: key, value: value, headers: headers)
            let m = try parse(line)
            let expected = Message(key: key, value: value,
                                   headers: headers.map { Header(name: String(decoding: $0.0, as: UTF8.self), value: $0.1) },
                                   partition: partition, timestamp: timestamp)
            #expect(m == expected, "\(String(decoding: line, as: UTF8.self))")
        }
    }
}
