"""Reads every record of a Kafka topic with kafka-python 2.0.2 and prints one JSON object per
record: partition, offset, key and value (base64, null kept), headers ([name, base64 value]),
timestamp. For the librdkafka mock cluster, which kafka-python 3 cannot talk to; the mock keeps
no transaction markers, so reading uncommitted (all kafka-python 2.0.2 does) reads what a
read_committed reader reads there.

    python3 kafka_python_read.py LIBDIR BOOTSTRAP TOPIC PARTITIONS
"""

import base64
import json
import sys

sys.path.insert(0, sys.argv[1])

from kafka import KafkaConsumer, TopicPartition  # noqa: E402


def b64(data):
    return None if data is None else base64.b64encode(data).decode()


def main():
    _, _, bootstrap, topic, partitions = sys.argv
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, api_version=(2, 0, 0), enable_auto_commit=False,
                             auto_offset_reset="earliest", consumer_timeout_ms=5000)
    tps = [TopicPartition(topic, p) for p in range(int(partitions))]
    consumer.assign(tps)
    consumer.seek_to_beginning(*tps)
    ends = consumer.end_offsets(tps)
    left = {tp.partition: ends[tp] for tp in tps}
    seen = {tp.partition: 0 for tp in tps}
    while any(seen[p] < left[p] for p in left):
        batch = consumer.poll(timeout_ms=10000)
        if not batch:
            sys.exit(f"kafka-python: no more records with {sum(seen.values())} of {sum(left.values())} read")
        for tp, records in batch.items():
            for r in records:
                seen[tp.partition] = r.offset + 1
                print(json.dumps({"partition": tp.partition, "offset": r.offset, "key": b64(r.key), "value": b64(r.value),
                                  "headers": [[n, b64(v)] for n, v in r.headers], "timestamp": r.timestamp}))
    consumer.close()


main()
