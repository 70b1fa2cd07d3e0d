"""mq-mirror to Kafka: local topics forwarded to a librdkafka mock cluster, exactly once.

Each test starts `helpers/kafka_mock.c` (compiled once per session with librdkafka-dev): three
mock brokers on 127.0.0.1, driven through its standard input (create a topic, take a broker down,
move a partition's leader, inject request errors), stopped at the end of the test.

What the Kafka topic holds is read back with kcat (`-X isolation.level=read_committed`), a
client independent of mq, and every check compares it with what kafka-python reads. kafka-python
3 cannot talk to this mock (it needs request versions the mock does not answer); 2.0.2 can, and
scripts/setup.sh installs it under .build/kafka-python-2.0.2 for helpers/kafka_python_read.py.
It reads uncommitted only, which on the mock (no transaction markers) is what read_committed
reads.

What the mock does not do, and these tests therefore cannot show: it keeps no transaction
markers and no aborted-transaction list, and its last stable offset is its end, so records of an
open or aborted transaction are visible to read_committed readers; and it has no CreateTopics
(no controller). See docs/MIRROR.md.
"""

import base64
import json
import sys
import os
import random
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import mqtest
from mqtest import jline

HELPER = Path(__file__).resolve().parent / "helpers" / "kafka_mock.c"

pytestmark = pytest.mark.skipif(shutil.which("kcat") is None, reason="kcat is not installed (scripts/setup.sh installs it)")


@pytest.fixture(scope="session")
def kafka_mock_bin(tmp_path_factory):
    """helpers/kafka_mock.c, compiled once per session."""
    flags = subprocess.run(["pkg-config", "--cflags", "--libs", "rdkafka"], capture_output=True, text=True)
    if flags.returncode != 0 or shutil.which("cc") is None:
        pytest.skip("cc or librdkafka-dev (pkg-config rdkafka) is missing: run scripts/setup.sh")
    out = tmp_path_factory.mktemp("kafka_mock") / "kafka_mock"
    subprocess.run(["cc", "-O1", "-o", str(out), str(HELPER), *flags.stdout.split()], check=True)
    return out


