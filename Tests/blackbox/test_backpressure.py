"""Backpressure: a topic's backlog bound (mq.max.backlog.messages/bytes, mq.backlog.group,
mq.backlog.policy) as mq-produce keeps it (block, reject) and mq-stat shows it, and
mq-produce --rate."""

import json
import re
import signal
import threading
import time

import pytest

import mqtest
from mqtest import EX_CONFIG, EX_TEMPFAIL, EX_USAGE, assert_error, script


def lines(n, start=0):
    return b"".join(b"m%d\n" % i for i in range(start, start + n))


def stat_topic(mq, topic):
    """The topic's object and its groups' rows from one `mq-stat --json`."""
    doc = json.loads(mq.run("mq-stat", "--json", topic, check=0).stdout)
    [t] = [t for t in doc["topics"] if t["topic"] == topic]
    return t, [g for g in doc["groups"] if g["topic"] == topic]


def accepted_count(stderr):
    m = re.search(r"(\d+) messages? (?:was|were) accepted and written", stderr)
    assert m, stderr
    return int(m.group(1))


# ---------------------------------------------------------------------------------------------
# block


def test_block_keeps_a_slow_consumer_within_the_bound_and_loses_nothing(mq, tmp_path):
    """A producer far faster than a handler consumer: the backlog (log end less the group's
    committed offset, sampled with mq-stat while both run) never passes the bound. With one
    producer there is no slack: it measures after writing what it holds, and counts every
    message it accepts since, so the backlog it leaves is at most the bound exactly."""
    bound, n = 40, 200
    mq.create("t", 1, f"mq.max.backlog.messages={bound}", "mq.backlog.policy=block")
    out = tmp_path / "handled"
    handler = script(tmp_path, "slow.sh", 'v=$(cat); echo "$v" >> "$OUT"; sleep 0.01\n')
    consumer = mq.start("mq-consume", "-g", "G", "t", "--", handler, env_extra={"OUT": str(out)})
    producer = mq.start("mq-produce", "-v", "t")
    producer.write(lines(n))
    producer.close_stdin()

    samples = []
    while producer.running():
        t, groups = stat_topic(mq, "t")
        end = t["partitions"][0]["end_offset"]  # read before the commits, so never ahead of them
        committed = next((g["committed"] for g in groups if g["group"] == "G"), None)
        samples.append(end - (committed if committed is not None else t["partitions"][0]["start_offset"]))
        assert t["backlog"]["messages"] <= bound, t["backlog"]
    res = producer.finish()
    assert res.status == 0, res.stderr
    assert samples and max(samples) <= bound, samples
    assert max(samples) >= bound // 2, f"the producer never had to wait: {samples}"
    assert "waiting for consumers" in res.stderr and "going on after" in res.stderr, res.stderr

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(out.read_text().splitlines() if out.exists() else []) < n:
        time.sleep(0.05)
    consumer.signal(signal.SIGTERM)
    consumer.finish()
    assert sorted(out.read_text().splitlines()) == sorted("m%d" % i for i in range(n))  # each once


def test_block_with_no_group_counts_the_whole_log_and_stops_cleanly(mq):
    """No group reads the topic: every message in the log is backlog, so the producer stops at
    the bound; SIGTERM then ends it with 143, what it accepted written and readable."""
    mq.create("t", 1, "mq.max.backlog.messages=25")
    producer = mq.start("mq-produce", "t")
    producer.write(lines(100))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and len(mq.tail("t", "-n", "+0").lines()) < 25:
        time.sleep(0.05)
    time.sleep(0.3)  # still blocked: no more is written
    assert mq.tail("t", "-n", "+0").lines() == ["m%d" % i for i in range(25)]
    assert producer.running()
    producer.signal(signal.SIGTERM)
    res = producer.finish()
    assert res.status == 143 and "25 messages were committed" in res.stderr, res.stderr
    assert mq.tail("t", "-n", "+0").lines() == ["m%d" % i for i in range(25)]


