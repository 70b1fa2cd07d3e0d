"""mq-tail -f: wake-up latency, topics appearing later, segment rolls, -c and signals."""

import json
import signal
import time

from mqtest import jline, signalled


def json_lines(data: bytes):
    return [json.loads(line) for line in data.decode().splitlines()]


def test_follow_wakes_up_within_2s(mq):
    mq.produce("f", b"first\n")
    tail = mq.start("mq-tail", "f", "-f")
    assert tail.out.wait_for(lambda d: d == b"first\n", 10), tail.err.snapshot()
    for i in range(3):
        time.sleep(0.3)
        mq.produce("f", b"next %d\n" % i)
        t0 = time.monotonic()
        want = b"first\n" + b"".join(b"next %d\n" % j for j in range(i + 1))
        assert tail.out.wait_for(lambda d: d == want, 2.0), \
            f"not seen within 2 s: {tail.out.snapshot()!r} {tail.err.snapshot()!r}"
        assert time.monotonic() - t0 < 2.0
    assert tail.running()


def test_follow_by_polling_when_inotify_is_unavailable(mq):
    """MQ_POLL=1 forces the documented fallback: periodic wake-ups, no inotify.
    New messages and a segment roll must still be picked up."""
    mq.create("fp", 1, "segment.bytes=2000")
    tail = mq.start("mq-tail", "fp", "-f", "--from", "beginning", env_extra={"MQ_POLL": "1"})
    lines = [b"poll %03d " % i + b"z" * 40 for i in range(200)]
    for start in range(0, 200, 20):
        mq.produce("fp", b"\n".join(lines[start:start + 20]) + b"\n", "--batch-messages", "10")
    want = b"\n".join(lines) + b"\n"
    assert tail.out.wait_for(lambda d: d == want, 10.0), tail.out.snapshot()[-300:]
    assert len(mq.validate("fp")[0].segments) > 3
    assert tail.running()


def test_follow_from_end_sees_only_new(mq):
    mq.produce("fe", b"old 1\nold 2\n")
    tail = mq.start("mq-tail", "fe", "-f", "--from", "end")
    time.sleep(0.5)
    mq.produce("fe", b"new\n")
    assert tail.out.wait_for(lambda d: d == b"new\n", 2.0), tail.out.snapshot()


def test_follow_count_exits(mq):
    mq.create("fc")
    tail = mq.start("mq-tail", "fc", "-f", "-c", "3", "--from", "beginning")
    time.sleep(0.3)
    mq.produce("fc", b"1\n2\n")
    time.sleep(0.3)
    assert tail.running()
    mq.produce("fc", b"3\n4\n")
    res = tail.finish(10)
    assert res.status == 0, res
    assert res.stdout == b"1\n2\n3\n"


def test_follow_many_messages_across_segment_rolls(mq):
    mq.create("fr", 1, "segment.bytes=10000")
    tail = mq.start("mq-tail", "fr", "-f", "-c", "3000", "--from", "beginning")
    lines = [b"r %04d " % i + b"y" * 30 for i in range(3000)]
    for start in range(0, 3000, 300):
        mq.produce("fr", b"\n".join(lines[start:start + 300]) + b"\n", "--batch-messages", "25")
    res = tail.finish(60)
    assert res.status == 0, res
    assert res.stdout == b"\n".join(lines) + b"\n"
    assert len(mq.validate("fr")[0].segments) > 5


def test_follow_partitions(mq):
    mq.create("fp", 3)
    tail = mq.start("mq-tail", "fp", "-f", "--json")
    time.sleep(0.5)
    for p in (2, 0, 1):
        mq.produce("fp", jline(f"to {p}", partition=p), "--json")
    assert tail.out.wait_for(lambda d: d.count(b"\n") == 3, 5), tail.out.snapshot()
    got = {(e["partition"], e["value"]) for e in json_lines(tail.out.snapshot())}
    assert got == {(0, "to 0"), (1, "to 1"), (2, "to 2")}


def test_follow_picks_up_topic_created_later_by_pattern(mq):
    mq.produce("unrelated", b"u\n")
    tail = mq.start("mq-tail", "late\\..*", "-f", "--json")
    time.sleep(1.0)
    assert tail.running(), tail.err.snapshot()
    assert tail.out.snapshot() == b""
    mq.produce("late.a", b"hello a\n")
    assert tail.out.wait_for(lambda d: b"hello a" in d, 5), \
        f"new topic not picked up: {tail.err.snapshot()!r}"
    mq.run("mq-topic", "create", "late.b", "--partitions", "2", check=0)
    time.sleep(0.5)
    mq.produce("late.b", b"hello b\n", "-p", "1")
    mq.produce("latex", b"not matching\n")
    mq.produce("late.a", b"again a\n")
    assert tail.out.wait_for(lambda d: b"hello b" in d and b"again a" in d, 5), \
        tail.out.snapshot()
    time.sleep(0.5)
    envs = json_lines(tail.out.snapshot())
    got = [(e["topic"], e["partition"], e["value"]) for e in envs]
    assert got[0] == ("late.a", 0, "hello a")
    assert sorted(got[1:]) == [("late.a", 0, "again a"), ("late.b", 1, "hello b")]


def test_follow_waits_for_missing_literal_topic(mq):
    tail = mq.start("mq-tail", "notyet", "-f")
    time.sleep(1.0)
    assert tail.running(), tail.err.snapshot()
    mq.produce("notyet", b"here\n")
    assert tail.out.wait_for(lambda d: d == b"here\n", 5), tail.out.snapshot()


def test_follow_sigint_and_sigterm(mq):
    mq.produce("sig", b"x\n")
    for sig, code in ((signal.SIGINT, 130), (signal.SIGTERM, 143)):
        tail = mq.start("mq-tail", "sig", "-f")
        assert tail.out.wait_for(lambda d: d == b"x\n", 10)
        tail.signal(sig)
        res = tail.finish(10)
        assert signalled(res.status, sig, code), res
