"""mq-produce input framings and options, mq-tail selections and output formats.

What mq-produce writes is read back twice: with kafka-python (independent of mq) and with
mq-tail.
"""

import base64
import json
import random
import time

import pytest

from mqtest import (EX_DATAERR, EX_NOINPUT, EX_USAGE, assert_error, b64, dec, envelope_message,
                    jline, murmur2_partition)

ALL_BYTES = bytes(range(256))


def kv_pairs(mq, topic, partition=None):
    return [(r.key, r.value) for r in mq.records(topic, partition)]


# --- framings ---------------------------------------------------------------------------------


def test_lines_round_trip(mq):
    mq.produce("t", b"one\ntwo\nthree\n")
    assert kv_pairs(mq, "t") == [(None, b"one"), (None, b"two"), (None, b"three")]
    assert mq.tail("t").stdout == b"one\ntwo\nthree\n"
    assert mq.properties("t")["partitions"] == "1"


def test_last_line_without_newline(mq):
    mq.produce("t", b"a\nb")
    assert mq.values("t") == [b"a", b"b"]


def test_lines_keep_bytes_exactly(mq):
    lines = [b"tab\there", b"cr at end\r", b"nul\x00inside", b"utf8 \xe2\x9c\x93",
             b"latin1 \xe9 not utf8", bytes(range(0x0B, 256))]
    mq.produce("t", b"\n".join(lines) + b"\n")
    assert mq.values("t") == lines
    assert mq.tail("t").stdout == b"\n".join(lines) + b"\n"


@pytest.mark.parametrize("delim,sep", [(";", b";"), ("\\t", b"\t"), ("\\x1e", b"\x1e"),
                                       ("\\0", b"\x00"), ("\\n", b"\n"), ("|", b"|")])
def test_delimiter(mq, delim, sep):
    msgs = [b"first", b"second has a\nnewline" if sep != b"\n" else b"second", b"third"]
    mq.produce("t", sep.join(msgs) + sep, "-d", delim)
    assert mq.values("t") == msgs
    assert mq.tail("t", "-d", delim).stdout == sep.join(msgs) + sep


def test_delimiter_without_trailing(mq):
    mq.produce("t", b"a;b;c", "-d", ";")
    assert mq.values("t") == [b"a", b"b", b"c"]


def test_nul_separated(mq):
    msgs = [b"a", b"b\nstill b", b"c\tc", b"\xff\xfe"]
    mq.produce("t", b"\x00".join(msgs) + b"\x00", "-0")
    assert mq.values("t") == msgs
    assert mq.tail("t", "-0").stdout == b"\x00".join(msgs) + b"\x00"


def test_whole_input_is_one_message(mq):
    blob = ALL_BYTES * 40 + b"\n\n\x00trailing newline\n"
    mq.produce("t", blob, "--whole")
    assert mq.values("t") == [blob]
    res = mq.tail("t", "-0")
    assert res.stdout == blob + b"\x00"


def test_key_split(mq):
    mq.produce("t", b"k1:v1\nno delimiter here\nk2:v:with:colons\n:empty key\nk3:\n", "-K", ":")
    assert kv_pairs(mq, "t") == [(b"k1", b"v1"), (None, b"no delimiter here"),
                                 (b"k2", b"v:with:colons"), (b"", b"empty key"), (b"k3", b"")]


def test_key_split_escaped_delimiter(mq):
    mq.produce("t", b"k1\tv1\nk2\tv2\n", "-K", "\\t")
    assert kv_pairs(mq, "t") == [(b"k1", b"v1"), (b"k2", b"v2")]


def test_fixed_key(mq):
    mq.produce("t", b"a\nb\n", "-k", "the-key")
    assert kv_pairs(mq, "t") == [(b"the-key", b"a"), (b"the-key", b"b")]


def test_headers(mq):
    mq.produce("t", b"a\nb\n", "-H", "trace=1", "-H", "trace=2", "-H", "eq=x=y", "-H", "empty=")
    recs = mq.records("t")
    assert [r.value for r in recs] == [b"a", b"b"]
    for r in recs:
        assert r.headers == [("trace", b"1"), ("trace", b"2"), ("eq", b"x=y"), ("empty", b"")]


