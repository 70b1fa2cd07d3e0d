#include <librdkafka/rdkafka.h>

/*
 * rd_kafka_producev takes its fields through the RD_KAFKA_V_* macros, which
 * Swift cannot import: this is the one call mq-mirror makes, spelled out.
 * On success librdkafka owns `headers`; on failure the caller still does.
 */
static inline rd_kafka_resp_err_t mq_rdkafka_produce(rd_kafka_t *rk, rd_kafka_topic_t *rkt, int32_t partition,
                                                     const void *key, size_t key_len,
                                                     const void *value, size_t value_len,
                                                     int64_t timestamp, rd_kafka_headers_t *headers,
                                                     void *opaque) {
        return rd_kafka_producev(rk, RD_KAFKA_V_RKT(rkt), RD_KAFKA_V_PARTITION(partition),
                                 RD_KAFKA_V_KEY(key, key_len), RD_KAFKA_V_VALUE((void *)value, value_len),
                                 RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_TIMESTAMP(timestamp),
                                 RD_KAFKA_V_HEADERS(headers), RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
}
