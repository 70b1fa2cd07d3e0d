import Testing
@testable import MQLog

private func render(_ format: String, key: [UInt8]? = Array("k1".utf8), value: [UInt8]? = Array("hello".utf8),
                    headers: [(String, [UInt8]?)] = [], topic: String = "orders",
                    partition: Int32 = 3, offset: Int64 = 42, timestamp: Int64 = 1_700_000_000_000) throws -> String {
    let f = try KcatFormat(format)
    let out = GrowableBytes()
    out.append("|")
    let names = headers.map { Array($0.0.utf8) }
    func withOptional<R>(_ a: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> R) -> R {
        guard let a else { return body(nil) }
        return a.withUnsafeBytes { body($0) }
    }
    // Keep every header's storage alive while rendering.
    let storage = headers.map { $0.1 }
    var views: [HeaderView] = []
    func build(_ i: Int) {
        if i == headers.count {
            withOptional(key) { k in
                withOptional(value) { v in
                    f.render(topic: topic, partition: partition, offset: offset, timestamp: timestamp,
                             key: k, value: v, headers: views, into: out)
                }
            }
            return
        }
        names[i].withUnsafeBytes { n in
            withOptional(storage[i]) { v in
                views.append(HeaderView(name: n, value: v))
                build(i + 1)
                views.removeLast()
            }
        }
    }
    build(0)
    return String(decoding: out.bytes, as: UTF8.self)
}

private func usageMessage(_ format: String) -> String? {
    do {
        _ = try KcatFormat(format)
        return nil
    } catch {
        return error.status == .usage ? error.message : "wrong status \(error.status)"
    }
}

@Suite struct KcatFormatTests {
    @Test func rendersEveryToken() throws {
        #expect(try render("%t/%p@%o %T %k=%s (%K,%S)\\n") == "|orders/3@42 1700000000000 k1=hello (2,5)\n")
        #expect(try render("100%% %s") == "|100% hello")
        #expect(try render("") == "|")
        #expect(try render("plain text") == "|plain text")
        #expect(try render("\\t\\r\\\\\\0") == "|\t\r\\\u{0}")
        #expect(try render("é%sü") == "|éhelloü")
    }

    @Test func nullKeyAndValueRenderEmptyWithSizeMinusOne() throws {
        #expect(try render("[%k][%s] %K %S", key: nil, value: nil) == "|[][] -1 -1")
        #expect(try render("[%k][%s] %K %S", key: [], value: []) == "|[][] 0 0")
    }

    @Test func negativeNumbersAndExtremes() throws {
        #expect(try render("%p %o %T", partition: -1, offset: Int64.max, timestamp: Int64.min)
            == "|-1 9223372036854775807 -9223372036854775808")
    }

    @Test func binaryValuesAreCopiedAsTheyAre() throws {
        let f = try KcatFormat("%s")
        let out = GrowableBytes()
        ([0xFF, 0x00, 0x0A] as [UInt8]).withUnsafeBytes { v in
            f.render(topic: "t", partition: 0, offset: 0, timestamp: 0, key: nil, value: v, headers: [], into: out)
        }
        #expect(out.array == [0xFF, 0x00, 0x0A])
    }

    @Test func headers() throws {
        #expect(try render("<%h>") == "|<>")
        #expect(try render("<%h>", headers: [("a", Array("1".utf8)), ("b", nil), ("a", Array("2".utf8))]) == "|<a=1,b=,a=2>")
        #expect(try KcatFormat("%h").needsHeaders)
        #expect(try KcatFormat("%%h").needsHeaders == false)
        #expect(try KcatFormat("%s %k").needsHeaders == false)
    }

    @Test func unknownTokensAndEscapesAreUsageErrors() {
        #expect(usageMessage("ab %x") == "unknown --format token '%x' at position 4; the tokens are %s %S %k %K %t %p %o %T %h and %%")
        #expect(usageMessage("é%é")?.hasPrefix("unknown --format token '%é' at position 2") == true)
        #expect(usageMessage("%s%")?.hasPrefix("unknown --format token '%' at position 3") == true)
        #expect(usageMessage("%s\\q")?.hasPrefix("unknown --format escape '\\q' at position 3") == true)
        #expect(usageMessage("%s\\")?.hasPrefix("unknown --format escape '\\' at position 3") == true)
        #expect(usageMessage("%s %k %%") == nil)
    }
}
