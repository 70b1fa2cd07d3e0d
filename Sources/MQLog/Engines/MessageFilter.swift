import Glibc

/// Which messages a consumer delivers: `--grep` on the value (POSIX extended
/// regular expression, unanchored), `--key` (exact), `--header name=value`
/// (exact; every one given must be present). Messages that do not match are
/// skipped and count as consumed.
public final class MessageFilter {
    private let regex: UnsafeMutablePointer<regex_t>?
    public let key: [UInt8]?
    public let headers: [Header]

    public init(grep: String? = nil, key: [UInt8]? = nil, headers: [Header] = []) throws {
        self.key = key
        self.headers = headers
        if let grep {
            let r = UnsafeMutablePointer<regex_t>.allocate(capacity: 1)
            let rc = regcomp(r, grep, REG_EXTENDED | REG_NOSUB)
            if rc != 0 {
                var message = [CChar](repeating: 0, count: 256)
                regerror(rc, r, &message, message.count)
                r.deallocate()
                throw MQError.usage("invalid --grep pattern '\(grep)': \(String(cString: message))")
            }
            regex = r
        } else {
            regex = nil
        }
    }

    deinit {
        if let regex { regfree(regex); regex.deallocate() }
    }

    /// True when the filter lets every message through.
    public var isEmpty: Bool { regex == nil && key == nil && headers.isEmpty }

    public func matches(_ r: RecordView) throws -> Bool {
        if let key {
            guard let k = r.key, k.elementsEqual(key) else { return false }
        }
        if !headers.isEmpty {
            let present = try r.headers()
            for wanted in headers {
                let found = present.contains { h in
                    String(decoding: h.name, as: UTF8.self) == wanted.name && h.value.map(Array.init) == wanted.value
                }
                if !found { return false }
            }
        }
        if let regex {
            // REG_STARTEND (a GNU and BSD extension) bounds the match by
            // pmatch[0], so values need no NUL terminator and may contain NULs.
            var match = regmatch_t(rm_so: 0, rm_eo: regoff_t(r.value?.count ?? 0))
            let base = r.value?.baseAddress?.assumingMemoryBound(to: CChar.self)
            let empty: CChar = 0
            return withUnsafePointer(to: empty) { emptyPointer in
                regexec(regex, base ?? emptyPointer, 1, &match, 4 /* REG_STARTEND */) == 0
            }
        }
        return true
    }
}
