"""mq-mirror pulling: a NATS JetStream stream or a Kafka topic copied into a local topic, exactly once.

NATS: a real `nats-server -js` (one server, or three routed servers with an R3 stream), fed with
nats-py. Kafka: the librdkafka mock cluster of test_mirror_kafka.py, fed with kcat. What the
local topic holds is read with mq-tail and mq-consume, as any topic.

MQ_MIRROR_KILLS (default 10) and MQ_MIRROR_MESSAGES (default 20000) size the kill -9 tests.
"""

import asyncio
import base64
import os
import random
import shutil
import signal
import subprocess
import time

import pytest

from mqtest import dec, script
from test_mirror import NatsCluster, NatsServer, free_port, mixed_input, servers_of

nats = pytest.importorskip("nats", reason="nats-py is not installed (scripts/setup.sh installs it)")

needs_nats = pytest.mark.skipif(shutil.which("nats-server") is None,
                                reason="nats-server is not installed (scripts/setup.sh installs it)")

KILLS = int(os.environ.get("MQ_MIRROR_KILLS", "10"))
MESSAGES = int(os.environ.get("MQ_MIRROR_MESSAGES", "20000"))
PROVENANCE = "mq.mirror.from."


@pytest.fixture
def server(tmp_path):
    s = NatsServer(tmp_path)
    yield s
    s.stop()


def envelopes(mq, topic):
    return mq.tail_json("-n", "+0", topic)


def record_of(e, drop_provenance=True):
    """(key, value, headers, timestamp) of an mq-tail envelope, as bytes."""
    headers = [(n, dec(v)) for n, v in e.get("headers", [])]
    if drop_provenance:
        headers = [(n, v) for n, v in headers if not n.startswith(PROVENANCE)]
    return dec(e.get("key")), dec(e["value"]), headers, e["timestamp"]


def provenance(e):
    return {n[len(PROVENANCE):]: dec(v).decode() for n, v in e.get("headers", []) if n.startswith(PROVENANCE)}


def by_partition(mq, topic, drop_provenance=True):
    out = {}
    for e in envelopes(mq, topic):
        out.setdefault(e["partition"], []).append(record_of(e, drop_provenance))
    return out


async def _publish(url, messages, stream=None, subjects=None, replicas=1):
    """messages: [(subject, data, headers or None)], published in order with acks."""
    nc = await nats.connect(servers=servers_of(url))
    try:
        js = nc.jetstream()
        if stream:
            from nats.js.api import StreamConfig
            await js.add_stream(StreamConfig(name=stream, subjects=subjects, num_replicas=replicas))
        for subject, data, headers in messages:
            await js.publish(subject, data, headers=headers)
    finally:
        await nc.close()


def publish(url, messages, **kw):
    asyncio.run(_publish(url, messages, **kw))


# ---------------------------------------------------------------------------------------------
# NATS

@needs_nats
def test_push_then_pull_gives_back_the_same_records(mq, server):
    """A local topic pushed to a stream and pulled into another topic: per partition the same
    keys, values (null and empty), headers (order, duplicates, null values) and timestamps;
    the pulled records end with their provenance; a second pull copies nothing."""
    mq.create("orders", 4)
    mq.produce("orders", mixed_input(3000, 21), "--json")
    mq.run("mq-mirror", "-e", "--create", "orders", f"{server.url}/ORDERS", check=0)
    res = mq.run("mq-mirror", "-e", "-v", f"{server.url}/ORDERS", "copy", check=66)
    assert "topic 'copy' does not exist" in res.stderr and "--create" in res.stderr
    res = mq.run("mq-mirror", "-e", "-v", "--create", "--partitions", "4", f"{server.url}/ORDERS", "copy", check=0)
    assert "3000 messages copied into 'copy'" in res.stderr
    assert by_partition(mq, "copy") == by_partition(mq, "orders")
    seqs = set()
    for e in envelopes(mq, "copy"):
        p = provenance(e)
        assert p["stream"] == "ORDERS" and p["subject"] == f"mq.orders.{e['partition']}", p
        seqs.add(int(p["sequence"]))
    assert seqs == set(range(1, 3001))
    res = mq.run("mq-mirror", "-e", "-v", f"{server.url}/ORDERS", "copy", check=0)
    assert "0 messages copied" in res.stderr
    mq.produce("orders", mixed_input(500, 22), "--json")
    mq.run("mq-mirror", "-e", "orders", f"{server.url}/ORDERS", check=0)
    mq.run("mq-mirror", "-e", f"{server.url}/ORDERS", "copy", check=0)
    assert by_partition(mq, "copy") == by_partition(mq, "orders")
    # Fewer local partitions: murmur2 of the key, each partition's order kept per key.
    mq.run("mq-mirror", "-e", "--create", f"{server.url}/ORDERS", "two", "--partitions", "2", check=0)
    two = envelopes(mq, "two")
    assert len(two) == 3500
    import mqtest
    for e in two:
        if e.get("key") is not None:
            assert e["partition"] == mqtest.murmur2_partition(dec(e["key"]), 2)


