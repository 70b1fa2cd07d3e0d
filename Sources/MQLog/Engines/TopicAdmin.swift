import Glibc

/// What `mq-topic describe` reports about a topic.
public struct TopicDescription: Sendable {
    public struct Partition: Sendable {
        public var partition: Int32
        public var startOffset: Int64
        public var endOffset: Int64
        public var segments: Int
        public var bytes: Int64
    }
    public var name: String
    public var config: TopicConfig
    public var partitions: [Partition]

    /// Reads a topic's config and each partition's offsets and size, without locks.
    public static func read(_ log: LogDirectory, _ name: String) throws -> TopicDescription {
        let config = try log.readConfig(name)
        var parts: [Partition] = []
        for p in 0..<config.partitions {
            let dir = log.topicPath(name) + "/\(p)"
            let reader = PartitionReader(directory: dir)
            let bases = FileSystem.isDirectory(dir) ? try LogSegments.baseOffsets(in: dir) : []
            var bytes: Int64 = 0
            for base in bases {
                bytes += FileSystem.size(Segment(dir, base).logPath) ?? 0
            }
            parts.append(Partition(partition: p, startOffset: try reader.logStartOffset(), endOffset: try reader.logEndOffset(),
                                   segments: bases.count, bytes: bytes))
        }
        return TopicDescription(name: name, config: config, partitions: parts)
    }

    /// Human-readable, in the spirit of kafka-topics --describe.
    public func text() -> String {
        let messages = partitions.reduce(Int64(0)) { $0 + $1.endOffset - $1.startOffset }
        var s = "Topic: \(name)\tPartitionCount: \(config.partitions)\tMessages: \(messages)\n"
        s += "Configs: " + TopicConfig.keys.map { "\($0.name)=\(config.value($0.name))\(config.overrides[$0.name] != nil ? "*" : "")" }.joined(separator: ",") + "\n"
        for p in partitions {
            s += "\tPartition: \(p.partition)\tStartOffset: \(p.startOffset)\tEndOffset: \(p.endOffset)\tSegments: \(p.segments)\tBytes: \(p.bytes)\n"
        }
        return s
    }

    /// One JSON object.
    public func json() -> String {
        let quote = jsonQuoted
        let configs = TopicConfig.keys.map { "\(quote($0.name)):\(quote(config.value($0.name)))" }.joined(separator: ",")
        let overrides = config.overrides.keys.sorted().map(quote).joined(separator: ",")
        let parts = partitions.map {
            "{\"partition\":\($0.partition),\"start_offset\":\($0.startOffset),\"end_offset\":\($0.endOffset),\"segments\":\($0.segments),\"bytes\":\($0.bytes)}"
        }.joined(separator: ",")
        return "{\"topic\":\(quote(name)),\"partitions\":\(config.partitions),\"config\":{\(configs)},\"overrides\":[\(overrides)],\"partition_details\":[\(parts)]}"
    }
}
