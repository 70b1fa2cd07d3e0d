"""mq-produce --atomic: transactions seen by mq's readers and by an independent Kafka parser."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest

import kafka_validate as kv
from mqtest import EX_DATAERR, EX_USAGE


def committed_values(mq, topic):
    return [r.value.decode() for r in kv.committed_records(mq.topic_dir(topic))]


def transaction_files(mq):
    d = mq.dir / "transactions"
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


def wait_until(predicate, timeout=20.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def test_clean_eof_commits_with_markers_and_sequences(mq):
    mq.create("T", 3)
    mq.produce("T", b"".join(b"k%d\tv%d\n" % (i % 7, i) for i in range(3000)), "--atomic", "-K", r"\t",
               "--batch-messages", "100")
    assert sorted(mq.tail("-n", "+0", "T").lines(), key=lambda v: int(v[1:])) == [f"v{i}" for i in range(3000)]
    parts = mq.validate("T")  # checks transactional bits, sequences, control records
    for p in parts:
        assert [t[2] for ts in p.transactions.values() for t in ts] == ["commit"]
        assert all(b.is_transactional for b in p.batches)
        assert [b.control_type for b in p.batches if b.is_control] == [1]
    assert len(committed_values(mq, "T")) == 3000
    assert transaction_files(mq) == []
    assert not any((mq.partition_dir("T", p) / "transactions").exists() for p in range(3))


@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.6, 0.9, 0.99])
def test_kill_9_at_any_moment_leaves_all_or_nothing(mq, tmp_path, fraction):
    data = tmp_path / "seq"
    data.write_bytes(b"".join(b"%d\n" % i for i in range(1, 1_000_001)))
    # How long a whole run takes on this machine, to aim the kill inside it.
    t0 = time.monotonic()
    mq.run("mq-produce", "--atomic", "probe", input=data.read_bytes(), check=0)
    duration = time.monotonic() - t0
    with open(data, "rb") as stdin:
        p = mq.start("mq-produce", "--atomic", "T", stdin=stdin)
        time.sleep(duration * fraction)
        p.kill()
    # Readers are never stuck: a reader finishes the orphan (abort, or commit
    # if the producer died after its commit point) and returns.
    seen = mq.run("mq-tail", "-n", "+0", "T", check=None, timeout=60)
    if seen.status == 66:  # killed before it created the topic
        return
    assert seen.status == 0, seen.stderr
    lines = seen.lines()
    assert len(lines) in (0, 1_000_000), f"{len(lines)} messages visible after kill -9"
    assert lines == [] or lines == [str(i) for i in range(1, 1_000_001)]
    assert len(committed_values(mq, "T")) == len(lines)
    assert mq.tail("-n", "+0", "T").lines() == lines  # and it stays that way
    # A producer killed before its first batch left a record that no partition
    # names (nothing waits for it); the next atomic producer removes it.
    mq.run("mq-produce", "--atomic", "other", input=b"x\n", check=0)
    assert transaction_files(mq) == []


def test_two_concurrent_producers_one_aborted_by_sigterm(mq):
    mq.create("T", 4)
    good = mq.start("mq-produce", "--atomic", "-K", r"\t", "T")
    bad = mq.start("mq-produce", "--atomic", "-K", r"\t", "T")

    def feed(p, name, n, close):
        for i in range(n):
            p.write(b"key%d\t%s%d\n" % (i % 13, name, i))
        if close:
            p.close_stdin()

    threads = [threading.Thread(target=feed, args=(good, b"good", 20000, True)),
               threading.Thread(target=feed, args=(bad, b"bad", 20000, False))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert good.finish().status == 0
    # Both transactions' batches are interleaved in the partitions by now.
    assert wait_until(lambda: len(mq.tail("-n", "+0", "--read-uncommitted", "T").lines()) == 40000)
    bad.signal(signal.SIGTERM)
    res = bad.finish()
    assert res.status == 143, res.stderr
    assert "aborted" in res.stderr
    for part in range(4):
        values = mq.tail("-n", "+0", "-p", str(part), "T").lines()
        assert all(v.startswith("good") for v in values)
        numbers = [int(v[4:]) for v in values]
        assert numbers == sorted(numbers)  # in order within the partition
    assert sorted(int(v[4:]) for v in mq.tail("-n", "+0", "T").lines()) == list(range(20000))
    assert sorted(committed_values(mq, "T"), key=lambda v: int(v[4:])) == [f"good{i}" for i in range(20000)]
    parts = mq.validate("T")
    fates = sorted(t[2] for p in parts for ts in p.transactions.values() for t in ts)
    assert set(fates) == {"commit", "abort"}
    assert sum(len(p.aborted_index) for p in parts) == fates.count("abort")
    # --read-uncommitted shows the aborted records too; control records never.
    everything = mq.tail("-n", "+0", "--read-uncommitted", "T").lines()
    assert len(everything) == 40000
    # Consumers and replays see the committed ones only.
    got = mq.run("mq-consume", "-g", "G", "-e", "T", check=0).lines()
    assert sorted(got) == sorted(f"good{i}" for i in range(20000))
    assert len(mq.run("mq-replay", "T", check=0).lines()) == 20000
    assert len(mq.run("mq-replay", "--read-uncommitted", "T", check=0).lines()) == 40000


def test_a_failing_generator_aborts(mq):
    mq.create("T", 2)
    res = mq.run("mq-produce", "--atomic", "T", "--", "sh", "-c", "seq 500; exit 3")
    assert res.status == 1, res.stderr
    assert "exited with status 3" in res.stderr and "aborted" in res.stderr
    assert mq.tail("-n", "+0", "T").lines() == []
    assert len(mq.tail("-n", "+0", "--read-uncommitted", "T").lines()) == 500
    res = mq.run("mq-produce", "--atomic", "T", "--", "sh", "-c", "seq 3; kill -9 $$")
    assert res.status == 1 and "signal 9" in res.stderr
    # A status the user allows commits; the default commits 0 only.
    mq.run("mq-produce", "--atomic", "--abort-on-status", "2-255", "T", "--", "sh", "-c", "echo ok; exit 1", check=0)
    mq.run("mq-produce", "--atomic", "T", "--", "seq", "2", check=0)
    assert sorted(mq.tail("-n", "+0", "T").lines()) == ["1", "2", "ok"]
    assert len(committed_values(mq, "T")) == 3
    assert transaction_files(mq) == []


def test_bad_input_and_cut_off_input_abort(mq):
    mq.create("T")
    res = mq.produce("T", b'{"value":"a"}\nnot json\n', "--atomic", "-J", check=EX_DATAERR)
    assert "line 2" in res.stderr and "aborted" in res.stderr
    mq.produce("T", b'{"value":"b"}\nnot json\n', "--atomic", "-J", "--skip-bad", check=0)
    res = mq.produce("T", b"x\ny\nhalf a li", "--atomic", check=EX_DATAERR)
    assert "no final delimiter" in res.stderr
    assert mq.tail("-n", "+0", "T").lines() == ["b"]
    assert transaction_files(mq) == []


def test_usage_errors(mq):
    for args in (["T", "--", "true"], ["--abort-on-status", "1", "--atomic", "T"],
                 ["--transaction-timeout", "1m", "T"], ["--atomic", "--delay", "1s", "T"],
                 ["--atomic", "--abort-on-status", "x", "T", "--", "true"],
                 ["--atomic", "--abort-on-status", "9-3", "T", "--", "true"]):
        res = mq.run("mq-produce", *args)
        assert res.status == EX_USAGE, args


def test_sigint_aborts_with_130(mq):
    p = mq.start("mq-produce", "--atomic", "T")
    p.write(b"a\nb\n")
    assert wait_until(lambda: mq.tail("-n", "+0", "--read-uncommitted", "T", check=None).lines() == ["a", "b"])
    p.signal(signal.SIGINT)
    res = p.finish()
    assert res.status == 130 and "aborted" in res.stderr
    assert mq.tail("-n", "+0", "T").lines() == []


@pytest.mark.parametrize("end", ["commit", "kill"])
def test_a_follower_blocked_at_an_open_transaction_proceeds(mq, end):
    mq.produce("T", b"before\n")
    p = mq.start("mq-produce", "--atomic", "T")
    p.write(b"t1\nt2\n")
    assert wait_until(lambda: len(mq.tail("-n", "+0", "--read-uncommitted", "T").lines()) == 3)
    mq.produce("T", b"plain after the transaction began\n")
    follower = mq.start("mq-tail", "-f", "-n", "+0", "T")
    assert follower.out.wait_for(lambda b: b"before\n" in b, 10)
    time.sleep(1.0)
    assert follower.out.snapshot() == b"before\n"  # held at the last stable offset
    if end == "commit":
        p.close_stdin()
        assert p.finish().status == 0
        want = b"before\nt1\nt2\nplain after the transaction began\n"
    else:
        p.kill()
        want = b"before\nplain after the transaction began\n"
    assert follower.out.wait_for(lambda b: b == want, 10), follower.out.snapshot()
    mq.produce("T", b"later\n")
    assert follower.out.wait_for(lambda b: b == want + b"later\n", 10), follower.out.snapshot()
    assert transaction_files(mq) == []


def test_a_transaction_past_its_timeout_is_aborted_and_its_producer_fenced(mq):
    p = mq.start("mq-produce", "--atomic", "--transaction-timeout", "300ms", "T")
    p.write(b"a\n")
    assert wait_until(lambda: mq.tail("-n", "+0", "--read-uncommitted", "T", check=None).lines() == ["a"])
    time.sleep(0.5)
    assert mq.tail("-n", "+0", "T").lines() == []  # aborts it
    p.write(b"b\n")
    p.close_stdin()
    res = p.finish()
    assert res.status == 75, res.stderr
    assert "timeout" in res.stderr
    assert mq.tail("-n", "+0", "T").lines() == []
    mq.validate("T")
    assert transaction_files(mq) == []


def test_compaction_keeps_transactions_and_their_index(mq):
    mq.create("C", 1, "cleanup.policy=compact", "segment.bytes=1024", "min.cleanable.dirty.ratio=0.01")
    # Committed k0..k19 = "old", an aborted transaction overwriting them with
    # "aborted", then plain values for the even keys; many small segments.
    mq.produce("C", b"".join(b"k%d\told\n" % i for i in range(20)), "-K", r"\t", "--batch-messages", "2")
    res = mq.run("mq-produce", "--atomic", "-K", r"\t", "--batch-messages", "2", "C", "--",
                 "sh", "-c", "for i in $(seq 0 19); do printf 'k%s\\taborted\\n' $i; done; exit 5")
    assert res.status == 1, res.stderr
    mq.produce("C", b"".join(b"k%d\tnew\n" % i for i in range(0, 20, 2)), "-K", r"\t", "--batch-messages", "2")
    mq.produce("C", b"pad\tx\n" * 40, "-K", r"\t", "--batch-messages", "2")  # push the above out of the active segment
    before = mq.tail("-n", "+0", "--json", "C").lines()
    segments_before = len(mq.validate("C")[0].segments)
    # Bigger segments now, so that compaction merges the small ones.
    mq.run("mq-topic", "alter", "C", "--config", "segment.bytes=1048576", check=0)
    mq.run("mq-compact", "--force", "C", check=0)
    parts = mq.validate("C", allow_gaps=True)
    assert len(parts[0].segments) < segments_before  # segments were merged
    # The aborted transaction is still aborted: its .txnindex entry moved with its marker.
    assert sum(len(p.aborted_index) for p in parts) == 1
    values = {}
    for line in mq.tail("-n", "+0", "--json", "C").lines():
        e = json.loads(line)
        values[e["key"]] = e["value"]
    assert all(values[f"k{i}"] == ("new" if i % 2 == 0 else "old") for i in range(20)), values
    assert "aborted" not in "".join(mq.tail("-n", "+0", "C").lines())
    assert len(before) > len(mq.tail("-n", "+0", "--json", "C").lines())
    assert mq.run("mq-compact", "--check", "C").status == 0


def test_retention_keeps_the_segments_of_an_open_transaction(mq):
    mq.create("R", 1, "segment.bytes=1024", "retention.bytes=1024", "retention.ms=-1")
    p = mq.start("mq-produce", "--atomic", "--batch-messages", "5", "R")
    p.write(b"".join(b"txn %04d\n" % i for i in range(200)))
    assert wait_until(lambda: len(mq.tail("-n", "+0", "--read-uncommitted", "R").lines()) == 200)
    mq.produce("R", b"plain\n" * 100, "--batch-messages", "5")
    mq.run("mq-compact", "--ignore-consumers", "R", check=0)
    p.close_stdin()
    assert p.finish().status == 0
    assert mq.tail("-n", "+0", "R").lines()[:200] == [f"txn {i:04d}" for i in range(200)]
    mq.run("mq-compact", "--ignore-consumers", "R", check=0)
    assert len(mq.tail("-n", "+0", "R").lines()) < 300  # deleted once the transaction ended
    mq.validate("R")