def test_block_goes_on_when_the_named_group_catches_up(mq):
    """mq.backlog.group names the group counted; a group it does not name does not hold back."""
    mq.create("t", 1, "mq.max.backlog.messages=10", "mq.backlog.group=billing")
    mq.run("mq-consume", "-g", "other", "-e", "t", check=0)  # another group, caught up: ignored
    producer = mq.start("mq-produce", "t")
    producer.write(lines(15))
    producer.close_stdin()
    time.sleep(0.5)
    assert producer.running() and len(mq.tail("t", "-n", "+0").lines()) == 10
    mq.run("mq-consume", "-g", "billing", "-c", "5", "t", check=0)
    assert producer.finish().status == 0
    assert mq.tail("t", "-n", "+0").lines() == ["m%d" % i for i in range(15)]


# ---------------------------------------------------------------------------------------------
# reject


def test_reject_exits_75_with_the_exact_count_accepted(mq):
    mq.create("t", 1, "mq.max.backlog.messages=100", "mq.backlog.policy=reject")
    res = mq.produce("t", lines(250), check=None)
    assert_error(res, EX_TEMPFAIL, "mq-produce", "mq.max.backlog.messages (100)",
                 "100 messages were accepted and written", "line 101 and the rest of the input were not")
    assert "no group reads it" in res.stderr
    assert mq.tail("t", "-n", "+0").lines() == ["m%d" % i for i in range(100)]
    # A group reads 30: there is room for exactly 30 more.
    mq.run("mq-consume", "-g", "G", "-c", "30", "t", check=0)
    res = mq.produce("t", lines(50, 100), check=None)
    assert_error(res, EX_TEMPFAIL, "mq-produce", "behind group 'G'", "30 messages were accepted")
    assert mq.tail("t", "-n", "+0").lines() == ["m%d" % i for i in range(130)]


def test_reject_by_bytes_counts_exactly_what_a_reader_finds(mq):
    mq.create("t", 2, "mq.max.backlog.bytes=20000", "mq.backlog.policy=reject")
    value = b"x" * 90
    data = b"".join(b"%05d" % i + value + b"\n" for i in range(1000))
    res = mq.produce("t", data, "--batch-messages", "7", check=None)
    assert res.status == EX_TEMPFAIL, res.stderr
    n = accepted_count(res.stderr)
    assert 0 < n < 1000 and "mq.max.backlog.bytes (20000)" in res.stderr
    got = sorted(mq.tail("t", "-n", "+0").lines())
    assert got == [(b"%05d" % i + value).decode() for i in range(n)]
    size = sum(p["bytes"] for p in stat_topic(mq, "t")[0]["partitions"])
    assert size <= 20000, size


def test_reject_in_a_transaction_aborts_it(mq):
    mq.create("t", 1, "mq.max.backlog.messages=10", "mq.backlog.policy=reject")
    res = mq.produce("t", lines(30), "--atomic", check=None)
    assert_error(res, EX_TEMPFAIL, "mq-produce", "mq.max.backlog.messages (10)", "the transaction was aborted")
    assert mq.tail("t", "-n", "+0").lines() == []


def test_policy_none_holds_nothing_back_and_no_bound_is_the_default(mq):
    mq.create("shown", 1, "mq.max.backlog.messages=5", "mq.backlog.policy=none")
    mq.produce("shown", lines(50))
    mq.create("free", 1)
    mq.produce("free", lines(50))
    assert len(mq.tail("shown", "-n", "+0").lines()) == 50
    assert len(mq.tail("free", "-n", "+0").lines()) == 50


# ---------------------------------------------------------------------------------------------
# configs and mq-stat


@pytest.mark.parametrize("config, reason", [
    ("mq.max.backlog.messages=0", "must be between 1 and 9223372036854775807 (or -1 for no limit)"),
    ("mq.max.backlog.messages=many", "not an integer"),
    ("mq.max.backlog.bytes=-5", "must be between 1 and"),
    ("mq.backlog.policy=wait", "must be one of: block, reject, none"),
    ("mq.backlog.group=a/b", "must be empty or a group name"),
    ("mq.backlog.group=..", "must be empty or a group name"),
])
def test_bad_backlog_configs_are_refused(mq, config, reason):
    name, value = config.split("=")
    want = f"invalid value '{value}' for {name}: {reason}"
    assert_error(mq.run("mq-topic", "create", "t", "--config", config), EX_CONFIG, "mq-topic", want)
    mq.create("u", 1)
    assert_error(mq.run("mq-topic", "alter", "u", "--config", config), EX_CONFIG, "mq-topic", want)