def test_headers_with_key_split(mq):
    mq.produce("t", b"k:v\n", "-K", ":", "-H", "h=1")
    [r] = mq.records("t")
    assert (r.key, r.value, r.headers) == (b"k", b"v", [("h", b"1")])


def test_json_input(mq):
    mq.create("t", 2)
    lines = [
        jline("v", key="k", headers=[("h1", b"x"), ("h1", None), ("h2", b"\xff")], partition=0),
        jline(None, key=None, partition=0),
        jline(b"", key=b"", partition=0),
        jline(ALL_BYTES, key=b"\x00\x01\x02", partition=0),
        jline("text ✓ ünïcödé", timestamp=1600000000000, partition=0),
        jline("to p1", partition=1, timestamp=1600000000001),
        b'{"value": {"base64": "aGVsbG8="}, "key": "b64 for utf8 is fine", "partition": 0}\n',
    ]
    mq.produce("t", b"".join(lines), "--json")
    p0 = mq.records("t", 0)
    got = [(r.key, r.value, r.headers) for r in p0]
    assert got == [
        (b"k", b"v", [("h1", b"x"), ("h1", None), ("h2", b"\xff")]),
        (None, None, []),
        (b"", b"", []),
        (b"\x00\x01\x02", ALL_BYTES, []),
        (None, "text ✓ ünïcödé".encode(), []),
        (b"b64 for utf8 is fine", b"hello", []),
    ], got
    assert p0[4].timestamp == 1600000000000
    now = time.time() * 1000
    assert abs(p0[0].timestamp - now) < 120_000, "default timestamp is the current time"
    [p1] = mq.records("t", 1)
    assert (p1.value, p1.timestamp) == (b"to p1", 1600000000001)


def test_json_output_envelope(mq):
    mq.produce("t", jline("v1", key="k1", headers=[("a", b"1"), ("b", None)],
                          timestamp=1700000000123) + jline(b"\xff\x00", key=None), "--json")
    res = mq.tail("t", "--json")
    [a, b] = [json.loads(line) for line in res.stdout.splitlines()]
    assert a == {"topic": "t", "partition": 0, "offset": 0, "timestamp": 1700000000123,
                 "key": "k1", "value": "v1", "headers": [["a", "1"], ["b", None]]}
    assert set(b) == set(a)
    assert b["key"] is None and b["value"] == {"base64": base64.b64encode(b"\xff\x00").decode()}
    assert b["offset"] == 1 and b["headers"] == []


def test_format_tokens(mq):
    mq.produce("fmt", jline("v1", key="k1", headers=[("a", b"1"), ("b", b"2")],
                            timestamp=1700000000123)
               + jline("value two", key=None, timestamp=1700000000456), "--json")
    res = mq.tail("fmt", "--format", "%t|%p|%o|%k|%s|%T|%h|%K|%S\\n")
    assert res.stdout.split(b"\n")[0] == b"fmt|0|0|k1|v1|1700000000123|a=1,b=2|2|2"
    second = res.stdout.split(b"\n")[1].split(b"|")
    assert second[:6] == [b"fmt", b"0", b"1", b"", b"value two", b"1700000000456"]
    assert second[7:] == [b"-1", b"9"]  # kcat prints -1 as the length of a null key
    assert res.stdout.endswith(b"\n") and res.stdout.count(b"\n") == 2
    res = mq.tail("fmt", "--format", "%o\\t%s;")
    assert res.stdout == b"0\tv1;1\tvalue two;"


# --- producer options -------------------------------------------------------------------------


def test_print_offsets(mq):
    mq.create("po", 3)
    res = mq.produce("po", b"a\nb\nc\n", "--print-offsets")
    lines = [tuple(map(int, line.split())) for line in res.stdout.decode().splitlines()]
    assert len(lines) == 3 and all(0 <= p < 3 for p, _ in lines)
    for p in range(3):  # each partition's offsets count up from 0 in input order
        assert [o for q, o in lines if q == p] == list(range(sum(q == p for q, _ in lines)))
    res2 = mq.produce("po", b"x\ny\n", "--print-offsets", "-p", "2")
    first_p2 = sum(1 for p, _ in lines if p == 2)
    assert res2.stdout == f"2 {first_p2}\n2 {first_p2 + 1}\n".encode()
    # Every printed (partition, offset) holds the message printed for it.
    got = {(int(r.partition_dir.rsplit("/", 1)[1]), r.offset): r.value for r in mq.records("po")}
    for (p, o), v in zip(lines + [(2, first_p2), (2, first_p2 + 1)], [b"a", b"b", b"c", b"x", b"y"]):
        assert got[(p, o)] == v


