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

/// A record copied out of its batch (so it outlives the batch's buffer),
/// with the topic and partition it was read from.
public struct StoredRecord: Sendable {
    public var topic: String
    public var partition: Int32
    public var offset: Int64
    public var timestamp: Int64
    public var key: [UInt8]?
    public var value: [UInt8]?
    public var headers: [Header]

    public init(_ r: RecordView, topic: String, partition: Int32) throws {
        self.topic = topic
        self.partition = partition
        offset = r.offset
        timestamp = r.timestamp
        key = r.key.map(Array.init)
        value = r.value.map(Array.init)
        headers = try r.headers().map { Header(name: String(decoding: $0.name, as: UTF8.self), value: $0.value.map(Array.init)) }
    }

    public init(topic: String, partition: Int32, offset: Int64, timestamp: Int64,
                key: [UInt8]? = nil, value: [UInt8]?, headers: [Header] = []) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }
}