@needs_nats
def test_plain_nats_messages_are_keyed_by_subject(mq, server):
    """Messages not sent by mq: the subject is the key (and the provenance subject), NATS
    headers become record headers (names sorted, values of one name in order), the stream's
    time is the timestamp; the default local topic has one partition."""
    before = int(time.time() * 1000)
    msgs = [("ev.a", b"one", {"trace": "t1"}), ("ev.b", b"", None), ("ev.a", b"\xff\x00bin", {"z": "2", "a": "1"})]
    publish(server.url, msgs, stream="EV", subjects=["ev.>"])
    after = int(time.time() * 1000)
    mq.run("mq-mirror", "-e", "--create", f"{server.url}/EV", "ev", check=0)
    got = envelopes(mq, "ev")
    assert [e["partition"] for e in got] == [0, 0, 0]
    recs = [record_of(e) for e in got]
    assert [(k, v, h) for k, v, h, _ in recs] == [
        (b"ev.a", b"one", [("trace", b"t1")]),
        (b"ev.b", b"", []),
        (b"ev.a", b"\xff\x00bin", [("a", b"1"), ("z", b"2")]),
    ]
    for _, _, _, ts in recs:
        assert before - 1000 <= ts <= after + 1000
    assert [provenance(e) for e in got] == [
        {"stream": "EV", "subject": s, "sequence": str(i + 1)} for i, (s, _, _) in enumerate(msgs)]


def test_pull_rate_spaces_the_messages(mq, server):
    """--rate holds a pull too (a lower bound on the time, not a speed target)."""
    publish(server.url, [(f"rp.{i % 3}", b"m%d" % i, None) for i in range(200)], stream="RP", subjects=["rp.>"])
    started = time.monotonic()
    res = mq.run("mq-mirror", "-e", "--create", "--rate", "100/s", f"{server.url}/RP", "rp", check=0)
    took = time.monotonic() - started
    assert res.status == 0, res.stderr
    assert len(envelopes(mq, "rp")) == 200
    assert took >= 1.5, f"200 messages at 100/s took {took:.2f} s"


def check_exactly_once(mq, topic, n, subjects):
    """Every published (subject, number) is in the topic once, each subject in order."""
    seen = set()
    last = {}
    for e in envelopes(mq, topic):
        key, value, _, _ = record_of(e)
        subject, number = key.decode(), int(value)
        assert (subject, number) not in seen, f"{subject} #{number} copied twice"
        seen.add((subject, number))
        assert number > last.get(subject, -1), f"{subject}: #{number} after #{last.get(subject)}"
        last[subject] = number
    want = {(f"k.{i % subjects}", i) for i in range(n)}
    missing = want - seen
    assert not missing, f"{len(missing)} missing, e.g. {sorted(missing)[:5]}"
    assert seen == want


def consume_all(mq, tmp_path, topic):
    """mq-consume -g with a handler over the pulled topic: each message handled once."""
    log = tmp_path / "handled.log"
    handler = script(tmp_path, "count.sh", 'cat >> "$LOG"; echo >> "$LOG"\n')
    mq.run("mq-consume", "-g", "workers", "-e", topic, "--", handler, env_extra={"LOG": str(log)}, check=0, timeout=300)
    return [line for line in log.read_text().splitlines() if line]


class Publisher:
    """Publishes (k.{i % subjects}, i) for i < n into a stream, in a thread, in bursts of 50
    concurrent publishes, each burst acknowledged before the next."""

    def __init__(self, url, stream, n, subjects, replicas=1):
        import threading
        self.url, self.stream, self.n, self.subjects, self.replicas = url, stream, n, subjects, replicas
        self.published = 0
        self.error = None
        self.created = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        async def go():
            from nats.js.api import StreamConfig
            nc = await nats.connect(servers=servers_of(self.url))
            try:
                js = nc.jetstream()
                await js.add_stream(StreamConfig(name=self.stream, subjects=["k.>"], num_replicas=self.replicas))
                self.created.set()
                for start in range(0, self.n, 50):
                    # Within one subject, order is kept only by publishing one at a time.
                    for i in range(start, min(self.n, start + 50)):
                        await js.publish(f"k.{i % self.subjects}", str(i).encode())
                    self.published = min(self.n, start + 50)
            finally:
                await nc.close()
        try:
            asyncio.run(go())
        except Exception as e:  # reported by join()
            self.error = e
        self.created.set()

    def join(self, timeout=300):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the publisher did not finish"
        assert self.error is None, self.error


