"""mq-topic: create / list / describe / alter / delete, names, configs, exit statuses."""

import json
import time

import pytest

from mqtest import (EX_CANTCREAT, EX_CONFIG, EX_NOINPUT, EX_TEMPFAIL, EX_USAGE, assert_error)


def topics_on_disk(mq):
    root = mq.dir / "topics"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def test_create_writes_layout(mq):
    mq.run("mq-topic", "create", "orders", "--partitions", "3", check=0)
    props = mq.properties("orders")
    assert props["partitions"] == "3"
    assert topics_on_disk(mq) == ["orders"]
    # Every partition is usable and lands in DIR/topics/orders/<p>/.
    for p in range(3):
        mq.produce("orders", f"m{p}\n".encode(), "-p", p)
    for p in range(3):
        assert (mq.partition_dir("orders", p) / "00000000000000000000.log").is_file()
        assert mq.values("orders", p) == [f"m{p}".encode()]
    assert not mq.partition_dir("orders", 3).exists()


def test_create_default_one_partition(mq):
    mq.run("mq-topic", "create", "single", check=0)
    assert mq.properties("single")["partitions"] == "1"


def test_create_existing(mq):
    mq.run("mq-topic", "create", "dup", "--partitions", "2", check=0)
    res = mq.run("mq-topic", "create", "dup")
    assert_error(res, EX_CANTCREAT, "mq-topic", "dup")
    res = mq.run("mq-topic", "create", "dup", "--partitions", "5", "--if-not-exists")
    assert res.status == 0, res.stderr
    assert mq.properties("dup")["partitions"] == "2"


def test_create_with_config(mq):
    mq.run("mq-topic", "create", "cfg", "--config", "retention.ms=60000",
           "--config", "cleanup.policy=compact", "--config", "segment.bytes=1048576", check=0)
    props = mq.properties("cfg")
    assert props["retention.ms"] == "60000"
    assert props["cleanup.policy"] == "compact"
    assert props["segment.bytes"] == "1048576"
    assert props["partitions"] == "1"


@pytest.mark.parametrize("name", ["../x", "a/b", "", "x" * 250, ".", "..", "tøpic", "a b",
                                  "a*b", "/abs", "a\\b"],
                         ids=["dotdot-x", "slash", "empty", "250chars", "dot", "dotdot",
                              "unicode", "space", "star", "abs", "backslash"])
def test_create_bad_name(mq, name):
    res = mq.run("mq-topic", "create", name)
    assert_error(res, EX_USAGE, "mq-topic")
    assert topics_on_disk(mq) == []
    assert not (mq.dir / "x").exists() and not (mq.dir.parent / "x").exists()
    assert not (mq.dir / "topics" / "a").exists()


def test_name_limits_accepted(mq):
    names = ["x" * 249, "a", "A.b_c-9", "...", "_", "a-"]
    for name in names:
        mq.run("mq-topic", "create", name, check=0)
    res = mq.run("mq-topic", "list", check=0)
    assert res.lines() == sorted(names)


@pytest.mark.parametrize("name", ["../x", "a/b", ".", "..", "x" * 250, "tøpic"])
def test_produce_bad_name(mq, name):
    res = mq.run("mq-produce", name, input=b"hello\n")
    assert_error(res, EX_USAGE, "mq-produce")
    assert topics_on_disk(mq) == []


def test_list_sorted(mq):
    assert mq.run("mq-topic", "list", check=0).stdout == b""
    for n in ["zeta", "alpha", "Beta", "a.b", "a_b", "a-b", "a0"]:
        mq.run("mq-topic", "create", n, check=0)
    res = mq.run("mq-topic", "list", check=0)
    assert res.stdout == ("\n".join(sorted(["zeta", "alpha", "Beta", "a.b", "a_b", "a-b", "a0"]))
                          + "\n").encode()


@pytest.mark.parametrize("config", [
    "no.such.key=1", "retention.ms=abc", "cleanup.policy=bogus", "segment.bytes=-5",
    "compression.type=brotli", "max.message.bytes=lots", "retention.ms", "=5",
    "message.timestamp.type=Sometime", "segment.ms=1.5",
])
def test_create_bad_config(mq, config):
    res = mq.run("mq-topic", "create", "bad", "--config", config)
    assert_error(res, EX_CONFIG, "mq-topic")
    assert topics_on_disk(mq) == []


