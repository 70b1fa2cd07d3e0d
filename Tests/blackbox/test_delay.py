"""Delayed messages: mq-produce --delay/--at, moved into the topic by running consumers."""

import json
import os
import random
import signal
import time


def test_delay_and_at_keep_messages_out_of_the_topic_until_due(mq):
    mq.produce("d", b"now\n")
    mq.produce("d", b"later\n", "--delay", "2s")
    due_at = int(time.time() * 1000) + 1500
    mq.produce("d", b"at\n", "--at", "@%d" % due_at)
    assert mq.values("d") == [b"now"]
    waiting = mq.tail_json("d.delay", "-n", "+0")
    assert [w["value"] for w in waiting] == ["later", "at"]
    headers = dict(waiting[1]["headers"])
    assert headers["mq.deliver.at"] == str(due_at) and headers["mq.delay.target"] == "d"


def test_random_delays_are_delivered_on_time(mq):
    """1,000 messages due 0-10 s from now: none before its time, none more than 1 s late."""
    rng = random.Random(7)
    now = int(time.time() * 1000) + 500
    lines = []
    for i in range(1000):
        due = now + rng.randint(0, 10_000)
        lines.append(json.dumps({"key": "k%d" % (i % 10), "value": "%d %d" % (i, due),
                                 "headers": [["mq.deliver.at", str(due)], ["mq.delay.target", "rd"]]}))
    mq.create("rd")
    mq.produce("rd.delay", ("\n".join(lines) + "\n").encode(), "--json")
    consumer = mq.start("mq-consume", "-g", "g", "rd", "-c", "1000")
    late, early, got = [], [], 0
    deadline = time.time() + 40
    seen = 0
    while time.time() < deadline and got < 1000:
        assert consumer.out.wait_for(lambda d: d.count(b"\n") > seen, 15), "stalled"
        text = consumer.out.snapshot().decode()
        arrived = int(time.time() * 1000)
        new = text.splitlines()[seen:text.count("\n")]
        for line in new:
            _i, due = map(int, line.split())
            if arrived < due:
                early.append(due - arrived)
            # Reading the output here lags delivery; 1 s is the bound to meet.
            if arrived > due + 1000:
                late.append(arrived - due)
        seen += len(new)
        got = seen
    res = consumer.finish(20)
    assert got == 1000, f"delivered {got}"
    assert not early, f"{len(early)} delivered before due"
    assert not late, f"{len(late)} more than 1 s late (worst {max(late)} ms)"


def test_kill_9_of_movers_loses_nothing_and_duplicates_are_bounded(mq):
    n = 40000
    past = int(time.time() * 1000) - 1000
    lines = [json.dumps({"value": str(i), "headers": [["mq.deliver.at", str(past)], ["mq.delay.target", "km"]]})
             for i in range(n)]
    mq.create("km", 2)
    mq.produce("km.delay", ("\n".join(lines) + "\n").encode(), "--json")
    kills = 0
    rng = random.Random(3)
    partial = []
    def target_bytes():
        total = 0
        for part in ("0", "1"):
            d = mq.partition_dir("km", int(part))
            total += sum(f.stat().st_size for f in d.glob("*.log"))
        return total

    for i in range(8):
        p = mq.start("mq-consume", "-g", "g", "km", "--format", "")  # consumers only drive the mover here
        if i % 2 == 0:
            # Kill as soon as this mover has written something, so that kills
            # land mid-move however slow the machine is.
            before = target_bytes()
            deadline = time.time() + 10
            while target_bytes() == before and time.time() < deadline:
                time.sleep(0.002)
        else:
            time.sleep(rng.uniform(0.02, 0.15))
        os.kill(p.pid, signal.SIGKILL)
        p.wait(10)
        kills += 1
        # Read as mq reads: a mover killed mid-append may have left a torn batch at the end,
        # which readers stop before (and which kafka_validate would reject until a writer
        # cuts it).
        moved = len(mq.tail("-n", "+0", "km").lines())
        if 0 < moved < n:
            partial.append(moved)
    assert partial, "no kill landed in the middle of the moves: the test would prove nothing"
    # A last consumer finishes the moves.
    mq.run("mq-consume", "-g", "final", "-e", "km", "--format", "", check=0)
    time.sleep(0.2)
    mq.run("mq-consume", "-g", "final2", "-e", "km", "--format", "", check=0)
    values = [int(v) for v in mq.values("km", 0) + mq.values("km", 1)]
    assert set(values) == set(range(n)), f"lost {sorted(set(range(n)) - set(values))[:10]}"
    duplicates = len(values) - n
    assert duplicates <= kills * 1000, f"{duplicates} duplicates after {kills} kills"
    # A mover killed mid-append may leave a torn batch at the end of a partition that no
    # later mover wrote to (readers stop before it): a writer cuts it when it opens the
    # partition. Only then is every segment whole.
    mq.produce("km", b"".join(b'{"value":"fin","partition":%d}\n' % p for p in range(2)), "--json")
    mq.validate("km")


def test_a_work_queue_moves_and_handles_delayed_messages(mq, tmp_path):
    """Every consumer of a topic moves its due delayed messages, a --queue worker too."""
    done = tmp_path / "done"
    mq.create("jobs")
    mq.produce("jobs", b"now\n")
    mq.produce("jobs", b"later\n", "--delay", "1s")
    worker = mq.start("mq-consume", "--queue", "-g", "w", "jobs", "--", "sh", "-c", f"cat >> {done}; echo >> {done}")
    deadline = time.time() + 30
    while time.time() < deadline and (not done.exists() or done.read_text().split() != ["now", "later"]):
        time.sleep(0.1)
    worker.kill()
    assert done.read_text().split() == ["now", "later"]
    assert mq.values("jobs") == [b"now", b"later"]
