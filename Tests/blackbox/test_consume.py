"""mq-consume: consumer groups, committed offsets, leases, filters, output, signals.

Committed offsets are read straight from the group's files as docs/FORMAT.md §13
describes them (per partition, two 32-byte little-endian slots with a CRC-32C each), never
with mq code.
"""

import fcntl
import json
import os
import signal
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

import mqtest
from mqtest import DEFAULT_TIMEOUT, EX_NOINPUT, EX_USAGE, Proc, Stream, assert_error, jline, signalled

SLOT = 32


# ---------------------------------------------------------------------------------------------
# The group's files, per docs/FORMAT.md §13


def offset_file(mq, group, topic, partition=0):
    """The group's committed-offset file of the topic (partition 0's slots are its first 64 bytes)."""
    return mqtest.commits_file(mq.dir, group, topic)


def slots(path):
    """[(generation, offset) or None] for partition 0's two slots in a committed-offset file."""
    return mqtest.decode_slots(path.read_bytes()[:2 * SLOT])


def committed(mq, group, topic, partition=0):
    """The committed offset (valid slot with the larger generation), or None."""
    return mqtest.committed_offset(mq.dir, group, topic, partition)


def end_offsets(mq, topic):
    res = mq.run("mq-topic", "describe", "--json", topic, check=0)
    return {d["partition"]: d["end_offset"] for d in json.loads(res.stdout)["partition_details"]}


def consume(mq, *args, check=0, timeout=DEFAULT_TIMEOUT):
    return mq.run("mq-consume", *args, check=check, timeout=timeout)


def offsets_of(res):
    return [int(line) for line in res.lines()]


