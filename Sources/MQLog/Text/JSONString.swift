/// `s` as a JSON string literal: quotes, backslashes and control characters
/// escaped, everything else as it is.
func jsonQuoted(_ s: String) -> String {
    var out = "\""
    for c in s.unicodeScalars {
        switch c {
        case "\"": out += "\\\""
        case "\\": out += "\\\\"
        case "\n": out += "\\n"
        default:
            if c.value < 0x20 {
                out += "\\u00" + (c.value < 16 ? "0" : "") + String(c.value, radix: 16)
            } else {
                out.unicodeScalars.append(c)
            }
        }
    }
    return out + "\""
}