def test_offsets_continue_across_runs(mq):
    for i in range(5):
        res = mq.produce("c", f"run{i}-a\nrun{i}-b\n".encode(), "--print-offsets")
        assert res.stdout == f"0 {2 * i}\n0 {2 * i + 1}\n".encode()
    assert [r.offset for r in mq.records("c")] == list(range(10))


def test_keyed_partitioner_matches_kafka(mq):
    n = 7
    mq.create("keyed", n)
    keys = [f"user-{i}".encode() for i in range(150)] + \
           [f"ключ-{i}-{'x' * (i % 9)}".encode() for i in range(50)]
    data = b"".join(k + b":" + b"value-" + str(i).encode() + b"\n" for i, k in enumerate(keys))
    res = mq.produce("keyed", data, "-K", ":", "--print-offsets")
    printed = [int(line.split()[0]) for line in res.stdout.decode().splitlines()]
    expected = [murmur2_partition(k, n) for k in keys]
    assert printed == expected
    assert len(set(expected)) == n  # the keys really spread over all partitions
    for p in range(n):
        assert [r.key for r in mq.records("keyed", p)] == [k for k, e in zip(keys, expected) if e == p]


def test_fixed_key_and_json_key_partitioning(mq):
    mq.create("k2", 5)
    mq.produce("k2", b"a\nb\n", "-k", "same")
    want = murmur2_partition(b"same", 5)
    assert [r.value for r in mq.records("k2", want)] == [b"a", b"b"]
    mq.produce("k2", jline("j", key="other-key"), "--json")
    assert mq.records("k2", murmur2_partition(b"other-key", 5))[-1].value == b"j"


def test_explicit_partition(mq):
    mq.create("ep", 3)
    mq.produce("ep", b"x\ny\n", "-p", "1")
    assert mq.values("ep", 1) == [b"x", b"y"]
    assert mq.values("ep", 0) == [] and mq.values("ep", 2) == []


def test_auto_create_and_no_create(mq):
    assert_error(mq.run("mq-produce", "nope", "--no-create", input=b"x\n"), EX_NOINPUT,
                 "mq-produce", "nope")
    assert not mq.topic_dir("nope").exists()
    mq.produce("auto4", b"x\n", "--partitions", "4")
    assert mq.properties("auto4")["partitions"] == "4"
    mq.produce("auto1", b"x\n")
    assert mq.properties("auto1")["partitions"] == "1"
    mq.produce("auto1", b"y\n", "--no-create")
    assert mq.values("auto1") == [b"x", b"y"]


@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_codecs(mq, codec):
    lines = [f"{codec} message {i:05d} ".encode() + b"compressible text " * 8 for i in range(300)]
    lines.append(bytes(b for b in ALL_BYTES if b != 0x0A))
    mq.produce("z", b"\n".join(lines) + b"\n", "-z", codec)
    res = mq.validate_cli(mq.topic_dir("z"))
    assert res.status == 0, res.stderr
    recs = mq.records("z")
    assert [r.value for r in recs] == lines
    assert {r.codec for r in recs} == {codec}
    assert mq.tail("z", "-n", "+0").stdout == b"\n".join(lines) + b"\n"


def test_topic_compression_type_is_the_default(mq):
    mq.create("zc", 1, "compression.type=zstd")
    mq.produce("zc", b"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n" * 50)
    assert {r.codec for r in mq.records("zc")} == {"zstd"}


def test_batch_messages(mq):
    mq.produce("b1", b"".join(b"m%d\n" % i for i in range(50)), "--batch-messages", "1")
    [part] = mq.validate("b1")
    assert len(part.batches) == 50
    assert all(b.records_count == 1 for b in part.batches)

    mq.produce("b10", b"".join(b"m%d\n" % i for i in range(95)), "--batch-messages", "10")
    [part] = mq.validate("b10")
    assert all(b.records_count <= 10 for b in part.batches)
    assert len(part.batches) >= 10
    assert [r.value for r in part.records] == [b"m%d" % i for i in range(95)]