def wait_until(predicate, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def produce_keyed(mq, topic, n, keys=5000):
    data = b"".join(b"k%d\tv%d\n" % (i % keys, i) for i in range(n))
    mq.produce(topic, data, "-K", "\\t")


# ---------------------------------------------------------------------------------------------
# Group members whose output the test reads, slowly when it wants them to lag


class ThrottledReader(threading.Thread):
    """Reads a pipe, `chunk` bytes every `pause` seconds while `throttled`, else at full speed."""

    def __init__(self, pipe, chunk=1024, pause=0.02):
        super().__init__(daemon=True)
        self.fd = pipe.fileno()
        self.chunk, self.pause = chunk, pause
        self.throttled = True
        self.data = bytearray()
        self.lock = threading.Lock()
        self.closed = threading.Event()
        self.start()

    def run(self):
        while True:
            try:
                chunk = os.read(self.fd, self.chunk if self.throttled else 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                self.closed.set()
                return
            with self.lock:
                self.data += chunk
            if self.throttled:
                time.sleep(self.pause)

    def lines(self):
        """Complete lines so far, as (partition, offset)."""
        with self.lock:
            data = bytes(self.data)
        end = data.rfind(b"\n")
        return [] if end < 0 else [tuple(map(int, l.split())) for l in data[:end].split(b"\n")]


class Member(Proc):
    """An `mq-consume --format '%p %o\\n'` process with its output read by a ThrottledReader
    (signal, kill, pid and running come from Proc)."""

    def __init__(self, mq, *args, throttled=True):
        argv = mq.argv("mq-consume", ["--format", "%p %o\\n", *args])
        self.p = subprocess.Popen(argv, env=mq.env(), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  start_new_session=True)
        self.out = ThrottledReader(self.p.stdout)
        self.out.throttled = throttled
        self.err = Stream(self.p.stderr)
        mq.procs.append(self)

    def finish(self, timeout=60):
        self.out.throttled = False
        try:
            status = self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"mq-consume did not exit within {timeout} s; "
                                 f"stderr: {self.err.snapshot()[-2000:]!r}")
        assert self.out.closed.wait(30), "output not closed after exit"
        assert self.err.wait_closed(30), "standard error not closed after exit"
        return status

    def stderr(self):
        return self.err.snapshot().decode("utf-8", "replace")


def locked(path):
    """True when some process holds a flock on path (LOCK_SH|LOCK_NB would block)."""
    try:
        with open(path, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
            return False
    except FileNotFoundError:
        return False


def start_members(mq, n, *args, throttled=True):
    """Starts n members of a group one after the other, each once the previous one's member
    file exists and is locked. (Members started at the same instant can miss each other: a
    member file is created before it is locked, and a member that tests it in between takes
    its owner for dead and removes it: test_members_started_together_all_count.)"""
    member_dir = mq.dir / "groups" / args[args.index("-g") + 1] / "members"
    members = []
    for i in range(n):
        members.append(Member(mq, *args, throttled=throttled))
        wait_until(lambda: member_dir.exists()
                   and sum(locked(f) for f in member_dir.iterdir()) == i + 1, 20,
                   f"{i + 1} locked member files")
    return members


def check_order(outputs):
    """Within each consumer's output, each partition's offsets strictly increase."""
    for name, lines in outputs.items():
        last = {}
        for p, o in lines:
            assert o > last.get(p, -1), f"{name}: partition {p} offset {o} after {last[p]}"
            last[p] = o


# ---------------------------------------------------------------------------------------------
# Committed offsets and where a run starts


def test_group_resumes_from_committed_offsets(mq):
    mq.produce("r", b"a\nb\nc\nd\ne\n")
    assert consume(mq, "-g", "g", "-e", "r").stdout == b"a\nb\nc\nd\ne\n"
    assert committed(mq, "g", "r") == 5
    mq.produce("r", b"f\ng\nh\n")
    assert consume(mq, "-g", "g", "-e", "r").stdout == b"f\ng\nh\n"
    assert committed(mq, "g", "r") == 8
    assert consume(mq, "-g", "g", "-e", "r").stdout == b""
    # A clean exit leaves no member file behind.
    assert list((mq.dir / "groups" / "g" / "members").iterdir()) == []


def test_two_groups_each_get_every_message(mq):
    mq.create("pub", 3)
    produce_keyed(mq, "pub", 3000, keys=100)
    want = {(int(Path(r.partition_dir).name), r.offset, r.value) for r in mq.records("pub")}
    assert len(want) == 3000
    for group in ("a", "b"):
        res = consume(mq, "-g", group, "-e", "--format", "%p %o %s\\n", "pub")
        got = [tuple(line.split()) for line in res.lines()]
        assert len(got) == 3000, group
        assert {(int(p), int(o), v.encode()) for p, o, v in got} == want, group
        assert [committed(mq, group, "pub", p) for p in range(3)] == \
            [end_offsets(mq, "pub")[p] for p in range(3)]
    assert consume(mq, "-g", "a", "-e", "pub").stdout == b""
    assert consume(mq, "-g", "b", "-e", "pub").stdout == b""


def test_count_commits_exactly_n(mq):
    mq.produce("c1", b"".join(b"m%d\n" % i for i in range(10)))  # one batch
    res = consume(mq, "-g", "g", "-e", "-c", "4", "--format", "%o\\n", "c1")
    assert offsets_of(res) == [0, 1, 2, 3]
    assert committed(mq, "g", "c1") == 4
    res = consume(mq, "-g", "g", "-e", "--format", "%o\\n", "c1")
    assert offsets_of(res) == list(range(4, 10))
    assert committed(mq, "g", "c1") == 10


def test_count_commits_exactly_n_across_partitions(mq):
    mq.create("c3", 3)
    produce_keyed(mq, "c3", 300, keys=30)
    res = consume(mq, "-g", "g", "-e", "-c", "70", "--format", "%p %o\\n", "c3")
    first = [tuple(map(int, line.split())) for line in res.lines()]
    assert len(first) == 70
    assert sum(committed(mq, "g", "c3", p) or 0 for p in range(3)) == 70
    for p in range(3):  # what was printed of each partition is exactly what was committed
        assert sorted(o for q, o in first if q == p) == list(range(committed(mq, "g", "c3", p) or 0))
    res = consume(mq, "-g", "g", "-e", "--format", "%p %o\\n", "c3")
    second = [tuple(map(int, line.split())) for line in res.lines()]
    assert len(second) == 230
    ends = end_offsets(mq, "c3")
    assert sorted(first + second) == sorted((p, o) for p in range(3) for o in range(ends[p]))


def test_count_zero_exits_at_once(mq):
    mq.produce("cz", b"x\n")
    assert consume(mq, "-g", "g", "-c", "0", "cz").stdout == b""
    assert committed(mq, "g", "cz") is None


def test_from_applies_only_where_nothing_is_committed(mq):
    mq.produce("fr", b"old1\nold2\n")
    assert consume(mq, "-g", "g", "-e", "--from", "end", "fr").stdout == b""
    assert committed(mq, "g", "fr") == 2
    mq.produce("fr", b"new\n")
    # The committed offset wins over --from.
    assert consume(mq, "-g", "g", "-e", "--from", "beginning", "fr").stdout == b"new\n"
    # A new group starts at --from, by default at the beginning.
    assert consume(mq, "-g", "h", "-e", "fr").stdout == b"old1\nold2\nnew\n"
    assert consume(mq, "-g", "i", "-e", "--from", "1", "fr").stdout == b"old2\nnew\n"


def test_without_group_nothing_is_committed_and_start_is_end(mq):
    mq.produce("ng", b"a\nb\nc\n")
    assert consume(mq, "-e", "ng").stdout == b""
    assert consume(mq, "-e", "--from", "beginning", "ng").stdout == b"a\nb\nc\n"
    assert consume(mq, "-e", "--from", "beginning", "ng").stdout == b"a\nb\nc\n"
    assert consume(mq, "-e", "-c", "2", "--from", "beginning", "ng").stdout == b"a\nb\n"
    follower = mq.start("mq-consume", "ng")
    time.sleep(1.0)
    mq.produce("ng", b"d\n")
    assert follower.out.wait_for(lambda d: d == b"d\n", 5), follower.out.snapshot()
    follower.signal(signal.SIGTERM)
    assert signalled(follower.finish(10).status, signal.SIGTERM, 143)
    assert not (mq.dir / "groups").exists()


def test_without_group_a_topic_created_later_is_read_from_its_beginning(mq):
    """mq-tail -f reads a topic that appears later from its beginning; so should mq-consume
    without a group (the default --from end applies to what exists at start)."""
    follower = mq.start("mq-consume", "late", "later\\..*")
    time.sleep(1.0)
    mq.produce("late", b"first\n")
    mq.produce("later.x", b"second\n")
    assert follower.out.wait_for(lambda d: b"first\n" in d and b"second\n" in d, 5), \
        follower.out.snapshot()


def test_missing_topic_with_exit(mq):
    assert_error(consume(mq, "-e", "nosuch", check=None), EX_NOINPUT, "mq-consume", "nosuch")
    assert_error(consume(mq, "-g", "g", "-e", "nosuch\\..*", check=None), EX_NOINPUT,
                 "mq-consume")


@pytest.mark.parametrize("name", ["a/b", "..", ".", "x" * 250, "sp ace", ""])
def test_invalid_group_name(mq, name):
    mq.produce("ig", b"x\n")
    res = consume(mq, "-g", name, "-e", "ig", check=None)
    assert_error(res, EX_USAGE, "mq-consume")
    assert res.stdout == b""
    assert not (mq.dir / "groups").exists() or not any((mq.dir / "groups").iterdir())


@pytest.mark.parametrize("args", [["--header", "novalue"], ["--header", "=v"], ["--grep", "("],
                                  ["--commit-interval", "soon"], ["--from", "yesterday"],
                                  ["-c", "-1"], ["--json", "--format", "%s"], ["-0", "-d", ","]])
def test_bad_command_lines(mq, args):
    mq.produce("bc", b"x\n")
    res = consume(mq, "-g", "g", "-e", *args, "bc", check=None)
    assert_error(res, EX_USAGE, "mq-consume")
    assert committed(mq, "g", "bc") is None


# ---------------------------------------------------------------------------------------------
# Filters


FILTER_INPUT = [  # (key, value, headers)
    (f"k{i % 3}",
     ("ERROR disk" if i % 4 == 0 else "ERR net" if i % 7 == 0 else "info"),
     [("env", "prod" if i % 2 else "dev")] + ([("team", "a")] if i % 5 == 0 else []))
    for i in range(40)
] + [("k9", "trailing no match", [("env", "none")])] * 5


def expected(pred):
    return [i for i, m in enumerate(FILTER_INPUT) if pred(*m)]


@pytest.mark.parametrize("args,pred", [
    (["--grep", "ERROR"], lambda k, v, h: "ERROR" in v),
    (["--grep", "^ERR(OR)? [a-z]+$"], lambda k, v, h: v.startswith("ERR")),
    (["--grep", "NOTHING"], lambda k, v, h: False),
    (["--key", "k1"], lambda k, v, h: k == "k1"),
    (["--header", "env=prod"], lambda k, v, h: ("env", "prod") in h),
    (["--header", "env=prod", "--header", "team=a"],
     lambda k, v, h: ("env", "prod") in h and ("team", "a") in h),
    (["--key", "k1", "--header", "env=prod", "--grep", "ERROR"],
     lambda k, v, h: k == "k1" and ("env", "prod") in h and "ERROR" in v),
], ids=["grep", "grep-ere", "grep-none", "key", "header", "two-headers", "all-three"])
def test_filters_skip_and_commit_skipped_messages(mq, args, pred):
    mq.produce("fl", b"".join(jline(v, key=k, headers=h) for k, v, h in FILTER_INPUT), "--json")
    res = consume(mq, "-g", "g", "-e", "--format", "%o\\n", *args, "fl")
    assert offsets_of(res) == expected(pred)
    # Skipped messages are consumed too, the trailing non-matching ones included.
    assert committed(mq, "g", "fl") == len(FILTER_INPUT)
    assert consume(mq, "-g", "g", "-e", "fl").stdout == b""
    # Without a group the same filter gives the same messages.
    res = consume(mq, "-e", "--from", "beginning", "--format", "%o\\n", *args, "fl")
    assert offsets_of(res) == expected(pred)


def test_count_counts_only_delivered_messages(mq):
    mq.produce("fc", b"".join(jline(v, key=k, headers=h) for k, v, h in FILTER_INPUT), "--json")
    want = expected(lambda k, v, h: "ERROR" in v)[:3]
    res = consume(mq, "-g", "g", "-e", "-c", "3", "--grep", "ERROR", "--format", "%o\\n", "fc")
    assert offsets_of(res) == want
    assert committed(mq, "g", "fc") == want[-1] + 1


# ---------------------------------------------------------------------------------------------
# Output modes, as mq-tail prints them


def test_json_and_format_output(mq):
    mq.create("out", 2)
    data = b"".join([
        jline("hello é", key="k1", headers=[("h", "1"), ("n", None)], partition=0,
              timestamp=1700000000000),
        jline(None, key=None, partition=1, timestamp=1700000000001),
        jline(b"\xff\x00bin", key=b"\xfe", headers=[("b", b"\x80")], partition=1,
              timestamp=1700000000002),
        jline("", key="", partition=0, timestamp=1700000000003),
    ])
    mq.produce("out", data, "--json")
    for i, mode in enumerate([["--json"], ["--format", "%t|%p|%o|%k|%s|%T|%h|%K|%S\\n"],
                              ["-0"], ["-d", "\\x1e"], []]):
        got = consume(mq, "-g", f"g{i}", "-e", *mode, "out").stdout
        for p in (0, 1):
            tail = mq.tail("-n", "+0", "-p", p, *mode, "out").stdout
            assert tail in got, (mode, p, got, tail)
        assert len(got) == len(mq.tail("-n", "+0", "-p", 0, *mode, "out").stdout) + \
            len(mq.tail("-n", "+0", "-p", 1, *mode, "out").stdout), mode
    envs = [json.loads(line) for line in consume(mq, "-g", "j", "-e", "--json", "out").lines()]
    first = next(e for e in envs if e["partition"] == 0 and e["offset"] == 0)
    assert first == {"topic": "out", "partition": 0, "offset": 0, "timestamp": 1700000000000,
                     "key": "k1", "value": "hello é", "headers": [["h", "1"], ["n", None]]}
    binary = next(e for e in envs if e["partition"] == 1 and e["offset"] == 1)
    assert binary["value"] == {"base64": "/wBiaW4="} and binary["key"] == {"base64": "/g=="}
    res = consume(mq, "-g", "f", "-e", "--format", "%t %p %o %K %S\\n", "out")
    assert sorted(res.lines()) == ["out 0 0 2 8", "out 0 1 0 0", "out 1 0 -1 -1", "out 1 1 1 5"]


# ---------------------------------------------------------------------------------------------
# Several members of one group


@pytest.mark.slow
def test_four_members_share_four_partitions(mq):
    mq.create("sh", 4)
    members = start_members(mq, 4, "-g", "g", "sh", throttled=False)
    member_dir = mq.dir / "groups" / "g" / "members"
    time.sleep(2.0)  # four rebalance checks: every member has settled on its share
    total = 200_000
    for start in range(0, total, 20_000):
        mq.produce("sh", b"".join(b"k%d\tv%d\n" % (i % 5000, i) for i in range(start, start + 20_000)),
                   "-K", "\\t")
        time.sleep(0.1)
    ends = end_offsets(mq, "sh")
    assert sum(ends.values()) == total
    wait_until(lambda: all(committed(mq, "g", "sh", p) == ends[p] for p in range(4)), 120,
               f"committed offsets to reach {ends}")
    for m in members:
        assert m.p.poll() is None, m.stderr()
        m.signal(signal.SIGTERM)
    for m in members:
        assert signalled(m.finish(), signal.SIGTERM, 143), m.stderr()
    outputs = {f"member {i}": m.out.lines() for i, m in enumerate(members)}
    printed = Counter(x for lines in outputs.values() for x in lines)
    twice = [x for x, n in printed.items() if n > 1]
    assert not twice, f"printed more than once with no member killed: {sorted(twice)[:10]}"
    assert set(printed) == {(p, o) for p in range(4) for o in range(ends[p])}
    check_order(outputs)
    # Fair share: with 4 live members, each holds exactly one partition.
    owned = [{p for p, _ in lines} for lines in outputs.values()]
    assert all(len(s) == 1 for s in owned), f"partitions printed per member: {owned}"
    assert set().union(*owned) == {0, 1, 2, 3}
    assert not list(member_dir.iterdir())


@pytest.mark.slow
def test_members_started_together_all_count(mq):
    """Members started at the same instant must all stay visible in members/."""
    mq.create("tg", 4)
    member_dir = mq.dir / "groups" / "g" / "members"
    for round in range(15):
        procs = [mq.start("mq-consume", "-g", "g", "tg") for _ in range(8)]
        time.sleep(1.0)
        alive = [p.running() for p in procs]
        files = sorted(f.name for f in member_dir.iterdir() if locked(f))
        for p in procs:
            p.signal(signal.SIGTERM)
        for p in procs:
            p.finish(20)
        assert all(alive) and len(files) == 8, f"round {round}: {len(files)} live member files"


def free_partitions(mq, group, topic, partitions):
    """Partitions whose lease nobody holds (docs/FORMAT.md §13, Leases)."""
    return [p for p in range(partitions) if not mqtest.lease_held(mq.dir, group, topic, p)]


@pytest.mark.slow
def test_kill_9_member_duplicates_are_bounded(mq):
    mq.create("k9", 4)
    total = 200_000
    produce_keyed(mq, "k9", total)
    ends = end_offsets(mq, "k9")
    assert sum(ends.values()) == total
    members = start_members(mq, 4, "-g", "g", "k9")  # output read slowly
    wait_until(lambda: all(m.out.lines() for m in members)
               and sum(len(m.out.lines()) for m in members) >= total // 4, 60,
               "every member to deliver, and a quarter of the log")
    for m in members:
        assert m.p.poll() is None, m.stderr()

    # Freeze the others so that the victim's leases and commits stay as they were at its death.
    victim, others = members[1], [members[0], members[2], members[3]]
    for m in others:
        m.signal(signal.SIGSTOP)
    try:
        victim.signal(signal.SIGKILL)
        assert victim.finish() == -signal.SIGKILL
        taken_over = free_partitions(mq, "g", "k9", 4)
        at_kill = {p: committed(mq, "g", "k9", p) for p in taken_over}
    finally:
        for m in others:
            m.signal(signal.SIGCONT)
    assert taken_over, "the killed member held no partition"
    assert {p for p, _ in victim.out.lines()} >= set(taken_over)

    # With four live members again, the member that took the dead one's partition gives one
    # back, and the replacement takes it, while the others still lag behind the log.
    replacement = Member(mq, "-g", "g", "k9", throttled=False)
    wait_until(lambda: replacement.out.lines(), 30, "the replacement to deliver")
    assert sum(len(m.out.lines()) for m in members + [replacement]) < total, \
        "the log was drained before the replacement joined"
    for m in others:
        m.out.throttled = False
    survivors = others + [replacement]
    wait_until(lambda: all(committed(mq, "g", "k9", p) == ends[p] for p in range(4)), 120,
               f"committed offsets to reach {ends}")
    for m in survivors:
        assert m.p.poll() is None, m.stderr()
        m.signal(signal.SIGTERM)
    for m in survivors:
        assert signalled(m.finish(), signal.SIGTERM, 143), m.stderr()

    outputs = {f"member {i}": m.out.lines() for i, m in enumerate(members + [replacement])}
    check_order(outputs)
    printed = Counter(x for lines in outputs.values() for x in lines)
    assert set(printed) == {(p, o) for p in range(4) for o in range(ends[p])}, \
        "some message was never delivered"
    killed = set(outputs["member 1"])
    for (p, o), n in sorted(printed.items()):
        if n == 1:
            continue
        assert n == 2 and (p, o) in killed, f"({p}, {o}) printed {n} times"
        assert p in taken_over and at_kill[p] is not None and o >= at_kill[p], (
            f"duplicate ({p}, {o}) is not a redelivery of the killed member's partition after "
            f"its last commit (taken over: {at_kill})")


# ---------------------------------------------------------------------------------------------
# The committed-offset file


def test_damaged_newer_slot_falls_back_to_older(mq):
    mq.produce("cs", b"".join(b"m%d\n" % i for i in range(10)))
    path = offset_file(mq, "g", "cs", 0)
    consume(mq, "-g", "g", "-e", "-c", "3", "cs")
    assert slots(path) == [None, (1, 3)]  # generation 1 goes to the second slot
    consume(mq, "-g", "g", "-e", "-c", "4", "cs")
    assert slots(path) == [(2, 7), (1, 3)]
    raw = bytearray(path.read_bytes())
    raw[9] ^= 0x40  # a bit of the newer slot's offset
    path.write_bytes(bytes(raw))
    assert committed(mq, "g", "cs") == 3
    res = consume(mq, "-g", "g", "-e", "--format", "%o\\n", "cs")
    assert offsets_of(res) == list(range(3, 10))
    assert slots(path) == [(2, 10), (1, 3)]  # the damaged slot was the one rewritten


@pytest.mark.parametrize("damage", [
    "both-slots",
    "short", "empty", "garbage"])
def test_unreadable_offset_file_means_nothing_committed(mq, damage):
    mq.produce("cd", b"".join(b"m%d\n" % i for i in range(10)))
    path = offset_file(mq, "g", "cd", 0)
    consume(mq, "-g", "g", "-e", "-c", "3", "cd")
    consume(mq, "-g", "g", "-e", "-c", "4", "cd")
    raw = bytearray(path.read_bytes())
    if damage == "both-slots":
        raw[0] ^= 1
        raw[SLOT + 30] ^= 1  # the zero field is not covered: break the CRC instead
        raw[SLOT + 25] ^= 1
    elif damage == "short":
        raw = raw[:SLOT - 6]  # cut inside the first slot's checksum: a torn write
    elif damage == "empty":
        raw = bytearray()
    else:
        raw = bytearray(b"\xa5" * 2 * SLOT)
    path.write_bytes(bytes(raw))
    assert committed(mq, "g", "cd") is None
    res = consume(mq, "-g", "g", "-e", "--format", "%o\\n", "cd")
    assert res.stderr == ""
    assert offsets_of(res) == list(range(10))  # from --from's default, the beginning
    assert committed(mq, "g", "cd") == 10


def test_a_slot_cut_only_in_its_zero_padding_still_counts(mq):
    """Bytes 28-31 of a slot are zero and outside the checksum: a file cut there reads
    as if zero-padded, so readers and the next commit agree, and offsets never go back."""
    mq.produce("cp", b"".join(b"m%d\n" % i for i in range(10)))
    path = offset_file(mq, "g", "cp", 0)
    consume(mq, "-g", "g", "-e", "-c", "3", "cp")
    consume(mq, "-g", "g", "-e", "-c", "4", "cp")
    assert committed(mq, "g", "cp") == 7
    path.write_bytes(path.read_bytes()[:SLOT - 1])
    res = consume(mq, "-g", "g", "-e", "--format", "%o\\n", "cp")
    assert offsets_of(res) == [7, 8, 9]
    assert committed(mq, "g", "cp") == 10


# ---------------------------------------------------------------------------------------------
# Signals, a closed output, topics that appear later


@pytest.mark.parametrize("sig,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_signal_commits_what_was_printed(mq, sig, code):
    mq.produce("sg", b"".join(b"m%d\n" % i for i in range(200_000)))
    m = Member(mq, "-g", "g", "sg")  # read slowly: the member blocks writing its output
    wait_until(lambda: len(m.out.lines()) >= 20_000, 60, "20,000 lines")
    m.signal(sig)
    assert m.finish() == code, m.stderr()
    assert m.stderr().startswith("mq-consume: ") and m.stderr().count("\n") == 1, m.stderr()
    lines = m.out.lines()
    assert lines == [(0, o) for o in range(len(lines))]
    assert len(lines) < 200_000, "the signal came too late to test anything"
    assert committed(mq, "g", "sg") == len(lines)
    assert not list((mq.dir / "groups" / "g" / "members").iterdir())


def test_closed_output_ends_quietly(mq):
    mq.produce("cl", b"".join(b"m%d\n" % i for i in range(100_000)))
    for args in (["-g", "g"], []):
        p = subprocess.Popen(mq.argv("mq-consume", [*args, "--from", "beginning", "cl"]),
                             env=mq.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert p.stdout.readline() == b"m0\n"
        p.stdout.close()
        assert p.wait(30) == 0
        assert p.stderr.read() == b""
        p.stderr.close()
    # What was committed was written before the output closed; the rest comes next time.
    done = committed(mq, "g", "cl")
    assert done is not None and done < 100_000
    res = consume(mq, "-g", "g", "-e", "cl")
    assert res.stdout == b"".join(b"m%d\n" % i for i in range(done, 100_000))


def test_pattern_picks_up_topic_created_later(mq):
    mq.produce("unrelated", b"u\n")
    follower = mq.start("mq-consume", "-g", "g", "orders\\..*", "--format", "%t %p %o %s\\n")
    time.sleep(1.0)
    assert follower.running(), follower.err.snapshot()
    mq.produce("orders.a", b"hello a\n")
    assert follower.out.wait_for(lambda d: d == b"orders.a 0 0 hello a\n", 5), \
        (follower.out.snapshot(), follower.err.snapshot())
    mq.create("orders.b", 2)
    mq.produce("orders.b", b"hello b\n", "-p", "1")
    mq.produce("ordersx", b"not matching\n")
    mq.produce("orders.a", b"again a\n")
    assert follower.out.wait_for(lambda d: b"hello b" in d and b"again a" in d, 5), \
        follower.out.snapshot()
    follower.signal(signal.SIGTERM)
    res = follower.finish(10)
    assert signalled(res.status, signal.SIGTERM, 143), res
    assert sorted(res.lines()) == ["orders.a 0 0 hello a", "orders.a 0 1 again a",
                                   "orders.b 1 0 hello b"]
    assert committed(mq, "g", "orders.a", 0) == 2
    assert committed(mq, "g", "orders.b", 1) == 1
    assert committed(mq, "g", "orders.b", 0) in (None, 0)
    assert sorted(p.name for p in (mq.dir / "groups" / "g" / "committed").iterdir()) == \
        ["orders.a", "orders.b"]


def test_member_survives_losing_its_member_file(mq):
    """A member file can vanish under its owner: removed by hand, or by another member that
    tested it between its creation and its owner's flock (GroupMembership.init)."""
    mq.produce("mf", b"a\n")
    follower = mq.start("mq-consume", "-g", "g", "mf")
    assert follower.out.wait_for(lambda d: d == b"a\n", 10)
    for f in (mq.dir / "groups" / "g" / "members").iterdir():
        f.unlink()
    time.sleep(1.5)
    assert follower.running(), follower.err.snapshot()[-500:]
    mq.produce("mf", b"b\n")
    assert follower.out.wait_for(lambda d: d == b"a\nb\n", 5), follower.err.snapshot()[-500:]
