"""Concurrent producers, producers killed at random moments, and signals.

The promise checked: an offset printed by --print-offsets is durable in the log with the
message it was printed for, whatever happens to the producer afterwards, and the log is a
valid Kafka log again after the next successful produce.
"""

import random
import signal
import threading
import time

import pytest

from mqtest import signalled


@pytest.mark.slow
def test_eight_concurrent_producers(mq, tmp_path):
    producers, per = 8, 100_000
    mq.create("conc", 1)
    extra = {0: [], 1: ["--batch-messages", "100"], 2: ["-z", "lz4"], 3: ["--batch-bytes", "4096"]}
    procs = []
    for i in range(producers):
        f = tmp_path / f"in{i}.txt"
        f.write_bytes(b"".join(b"p%d %d\n" % (i, n) for n in range(per)))
        with open(f, "rb") as stdin:
            procs.append(mq.start("mq-produce", "conc", *extra[i % 4], stdin=stdin))
    deadline = time.monotonic() + 480
    for p in procs:
        res = p.finish(max(1.0, deadline - time.monotonic()))
        assert res.status == 0, res.stderr

    recs = mq.records("conc")  # kafka_validate: contiguous offsets, CRCs, batch structure
    assert len(recs) == producers * per
    assert recs[0].offset == 0 and recs[-1].offset == producers * per - 1
    seen = [[] for _ in range(producers)]
    for r in recs:
        name, n = r.value.split(b" ")
        seen[int(name[1:])].append(int(n))
    for i in range(producers):
        assert seen[i] == list(range(per)), f"producer {i}'s lines are missing or out of order"
    res = mq.validate_cli(mq.topic_dir("conc"))
    assert res.status == 0, res.stderr
    out = mq.tail("conc", "-n", "+0", timeout=300).stdout
    assert out == b"".join(r.value + b"\n" for r in recs)


class Feeder(threading.Thread):
    """Writes numbered lines into a producer's stdin until told to stop or the pipe breaks."""

    def __init__(self, proc, run, rng, limit=20_000):
        super().__init__(daemon=True)
        self.proc, self.run_id, self.rng, self.limit = proc, run, rng, limit
        self.sent = []
        self.stop = threading.Event()

    def run(self):
        n = 0
        try:
            while not self.stop.is_set() and n < self.limit:
                chunk = []
                for _ in range(self.rng.randint(1, 200)):
                    pad = b"#" * (self.rng.randint(0, 60) if self.rng.random() < 0.98
                                  else self.rng.randint(1000, 8000))
                    line = b"r%d %d %s" % (self.run_id, n, pad)
                    chunk.append(line)
                    n += 1
                self.sent.extend(chunk)
                self.proc.write(b"\n".join(chunk) + b"\n")
                if self.rng.random() < 0.3:
                    time.sleep(self.rng.uniform(0, 0.01))
        except (BrokenPipeError, OSError, ValueError):
            pass


def acked(proc, feeder):
    """(partition, offset) -> message for every offset line the producer printed."""
    lines = proc.out.complete_lines()
    assert len(lines) <= len(feeder.sent), "more offsets printed than lines written"
    out = {}
    for i, line in enumerate(lines):
        p, o = map(int, line.split())
        out[(p, o)] = feeder.sent[i]
    return out


@pytest.mark.slow
def test_kill_9_at_random_moments(mq):
    rng = random.Random(20240601)
    mq.create("k9", 1)
    promised = {}
    for run in range(50):
        batch = rng.choice(["1", "7", "50", "500"])
        proc = mq.start("mq-produce", "k9", "--print-offsets", "--batch-messages", batch,
                        "--linger", "5ms")
        feeder = Feeder(proc, run, rng)
        feeder.start()
        time.sleep(rng.choice([0, 0.01, 0.05]) + rng.uniform(0, 0.4))
        proc.signal(signal.SIGKILL)
        feeder.stop.set()
        proc.wait(30)
        proc.out.wait_closed(10)
        feeder.join(10)
        got = acked(proc, feeder)
        again = set(got) & set(promised)
        assert not again, f"run {run}: offsets printed twice: {sorted(again)[:5]}"
        promised.update(got)
        if run % 10 == 9:
            # The next clean produce repairs whatever the kill left behind.
            mq.produce("k9", b"clean %d\n" % run)
            check_promises(mq, promised)
    mq.produce("k9", b"final\n")
    check_promises(mq, promised)
    assert len(promised) > 100, "producers were killed before printing anything useful"


def check_promises(mq, promised):
    recs = mq.records("k9")  # strict kafka_validate
    by_offset = {r.offset: r.value for r in recs}
    for (p, o), value in promised.items():
        assert p == 0
        assert by_offset.get(o) == value, f"offset {o}: printed for {value[:30]!r}, " \
                                          f"log has {by_offset.get(o, b'<missing>')[:30]!r}"
    # Whatever else is in the log is an input line too, each run's lines in input order.
    last = {}
    for r in recs:
        if r.value.startswith(b"r"):
            run, n = map(int, r.value[1:].split(b" ")[:2])
            assert n > last.get(run, -1), f"run {run} line {n} out of order"
            last[run] = n


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_mid_stream_keeps_printed_offsets(mq, sig, code):
    rng = random.Random(7)
    mq.create("sg", 1)
    proc = mq.start("mq-produce", "sg", "--print-offsets", "--batch-messages", "20",
                    "--linger", "5ms")
    feeder = Feeder(proc, 0, rng, limit=10_000_000)
    feeder.start()
    assert proc.out.wait_for(lambda d: d.count(b"\n") >= 100, 20), proc.err.snapshot()
    time.sleep(0.2)
    proc.signal(sig)
    res = proc.finish(20)
    feeder.stop.set()
    feeder.join(10)
    assert signalled(res.status, sig, code), res
    got = acked(proc, feeder)
    assert len(got) >= 100
    mq.produce("sg", b"after\n")
    recs = {r.offset: r.value for r in mq.records("sg")}
    for (p, o), value in got.items():
        assert recs.get(o) == value, o