def test_batch_bytes(mq):
    lines = [b"%03d " % i + b"x" * 96 for i in range(100)]
    mq.produce("bb", b"\n".join(lines) + b"\n", "--batch-bytes", "2000")
    [part] = mq.validate("bb")
    assert len(part.batches) >= 5
    for b in part.batches:
        assert b.records_count == 1 or b.size <= 2000 + 61, b
    assert [r.value for r in part.records] == lines


@pytest.mark.parametrize("mode", ["exit", "batch", "none"])
def test_sync_modes(mq, mode):
    res = mq.produce("s", b"".join(b"%d\n" % i for i in range(20)), "--sync", mode,
                     "--print-offsets")
    assert res.stdout == b"".join(b"0 %d\n" % i for i in range(20))
    assert mq.values("s") == [b"%d" % i for i in range(20)]


def test_linger_flushes_while_stdin_stays_open(mq):
    prod = mq.start("mq-produce", "lg", "--print-offsets", "--linger", "50ms")
    prod.write(b"early\n")
    assert prod.out.wait_for(lambda d: d == b"0 0\n", 5), \
        f"offset not printed while stdin open: {prod.err.snapshot()!r}"
    assert mq.tail("lg").stdout == b"early\n"
    prod.write(b"late\n")
    prod.close_stdin()
    res = prod.finish(30)
    assert res.status == 0 and res.stdout == b"0 0\n0 1\n", res


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [b'{"value": "unterminated"\n', b"not json at all\n",
                                 b'{"value": {"base64": "***"}}\n', b'["value", "x"]\n'],
                         ids=["truncated", "text", "bad-base64", "array"])
def test_malformed_json_line(mq, bad):
    good = [jline(f"good {i}") for i in range(1, 3)]
    data = b"".join(good) + bad + jline("after")
    res = mq.run("mq-produce", "j", "--json", input=data)
    assert_error(res, EX_DATAERR, "mq-produce", "line 3")
    assert mq.values("j") == [b"good 1", b"good 2"]
    assert mq.tail("j").stdout == b"good 1\ngood 2\n"


def test_malformed_json_first_line_large_input(mq):
    data = b"".join(jline(f"ok {i}") for i in range(1, 5000)) + b"{oops\n" + jline("never")
    res = mq.run("mq-produce", "j2", "--json", input=data)
    assert_error(res, EX_DATAERR, "mq-produce", "line 5000")
    assert mq.values("j2") == [f"ok {i}".encode() for i in range(1, 5000)]


def test_skip_bad(mq):
    data = jline("one") + b"{broken\n" + jline("three") + b"nope\n" + jline("five")
    res = mq.run("mq-produce", "sb", "--json", "--skip-bad", input=data)
    assert res.status == 0, res
    assert res.stderr.startswith("mq-produce: ")
    assert "line 2" in res.stderr and "line 4" in res.stderr
    assert mq.values("sb") == [b"one", b"three", b"five"]


def test_message_too_large(mq):
    mq.create("big", 1, "max.message.bytes=1000")
    data = b"small\n" + b"x" * 5000 + b"\nafter\n"
    res = mq.run("mq-produce", "big", input=data)
    assert_error(res, EX_DATAERR, "mq-produce", "line 2")
    assert mq.values("big") == [b"small"]
    res = mq.run("mq-produce", "big", "--skip-bad", input=data)
    assert res.status == 0 and "line 2" in res.stderr
    assert mq.values("big") == [b"small", b"small", b"after"]


def test_default_max_message_bytes(mq):
    mq.produce("dm", b"y" * 1_000_000 + b"\n")
    res = mq.run("mq-produce", "dm", input=b"ok\n" + b"z" * 1_100_000 + b"\n")
    assert_error(res, EX_DATAERR, "mq-produce", "line 2")
    assert [len(v) for v in mq.values("dm")] == [1_000_000, 2]


# --- tail selections --------------------------------------------------------------------------


@pytest.fixture
def t25(mq):
    mq.produce("t25", b"".join(b"m%d\n" % i for i in range(25)))
    return "t25"