@pytest.mark.parametrize("config", [
    "cleanup.policy=delete", "cleanup.policy=compact", "retention.ms=-1", "retention.bytes=-1",
    "retention.bytes=1000000", "segment.bytes=10000", "segment.ms=3600000",
    "max.message.bytes=2000000", "compression.type=zstd", "compression.type=producer",
    "min.compaction.lag.ms=0", "delete.retention.ms=86400000",
    "message.timestamp.type=LogAppendTime", "message.timestamp.type=CreateTime",
])
def test_create_good_config(mq, config):
    mq.run("mq-topic", "create", "good", "--config", config, check=0)
    k, v = config.split("=", 1)
    assert mq.properties("good")[k] == v


def test_alter(mq):
    mq.create("alt", 2)
    mq.run("mq-topic", "alter", "alt", "--config", "retention.ms=1000", check=0)
    assert mq.properties("alt")["retention.ms"] == "1000"
    mq.run("mq-topic", "alter", "alt", "--config", "segment.bytes=20000",
           "--delete-config", "retention.ms", check=0)
    props = mq.properties("alt")
    assert "retention.ms" not in props
    assert props["segment.bytes"] == "20000"
    assert props["partitions"] == "2"

    before = (mq.topic_dir("alt") / "topic.properties").read_bytes()
    assert_error(mq.run("mq-topic", "alter", "alt", "--config", "bogus.key=1"), EX_CONFIG,
                 "mq-topic")
    assert_error(mq.run("mq-topic", "alter", "alt", "--config", "retention.ms=soon"), EX_CONFIG,
                 "mq-topic")
    assert (mq.topic_dir("alt") / "topic.properties").read_bytes() == before

    assert_error(mq.run("mq-topic", "alter", "missing", "--config", "retention.ms=1"),
                 EX_NOINPUT, "mq-topic", "missing")


def _find_topic(doc, name):
    """Locate the description of `name` in whatever JSON shape describe prints."""
    if isinstance(doc, dict):
        if doc.get("name") == name or doc.get("topic") == name:
            return doc
        if name in doc and isinstance(doc[name], dict):
            return doc[name]
        for v in doc.values():
            found = _find_topic(v, name)
            if found is not None:
                return found
    elif isinstance(doc, list):
        for v in doc:
            found = _find_topic(v, name)
            if found is not None:
                return found
    return None


def _parse_json_output(out: bytes):
    text = out.decode()
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_describe(mq):
    mq.create("d1", 2, "retention.ms=60000")
    mq.create("d2", 1)
    mq.produce("d1", b"a\nb\nc\n", "-p", "1")

    res = mq.run("mq-topic", "describe", "d1", "--json", check=0)
    desc = _find_topic(_parse_json_output(res.stdout), "d1")
    assert desc is not None, res.out
    parts = desc["partitions"]
    assert parts == 2 or (isinstance(parts, list) and len(parts) == 2), desc
    cfg = desc.get("config", desc.get("configs"))
    assert isinstance(cfg, dict) and str(cfg["retention.ms"]) == "60000", desc
    assert _find_topic(_parse_json_output(res.stdout), "d2") is None

    res = mq.run("mq-topic", "describe", "--json", check=0)
    doc = _parse_json_output(res.stdout)
    assert _find_topic(doc, "d1") is not None and _find_topic(doc, "d2") is not None

    res = mq.run("mq-topic", "describe", "d1", "d2", check=0)
    assert "d1" in res.out and "d2" in res.out and "retention.ms" in res.out

    assert_error(mq.run("mq-topic", "describe", "nope"), EX_NOINPUT, "mq-topic", "nope")


def test_delete(mq):
    for n in ("a", "b", "c"):
        mq.create(n)
        mq.produce(n, b"x\n")
    mq.run("mq-topic", "delete", "a", check=0)
    assert not mq.topic_dir("a").exists()
    assert mq.run("mq-topic", "list", check=0).lines() == ["b", "c"]
    mq.run("mq-topic", "delete", "b", "c", check=0)
    assert mq.run("mq-topic", "list", check=0).stdout == b""
    assert topics_on_disk(mq) == []
    assert_error(mq.run("mq-topic", "delete", "a"), EX_NOINPUT, "mq-topic", "a")
    # The topic name can be reused afterwards, starting from offset 0.
    res = mq.produce("a", b"again\n", "--print-offsets")
    assert res.stdout == b"0 0\n"


