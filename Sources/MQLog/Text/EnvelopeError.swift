/// A malformed JSON envelope line: what is wrong and where.
public struct EnvelopeError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What is wrong, for a person.
    public var message: String
    /// 1-based byte position in the line where the problem was found.
    public var column: Int

    public init(message: String, column: Int) {
        self.message = message
        self.column = column
    }

    /// E.g. `column 17: expected ',' or '}' after object member, found ']'`.
    public var description: String { "column \(column): \(message)" }

    /// The error as a data error for line `lineNumber` (1-based) of the input.
    public func mqError(lineNumber: Int) -> MQError {
        MQError(.dataError, "line \(lineNumber), \(description)")
    }
}