def lines_of(res):
    return res.stdout.decode().splitlines()


def test_tail_default_last_10(mq, t25):
    assert lines_of(mq.tail(t25)) == [f"m{i}" for i in range(15, 25)]


def test_tail_n(mq, t25):
    assert lines_of(mq.tail(t25, "-n", "3")) == ["m22", "m23", "m24"]
    assert lines_of(mq.tail(t25, "-n", "0")) == []
    assert lines_of(mq.tail(t25, "-n", "100")) == [f"m{i}" for i in range(25)]


def test_tail_n_plus(mq, t25):
    """-n +N counts as tail -n +N does: +1 is the first message, +0 as +1 (issue 14 §3)."""
    assert lines_of(mq.tail(t25, "-n", "+20")) == [f"m{i}" for i in range(19, 25)]
    assert lines_of(mq.tail(t25, "-n", "+1")) == [f"m{i}" for i in range(25)]
    assert lines_of(mq.tail(t25, "-n", "+0")) == [f"m{i}" for i in range(25)]
    assert lines_of(mq.tail(t25, "-n", "+25")) == ["m24"]
    assert lines_of(mq.tail(t25, "-n", "+26")) == []
    for bad in ("++1", "+-1", "+x", "x"):
        assert_error(mq.tail(t25, "-n", bad, check=None), EX_USAGE, "mq-tail", "--lines")


def test_tail_n_plus_counts_from_the_first_kept_message_of_each_partition(mq):
    """In every partition, and after retention moved its start: +1 is the first message there."""
    mq.create("np", 2)
    mq.produce("np", b"".join(jline(value=f"p{p}m{i}", partition=p) for p in (0, 1) for i in range(4)), "--json")
    assert sorted(lines_of(mq.tail("np", "-n", "+3"))) == ["p0m2", "p0m3", "p1m2", "p1m3"]
    mq.create("late", 1, "segment.bytes=1024")
    mq.produce("late", b"".join(f"{i:03d}".encode() + b"x" * 300 + b"\n" for i in range(30)), "--batch-messages", "1")
    mq.run("mq-topic", "alter", "late", "--config", "retention.bytes=3000", check=0)
    mq.run("mq-compact", "late", check=0)
    kept = mq.tail_json("late", "--from", "beginning")
    assert kept[0]["offset"] > 0, "retention left the first segment"
    assert [e["offset"] for e in mq.tail_json("late", "-n", "+1")] == [e["offset"] for e in kept]
    assert [e["offset"] for e in mq.tail_json("late", "-n", "+2", "-c", "1")] == [kept[1]["offset"]]


def test_tail_kcat_offsets_and_delimiter(mq):
    """kcat's -o beginning|end|N|-N|s@MS and -D, as aliases of --from, -n and -d."""
    mq.create("k", 2)
    data = b"".join(jline(value=f"p{p}m{i}", partition=p, timestamp=1_000 * (i + 1)) for p in (0, 1) for i in range(5))
    mq.produce("k", data, "--json")
    everything = sorted(lines_of(mq.tail("k", "--from", "beginning")))
    assert sorted(lines_of(mq.tail("k", "-o", "beginning"))) == everything
    assert lines_of(mq.tail("k", "-o", "end")) == []
    assert sorted(lines_of(mq.tail("k", "-o", "3"))) == ["p0m3", "p0m4", "p1m3", "p1m4"]
    assert sorted(lines_of(mq.tail("k", "-o", "-2"))) == ["p0m3", "p0m4", "p1m3", "p1m4"]  # each partition's last 2
    assert len(lines_of(mq.tail("k", "-n", "2"))) == 2  # where -n 2 is the last 2 of all
    assert sorted(lines_of(mq.tail("k", "-o", "s@4000"))) == ["p0m3", "p0m4", "p1m3", "p1m4"]
    assert mq.tail("k", "-p", "0", "-o", "beginning", "-D", ",").stdout == b"p0m0,p0m1,p0m2,p0m3,p0m4,"
    for bad in ("stored", "e@5", "s@", "-x", "1.5"):
        assert_error(mq.tail("k", "-o", bad, check=None), EX_USAGE, "mq-tail", "-o")
    assert_error(mq.tail("k", "-o", "end", "-n", "3", check=None), EX_USAGE, "mq-tail", "mutually exclusive")
    assert mq.produce("k", b"a|b|", "-D", "|", "-p", "1").status == 0
    assert lines_of(mq.tail("k", "-p", "1", "-n", "2")) == ["a", "b"]