class KafkaMock:
    """A running three-broker mock cluster; commands go to its standard input."""

    def __init__(self, binary, seconds=300):
        self.p = subprocess.Popen([str(binary), str(seconds)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True, bufsize=1)
        self.bootstrap = self.p.stdout.readline().strip()
        assert self.bootstrap.startswith("127.0.0.1:"), f"kafka_mock printed {self.bootstrap!r}"
        self.lock = threading.Lock()

    def command(self, line):
        with self.lock:
            self.p.stdin.write(line + "\n")
            self.p.stdin.flush()
            reply = self.p.stdout.readline().strip()
        assert reply == "ok", f"kafka_mock: {line}: {reply}"

    def create(self, topic, partitions, replicas=3):
        self.command(f"create {topic} {partitions} {replicas}")

    def url(self, topic):
        return f"kafka://{self.bootstrap}/{topic}"

    def stop(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


@pytest.fixture
def kafka(kafka_mock_bin):
    m = KafkaMock(kafka_mock_bin)
    yield m
    m.stop()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ---------------------------------------------------------------------------------------------
# Reading back with kcat

PROVENANCE = ["mq.mirror.name", "mq.mirror.topic", "mq.mirror.partition", "mq.mirror.offset"]


def _bytes(s):
    """A kcat -J string (raw bytes at and above 0x80, escapes below) back to bytes."""
    return None if s is None else s.encode("utf-8", "surrogateescape")


def kcat_records(kafka, topic):
    """Every committed record of the Kafka topic, in partition order: dicts with partition,
    offset, ts, tstype, key, value (bytes or None) and headers [(name, bytes or None)]."""
    p = subprocess.run(["kcat", "-C", "-b", kafka.bootstrap, "-t", topic, "-e", "-q", "-J",
                        "-X", "isolation.level=read_committed"], capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    out = []
    # One record per "\n": splitlines() would also split at U+0085, U+2028 and the like,
    # which binary keys and values carry raw in kcat's JSON.
    for line in p.stdout.decode("utf-8", "surrogateescape").split("\n"):
        if not line.strip():
            continue
        r = json.loads(line)
        h = r.get("headers") or []
        out.append({"partition": r["partition"], "offset": r["offset"], "ts": r["ts"], "tstype": r["tstype"],
                    "key": _bytes(r["key"]), "value": _bytes(r["payload"]),
                    "headers": [(h[i], _bytes(h[i + 1])) for i in range(0, len(h), 2)]})
    return out


def kcat_raw(kafka, topic):
    """(partition, offset) -> (key, value) read as exact bytes: kcat prints their lengths
    (-1 for null) before them."""
    p = subprocess.run(["kcat", "-C", "-b", kafka.bootstrap, "-t", topic, "-e", "-q",
                        "-X", "isolation.level=read_committed", "-f", "%p %o %K %S:%k%s\n"],
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    data, pos, out = p.stdout, 0, {}
    while pos < len(data):
        colon = data.index(b":", pos)
        part, off, klen, vlen = (int(x) for x in data[pos:colon].split())
        pos = colon + 1
        key = None if klen < 0 else data[pos:pos + klen]
        pos += max(klen, 0)
        value = None if vlen < 0 else data[pos:pos + vlen]
        pos += max(vlen, 0)
        assert data[pos:pos + 1] == b"\n"
        pos += 1
        out[(part, off)] = (key, value)
    return out


def expected_records(mq, topic):
    """(topic, partition, offset) -> envelope, as mq-tail reads the local topic."""
    return {(topic, e["partition"], e["offset"]): e for e in mq.tail_json("-n", "+0", topic)}


def check_topic_matches(mq, kafka, dest, topics, same_partitions=True, name=None):
    """The Kafka topic holds each local record of `topics` exactly once, in order per local
    partition, with its key, value, headers and timestamp, and its provenance last."""
    local = {}
    for t in topics:
        local.update(expected_records(mq, t))
    got = kcat_records(kafka, dest)
    raw = kcat_raw(kafka, dest)
    seen, last = {}, {}
    for r in got:
        names = [n for n, _ in r["headers"][-4:]]
        assert names == PROVENANCE, f"partition {r['partition']} offset {r['offset']}: provenance {r['headers'][-4:]}"
        prov = {n: v.decode() for n, v in r["headers"][-4:]}
        if name is not None:
            assert prov["mq.mirror.name"] == name
        src = (prov["mq.mirror.topic"], int(prov["mq.mirror.partition"]), int(prov["mq.mirror.offset"]))
        assert src not in seen, f"{src} is in Kafka twice (partition {r['partition']} offsets {seen.get(src, {}).get('offset')} and {r['offset']})"
        order = (r["partition"], src[0], src[1])
        assert src[2] > last.get(order, -1), f"{src} after offset {last.get(order)} in Kafka partition {r['partition']}"
        last[order] = src[2]
        if same_partitions:
            assert r["partition"] == src[1]
        seen[src] = r
    assert set(seen) == set(local), (
        f"missing {sorted(set(local) - set(seen))[:10]}, unexpected {sorted(set(seen) - set(local))[:10]}")
    for src, e in local.items():
        r = seen[src]
        assert r["tstype"] == "create" and r["ts"] == e["timestamp"], (src, r["ts"], e["timestamp"])
        key, value = raw[(r["partition"], r["offset"])]
        assert key == mqtest.dec(e["key"]), (src, key, e["key"])
        assert value == mqtest.dec(e["value"]), (src, value, e["value"])
        assert r["headers"][:-4] == [(n, mqtest.dec(v)) for n, v in e["headers"]], (src, r["headers"])
    check_kafka_python_agrees(kafka, dest, got, raw)
    return len(seen)


KAFKA_PYTHON_2 = mqtest.REPO / ".build" / "kafka-python-2.0.2"


def check_kafka_python_agrees(kafka, topic, got, raw):
    """A second independent reader: kafka-python 2.0.2 (kafka-python 3 cannot talk to the
    mock) reads the same records, keys, values, headers and timestamps as kcat."""
    if not (KAFKA_PYTHON_2 / "kafka" / "__init__.py").exists():
        pytest.fail(f"{KAFKA_PYTHON_2} is missing: run scripts/setup.sh")
    partitions = max((r["partition"] for r in got), default=0) + 1
    p = subprocess.run([sys.executable, str(Path(__file__).resolve().parent / "helpers" / "kafka_python_read.py"),
                        str(KAFKA_PYTHON_2), kafka.bootstrap, topic, str(partitions)], capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr.decode(errors="replace")[-2000:]
    theirs = {}
    for line in p.stdout.decode().splitlines():
        r = json.loads(line)
        def b(x):
            return None if x is None else base64.b64decode(x)
        theirs[(r["partition"], r["offset"])] = (b(r["key"]), b(r["value"]), [(n, b(v)) for n, v in r["headers"]], r["timestamp"])
    ours = {(r["partition"], r["offset"]): (*raw[(r["partition"], r["offset"])], r["headers"], r["ts"]) for r in got}
    assert theirs == ours, f"kafka-python reads {len(theirs)} records, kcat {len(ours)}; first difference: " + \
        str(next(((k, theirs.get(k), ours.get(k)) for k in sorted(set(theirs) | set(ours)) if theirs.get(k) != ours.get(k)), None))


def mixed_input(n, seed):
    return mqtest.mirror_input(n, seed, all_kinds=True)


def wait_for_count(kafka, topic, n, timeout=60):
    deadline = time.time() + timeout
    count = -1
    while time.time() < deadline:
        count = len(kcat_raw(kafka, topic))
        if count >= n:
            return count
        time.sleep(0.3)
    return count


# ---------------------------------------------------------------------------------------------


def test_push_forwards_every_message_once_with_keys_headers_and_timestamps(mq, kafka):
    kafka.create("orders", 4)
    mq.create("orders", 4)
    mq.produce("orders", mixed_input(3000, 1), "--json")
    res = mq.run("mq-mirror", "-e", "-v", "-z", "lz4", "orders", kafka.url("orders"), check=0)
    assert "3000 messages forwarded from 4 partitions to Kafka topic 'orders'" in res.stderr
    assert check_topic_matches(mq, kafka, "orders", ["orders"]) == 3000
    # Again: nothing new, nothing sent twice (the second run resumes from Kafka's content
    # and its group alike).
    res = mq.run("mq-mirror", "-e", "-v", "orders", kafka.url("orders"), check=0)
    assert "0 messages forwarded" in res.stderr
    mq.produce("orders", mixed_input(500, 2), "--json")
    mq.run("mq-mirror", "-e", "-z", "zstd", "orders", kafka.url("orders"), check=0)
    assert check_topic_matches(mq, kafka, "orders", ["orders"]) == 3500
    stat = mq.run("mq-stat", "--json", check=0)
    groups = {g["group"] for g in json.loads(stat.stdout)["groups"]}
    assert any(g.startswith("mirror.orders.orders.") for g in groups), groups


def test_a_lost_local_state_resumes_from_what_kafka_holds(mq, kafka):
    """The mirror's group is deleted: Kafka's own content says where each partition resumes."""
    kafka.create("d", 3)
    mq.create("s", 3)
    mq.produce("s", mixed_input(1200, 3), "--json")
    mq.run("mq-mirror", "-e", "--name", "lost", "s", kafka.url("d"), check=0)
    shutil.rmtree(mq.dir / "groups" / "mirror.lost")
    mq.produce("s", mixed_input(300, 4), "--json")
    res = mq.run("mq-mirror", "-e", "-v", "--name", "lost", "s", kafka.url("d"), check=0)
    assert "300 messages forwarded" in res.stderr
    assert check_topic_matches(mq, kafka, "d", ["s"], name="lost") == 1500


def test_several_local_topics_into_one_kafka_topic_and_murmur2(mq, kafka):
    """Two local topics share a Kafka topic (provenance tells them apart); a topic with more
    partitions than Kafka's goes by murmur2 of the key (auto), as Kafka's default partitioner."""
    kafka.create("shared", 2)
    mq.create("a", 2)
    mq.create("b", 2)
    mq.create("wide", 4)
    for t, seed in (("a", 5), ("b", 6), ("wide", 7)):
        mq.produce(t, mixed_input(400, seed), "--json")
    mq.run("mq-mirror", "-e", "--name", "ab", "a", "b", kafka.url("shared"), check=0)
    assert check_topic_matches(mq, kafka, "shared", ["a", "b"]) == 800
    mq.run("mq-mirror", "-e", "--name", "w", "wide", kafka.url("shared"), check=0)
    for t, seed in (("a", 8), ("wide", 9)):
        mq.produce(t, mixed_input(100, seed), "--json")
    mq.run("mq-mirror", "-e", "--name", "ab", "a", "b", kafka.url("shared"), check=0)
    mq.run("mq-mirror", "-e", "--name", "w", "wide", kafka.url("shared"), check=0)
    assert check_topic_matches(mq, kafka, "shared", ["a", "b", "wide"], same_partitions=False) == 1400
    for r in kcat_records(kafka, "shared"):
        prov = {n: v.decode() for n, v in r["headers"][-4:]}
        if prov["mq.mirror.topic"] == "wide":
            want = int(prov["mq.mirror.partition"]) % 2 if r["key"] is None else mqtest.murmur2_partition(r["key"], 2)
            assert r["partition"] == want, (prov, r["key"])
        else:
            assert r["partition"] == int(prov["mq.mirror.partition"])
    # Asking for `same` with too few partitions is a configuration error.
    res = mq.run("mq-mirror", "-e", "--partitioner", "same", "wide", kafka.url("shared"))
    mqtest.assert_error(res, 78, "mq-mirror", "4 partitions", "only 2")


def test_a_mirror_killed_at_any_moment_forwards_each_message_exactly_once(mq, kafka):
    """kill -9 of a following mirror ten times while a producer appends; then a last run.
    Each record is in Kafka once, in order per partition. The brokers answer after 20 ms, so
    that a chunk's transaction takes long enough for kills to land inside it.
    The mock keeps at most 5 MiB (and 100,000 batches) per partition and drops the oldest
    beyond that, so a full-size run spreads the messages over more partitions:
    MQ_MIRROR_MESSAGES=500000 MQ_MIRROR_KILLS=20 MQ_MIRROR_PARTITIONS=32."""
    partitions = int(os.environ.get("MQ_MIRROR_PARTITIONS", "3"))
    kafka.create("logs", partitions)
    for broker in (1, 2, 3):
        kafka.command(f"rtt {broker} 20")
    mq.create("logs", partitions)
    n = int(os.environ.get("MQ_MIRROR_MESSAGES", "10000"))
    rounds = int(os.environ.get("MQ_MIRROR_KILLS", "10"))
    step = n // rounds
    lines = mixed_input(n, 10).splitlines(keepends=True)
    rng = random.Random(11)
    for i in range(rounds):
        producer = mq.start("mq-produce", "--json", "logs")
        m = mq.start("mq-mirror", "logs", kafka.url("logs"), "--name", "k")
        producer.write(b"".join(lines[i * step:(i + 1) * step]))
        producer.close_stdin()
        time.sleep(rng.uniform(0.05, 0.5))
        m.kill()
        assert producer.finish().status == 0
    res = mq.run("mq-mirror", "-e", "logs", kafka.url("logs"), "--name", "k", check=0, timeout=600)
    assert res.status == 0, res.stderr
    assert check_topic_matches(mq, kafka, "logs", ["logs"]) == rounds * step


def test_leader_down_and_injected_errors_keep_exactly_once_in_order(mq, kafka):
    """While a mirror follows: Produce requests fail with NOT_LEADER_FOR_PARTITION and
    REQUEST_TIMED_OUT, then the leader of partition 0 goes down and its leadership moves.
    Everything arrives once, in order per partition."""
    kafka.create("ev", 4)
    for p in range(4):
        kafka.command(f"leader ev {p} {p % 3 + 1}")
    mq.create("ev", 4)
    data = mixed_input(4000, 12).splitlines(keepends=True)
    mq.produce("ev", b"".join(data[:1000]), "--json")
    m = mq.start("mq-mirror", "ev", kafka.url("ev"), "--timeout", "120s")
    assert wait_for_count(kafka, "ev", 1000) == 1000
    kafka.command("errors 0 6 7 6 7 7")
    mq.produce("ev", b"".join(data[1000:2000]), "--json")
    time.sleep(1.0)
    kafka.command("down 1")
    mq.produce("ev", b"".join(data[2000:3000]), "--json")
    time.sleep(0.5)
    kafka.command("leader ev 0 2")
    time.sleep(1.5)
    kafka.command("up 1")
    mq.produce("ev", b"".join(data[3000:]), "--json")
    assert wait_for_count(kafka, "ev", 4000, timeout=90) >= 4000, m.err.snapshot()[-2000:]
    m.p.send_signal(signal.SIGTERM)
    assert m.p.wait(30) == 143
    assert check_topic_matches(mq, kafka, "ev", ["ev"]) == 4000


def test_sigterm_stops_with_143_and_the_next_run_goes_on(mq, kafka):
    kafka.create("t", 2)
    mq.create("t", 2)
    mq.produce("t", mixed_input(5000, 13), "--json")
    m = mq.start("mq-mirror", "t", kafka.url("t"))
    time.sleep(0.5)
    m.p.send_signal(signal.SIGTERM)
    res = m.finish(30)
    assert res.status == 143, res.stderr
    assert "stopped by SIGTERM" in res.stderr
    mq.run("mq-mirror", "-e", "t", kafka.url("t"), check=0)
    assert check_topic_matches(mq, kafka, "t", ["t"]) == 5000


def test_unknown_topic_and_create(mq, kafka):
    mq.create("t", 3)
    mq.produce("t", b"a\n")
    res = mq.run("mq-mirror", "-e", "t", kafka.url("nope"))
    mqtest.assert_error(res, 66, "mq-mirror", "Kafka topic 'nope' does not exist", "--create")
    # The mock cluster has no controller, so CreateTopics cannot succeed there: --create is
    # tried (through the admin API) and reported until --timeout.
    res = mq.run("mq-mirror", "-e", "--create", "--timeout", "3s", "t", kafka.url("made"))
    mqtest.assert_error(res, 69, "mq-mirror", "cannot create Kafka topic 'made'", "--timeout")
    # No local topic: 66 before anything is sent.
    kafka.create("there", 1)
    res = mq.run("mq-mirror", "-e", "nosuchtopic", kafka.url("there"))
    assert res.status == 66 and "nosuchtopic" in res.stderr, res


def test_bad_properties_are_usage_errors(mq, kafka, tmp_path):
    kafka.create("p", 1)
    mq.create("t", 1)
    mq.produce("t", b"a\nb\n")
    res = mq.run("mq-mirror", "-e", "-X", "no.such.property=1", "t", kafka.url("p"))
    mqtest.assert_error(res, 64, "mq-mirror", "unknown librdkafka property 'no.such.property'", "-X")
    res = mq.run("mq-mirror", "-e", "-X", "linger.ms=soon", "t", kafka.url("p"))
    mqtest.assert_error(res, 64, "mq-mirror", "linger.ms")
    res = mq.run("mq-mirror", "-e", "-X", "linger.ms", "t", kafka.url("p"))
    mqtest.assert_error(res, 64, "mq-mirror", "key=value")
    bad = tmp_path / "bad.properties"
    bad.write_text("# settings\n\nlinger.ms=5\nthis line has no equals sign\n")
    res = mq.run("mq-mirror", "-e", "-F", bad, "t", kafka.url("p"))
    mqtest.assert_error(res, 64, "mq-mirror", f"{bad}:4")
    unknown = tmp_path / "unknown.properties"
    unknown.write_text("linger.ms = 5\nsasl.nonsense=1\n")
    res = mq.run("mq-mirror", "-e", "-F", unknown, "t", kafka.url("p"))
    mqtest.assert_error(res, 64, "mq-mirror", f"{unknown}:2", "sasl.nonsense")
    res = mq.run("mq-mirror", "-e", "-F", tmp_path / "missing", "t", kafka.url("p"))
    mqtest.assert_error(res, 66, "mq-mirror", "missing")
    good = tmp_path / "good.properties"
    good.write_text("# a comment\n  linger.ms = 1  \n\nmessage.timeout.ms=30000\n")
    res = mq.run("mq-mirror", "-e", "-v", "-F", good, "-X", "linger.ms=2", "t", kafka.url("p"), check=0)
    assert "2 messages forwarded" in res.stderr


def test_bad_destinations_and_flags_are_usage_errors(mq, kafka):
    mq.create("t", 1)
    mq.produce("t", b"a\n")
    for bad in ("kafka://127.0.0.1:9092", "kafka:///t", "kafka://h:0/t", "kafka://h:99999/t", "kafka://h:x/t",
                "kafka://h/bad name", "kafka://h/a/b", "kafka://h,/t", "kafka://h/.."):
        res = mq.run("mq-mirror", "-e", "t", bad)
        assert res.status == 64, (bad, res)
    res = mq.run("mq-mirror", "-e", "--creds", "/dev/null", "t", kafka.url("x"))
    assert res.status == 64 and "NATS destinations only" in res.stderr, res
    res = mq.run("mq-mirror", "-e", "-X", "linger.ms=1", "t", "nats://127.0.0.1:4222/S")
    assert res.status == 64 and "Kafka destinations only" in res.stderr, res
    res = mq.run("mq-mirror", "-e", "--partitioner", "random", "t", kafka.url("x"))
    assert res.status == 64, res


def test_unreachable_brokers_give_up_after_the_timeout_with_69(mq):
    mq.create("t", 1)
    mq.produce("t", b"a\n")
    start = time.time()
    res = mq.run("mq-mirror", "-e", "--timeout", "2s", "t", f"kafka://127.0.0.1:{free_port()}/t")
    assert res.status == 69, res
    assert "--timeout" in res.stderr
    assert time.time() - start < 30
    # At most one line per attempt, and attempts are paced: not librdkafka's own log.
    assert len(res.stderr.splitlines()) <= 10, res.stderr


def test_a_record_too_large_for_kafka_stops_with_65_after_the_ones_before(mq, kafka):
    kafka.create("big", 1)
    mq.create("big", 1)
    mq.produce("big", b"".join(jline(f"small{i}") for i in range(5)), "--json")
    mq.produce("big", jline("x" * 50_000), "--json")
    mq.produce("big", b"".join(jline(f"after{i}") for i in range(3)), "--json")
    args = ["-e", "-X", "message.max.bytes=20000", "big", kafka.url("big")]
    res = mq.run("mq-mirror", *args)
    mqtest.assert_error(res, 65, "mq-mirror", "partition 0 offset 5 of 'big'")
    assert sorted(v for _, v in kcat_raw(kafka, "big").values()) == sorted(f"small{i}".encode() for i in range(5))
    res = mq.run("mq-mirror", *args)
    assert res.status == 65
    assert len(kcat_raw(kafka, "big")) == 5


def test_retention_keeps_what_the_mirror_has_not_forwarded(mq, kafka):
    """Old messages past retention.ms that the mirror has not forwarded stay until it has."""
    kafka.create("r", 1)
    mq.create("r", 1, "segment.bytes=1024", "retention.ms=3600000")
    old = int(time.time() * 1000) - 86_400_000
    mq.produce("r", b"".join(jline(f"a{i}", timestamp=old) for i in range(100)), "--json", "--batch-messages", "5")
    mq.run("mq-mirror", "-e", "r", kafka.url("r"), check=0)
    mq.produce("r", b"".join(jline(f"b{i}", timestamp=old) for i in range(200)), "--json", "--batch-messages", "5")
    mq.produce("r", b"".join(jline(f"c{i}") for i in range(10)), "--json")
    mq.run("mq-compact", "r", check=0)
    kept = [e["offset"] for e in mq.tail_json("-n", "+0", "r")]
    assert kept[0] <= 100, f"retention deleted offsets up to {kept[0]}, which the mirror had not forwarded"
    mq.run("mq-mirror", "-e", "r", kafka.url("r"), check=0)
    offsets = [int(dict(r["headers"])["mq.mirror.offset"]) for r in kcat_records(kafka, "r")]
    assert offsets == list(range(310))
    mq.run("mq-compact", "r", check=0)
    assert mq.tail_json("-n", "+0", "r")[0]["offset"] > 100