def test_backlog_configs_are_kept_and_described(mq):
    configs = ["mq.max.backlog.messages=500", "mq.max.backlog.bytes=1048576", "mq.backlog.group=billing",
               "mq.backlog.policy=reject"]
    mq.create("t", 1, *configs)
    for c in configs:
        k, v = c.split("=")
        assert mq.properties("t")[k] == v
    desc = json.loads(mq.run("mq-topic", "describe", "--json", "t", check=0).stdout)
    assert desc["config"]["mq.backlog.policy"] == "reject" and desc["config"]["mq.max.backlog.messages"] == "500"
    mq.run("mq-topic", "alter", "t", "--delete-config", "mq.backlog.group", "--config", "mq.backlog.policy=block", check=0)
    desc = json.loads(mq.run("mq-topic", "describe", "--json", "t", check=0).stdout)
    assert desc["config"]["mq.backlog.group"] == "" and desc["config"]["mq.backlog.policy"] == "block"


def test_stat_shows_how_close_each_topic_is_to_its_bound(mq):
    mq.create("t", 1, "mq.max.backlog.messages=100", "mq.max.backlog.bytes=1000000", "mq.backlog.policy=reject")
    mq.create("plain", 1)
    mq.produce("t", lines(40))
    t, _ = stat_topic(mq, "t")
    b = t["backlog"]
    assert (b["policy"], b["group"], b["messages"], b["messages_group"], b["max_messages"], b["max_bytes"]) == \
        ("reject", None, 40, None, 100, 1000000)
    assert b["bytes"] == t["partitions"][0]["bytes"] and b["used"] == 0.4
    assert stat_topic(mq, "plain")[0]["backlog"] is None
    mq.run("mq-consume", "-g", "G", "-c", "10", "t", check=0)
    b = stat_topic(mq, "t")[0]["backlog"]
    assert (b["messages"], b["messages_group"], b["bytes_group"]) == (30, "G", "G")
    text = mq.run("mq-stat", check=0).out
    assert re.search(r"^t\s+reject\s+G\s+30\s+100\s+.*\s30%$", text, re.M), text
    assert not re.search(r"^plain\s+(block|reject|none)", text, re.M), text


# ---------------------------------------------------------------------------------------------
# --rate


def test_rate_spaces_the_messages(mq):
    started = time.monotonic()
    mq.produce("t", lines(150), "--rate", "100/s")
    took = time.monotonic() - started
    assert len(mq.tail("t", "-n", "+0").lines()) == 150
    assert took >= 1.3, f"150 messages at 100/s took {took:.2f} s"


def test_rate_writes_each_message_within_the_linger_and_stops_at_a_signal(mq):
    """At 4 a second, with 40 messages read at once, each is readable about when it is
    accepted, not when a batch fills or the input ends (10 s later); SIGTERM during a wait
    ends the run with what was accepted written."""
    producer = mq.start("mq-produce", "--rate", "4/s", "t")
    producer.write(lines(40))
    started = time.monotonic()
    seen = []
    while time.monotonic() - started < 5 and len(seen) < 3:
        time.sleep(0.05)
        seen = mq.tail("t", "-n", "+0", check=None).lines()
    assert len(seen) >= 3, f"{len(seen)} readable after {time.monotonic() - started:.1f} s"
    producer.signal(signal.SIGTERM)
    res = producer.finish()
    m = re.search(r"stopped by SIGTERM; (\d+) messages were committed", res.stderr)
    assert res.status == 143 and m, res.stderr
    n = int(m.group(1))
    assert 3 <= n < 40 and mq.tail("t", "-n", "+0").lines() == ["m%d" % i for i in range(n)]


@pytest.mark.parametrize("rate", ["fast", "0", "-3/s", "10/d", "/s"])
def test_bad_rate_is_a_usage_error(mq, rate):
    assert_error(mq.produce("t", b"a\n", f"--rate={rate}", check=None), EX_USAGE, "mq-produce", f"invalid --rate '{rate}'")
