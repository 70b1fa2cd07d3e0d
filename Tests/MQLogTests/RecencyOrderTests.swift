import Testing
@testable import MQLog

@Suite struct RecencyOrderTests {
    @Test func leastRecentComesFirstAndRemovedKeysNever() {
        var order = RecencyOrder<String>()
        for k in ["a", "b", "c", "d"] { order.touch(k) }
        order.touch("a")
        order.remove("c")
        for _ in 0..<5000 { order.touch("d"); order.touch("b") }
        #expect(order.count == 3 && !order.contains("c"))
        #expect(order.removeLeastRecent() == "a")
        #expect(order.removeLeastRecent() == "d")
        #expect(order.removeLeastRecent() == "b")
        #expect(order.removeLeastRecent() == nil)
        #expect(order.count == 0)
    }
}
