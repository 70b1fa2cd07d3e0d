"""mq against Kafka's format: logs written by kafka-python and by a real broker are read by
mq-tail, what mq writes is read by kafka-python, and a topic survives a JSON copy exactly."""

import json
import shutil
import struct
import subprocess
import sys

import pytest

import kafka_write as kw
from mqtest import (EX_DATAERR, FIXTURES, INTEROP, assert_error, dec, envelope_message, jline,
                    record_message)

ALL_BYTES = bytes(range(256))
SEG = "00000000000000000000"
NAMES = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta"]


def install_partition(mq, topic: str, src, partitions: int = 1, partition: int = 0):
    """Put a Kafka partition directory's segments into DIR/topics/<topic>/<partition>/."""
    tdir = mq.topic_dir(topic)
    tdir.mkdir(parents=True, exist_ok=True)
    (tdir / "topic.properties").write_text(f"partitions={partitions}\n")
    dst = tdir / str(partition)
    dst.mkdir()
    for f in src.iterdir():
        if f.suffix in (".log", ".index", ".timeindex"):
            shutil.copyfile(f, dst / f.name)
    for p in range(partitions):
        (tdir / str(p)).mkdir(exist_ok=True)
    return dst


SPECIAL = [
    # (key, value, headers)
    (b"k", b"plain", [("h", b"1")]),
    (None, b"null key", []),
    (b"null value", None, []),
    (b"empty value", b"", []),
    (b"", b"empty key", []),
    (ALL_BYTES[::-1], ALL_BYTES, [("bin", ALL_BYTES), ("bin", None), ("bin", b"")]),
    ("ключ ✓".encode(), "значение 日本語 🎉".encode(), [("ü", "ö".encode())]),
    (b"\xff\xfe", b"\x80 not utf8", [("dup", b"a"), ("dup", b"a")]),
    (None, None, []),
    (b"nl", b"line\nbreak\r\n\x00", []),
]


def produce_special(mq, topic, partition=None, base_ts=1700000000000):
    data = b"".join(jline(v, key=k, headers=h, timestamp=base_ts + i,
                          **({} if partition is None else {"partition": partition}))
                    for i, (k, v, h) in enumerate(SPECIAL))
    mq.produce(topic, data, "--json")


def test_special_records_exact(mq):
    produce_special(mq, "sp")
    recs = mq.records("sp")
    assert [(r.key, r.value, r.headers) for r in recs] == SPECIAL
    envs = mq.tail_json("sp", "--from", "beginning")
    assert [envelope_message(e) for e in envs] == [record_message(r) for r in recs]
    # UTF-8 comes back as a JSON string, anything else as {"base64"}.
    assert envs[6]["key"] == "ключ ✓" and envs[6]["value"] == "значение 日本語 🎉"
    assert isinstance(envs[5]["value"], dict) and isinstance(envs[7]["key"], dict)
    assert envs[8]["key"] is None and envs[8]["value"] is None
    assert envs[3]["value"] == "" and envs[4]["key"] == ""