@needs_nats
def test_pull_from_a_three_node_cluster_through_mirror_kills(mq, tmp_path):
    """An R3 stream on three servers, fed while a mirror pulls from it; the mirror is killed
    with -9 at random moments (MQ_MIRROR_KILLS times), then one run with -e. Every message is
    in the local topic once, each subject in order, and mq-consume -g works on the topic as on
    any topic."""
    cluster = NatsCluster(tmp_path)
    try:
        subjects = 4
        n = MESSAGES
        rng = random.Random(31)
        mq.create("pulled", 3)
        publisher = Publisher(cluster.url, "P", n, subjects, replicas=3)
        assert publisher.created.wait(60)
        kills = 0
        while kills < KILLS:
            m = mq.start("mq-mirror", f"{cluster.url}/P", "pulled", "--name", "p3", "--timeout", "120s")
            time.sleep(rng.uniform(0.3, 1.0))
            m.kill()
            kills += 1
        publisher.join()
        res = mq.run("mq-mirror", "-e", "-v", f"{cluster.url}/P", "pulled", "--name", "p3", "--timeout", "120s", timeout=300)
        assert res.status == 0, res.stderr
        check_exactly_once(mq, "pulled", n, subjects)
        handled = consume_all(mq, tmp_path, "pulled")
        assert sorted(int(x) for x in handled) == list(range(n))
    finally:
        cluster.stop()


@needs_nats
def test_sigterm_stops_a_pull_with_143_and_the_next_run_goes_on(mq, server):
    n = 5000
    publish(server.url, [(f"k.{i % 3}", str(i).encode(), None) for i in range(n)], stream="T", subjects=["k.>"])
    m = mq.start("mq-mirror", "--create", f"{server.url}/T", "t", "--partitions", "2")
    deadline = time.time() + 30
    while time.time() < deadline and not (mq.topic_dir("t") / "topic.properties").exists():
        time.sleep(0.05)
    time.sleep(0.3)
    m.signal(signal.SIGTERM)
    assert m.wait(30) == 143
    assert "stopped by SIGTERM" in m.finish().stderr
    mq.run("mq-mirror", "-e", f"{server.url}/T", "t", check=0)
    check_exactly_once(mq, "t", n, 3)


@needs_nats
def test_pull_errors(mq, server):
    publish(server.url, [("s.x", b"a", None)], stream="S", subjects=["s.>"])
    res = mq.run("mq-mirror", "-e", "--create", f"{server.url}/NOPE", "t")
    assert res.status == 66 and "stream 'NOPE' does not exist" in res.stderr, res
    for bad in ("nats://127.0.0.1", "nats:///S", "nats://h/bad.name", "kafka://h:99999/T"):
        res = mq.run("mq-mirror", "-e", bad, "t")
        assert res.status == 64, (bad, res)
    res = mq.run("mq-mirror", "-e", f"{server.url}/S", "t", "u")
    assert res.status == 64 and "one local topic" in res.stderr
    res = mq.run("mq-mirror", "-e", f"{server.url}/S", "bad/topic", "--create")
    assert res.status == 64, res
    res = mq.run("mq-mirror", "-e", "--replicas", "3", f"{server.url}/S", "t")
    assert res.status == 64 and "pushing only" in res.stderr
    start = time.time()
    res = mq.run("mq-mirror", "-e", "--timeout", "2s", "--create", f"nats://127.0.0.1:{free_port()}/S", "t")
    assert res.status == 69, res
    assert time.time() - start < 30
    assert not mq.topic_dir("t").exists()


# ---------------------------------------------------------------------------------------------
# Kafka (the librdkafka mock cluster of test_mirror_kafka.py)

from test_mirror_kafka import KafkaMock, kafka_mock_bin  # noqa: E402,F401

needs_kcat = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (scripts/setup.sh installs it)")


@pytest.fixture
def kafka(kafka_mock_bin):  # noqa: F811
    m = KafkaMock(kafka_mock_bin)
    yield m
    m.stop()