def test_tail_from(mq, t25):
    assert lines_of(mq.tail(t25, "--from", "beginning", "-c", "4")) == ["m0", "m1", "m2", "m3"]
    assert lines_of(mq.tail(t25, "--from", "end")) == []
    assert lines_of(mq.tail(t25, "--from", "22")) == ["m22", "m23", "m24"]


def test_tail_count(mq, t25):
    assert lines_of(mq.tail(t25, "-n", "+5", "-c", "2")) == ["m4", "m5"]
    assert lines_of(mq.tail(t25, "-c", "3")) == ["m15", "m16", "m17"]


def test_tail_from_relative_time(mq):
    now = int(time.time() * 1000)
    old = b"".join(jline(f"old {i}", timestamp=now - 7_200_000 + i) for i in range(5))
    mq.produce("rt", old, "--json")
    mq.produce("rt", b"new 0\nnew 1\n")
    assert lines_of(mq.tail("rt", "--from", "-1m")) == ["new 0", "new 1"]
    assert lines_of(mq.tail("rt", "--from", "-3h")) == [f"old {i}" for i in range(5)] + \
        ["new 0", "new 1"]


def test_tail_from_iso_time(mq):
    base = 1700000000000  # 2023-11-14T22:13:20Z
    mq.produce("iso", b"".join(jline(f"at {i}", timestamp=base + i * 60_000) for i in range(10)),
               "--json")
    assert lines_of(mq.tail("iso", "--from", "2023-11-14T22:18:20Z")) == \
        [f"at {i}" for i in range(5, 10)]
    assert lines_of(mq.tail("iso", "--from", "2023-11-14T22:18:20.001Z")) == \
        [f"at {i}" for i in range(6, 10)]
    assert lines_of(mq.tail("iso", "--from", "2023-11-14T23:18:20+01:00")) == \
        [f"at {i}" for i in range(5, 10)]
    assert lines_of(mq.tail("iso", "--from", "2030-01-01T00:00:00Z")) == []


def test_tail_one_partition(mq):
    mq.create("pp", 3)
    for p in range(3):
        mq.produce("pp", f"p{p}a\np{p}b\n".encode(), "-p", p)
    assert lines_of(mq.tail("pp", "-p", "1")) == ["p1a", "p1b"]
    envs = mq.tail_json("pp", "-p", "2")
    assert [(e["partition"], e["offset"]) for e in envs] == [(2, 0), (2, 1)]


def test_tail_merges_partitions_by_timestamp(mq):
    mq.create("m", 3)
    order = {0: [1, 5, 6, 11], 1: [2, 3, 9, 12], 2: [4, 7, 8, 10]}
    base = 1700000000000
    data = b"".join(jline(f"t{t}", partition=p, timestamp=base + t * 1000)
                    for p in (0, 1, 2) for t in order[p])
    mq.produce("m", data, "--json")
    envs = mq.tail_json("m", "--from", "beginning")
    assert [e["value"] for e in envs] == [f"t{t}" for t in range(1, 13)]
    assert all(e["value"] == f"t{order[e['partition']][e['offset']]}" for e in envs)


@pytest.mark.parametrize("seed,parts", [(1, 6), (2, 6), (3, 6), (4, 300)])
def test_tail_merge_is_the_record_by_record_merge(mq, seed, parts):
    """mq-tail takes runs of a partition's records without going back to the heap: the output
    must be what a record-by-record merge gives (smallest next timestamp, ties to the lower
    partition), with ties, long runs and timestamps that go back within a partition; over 300
    partitions, cursors put back travel down a heap 9 levels deep."""
    rng = random.Random(seed)
    mq.create("mm", parts)
    base = 1700000000000
    records = {p: [] for p in range(parts)}
    for i in range(3000):
        p = rng.randrange(parts)
        # Mostly rising, in steps that often repeat, sometimes back in time.
        last = records[p][-1][0] if records[p] else 0
        t = max(0, last + rng.choice([0, 0, 0, 1, 2, 5, -3]))
        records[p].append((t, f"v{i}"))
    data = b"".join(jline(v, partition=p, timestamp=base + t) for p in range(parts) for t, v in records[p])
    mq.produce("mm", data, "--json")
    expected, heads = [], [0] * parts
    while True:
        live = [p for p in range(parts) if heads[p] < len(records[p])]
        if not live:
            break
        p = min(live, key=lambda q: (records[q][heads[q]][0], q))
        expected.append(records[p][heads[p]][1])
        heads[p] += 1
    assert mq.tail("-n", "+0", "mm").lines() == expected


