/// The order in which keys were last used, for pools that close their least
/// recently used member: `touch`, `remove` and `leastRecent` in O(1)
/// amortized time, however many keys there are.
///
/// Each use appends (key, token) to a queue and records the token as the
/// key's current one; an entry whose token is no longer its key's current
/// one is stale and skipped. The queue is compacted when stale entries
/// dominate, so it stays within a constant factor of the live keys.
struct RecencyOrder<Key: Hashable> {
    private var tokens: [Key: UInt64] = [:]
    private var queue: [(key: Key, token: UInt64)] = []
    private var front = 0
    private var lastToken: UInt64 = 0

    /// Keys in the order.
    var count: Int { tokens.count }

    func contains(_ key: Key) -> Bool { tokens[key] != nil }

    /// Makes `key` the most recently used (adding it if absent).
    mutating func touch(_ key: Key) {
        lastToken &+= 1
        tokens[key] = lastToken
        queue.append((key, lastToken))
        compact()
    }

    /// Takes `key` out of the order.
    mutating func remove(_ key: Key) {
        tokens[key] = nil
    }

    /// The least recently used key, taken out of the order; nil when there
    /// is none.
    mutating func removeLeastRecent() -> Key? {
        while front < queue.count {
            let entry = queue[front]
            front += 1
            guard tokens[entry.key] == entry.token else { continue }
            tokens[entry.key] = nil
            compact()
            return entry.key
        }
        return nil
    }

    private mutating func compact() {
        if queue.count - front > 2 * tokens.count + 64 {
            // Mostly stale entries: keep the current one of each key, in order.
            queue = queue[front...].filter { tokens[$0.key] == $0.token }
            front = 0
        } else if front > 1024 && front * 2 > queue.count {
            queue.removeFirst(front)
            front = 0
        }
    }
}
