"""`mq-tail -n N` over several partitions: the last N messages in timestamp order (issue 12 §1).

mq-tail finds them from the end of each partition. The reference is what it did before: a
forward merge of every partition's own last N offsets by (timestamp, topic, partition), keeping
the last N taken; modelled here from each partition read alone, and kept in the binaries at
$MQ_BIN_BASE (the directory of a reference build, e.g. of the commit before the change) when set. Random logs with equal and decreasing timestamps, explicit partitions and keys,
several segments, committed and aborted transactions and a compacted topic; the outputs must be
the same byte for byte.
"""

import heapq
import json
import time
import os
import random
import subprocess
from pathlib import Path

import pytest

from mqtest import jline

BASE = Path(os.environ.get("MQ_BIN_BASE") or "/nonexistent")
T0 = 1700000000000


def timestamps(rng, count):
    """Runs that rise, repeat and fall, from a small range so that ties are common."""
    out, t = [], T0 + rng.randrange(50)
    for _ in range(count):
        step = rng.choice((0, 0, 1, 2, 5, -1, -3, -20, 40))
        t = max(T0, t + step)
        out.append(t)
    return out


def fill(mq, rng, tmp_path):
    mq.create("A", 3, "segment.bytes=1024")
    mq.create("B", 2, "cleanup.policy=compact", "segment.bytes=1024", "min.cleanable.dirty.ratio=0")
    mq.create("C", 1, "message.timestamp.type=LogAppendTime")
    n = 0
    for round in range(16):
        topic = rng.choice("AABBC")
        parts = {"A": 3, "B": 2, "C": 1}[topic]
        count = rng.randrange(1, 40)
        lines = []
        for ts in timestamps(rng, count):
            n += 1
            key = f"k{rng.randrange(6)}" if topic == "B" or rng.random() < 0.5 else None
            partition = None if key is not None else rng.randrange(parts)
            lines.append(jline(f"v{n}", key=key, partition=partition, timestamp=ts))
        data = b"".join(lines)
        how = rng.random()
        if how < 0.2:
            f = tmp_path / f"in{round}"
            f.write_bytes(data)
            status = rng.choice((0, 3))
            mq.run("mq-produce", "--atomic", "--json", topic, "--", "sh", "-c", f"cat {f}; exit {status}")
        else:
            mq.produce(topic, data, "--json", "--batch-messages", str(rng.choice((1, 3, 1000))))
    mq.run("mq-compact", "--force", "B", check=0)


def forward_merge_model(mq, topics, n, flags, cache):
    """The last n that a forward merge of each partition's last n offsets takes (ties: the
    earlier topic, then the lower partition), as JSON lines."""
    stat = json.loads(mq.run("mq-stat", *topics, "--json", check=0).stdout)
    by_name = {t["topic"]: t for t in stat["topics"]}
    suffixes = []
    for topic in topics:
        for p in by_name[topic]["partitions"]:
            first = max(p["start_offset"], p["end_offset"] - n)
            where = (topic, p["partition"], *flags)
            if where not in cache:
                cache[where] = mq.tail("-n", "+0", "-p", p["partition"], "--json", topic, *flags).lines()
            lines = cache[where]
            suffixes.append([line for line in lines if json.loads(line)["offset"] >= first])
    heap = [(json.loads(s[0])["timestamp"], i, 0) for i, s in enumerate(suffixes) if s]
    heapq.heapify(heap)
    taken = []
    while heap:
        _, i, k = heapq.heappop(heap)
        taken.append(suffixes[i][k])
        if k + 1 < len(suffixes[i]):
            heapq.heappush(heap, (json.loads(suffixes[i][k + 1])["timestamp"], i, k + 1))
    return taken[max(0, len(taken) - n):] if n else []


@pytest.mark.parametrize("seed", range(2))
def test_last_n_is_the_end_of_a_forward_merge(mq, tmp_path, seed):
    rng = random.Random(100 + seed)
    fill(mq, rng, tmp_path)
    cache = {}
    for topics, flags in ((["A", "B", "C"], []), (["C", "A"], ["--read-uncommitted"])):
        for n in (0, 1, 2, 5, 13, 40, 500):
            want = forward_merge_model(mq, topics, n, flags, cache)
            assert mq.tail("-n", n, "--json", *topics, *flags).lines() == want, (topics, n, flags)


def tail(bin_dir, mq, args):
    p = subprocess.run([str(bin_dir / "mq-tail"), "--dir", str(mq.dir)] + args, env=mq.env(),
                       capture_output=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


@pytest.mark.skipif(not (BASE / "mq-tail").is_file(), reason=f"no reference mq-tail in {BASE} (set MQ_BIN_BASE)")
@pytest.mark.parametrize("seed", range(3))
def test_last_n_is_what_the_forward_merge_gave(mq, tmp_path, seed):
    rng = random.Random(seed)
    fill(mq, rng, tmp_path)
    total = sum(1 for _ in mq.tail("-n", "+0", "A", "B", "C", "--read-uncommitted").lines())
    selections = [["A", "B", "C"], ["C", "[AB]"], ["-p", "0", "A", "B"], ["A", "--read-uncommitted"]]
    for sel in selections:
        for n in sorted({0, 1, 2, 5, 13, 40, total - 1, total + 7}):
            if n < 0:
                continue
            args = ["-n", str(n), "--json"] + sel
            new, old = tail(mq.bin, mq, args), tail(BASE, mq, args)
            assert new == old, f"mq-tail {' '.join(args)}:\nnew {new}\nold {old}"
            assert len(new[1].splitlines()) <= n


@pytest.mark.skipif(not (BASE / "mq-tail").is_file(), reason=f"no reference mq-tail in {BASE} (set MQ_BIN_BASE)")
def test_last_n_with_an_open_transaction(mq, tmp_path):
    """A transaction still open holds its partitions back from its first offset on."""
    rng = random.Random(7)
    fill(mq, rng, tmp_path)
    p = mq.start("mq-produce", "--atomic", "--json", "A", "--linger", "1ms")
    p.write(b"".join(jline(f"open{i}", partition=i % 2, timestamp=T0 + 30 - i) for i in range(6)))
    deadline = time.monotonic() + 20
    while not any((mq.partition_dir("A", q) / "transactions").exists() for q in range(3)):
        assert time.monotonic() < deadline, "the transaction did not start"
        time.sleep(0.05)
    time.sleep(0.2)
    mq.produce("A", b"".join(jline(f"after{i}", partition=i % 3, timestamp=T0 + i) for i in range(5)), "--json")
    for sel in (["A", "B", "C"], ["A", "--read-uncommitted"]):
        for n in (0, 1, 3, 10, 50):
            args = ["-n", str(n), "--json"] + sel
            new, old = tail(mq.bin, mq, args), tail(BASE, mq, args)
            assert new == old, f"mq-tail {' '.join(args)}:\nnew {new}\nold {old}"
    assert b'"open' not in tail(mq.bin, mq, ["-n", "50", "--json", "A", "B"])[1]
    assert b'"open' in tail(mq.bin, mq, ["-n", "50", "--json", "A", "B", "--read-uncommitted"])[1]
    p.close_stdin()
    assert p.wait() == 0
