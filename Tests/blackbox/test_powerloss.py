"""Power loss, simulated with crashfs (Tests/powerloss/): what survives a crash of the machine.

`kill -9` keeps the page cache; crashfs drops everything that was not fsynced (file data,
and names whose directory was not fsynced) when told to crash. The tools get a new boot id
at each simulated boot through MQ_BOOT_ID_FILE. Skipped, with the reason, when /dev/fuse,
fusermount3 or libfuse3-dev is missing (scripts/setup.sh installs fuse3 and libfuse3-dev).

Randomized trials: MQ_POWERLOSS_TRIALS (default 24) trials, seeded by MQ_POWERLOSS_SEED
(default: random; the seed is printed and is in every failure message): half of them are
producer/group trials, the other half (at least one each) go to the scenarios of
Tests/powerloss/scenarios.py (mq-compact, mq-replay --into, mq-dlq redrive, --atomic,
--id-header, --delay, mq-topic). Replay one trial with
`python3 Tests/powerloss/powerloss.py --trials 1 --seed SEED -v [--kind KIND]`.

Sweeps (deterministic): each scenario's sequential workload is run with crashfs frozen after
its K-th durability call (fsync, fsyncdir), then the power is cut, for K over every call (or an
even sample): every window between two fsyncs of the tool is crashed in once.
"""

import ctypes
import fcntl
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "powerloss"))

import powerloss as pl  # noqa: E402
import scenarios as sc  # noqa: E402

WHY = pl.unavailable()
pytestmark = pytest.mark.skipif(WHY is not None, reason=f"power-loss simulator unavailable: {WHY}")

