/// A record header: a UTF-8 name and a value that may be null.
/// Kafka keeps header order and allows duplicate names; so do we.
public struct Header: Sendable, Equatable, Hashable {
    public var name: String
    public var value: [UInt8]?
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }
}

/// A message as a producer submits it: key and value may each be null.
public struct Message: Sendable, Equatable {
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [Header]
    /// A partition forced by the input, or nil to let the partitioner choose.
    public var partition: Int32?
    /// Milliseconds since the epoch, or nil for "now".
    public var timestamp: Int64?

    public init(key: [UInt8]? = nil, value: [UInt8]?, headers: [Header] = [], partition: Int32? = nil, timestamp: Int64? = nil) {
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
        self.timestamp = timestamp
    }
}

/// A header as read from a batch, borrowing the batch's bytes: valid only while
/// the record it came from is being visited.
public struct HeaderView {
    public var name: UnsafeRawBufferPointer
    public var value: UnsafeRawBufferPointer?
    public init(name: UnsafeRawBufferPointer, value: UnsafeRawBufferPointer?) {
        self.name = name
        self.value = value
    }
}