def test_tail_several_topics_and_regex(mq):
    base = 1700000000000
    for i, (topic, value) in enumerate([("orders.eu", "eu1"), ("orders.us", "us1"),
                                        ("xorders.eu", "x1"), ("other", "o1"),
                                        ("orders.eu", "eu2")]):
        mq.produce(topic, jline(value, timestamp=base + i), "--json")
    envs = mq.tail_json("orders\\..*", "--from", "beginning")
    assert [(e["topic"], e["value"]) for e in envs] == [("orders.eu", "eu1"), ("orders.us", "us1"),
                                                       ("orders.eu", "eu2")]
    envs = mq.tail_json("orders.*", "--from", "beginning")
    assert {e["topic"] for e in envs} == {"orders.eu", "orders.us"}  # anchored: no xorders.eu
    envs = mq.tail_json("other", "xorders.eu", "--from", "beginning")
    assert [e["value"] for e in envs] == ["x1", "o1"]
    envs = mq.tail_json("(other|xorders..*)", "--from", "beginning")
    assert [e["value"] for e in envs] == ["x1", "o1"]
    res = mq.tail("[a-z]+\\.eu", "--format", "%t:%s\\n")
    assert res.stdout == b"orders.eu:eu1\nxorders.eu:x1\norders.eu:eu2\n"


def test_tail_missing_topic(mq):
    assert_error(mq.run("mq-tail", "ghost"), EX_NOINPUT, "mq-tail", "ghost")
    assert_error(mq.run("mq-tail", "ghost.*"), EX_NOINPUT, "mq-tail")


def test_tail_of_empty_topic(mq):
    mq.create("empty", 2)
    res = mq.tail("empty")
    assert res.stdout == b""


def test_dir_from_env_or_flag(mq):
    mq.run("mq-produce", "e", input=b"via env\n", dir_flag=False, check=0)
    mq.run("mq-produce", "e", input=b"via flag\n", use_env=False, check=0)
    assert mq.run("mq-tail", "e", dir_flag=False, check=0).stdout == b"via env\nvia flag\n"
    assert mq.run("mq-tail", "e", use_env=False, check=0).stdout == b"via env\nvia flag\n"


def test_usage_errors(mq):
    assert_error(mq.run("mq-produce", "u", "--no-such-option", input=b""), EX_USAGE, "mq-produce")
    assert_error(mq.run("mq-tail", "u", "--no-such-option"), EX_USAGE, "mq-tail")
    assert_error(mq.run("mq-topic", "frobnicate"), EX_USAGE, "mq-topic")
    assert_error(mq.run("mq-produce", "u", "-z", "brotli", input=b"x\n"), EX_USAGE, "mq-produce")


def test_log_append_time(mq):
    mq.create("lat", 1, "message.timestamp.type=LogAppendTime")
    before = int(time.time() * 1000)
    mq.produce("lat", jline("old", timestamp=1500000000000) + jline("also old", timestamp=1),
               "--json")
    after = int(time.time() * 1000)
    [part] = mq.validate("lat")
    assert all(b.timestamp_type == 1 for b in part.batches), "LogAppendTime attribute not set"
    for r in part.records:
        assert before - 1000 <= r.timestamp <= after + 1000, r.timestamp
    envs = mq.tail_json("lat", "--from", "beginning")
    assert [e["timestamp"] for e in envs] == [r.timestamp for r in part.records]


def test_verbose_produce_prints_a_summary_line(mq):
    res = mq.produce("sv", b"a\nb\nc\n", "-v")
    assert res.stderr == "mq-produce: accepted 3 messages into sv\n"
    assert mq.produce("sv", b"d\n").stderr == ""