TRIALS = int(os.environ.get("MQ_POWERLOSS_TRIALS", "24"))
PRODUCER_TRIALS = max(1, TRIALS // 2)
KIND_TRIALS = max(1, (TRIALS - PRODUCER_TRIALS) // len(sc.KINDS))
SEED = int(os.environ.get("MQ_POWERLOSS_SEED", str(random.randrange(1 << 31))))


@pytest.fixture
def machine(mq_bin, tmp_path):
    m = pl.Machine(tmp_path / "machine", mq_bin)
    m.work.mkdir()
    m.start()
    try:
        yield m
    finally:
        m.stop()


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def lines(n, prefix):
    return "".join(f"{prefix}-{i}\n" for i in range(n)).encode()


# ---------------------------------------------------------------------------------------------
# The simulator itself


def test_crashfs_keeps_only_what_was_synced(machine):
    mnt = machine.fs.mountpoint
    (mnt / "d").mkdir()
    (mnt / "d" / "synced").write_bytes(b"one")
    fd = os.open(mnt / "d" / "synced", os.O_WRONLY | os.O_APPEND)
    os.fsync(fd)
    os.write(fd, b" two")          # never synced
    os.close(fd)
    (mnt / "d" / "gone").write_bytes(b"x")
    fsync_dir(mnt)
    fsync_dir(mnt / "d")
    (mnt / "d" / "new").write_bytes(b"new")            # its directory is not fsynced
    os.rename(mnt / "d" / "gone", mnt / "d" / "renamed")
    os.unlink(mnt / "d" / "synced")                    # comes back
    os.link(mnt / "d" / "renamed", mnt / "d" / "link")
    (mnt / "e").mkdir()                                # mnt is not fsynced again
    machine.power_loss()
    assert sorted(os.listdir(mnt / "d")) == ["gone", "synced"]
    assert (mnt / "d" / "synced").read_bytes() == b"one"
    assert (mnt / "d" / "gone").read_bytes() == b""    # its data was never fsynced
    assert not (mnt / "e").exists()
    # a synced rename and a synced unlink stay
    os.rename(mnt / "d" / "gone", mnt / "d" / "moved")
    os.unlink(mnt / "d" / "synced")
    fsync_dir(mnt / "d")
    machine.power_loss()
    assert sorted(os.listdir(mnt / "d")) == ["moved"]


def test_crashfs_torn_mode_keeps_a_prefix(mq_bin, tmp_path):
    m = pl.Machine(tmp_path / "m", mq_bin, torn=True)
    m.work.mkdir()
    with m:
        f = m.fs.mountpoint / "f"
        f.write_bytes(b"")
        fsync_dir(m.fs.mountpoint)
        seen = set()
        for seed in range(20):
            with open(f, "r+b") as h:
                h.truncate(0)
                os.fsync(h.fileno())
                for i in range(10):
                    h.write(bytes([65 + i]) * 1024)
                    h.flush()
            m.power_loss(seed)
            data = f.read_bytes()
            want = b"".join(bytes([65 + i]) * 1024 for i in range(10))
            assert want.startswith(data), f"seed {seed}: not a prefix of what was written"
            seen.add(len(data))
        assert len(seen) > 3, f"torn crashes kept lengths {sorted(seen)} only"


def test_flock_sync_file_range_and_inotify_work_on_crashfs(machine):
    mnt = machine.fs.mountpoint
    (mnt / "lock").write_bytes(b"")
    holder = subprocess.Popen(["flock", str(mnt / "lock"), "sleep", "0.6"])
    time.sleep(0.2)
    started = time.monotonic()
    subprocess.run(["flock", str(mnt / "lock"), "true"], check=True)
    assert time.monotonic() - started > 0.2, "flock did not block while another process held it"
    holder.wait()
    fd = os.open(mnt / "lock", os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    assert subprocess.run(["flock", "-n", str(mnt / "lock"), "true"]).returncode != 0
    os.close(fd)
    # sync_file_range (mq's writeback hint) succeeds and makes nothing durable
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(mnt / "lock", os.O_RDWR)
    os.write(fd, b"data")
    assert libc.sync_file_range(fd, ctypes.c_int64(0), ctypes.c_int64(0), 2) == 0
    os.close(fd)
    # mq-tail -f notices an append made through the mount (inotify, MQ_POLL unset)
    assert machine.run("mq-topic", "create", "t").status == 0
    tail = machine.spawn("mq-tail", "-f", "-n", "+0", "t")
    time.sleep(0.5)
    assert machine.run("mq-produce", "t", input=b"hello\n").status == 0
    reader = pl.LineReader(tail.stdout)
    deadline = time.monotonic() + 10
    while not reader.lines and time.monotonic() < deadline:
        time.sleep(0.05)
    machine.kill_all()
    assert reader.lines[:1] == ["hello"]


# ---------------------------------------------------------------------------------------------
# Randomized trials


@pytest.fixture(scope="module")
def trials(mq_bin):
    print(f"\npower-loss trials: {TRIALS}, seed {SEED}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="mq-powerloss-"))
    results = []
    try:
        for i in range(PRODUCER_TRIALS):
            results.append(pl.run_trial(SEED + i, mq_bin, base / str(i)))
    finally:
        for p in base.glob("*/mnt"):
            subprocess.run(["fusermount3", "-uz", str(p)], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)])
    return results


def test_power_loss_keeps_what_the_producers_promised(trials):
    """--sync batch: every printed offset; --sync exit: every run that exited 0; afterwards a
    producer appends, mq-compact --check passes, mq-tail, mq-consume and mq-stat read."""
    bad = [r.describe() for r in trials if r.violations]
    assert not bad, f"seed {SEED}, {len(bad)} of {len(trials)} trials:\n" + "\n".join(bad)


def test_power_loss_group_never_skips_a_durable_message(trials):
    bad = [r.describe() for r in trials if r.group_skips]
    assert not bad, f"seed {SEED}, {len(bad)} of {len(trials)} trials:\n" + "\n".join(bad)


# ---------------------------------------------------------------------------------------------
# Deterministic scenarios


def test_group_commit_never_passes_the_durable_log(machine):
    """A --sync exit producer still running has written 1,000 messages; a group reads and commits
    them; the machine dies before the producer's final fsync. The group may only have committed
    what survived (it makes the log durable below a position before committing it), so after the
    reboot its offset is within the log and every message appended next is delivered."""
    m = machine
    assert m.run("mq-topic", "create", "t").status == 0
    assert m.run("mq-consume", "-g", "g", "-e", "t").status == 0   # the group's files exist
    m.fs.sync()                                                    # ... and are on disk
    producer = m.spawn("mq-produce", "t", stdin=subprocess.PIPE)  # --sync exit, stays running
    producer.stdin.write(lines(1000, "before"))
    producer.stdin.flush()
    deadline = time.monotonic() + 20
    while len(m.run("mq-tail", "-n", "+0", "t").lines()) < 1000:
        assert time.monotonic() < deadline, "the producer did not write 1000 messages"
        time.sleep(0.1)
    got = m.run("mq-consume", "-g", "g", "-c", "1000", "t")
    assert got.status == 0 and len(got.lines()) == 1000
    assert pl.committed_offsets(m, "g", "t") == {0: 1000}
    m.power_loss()
    survived = m.run("mq-tail", "-n", "+0", "t").lines()
    committed = pl.committed_offsets(m, "g", "t")
    assert committed.get(0, 0) <= len(survived), (
        f"after the reboot the group's offset {committed} is past the log end {len(survived)}")
    # What the group committed survived: the 1,000 messages it was given are still there.
    assert survived == [f"before-{i}" for i in range(1000)]
    assert m.run("mq-produce", "t", input=lines(1500, "after")).status == 0
    got = m.run("mq-consume", "-g", "g", "-e", "t")
    assert got.status == 0
    stat = m.run("mq-stat", "--json")
    lag = [g.get("lag_messages") for g in pl.json.loads(stat.stdout)["groups"] if g["group"] == "g"]
    assert got.lines() == [f"after-{i}" for i in range(1500)], (
        f"after the reboot the group delivered {len(got.lines())} of the 1500 new messages "
        f"(first {got.lines()[:1]}); mq-stat lag {lag}")


def test_group_offsets_survive_a_power_loss(machine):
    m = machine
    assert m.run("mq-topic", "create", "t").status == 0
    m.fs.sync()
    assert m.run("mq-produce", "t", input=lines(100, "m")).status == 0
    got = m.run("mq-consume", "-g", "g", "-e", "t")
    assert got.status == 0 and len(got.lines()) == 100
    assert pl.committed_offsets(m, "g", "t") == {0: 100}
    m.power_loss()
    assert m.run("mq-tail", "-n", "+0", "t").lines() == [f"m-{i}" for i in range(100)]
    committed = pl.committed_offsets(m, "g", "t")
    groups_there = (m.root / "groups").exists()
    again = m.run("mq-consume", "-g", "g", "-e", "t")
    assert committed == {0: 100} and again.lines() == [], (
        f"after the reboot: committed offsets {committed}, groups/ exists: "
        f"{groups_there}; the group delivered {len(again.lines())} messages again")


def test_group_offsets_of_many_partitions_survive_a_power_loss(machine):
    """A consumer committing 40 partitions at once (one syncfs on file systems where it reaches
    the disk, one fdatasync per file elsewhere, as on this FUSE file system, where syncfs makes
    nothing durable) must have made every commit durable when it exits."""
    m = machine
    assert m.run("mq-topic", "create", "t", "--partitions", "40").status == 0
    m.fs.sync()
    assert m.run("mq-produce", "-K", ":", "t", input=b"".join(b"k%d:m%d\n" % (i, i) for i in range(400))).status == 0
    got = m.run("mq-consume", "-g", "g", "-e", "t")
    assert got.status == 0 and len(got.lines()) == 400
    before = pl.committed_offsets(m, "g", "t")
    assert len(before) == 40
    m.power_loss()
    after = pl.committed_offsets(m, "g", "t")
    again = m.run("mq-consume", "-g", "g", "-e", "t")
    assert after == before and again.lines() == [], (
        f"after the reboot {sum(1 for p in before if after.get(p) != before[p])} of 40 committed "
        f"offsets were lost; the group delivered {len(again.lines())} messages again")


def test_topic_of_many_partitions_and_its_producer_survive_a_power_loss(machine):
    """Creating 40 partitions (their first segments and heads) and a --sync exit producer writing
    to all of them take one syncfs each on file systems where it reaches the disk, and an fsync
    per directory and an fdatasync per partition elsewhere, as on this FUSE file system, where
    syncfs makes nothing durable: everything must be durable when they exit."""
    m = machine
    m.root.mkdir()
    fsync_dir(m.fs.mountpoint)
    assert m.run("mq-topic", "create", "t", "--partitions", "40").status == 0
    sent = [b"k%d:m%d" % (i, i) for i in range(400)]
    assert m.run("mq-produce", "-K", ":", "t", input=b"\n".join(sent) + b"\n").status == 0
    m.power_loss()
    got = m.run("mq-tail", "-n", "+0", "t")
    assert got.status == 0, got.stderr
    assert sorted(got.lines()) == sorted("m%d" % i for i in range(400)), (
        f"after the reboot {len(got.lines())} of 400 messages are there")


def test_topic_creation_and_exit_producer_survive_a_power_loss(machine):
    m = machine
    m.root.mkdir()
    fsync_dir(m.fs.mountpoint)          # the log directory itself is the user's
    assert m.run("mq-topic", "create", "t", "--partitions", "2").status == 0
    assert m.run("mq-produce", "-p", "1", "t", input=lines(10, "x")).status == 0
    m.power_loss()
    assert m.run("mq-tail", "-n", "+0", "t").lines() == [f"x-{i}" for i in range(10)]


def test_topic_created_after_a_follower_made_topics_dir_survives_a_power_loss(machine):
    m = machine
    m.root.mkdir()
    fsync_dir(m.fs.mountpoint)
    m.spawn("mq-tail", "-f", "missing")    # waits for the topic: creates ROOT/topics to watch it
    deadline = time.monotonic() + 10
    while not (m.root / "topics").exists():
        assert time.monotonic() < deadline, "mq-tail -f did not create ROOT/topics"
        time.sleep(0.05)
    m.kill_all()
    m.boot()
    assert m.run("mq-topic", "create", "t").status == 0
    assert m.run("mq-produce", "t", input=lines(10, "x")).status == 0
    m.power_loss()
    got = m.run("mq-tail", "-n", "+0", "t")
    assert got.lines() == [f"x-{i}" for i in range(10)], (
        f"after the reboot: mq-tail exit {got.status} {got.stderr.strip()}; ROOT holds "
        f"{sorted(os.listdir(m.root))}")


def test_crashfs_size_bound_gives_enospc(mq_bin, tmp_path):
    m = pl.Machine(tmp_path / "m", mq_bin, size=256 * 1024)
    m.work.mkdir()
    with m:
        assert m.run("mq-topic", "create", "t").status == 0
        got = m.run("mq-produce", "t", input=lines(100_000, "a-fairly-long-message"))
        assert got.status == 74, f"mq-produce on a full disk: exit {got.status} {got.stderr[-300:]}"
        assert m.fs.stats()["enospc"] > 0
        assert m.run("mq-compact", "--check", "--all").status == 0


# ---------------------------------------------------------------------------------------------
# The other tools: randomized trials (a concurrent workload, a random crash moment, two power
# cycles) and sweeps (a crash right after each durability call of a sequential workload)


@pytest.fixture(scope="module")
def kind_trials(mq_bin):
    print(f"\npower-loss scenario trials: {KIND_TRIALS} per kind, seed {SEED}", flush=True)
    base = Path(tempfile.mkdtemp(prefix="mq-powerloss-kinds-"))
    results = {k: [] for k in sc.KINDS}
    try:
        for i in range(KIND_TRIALS):
            for kind in sc.KINDS:
                results[kind].append(sc.run_kind_trial(kind, SEED + i, mq_bin, base / f"{kind}{i}"))
    finally:
        for p in base.glob("*/mnt"):
            subprocess.run(["fusermount3", "-uz", str(p)], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)])
    return results