def test_dry_runs_check_everything_and_change_nothing(mq):
    """create, alter and delete -n: the real command's checks and statuses, and no change."""
    res = mq.run("mq-topic", "create", "-n", "new", "--partitions", "3", "--config", "retention.ms=1000", check=0)
    assert res.out.splitlines()[0] == "would create topic 'new':" and "partitions=3" in res.out and "retention.ms=1000" in res.out
    assert not mq.topic_dir("new").exists() and not (mq.dir / "topics").exists()
    assert_error(mq.run("mq-topic", "create", "-n", "bad/name"), EX_USAGE, "mq-topic")
    assert_error(mq.run("mq-topic", "create", "-n", "x", "--config", "retention.ms=soon"), EX_CONFIG, "mq-topic")
    mq.create("t")
    mq.produce("t", b"one\n")
    assert_error(mq.run("mq-topic", "create", "--dry-run", "t"), EX_CANTCREAT, "mq-topic", "already exists")
    assert mq.run("mq-topic", "create", "-n", "--if-not-exists", "t", check=0).out == "topic 't' exists: nothing to create\n"
    before = (mq.topic_dir("t") / "topic.properties").read_bytes()
    res = mq.run("mq-topic", "alter", "-n", "t", "--config", "retention.ms=5000", check=0)
    assert res.out.splitlines()[0] == "would change topic 't' to:" and "retention.ms=5000" in res.out
    assert (mq.topic_dir("t") / "topic.properties").read_bytes() == before
    assert_error(mq.run("mq-topic", "alter", "-n", "t", "--config", "nonsense.key=1"), EX_CONFIG, "mq-topic")
    res = mq.run("mq-topic", "delete", "-n", "t", check=0)
    assert res.out.startswith("would delete topic 't' (") and mq.values("t") == [b"one"]
    assert_error(mq.run("mq-topic", "delete", "-n", "gone"), EX_NOINPUT, "mq-topic", "gone")
    tail = mq.start("mq-tail", "t", "-f")
    assert tail.out.wait_for(lambda d: b"one\n" in d, 10), tail.err.snapshot()
    assert_error(mq.run("mq-topic", "delete", "-n", "t"), EX_TEMPFAIL, "mq-topic", "in use")
    assert mq.run("mq-topic", "delete", "-n", "--force", "t", check=0).out.startswith("would delete topic 't'")
    tail.kill()
    assert mq.values("t") == [b"one"]


def test_delete_refused_while_tail_follows(mq):
    mq.create("busy")
    mq.produce("busy", b"first\n")
    tail = mq.start("mq-tail", "busy", "-f")
    assert tail.out.wait_for(lambda d: b"first\n" in d, 10), tail.err.snapshot()
    res = mq.run("mq-topic", "delete", "busy")
    assert_error(res, EX_TEMPFAIL, "mq-topic", "busy")
    assert mq.topic_dir("busy").is_dir()
    assert mq.values("busy") == [b"first"]
    mq.run("mq-topic", "delete", "busy", "--force", check=0)
    assert not mq.topic_dir("busy").exists()
    tail.kill()


def test_delete_refused_while_producer_open(mq):
    mq.create("busy2")
    prod = mq.start("mq-produce", "busy2", "--print-offsets", "--linger", "10ms")
    prod.write(b"one\n")
    assert prod.out.wait_for(lambda d: b"0 0\n" in d, 10), prod.err.snapshot()
    res = mq.run("mq-topic", "delete", "busy2")
    assert_error(res, EX_TEMPFAIL, "mq-topic", "busy2")
    prod.write(b"two\n")
    prod.close_stdin()
    res = prod.finish(30)
    assert res.status == 0, res.stderr
    assert res.stdout == b"0 0\n0 1\n"
    assert mq.values("busy2") == [b"one", b"two"]
    mq.run("mq-topic", "delete", "busy2", check=0)
    assert not mq.topic_dir("busy2").exists()


def test_delete_after_processes_ended_is_not_busy(mq):
    mq.create("done")
    tail = mq.start("mq-tail", "done", "-f")
    time.sleep(0.5)
    tail.kill()  # even a killed follower leaves no lasting claim on the topic
    mq.produce("done", b"x\n")
    mq.run("mq-topic", "delete", "done", check=0)


@pytest.mark.parametrize("n", ["0", "-1", "many"])
def test_create_bad_partition_count(mq, n):
    res = mq.run("mq-topic", "create", "p", "--partitions", n)
    assert res.status in (EX_USAGE, EX_CONFIG), res
    assert res.stderr.startswith("mq-topic: "), res.stderr
    assert topics_on_disk(mq) == []


def test_dir_from_env_or_flag(mq):
    mq.run("mq-topic", "create", "viaenv", dir_flag=False, check=0)
    mq.run("mq-topic", "create", "viaflag", use_env=False, check=0)
    assert topics_on_disk(mq) == ["viaenv", "viaflag"]
    assert mq.run("mq-topic", "list", dir_flag=False, check=0).lines() == ["viaenv", "viaflag"]