def test_json_pipe_copies_topic_exactly(mq):
    mq.create("A", 3)
    for p in range(3):
        produce_special(mq, "A", partition=p, base_ts=1700000000000 + p * 100)
    mq.produce("A", b"".join(b"bulk %d\n" % i for i in range(40)), "-p", "1")
    mq.create("B", 3)
    tail = subprocess.Popen(mq.argv("mq-tail", ["A", "--json", "--from", "beginning"]),
                            stdout=subprocess.PIPE, env=mq.env())
    prod = subprocess.run(mq.argv("mq-produce", ["B", "--json"]), stdin=tail.stdout,
                          capture_output=True, env=mq.env(), timeout=120)
    tail.stdout.close()
    assert tail.wait(60) == 0
    assert prod.returncode == 0, prod.stderr.decode()
    a = [record_message(r) for r in mq.records("A")]
    b = [record_message(r) for r in mq.records("B")]
    assert len(a) == 3 * len(SPECIAL) + 40
    assert b == a
    dump_a = [json.loads(l) for l in mq.validate_cli("--dump", mq.topic_dir("A")).out.splitlines()]
    dump_b = [json.loads(l) for l in mq.validate_cli("--dump", mq.topic_dir("B")).out.splitlines()]
    strip = lambda d: {k: v for k, v in d.items() if k not in ("file", "codec")}
    assert [strip(d) for d in dump_a] == [strip(d) for d in dump_b]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_every_codec_identical_records(mq, codec):
    data = b"".join(jline(v, key=k, headers=h, timestamp=1700000000000 + i)
                    for i, (k, v, h) in enumerate(SPECIAL * 5))
    mq.produce("cz", data, "--json", "-z", codec)
    res = mq.validate_cli(mq.topic_dir("cz"))
    assert res.status == 0, res.stderr
    recs = mq.records("cz")
    assert {r.codec for r in recs} == {codec}
    assert [(r.key, r.value, r.headers) for r in recs] == SPECIAL * 5
    envs = mq.tail_json("cz", "-n", "+0")
    assert [envelope_message(e) for e in envs] == [record_message(r) for r in recs]


def _expected_from_jsonl(path):
    import base64
    out = []
    for line in path.read_text().splitlines():
        d = json.loads(line)
        unb = lambda s: None if s is None else base64.b64decode(s)
        out.append((0, d["offset"], d["timestamp"], unb(d["key_b64"]), unb(d["value_b64"]),
                    [(n, unb(v)) for n, v in d["headers"]]))
    return out


@pytest.mark.parametrize("with_index", [False, True], ids=["no-index", "kafka-index"])
def test_tail_reads_kafka_python_segments(mq, tmp_path, with_index):
    src = tmp_path / "kw"
    kw.write_partition(src, with_index=with_index)
    part = install_partition(mq, "kp", src)
    before = (part / f"{SEG}.log").read_bytes()
    expected = _expected_from_jsonl(src / "expected.jsonl")
    envs = mq.tail_json("kp", "--from", "beginning")
    assert [envelope_message(e) for e in envs] == expected
    assert all(e["topic"] == "kp" for e in envs)
    # Selections work on segments mq did not write, with or without index files.
    mid = len(expected) // 2
    envs = mq.tail_json("kp", "-n", f"+{mid + 1}", "-c", "3")
    assert [envelope_message(e) for e in envs] == expected[mid:mid + 3]
    envs = mq.tail_json("kp", "-n", "4")
    assert [envelope_message(e) for e in envs] == expected[-4:]
    assert (part / f"{SEG}.log").read_bytes() == before  # reading never rewrites the log


def test_produce_appends_to_kafka_python_segments(mq, tmp_path):
    src = tmp_path / "kw"
    expected = kw.write_partition(src)
    install_partition(mq, "ka", src)
    n = len(expected)
    res = mq.produce("ka", b"appended 1\nappended 2\n", "--print-offsets")
    assert res.stdout == f"0 {n}\n0 {n + 1}\n".encode()
    recs = mq.records("ka")
    assert [r.offset for r in recs] == list(range(n + 2))
    assert [r.value for r in recs[-2:]] == [b"appended 1", b"appended 2"]
    assert mq.tail("ka", "-n", "2").stdout == b"appended 1\nappended 2\n"


@pytest.mark.parametrize("fixture,src,count", [
    ("v2-v2", "kafka-go/v2-v2/test-lucid-0", 4),
    ("v2c-v2c", "kafka-go/v2c-v2c/test-oneiric-0", 4),
    ("v2c-v2-v2c", "kafka-go/v2c-v2-v2c/test-natty-0", 6),
])
def test_tail_reads_real_broker_segments(mq, fixture, src, count):
    install_partition(mq, fixture, FIXTURES / src)
    envs = mq.tail_json(fixture, "--from", "beginning")
    assert [e["offset"] for e in envs] == list(range(count))
    assert [e["key"] for e in envs] == NAMES[:count]
    for e in envs:
        letter = "abcdefghij"[NAMES.index(e["key"])]
        assert json.loads(e["value"]) == {"count": 0, "filler": letter * 10}
        assert e["headers"] == []
    assert [envelope_message(e) for e in envs] == [record_message(r) for r in mq.records(fixture)]
    res = mq.tail(fixture, "-n", "2", "--format", "%k=%s\\n")
    assert res.out.splitlines()[-1] == NAMES[count - 1] + '={"count":0,"filler":"' + \
        "abcdefghij"[count - 1] * 10 + '"}'