PROMISES = {
    "compact": "mq-compact (§17): every key's latest durable value, growing offsets, --check, kafka_validate",
    "replay": "mq-replay --into (§16): every source record exactly once after a rerun",
    "dlq": "mq-dlq redrive (§16): every letter exactly once after a rerun",
    "txn": "mq-produce --atomic (§18): all or nothing; exited 0 means visible",
    "dedup": "mq-produce --id-header (§19): each id at most once; exited 0 means present",
    "delay": "mq-produce --delay (§15): an accepted delayed message is delivered after the crash",
    "topic": "mq-topic (§10, §11): create/alter that returned 0 stay, delete that returned 0 stays deleted",
}


@pytest.mark.parametrize("kind", sc.KINDS)
def test_power_loss_random_trials(kind_trials, kind):
    """PROMISES[kind], with a concurrent workload and a seeded random crash moment."""
    trials = kind_trials[kind]
    bad = [r.describe() for r in trials if r.violations]
    assert not bad, (f"{PROMISES[kind]}: seed {SEED}, {len(bad)} of {len(trials)} trials "
                     f"(replay: powerloss.py --kind {kind} --seed SEED --trials 1 -v):\n" + "\n".join(bad))


@pytest.fixture(scope="module")
def sweeps(mq_bin):
    base = Path(tempfile.mkdtemp(prefix="mq-powerloss-sweeps-"))
    cache = {}

    def get(kind):
        if kind not in cache:
            cache[kind] = sc.sweep(kind, mq_bin, base / kind, seed=1, max_points=sc.SWEEP_POINTS[kind])
        return cache[kind]
    try:
        yield get
    finally:
        for p in base.glob("*/mnt"):
            subprocess.run(["fusermount3", "-uz", str(p)], capture_output=True)
        subprocess.run(["rm", "-rf", str(base)])


@pytest.mark.parametrize("kind", sc.KINDS)
def test_crash_after_each_durability_call(sweeps, kind):
    """PROMISES[kind] after a crash right after the K-th fsync/fsyncdir of the tool's sequential
    workload, for K over all of them (or an even sample), from the same starting state:
    compact: one mq-compact --force of a compacted topic with 1 KiB segments (the swap's
    commit point and roll-forward, the cleaner offset); replay/dlq: a copy of 1,200-3,500
    records in chunks of 1,000 then a rerun; txn: two --atomic producers over the partitions;
    dedup: three --id-header runs with overlapping ids, then reruns; delay: a mover moving
    2,500 due messages (three moves); topic: create, alter, create, delete, alter, create,
    delete, alter."""
    r = sweeps(kind)
    assert r.points, f"the {kind} workload made no durability call"
    assert not r.violations, f"{PROMISES[kind]}:\n{r.describe()}"


def test_delay_mover_duplicates_at_most_1000_per_crash(sweeps):
    r = sweeps("delay")
    assert not r.known, r.describe()