class KcatFeeder:
    """kcat -P feeding key k.{i % keys}, value i for i < n, a line at a time from a thread
    (the default partitioner puts each key in one partition, so each key's order is kept)."""

    def __init__(self, kafka, topic, n, keys, pause=0.0):
        import threading
        self.p = subprocess.Popen(["kcat", "-P", "-b", kafka.bootstrap, "-t", topic, "-K", ":"],
                                  stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        self.n, self.keys, self.pause = n, keys, pause
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        for start in range(0, self.n, 200):
            self.p.stdin.write(b"".join(f"k.{i % self.keys}:{i}\n".encode() for i in range(start, min(self.n, start + 200))))
            self.p.stdin.flush()
            time.sleep(self.pause)
        self.p.stdin.close()

    def join(self):
        self.thread.join(300)
        assert self.p.wait(120) == 0, self.p.stderr.read()


@needs_kcat
def test_kafka_push_then_pull_gives_back_the_same_records(mq, kafka):
    """A local topic pushed to Kafka and pulled into another topic: per partition the same keys,
    values, headers and timestamps (the push's four provenance headers are dropped, the pull's
    appended); the new topic gets the Kafka topic's partition count; a second pull copies 0."""
    kafka.create("orders", 3)
    mq.create("orders", 3)
    mq.produce("orders", mixed_input(2000, 41), "--json")
    mq.run("mq-mirror", "-e", "orders", kafka.url("orders"), check=0)
    res = mq.run("mq-mirror", "-e", "-v", "--create", kafka.url("orders"), "copy", check=0)
    assert "2000 messages copied into 'copy'" in res.stderr
    assert mq.properties("copy")["partitions"] == "3"
    assert by_partition(mq, "copy") == by_partition(mq, "orders")
    for e in envelopes(mq, "copy"):
        p = provenance(e)
        assert p["topic"] == "orders" and int(p["partition"]) == e["partition"], p
    res = mq.run("mq-mirror", "-e", "-v", kafka.url("orders"), "copy", check=0)
    assert "0 messages copied" in res.stderr
    # Fewer local partitions: murmur2 of the key.
    mq.create("one", 2)
    mq.run("mq-mirror", "-e", kafka.url("orders"), "one", check=0)
    import mqtest
    got = envelopes(mq, "one")
    assert len(got) == 2000
    for e in got:
        if e.get("key") is not None:
            assert e["partition"] == mqtest.murmur2_partition(dec(e["key"]), 2)


def check_keys_exactly_once(mq, topic, n, keys):
    seen, last = set(), {}
    for e in envelopes(mq, topic):
        key, value = dec(e["key"]).decode(), int(dec(e["value"]))
        assert value not in seen, f"#{value} copied twice"
        seen.add(value)
        assert value > last.get(key, -1), f"{key}: #{value} after #{last.get(key)}"
        last[key] = value
    assert seen == set(range(n)), f"{n - len(seen)} missing"


@needs_kcat
def test_kafka_pull_through_mirror_kills(mq, kafka, tmp_path):
    """Records fed into a 4-partition Kafka topic while a mirror pulls them and is killed with
    -9 (MQ_MIRROR_KILLS times); then one run with -e: every record once, each key in order,
    and mq-consume -g over the local topic handles each once."""
    kafka.create("feed", 4)
    n, keys = MESSAGES, 8
    feeder = KcatFeeder(kafka, "feed", n, keys, pause=0.02)
    rng = random.Random(51)
    for _ in range(KILLS):
        m = mq.start("mq-mirror", "--create", kafka.url("feed"), "feed", "--name", "k")
        time.sleep(rng.uniform(0.3, 1.0))
        m.kill()
    feeder.join()
    res = mq.run("mq-mirror", "-e", "-v", kafka.url("feed"), "feed", "--name", "k", "--create", timeout=300)
    assert res.status == 0, res.stderr
    check_keys_exactly_once(mq, "feed", n, keys)
    handled = consume_all(mq, tmp_path, "feed")
    assert sorted(int(x) for x in handled) == list(range(n))


@needs_kcat
def test_kafka_sigterm_143_and_errors(mq, kafka):
    kafka.create("t", 2)
    feeder = KcatFeeder(kafka, "t", 3000, 5)
    feeder.join()
    m = mq.start("mq-mirror", "--create", kafka.url("t"), "t")
    time.sleep(1.5)
    m.signal(signal.SIGTERM)
    assert m.wait(30) == 143
    mq.run("mq-mirror", "-e", kafka.url("t"), "t", check=0)
    check_keys_exactly_once(mq, "t", 3000, 5)
    res = mq.run("mq-mirror", "-e", "--create", kafka.url("nope"), "x")
    assert res.status == 66 and "Kafka topic 'nope' does not exist" in res.stderr, res
    res = mq.run("mq-mirror", "-e", kafka.url("t"), "missing")
    assert res.status == 66 and "--create" in res.stderr, res
    res = mq.run("mq-mirror", "-e", "-X", "no.such.property=1", kafka.url("t"), "t")
    assert res.status == 64 and "no.such.property" in res.stderr, res
    res = mq.run("mq-mirror", "-e", "--creds", "/dev/null", kafka.url("t"), "t")
    assert res.status == 64, res
    res = mq.run("mq-mirror", "-e", "--partitioner", "same", "--create", "--partitions", "1", kafka.url("t"), "small")
    assert res.status == 78, res
    start = time.time()
    res = mq.run("mq-mirror", "-e", "--timeout", "2s", f"kafka://127.0.0.1:{free_port()}/t", "t")
    assert res.status == 69, res
    assert time.time() - start < 40