def test_tail_reads_not_kafka_written_segment(mq):
    install_partition(mq, "meta", FIXTURES / "not-kafka-written" / "__cluster_metadata-0")
    envs = mq.tail_json("meta", "--from", "beginning")
    assert [envelope_message(e) for e in envs] == [record_message(r) for r in mq.records("meta")]
    assert len(envs) == 4 and all(e["key"] is None for e in envs)


def test_old_message_format_reported(mq):
    install_partition(mq, "old", FIXTURES / "kafka-go" /
                      "v1-v1c-v2-v2c-v2b-v2b-v2b-v2bc-v1b-v1bc" / "test-88-0")
    res = mq.run("mq-tail", "old", "--from", "beginning")
    assert_error(res, EX_DATAERR, "mq-tail", "magic")


def test_produce_to_real_broker_segment_continues_offsets(mq):
    install_partition(mq, "natty", FIXTURES / "kafka-go/v2c-v2-v2c/test-natty-0")
    res = mq.produce("natty", b"eta-value\n", "-k", "eta", "--print-offsets")
    assert res.stdout == b"0 6\n"
    recs = mq.records("natty")
    assert [r.key for r in recs] == [n.encode() for n in NAMES] + [b"eta"]


def test_corrupt_segment_reported(mq):
    mq.produce("cr", b"".join(b"message %d\n" % i for i in range(20)), "--batch-messages", "5")
    [part] = mq.validate("cr")
    seg = part.segments[0]
    victim = part.batches[2]
    data = bytearray(seg.path.read_bytes())
    data[victim.position + victim.size - 3] ^= 0x55
    seg.path.write_bytes(bytes(data))
    res = mq.run("mq-tail", "cr", "-n", "+0")
    assert_error(res, EX_DATAERR, "mq-tail", seg.path.name)
    assert str(victim.position) in res.stderr, "the message names the byte position"


def test_partial_batch_at_end_is_ignored_by_tail_and_repaired_by_produce(mq):
    """A writer that died mid-append leaves a torn last batch: readers stop before it and the
    next producer truncates it away."""
    mq.produce("torn", b"a\nb\nc\n")
    [part] = mq.validate("torn")
    seg = part.segments[0].path
    good = seg.read_bytes()
    torn = kw.encode_batch("none", 3, [1700000000000] * 2, [(None, b"lost", [])] * 2)
    seg.write_bytes(good + torn[:len(torn) // 2])
    assert mq.tail("torn", "-n", "+0").stdout == b"a\nb\nc\n"
    res = mq.produce("torn", b"d\n", "--print-offsets")
    assert res.stdout == b"0 3\n"
    assert mq.values("torn") == [b"a", b"b", b"c", b"d"]
    assert mq.validate_cli(mq.topic_dir("torn")).status == 0


def test_validator_cli_on_mq_log_dir(mq):
    """kafka_validate accepts a whole mq log directory (all topics, all partitions)."""
    mq.create("v1", 3)
    mq.produce("v1", b"".join(b"%d\n" % i for i in range(30)))
    mq.produce("v2", b"x\n", "-z", "gzip")
    res = mq.validate_cli(mq.dir)
    assert res.status == 0, res.stderr
    res = subprocess.run([sys.executable, str(INTEROP / "kafka_validate.py"), "--dump",
                          str(mq.dir)], capture_output=True, timeout=120)
    assert len(res.stdout.splitlines()) == 31
