import CRdKafka
import MQLog

/// The one place where librdkafka's error codes become mq's exit statuses
/// (docs/MIRROR.md, "Exit statuses"):
///
/// - 77: credentials or authorizations refused;
/// - 66: the topic or partition does not exist;
/// - 65: a record larger than the cluster takes (reported with its position
///   by `KafkaSink`, which knows it);
/// - 76: the producer cannot go on (fenced by another producer of the same
///   `transactional.id`, or another fatal error): not retried;
/// - 69: anything else: the cluster cannot take the records now, which the
///   mirror retries until `--timeout`.
enum KafkaStatus {
    static func status(_ err: rd_kafka_resp_err_t) -> ExitStatus {
        switch err {
        case RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_GROUP_AUTHORIZATION_FAILED,
             RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED, RD_KAFKA_RESP_ERR_TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
             RD_KAFKA_RESP_ERR_SASL_AUTHENTICATION_FAILED, RD_KAFKA_RESP_ERR__AUTHENTICATION:
            return .noPermission
        case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART, RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC, RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION:
            return .noInput
        case RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE:
            return .dataError
        case RD_KAFKA_RESP_ERR__FENCED, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
             RD_KAFKA_RESP_ERR__FATAL, RD_KAFKA_RESP_ERR_INVALID_TRANSACTION_TIMEOUT,
             RD_KAFKA_RESP_ERR_UNSUPPORTED_VERSION, RD_KAFKA_RESP_ERR__UNSUPPORTED_FEATURE:
            return .protocolError
        default:
            return .unavailable
        }
    }

    static func text(_ err: rd_kafka_resp_err_t) -> String { String(cString: rd_kafka_err2str(err)) }

    /// `what: librdkafka's text`, with the status of `err`.
    static func error(_ what: String, _ err: rd_kafka_resp_err_t, detail: String? = nil) -> MQError {
        let text = text(err)
        let extra = detail.map { $0.isEmpty || $0 == text ? "" : " (\($0))" } ?? ""
        return MQError(status(err), "\(what): \(text)\(extra)\(advice(err))")
    }

    /// A transactional call's error: fatal ones are 76 whatever their code.
    static func error(_ what: String, _ error: OpaquePointer, producer: OpaquePointer?) -> MQError {
        let code = rd_kafka_error_code(error)
        let text = String(cString: rd_kafka_error_string(error))
        if rd_kafka_error_is_fatal(error) != 0 {
            var buffer = [CChar](repeating: 0, count: 512)
            var fatal = code
            if let producer { fatal = rd_kafka_fatal_error(producer, &buffer, buffer.count) }
            let reason = buffer[0] == 0 ? text : cText(buffer)
            return MQError(.protocolError, "\(what): fatal Kafka producer error: \(reason)\(advice(fatal == RD_KAFKA_RESP_ERR_NO_ERROR ? code : fatal))")
        }
        let status = status(code)
        return MQError(status == .protocolError ? .unavailable : status, "\(what): \(text)\(advice(code))")
    }

    private static func advice(_ err: rd_kafka_resp_err_t) -> String {
        switch err {
        case RD_KAFKA_RESP_ERR__FENCED, RD_KAFKA_RESP_ERR_PRODUCER_FENCED, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
            return " (another producer with the same transactional.id took over: a mirror of the same --name on another machine? give each machine its own --name)"
        default:
            return ""
        }
    }
}

/// The text librdkafka wrote into an error buffer.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
