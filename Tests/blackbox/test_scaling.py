"""Cost that grows with the work, not with the partition count (issue 12 §1).

Not timed: the system calls of `mq-tail -n +0` are counted with strace(1). Reading N messages
spread over P partitions must cost O(P + batches) calls; merging partitions by scanning every
cursor for every record (what mq-tail did) went back to the disk for each exhausted cursor on
each record: 109,724 preads for 20,000 messages over 64 partitions, against 384 now.

Followers (`mq-tail -f`, a group's `mq-consume`) read only the partitions inotify reports as
changed; a group member syncs its commits together; and with 256 open files at most, a topic of
3,000 partitions is still read whole, by mq-tail, mq-tail -f and one or two group members.
"""

import json
import re
import shutil
import time
import subprocess
import time

import pytest

import mqtest

N = 20000


def strace_counts(path):
    counts = {}
    for line in path.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1].isidentifier() and fields[3].isdigit():
            counts[fields[-1]] = int(fields[3])
    return counts


def syscalls(mq, tmp_path, argv, name):
    out = tmp_path / f"strace.{name}"
    p = subprocess.run(["strace", "-f", "-c", "-o", str(out)] + mq.argv(argv[0], argv[1:]),
                       env=mq.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, p.stderr
    return strace_counts(out)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("partitions", [16, 64, 256])
def test_tail_system_calls_grow_with_partitions_not_records(mq, tmp_path, partitions):
    mq.create("one", 1)
    mq.create("many", partitions)
    data = b"".join(b"k%d:v%d\n" % (i, i) for i in range(N))
    mq.produce("one", data, "-K", ":")
    mq.produce("many", data, "-K", ":")
    assert len(mq.tail("-n", "+0", "many").lines()) == N
    one = syscalls(mq, tmp_path, ["mq-tail", "-n", "+0", "one"], "one")
    many = syscalls(mq, tmp_path, ["mq-tail", "-n", "+0", "many"], "many")
    # Per partition: opening its files, a read or two and a look at head (a partition whose
    # head names segment 0 active needs no listing): about 7 per partition. It was 9 before a
    # reader that does not follow stopped reading again at the end it found (a read finding
    # nothing, a look at head for a newer segment), 12 before that, 18 with a listing each.
    budget = one.get("total", 0) + 8 * partitions
    assert many["total"] <= budget, (
        f"{partitions} partitions: {many['total']} system calls for {N} messages "
        f"(one partition: {one['total']}; budget {budget}); pread64: {many.get('pread64')}")
    # Reads per partition: head, then the batches, whole from the first read since mq-tail
    # merges every partition at once (a consumer probes the first header alone, so that taking
    # thousands of partitions holds no buffer before it reads one). 2 here; 4 with the probe,
    # the read that found the end and a second look at head.
    assert many.get("pread64", 0) <= one.get("pread64", 0) + 2 * partitions + 8, many


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_stat_system_calls_grow_with_partitions(mq, tmp_path):
    """mq-stat (issue 12: 1,000 topics x 10 partitions in under a second) costs a bounded
    number of calls per partition and per group partition, whatever the number of topics:
    about 20 each here, about 60 when groups lag (a cursor per lagging group partition)."""
    counts = {}
    for topics in (2, 20):
        for t in range(topics):
            name = f"s{topics}x{t}"
            mq.create(name, 4)
            mq.produce(name, b"".join(b"k%d:v%d\n" % (i, i) for i in range(8)), "-K", ":")
        mq.run("mq-consume", "-g", f"g{topics}", "-e", f"s{topics}x.*", check=0)
        counts[topics] = syscalls(mq, tmp_path, ["mq-stat", f"s{topics}x.*"], f"stat{topics}")["total"]
    # The pattern selects one run's topics: 8 or 80 partitions, each also read for its group.
    per_partition = (counts[20] - counts[2]) / (2 * (80 - 8))
    # About 13.5 since mq-stat lists each partition once and one reader answers its questions
    # (20 before: the directory listed six times, the log opened four). A partition without
    # messages costs as much as one with: its files are made with the topic.
    assert per_partition <= 16, (counts, per_partition)
    print(f"mq-stat: {counts} system calls, {per_partition:.1f} per partition")


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_positioning_at_the_end_reads_no_segment_again(mq, tmp_path):
    """`mq-tail --from end`, and `-n 10` (mq-tail's default), take each partition's end from its
    head (the end its writers recorded, in this boot), not from reading its segment again, and
    a cursor placed at that end reads nothing more: about 6 and 8 calls per partition. It was 17
    and 11: the segment mapped, unmapped and mapped again, head read twice."""
    counts = {}
    for partitions in (32, 160):
        name = f"e{partitions}"
        mq.create(name, partitions)
        mq.produce(name, b"".join(b"k%d:v%d\n" % (i, i) for i in range(20 * partitions)), "-K", ":")
        for args in (["--from", "end"], ["-n", "10"]):
            counts[(partitions, args[-1])] = syscalls(mq, tmp_path, ["mq-tail"] + args + [name], f"{name}{args[-1]}")["total"]
        assert mq.tail("-n", "10", name).lines() == mq.tail("-n", "+0", name).lines()[-10:]
    per = {what: (counts[(160, what)] - counts[(32, what)]) / (160 - 32) for what in ("end", "10")}
    print(f"mq-tail positioning: {per} system calls per partition")
    assert per["end"] <= 7.5, (counts, per)
    assert per["10"] <= 9.5, (counts, per)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_a_new_group_reads_each_partition_once(mq, tmp_path):
    """A new group's `mq-consume -e` reads each partition's `head` and then its batches, once:
    2 preads per partition here (one batch of about 6 KB each, more than one of many readers
    reads to look at a header). It was 3: the first header read to find the log start, then the
    same bytes again to deliver them."""
    preads = {}
    pad = b"x" * 90
    for partitions in (32, 160):
        name = f"g{partitions}"
        values = [b"v%d" % i + pad for i in range(60 * partitions)]
        mq.create(name, partitions)
        mq.produce(name, b"".join(b"k%d:%s\n" % (i, v) for i, v in enumerate(values)), "-K", ":")
        preads[partitions] = syscalls(mq, tmp_path, ["mq-consume", "-g", f"G{partitions}", "-e", name], name).get("pread64", 0)
        out = mq.run("mq-consume", "-g", f"H{partitions}", "-e", name, check=0).stdout
        assert sorted(out.splitlines()) == sorted(values)
    per = (preads[160] - preads[32]) / (160 - 32)
    print(f"mq-consume -g NEW -e: {per} preads per partition")
    assert per <= 2.2, preads


def start_raw(mq, argv):
    """Starts argv as is (a wrapper such as strace or prlimit around a tool), killed at the end."""
    proc = mqtest.Proc([str(a) for a in argv], mq.env())
    mq.procs.append(proc)
    return proc


def follow_syscalls(mq, tmp_path, tool, topic, wakes, name):
    """System calls of a follower of `topic` (`mq-tail -f`, or a group's `mq-consume`) while
    partition 0 gets `wakes` messages, one producer run (one wake-up) each."""
    before = len(mq.tail("-n", "+0", topic).lines())
    args = [topic, "-f", "-n", "+0"] if tool == "mq-tail" else ["-g", "G", topic]
    out = tmp_path / f"strace.{name}"
    proc = start_raw(mq, ["strace", "-f", "-c", "-o", out] + mq.argv(tool, args + ["-c", before + wakes]))
    assert proc.out.wait_for(lambda d: d.count(b"\n") >= before, 60), proc.err.snapshot()
    time.sleep(0.5)
    for i in range(wakes):
        mq.produce(topic, b"m%d\n" % i, "-p", "0")
        assert proc.out.wait_for(lambda d: d.count(b"\n") > before + i, 20), proc.err.snapshot()
    res = proc.finish(30)
    assert res.status == 0, res.stderr
    assert res.stdout.count(b"\n") == before + wakes
    return strace_counts(out)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("tool", ["mq-tail", "mq-consume"])
def test_follow_reads_only_the_partitions_that_changed(mq, tmp_path, tool):
    """A follower over P partitions woken by one partition reads that one, not all P: on main
    each wake-up peeked every cursor (P preads per message)."""
    partitions, wakes = 200, 30
    mq.create("one", 1)
    mq.create("many", partitions)
    mq.produce("one", b"".join(b"k%d:v\n" % i for i in range(2 * partitions)), "-K", ":")
    mq.produce("many", b"".join(b"k%d:v\n" % i for i in range(2 * partitions)), "-K", ":")
    one = follow_syscalls(mq, tmp_path, tool, "one", wakes, "one")
    many = follow_syscalls(mq, tmp_path, tool, "many", wakes, "many")
    # Start-up costs a few calls per partition (a group member also reads each offset file,
    # the log start and end, head; the watch on the active segment asks head for it); each
    # wake-up must not: 30 wake-ups visiting every partition cost more than 6,000 preads.
    preads, calls = (6, 40) if tool == "mq-tail" else (20, 100)
    assert many.get("pread64", 0) <= one.get("pread64", 0) + preads * partitions, (one, many)
    assert many["total"] <= one["total"] + calls * partitions, (one, many)


def limited(mq, *argv):
    """argv for a tool run with a soft and hard limit of 256 open files."""
    return ["prlimit", "--nofile=256:256", "--"] + mq.argv(argv[0], argv[1:])


LOW_PARTITIONS = 3000


@pytest.fixture
def wide(mq):
    """A topic with 3,000 partitions and two keyed messages in each (on average)."""
    mq.create("wide", LOW_PARTITIONS)
    expected = sorted(b"v%d" % i for i in range(2 * LOW_PARTITIONS))
    mq.produce("wide", b"".join(b"k%d:v%d\n" % (i, i) for i in range(2 * LOW_PARTITIONS)), "-K", ":", timeout=600)
    return expected


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit is not installed")
def test_tail_reads_3000_partitions_with_256_open_files(mq, wide):
    p = subprocess.run(limited(mq, "mq-tail", "-n", "+0", "wide"), env=mq.env(), capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert sorted(p.stdout.split()) == wide


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit is not installed")
def test_tail_last_n_of_3000_partitions_with_256_open_files(mq, wide):
    """Finding the last N needs no second set of readers (the forward merge it replaced opened
    every partition again while the first readers were held, and ran out of files)."""
    p = subprocess.run(limited(mq, "mq-tail", "-n", "10", "wide"), env=mq.env(), capture_output=True, timeout=600)
    assert p.returncode == 0, p.stderr[-2000:]
    assert p.stdout.split() == mq.tail("-n", "10", "wide").stdout.split()
    assert len(p.stdout.split()) == 10


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit is not installed")
def test_tail_follows_3000_partitions_with_256_open_files(mq, wide):
    tail = start_raw(mq, limited(mq, "mq-tail", "-f", "-n", "+0", "wide"))
    assert tail.out.wait_for(lambda d: d.count(b"\n") >= len(wide), 300), tail.err.snapshot()[-2000:]
    mq.produce("wide", b"new\n", "-p", str(LOW_PARTITIONS - 1))
    assert tail.out.wait_for(lambda d: d.count(b"\n") > len(wide), 30), tail.err.snapshot()[-2000:]
    tail.kill()
    assert sorted(tail.out.snapshot().split()) == sorted(wide + [b"new"])


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit is not installed")
@pytest.mark.parametrize("members", [1, 2])
def test_group_reads_3000_partitions_with_256_open_files(mq, wide, members):
    procs = [start_raw(mq, limited(mq, "mq-consume", "-g", "G", "-e", "wide")) for _ in range(members)]
    got = []
    for proc in procs:
        res = proc.finish(600)
        assert res.status == 0, res.stderr[-2000:]
        got += res.stdout.split()
    assert sorted(got) == wide
    # Everything was committed: the group reads nothing more.
    assert mq.run("mq-consume", "-g", "G", "-e", "wide", check=0).stdout == b""


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_group_commits_sync_each_offset_file_once(mq, tmp_path):
    """Taking and committing P partitions syncs each offset file once and each directory once,
    not three times per partition (size, name, commit)."""
    partitions = 200
    mq.create("t", partitions)
    mq.produce("t", b"".join(b"k%d:v\n" % i for i in range(4 * partitions)), "-K", ":")
    out = tmp_path / "strace.group"
    p = subprocess.run(["strace", "-f", "-c", "-o", str(out)] + mq.argv("mq-consume", ["-g", "G", "-e", "t"]),
                       env=mq.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, p.stderr
    assert len(p.stdout.split()) == 4 * partitions
    counts = strace_counts(out)
    syncs = counts.get("fsync", 0) + counts.get("fdatasync", 0)
    assert syncs <= partitions + 16, counts


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
@pytest.mark.parametrize("partitions", [64, 256])
def test_group_read_system_calls_grow_with_partitions_not_records(mq, tmp_path, partitions):
    """mq-consume -g -e over P partitions: per partition its lease, one listing, one positioning
    and its reads. (It listed each partition five times, read it twice and opened its segment
    three times: 75 calls per partition.)"""
    mq.create("one", 1)
    mq.create("many", partitions)
    data = b"".join(b"k%d:v%d\n" % (i, i) for i in range(N))
    mq.produce("one", data, "-K", ":")
    mq.produce("many", data, "-K", ":")
    one = syscalls(mq, tmp_path, ["mq-consume", "-g", "a", "-e", "one"], "one")
    many = syscalls(mq, tmp_path, ["mq-consume", "-g", "a", "-e", "many"], "many")
    # One positioning and its reads: about 7 per partition, the leases of consecutive partitions
    # being taken, committed and given back together; 12 before that, 13 before
    # the commit's durability check took what the reader last read of head, 15 before a reader
    # that does not follow stopped reading again at the end it found, 30 before parked
    # partitions were trusted to be at their end and the commit's durability check used the
    # reader's own head.
    budget = one.get("total", 0) + 8 * partitions
    assert many["total"] <= budget, (
        f"{partitions} partitions: {many['total']} system calls for {N} messages "
        f"(one partition: {one['total']}; budget {budget})")
    # One listing (two getdents64) per partition taken.
    assert many.get("getdents64", 0) <= one.get("getdents64", 0) + 2 * partitions + 8, many
    # Reads per partition: head, the first batch's header alone (which is all of a small
    # partition), then the batches. 3 at most: the committed offsets of consecutive partitions
    # are read together, the commit's durability check takes head as the reader last read it
    # (a second read of head before), and the read that would find the end is not made.
    assert many.get("pread64", 0) <= one.get("pread64", 0) + 3 * partitions + 8, many


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_handler_consumer_reads_only_partitions_with_something_new(mq, tmp_path):
    """mq-consume -g with a handler over P partitions: each round hands out what the partitions
    that changed have, not a look at every partition's end per round (per handler exit)."""
    partitions, n = 64, 400
    mq.create("t", partitions)
    mq.produce("t", b"".join(b"k%d:v%d\n" % (i, i) for i in range(n)), "-K", ":")
    out = tmp_path / "strace.handler"
    done = tmp_path / "done"
    p = subprocess.run(["strace", "-f", "-c", "-o", str(out)]
                       + mq.argv("mq-consume", ["-g", "G", "-e", "t", "--", "sh", "-c", f"cat >> {done}; echo >> {done}"]),
                       env=mq.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, p.stderr
    assert sorted(done.read_bytes().split()) == sorted(b"v%d" % i for i in range(n))
    counts = strace_counts(out)
    # Positioning and reading cost a few preads per partition, and each message one to read
    # the group's state around its handler; a look at all 64 partitions per handler exit
    # is 2 x 64 x 400.
    assert counts.get("pread64", 0) <= 12 * partitions + 4 * n, counts


def file_system_type(path):
    return subprocess.run(["stat", "-f", "-c", "%T", str(path)], capture_output=True, text=True).stdout.strip()


# Where syncfs(2) makes files durable (docs/FORMAT.md §11); `stat -f` calls ext2, ext3 and ext4 "ext2/ext3".
SYNCFS_DURABLE = {"ext2/ext3", "xfs", "btrfs", "f2fs", "tmpfs"}


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_topic_creation_and_producer_sync_many_partitions_at_once(mq, tmp_path):
    """Creating a topic of P partitions and a --sync exit producer writing to all of them: one
    syncfs each where that is durable, not an fsync per partition directory and per segment
    (elsewhere, as on FUSE, each is synced: test_powerloss)."""
    partitions = 200
    mq.dir.mkdir(parents=True, exist_ok=True)
    at_once = file_system_type(mq.dir) in SYNCFS_DURABLE
    created = syscalls(mq, tmp_path, ["mq-topic", "create", "t", "--partitions", str(partitions)], "create")
    out = tmp_path / "strace.produce"
    p = subprocess.run(["strace", "-f", "-c", "-o", str(out)] + mq.argv("mq-produce", ["-K", ":", "t"]),
                       input=keyed(4 * partitions), env=mq.env(), capture_output=True, timeout=300)
    assert p.returncode == 0, p.stderr
    produced = strace_counts(out)
    assert_exactly_once(mq, "t", 4 * partitions)
    for what, counts in (("mq-topic create", created), ("mq-produce", produced)):
        syncs = counts.get("fsync", 0) + counts.get("fdatasync", 0)
        if at_once:
            assert counts.get("syncfs", 0) == 1 and syncs <= 8, f"{what}: {counts}"
        else:
            assert syncs >= partitions, f"{what} on {file_system_type(mq.dir)}: {counts}"
    # Partitions start with their first segment: the producer creates no file.
    assert produced.get("openat", 0) <= created.get("openat", 0), (created, produced)
    for d in range(partitions):
        names = sorted(f.name for f in mq.partition_dir("t", d).iterdir())
        assert names == ["00000000000000000000.index", "00000000000000000000.log",
                         "00000000000000000000.timeindex", "head"], names


def peak_rss_kb(mq, argv):
    """The peak resident memory of one tool run, from a fresh Python parent (RUSAGE_CHILDREN)."""
    probe = ("import resource, subprocess, sys\n"
             "p = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL)\n"
             "print(p.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    out = subprocess.run(["python3", "-c", probe] + mq.argv(argv[0], argv[1:]), env=mq.env(),
                         capture_output=True, text=True, timeout=300)
    status, kb = out.stdout.split()
    assert status == "0", out.stderr
    return int(kb)


def test_readers_buffers_stay_bounded_however_many_partitions(mq):
    """Each partition reader read a megabyte at a time into its own buffer: reading 120
    partitions of 1.3 MB took over 140 MB (10,000 partitions: 10 GB). Readers now share a
    64 MiB budget (docs/ARCHITECTURE.md)."""
    partitions = 120
    mq.create("big", partitions)
    value = b"x" * 1000
    mq.produce("big", b"".join(b"k%d:%s\n" % (i, value) for i in range(partitions * 1300)), "-K", ":")
    mq.create("small", 1)
    mq.produce("small", b"one\n")
    small = peak_rss_kb(mq, ["mq-tail", "-n", "+0", "small"])
    for argv in (["mq-tail", "-n", "+0", "big"], ["mq-consume", "-g", "g", "-e", "big"]):
        kb = peak_rss_kb(mq, argv)
        assert kb - small < 90 * 1024, f"{' '.join(argv)}: peak {kb // 1024} MB (one small partition: {small // 1024} MB)"


# -- Writing to many partitions under a low limit of open files ----------------------------------
#
# A partition writer holds 4 descriptors (head, .log, .index, .timeindex). Keeping one open per
# partition failed with "Too many open files" (exit 73/74) past ~60 partitions under a limit of
# 256; writers now come from a bounded pool (least recently used closed first, its unsynced
# appends fsynced before the tool reports success).

PARTITIONS = 3000
LOW_LIMIT = 256


def low_limit(mq, tool, *args, input=b"", timeout=120):
    argv = ["prlimit", f"--nofile={LOW_LIMIT}:{LOW_LIMIT}"] + mq.argv(tool, args)
    p = subprocess.run(argv, input=input, capture_output=True, env=mq.env(), timeout=timeout)
    assert p.returncode == 0, f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.decode()[-2000:]}"
    return p


def keyed(n, prefix="k"):
    return b"".join(b"%s%d:v%d\n" % (prefix.encode(), i, i) for i in range(n))


def assert_exactly_once(mq, topic, n):
    values = mq.tail("-n", "+0", topic).lines()
    assert len(values) == n, f"{len(values)} messages in '{topic}', expected {n}"
    assert sorted(values) == sorted("v%d" % i for i in range(n))


def partitions_written(mq, topic):
    return sum(1 for d in mq.topic_dir(topic).iterdir()
               if d.name.isdigit() and any(f.stat().st_size > 0 for f in d.glob("*.log")))


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit(1) is not installed")
@pytest.mark.parametrize("mode", [["--sync", "none"], ["--sync", "exit"], ["--sync", "batch", "--batch-messages", "50"],
                                  ["--atomic"], ["--id-header", "id"], ["--producer", "p"], ["--print-offsets"]],
                         ids=lambda m: " ".join(m))
def test_produce_to_thousands_of_partitions_under_a_low_open_file_limit(mq, mode):
    n = 2 * PARTITIONS
    mq.create("wide", PARTITIONS)
    p = low_limit(mq, "mq-produce", "wide", "-K", ":", *mode, input=keyed(n))
    assert_exactly_once(mq, "wide", n)
    assert partitions_written(mq, "wide") > PARTITIONS * 3 // 4  # 1 - e^-2 of them, by murmur2
    if "--print-offsets" in mode:
        assert len(p.stdout.splitlines()) == n
    if "--id-header" in mode or "--producer" in mode:
        # Run again: every message is a duplicate, nothing is written twice.
        low_limit(mq, "mq-produce", "wide", "-K", ":", *mode, input=keyed(n))
        assert_exactly_once(mq, "wide", n)
    mq.validate("wide")


@pytest.mark.skipif(shutil.which("prlimit") is None, reason="prlimit(1) is not installed")
def test_replay_into_thousands_of_partitions_under_a_low_open_file_limit(mq):
    n = 2 * PARTITIONS
    mq.create("src", 1)
    mq.produce("src", keyed(n), "-K", ":")
    mq.create("wide", PARTITIONS)
    low_limit(mq, "mq-replay", "src", "--into", "wide")
    assert_exactly_once(mq, "wide", n)
    assert partitions_written(mq, "wide") > PARTITIONS * 3 // 4  # 1 - e^-2 of them, by murmur2


# The dead-letter writer and the delay mover keep at most 8 writers open (each of their batches is
# fsynced, so closing one costs only opening it again): many partitions exercise the closing.

def test_delay_mover_into_many_partitions_moves_each_message_once(mq):
    n, partitions = 2000, 300
    mq.create("dk", partitions)
    mq.produce("dk", keyed(n), "-K", ":", "--delay", "1ms")
    assert mq.tail("-n", "+0", "dk").lines() == []
    res = mq.run("mq-consume", "-g", "g", "dk", "-c", str(n), check=0, timeout=120)
    assert sorted(res.lines()) == sorted("v%d" % i for i in range(n))
    assert_exactly_once(mq, "dk", n)
    assert partitions_written(mq, "dk") > partitions * 3 // 4


def test_dead_letters_into_many_partitions_are_each_written_once(mq, tmp_path):
    n, partitions = 300, 100
    mq.create("jobs", 1)
    mq.create("jobs.dlq", partitions)
    mq.produce("jobs", keyed(n), "-K", ":")
    mq.run("mq-consume", "-g", "w", "-e", "--max-attempts", "1", "--backoff", "1ms", "jobs", "--", "false",
           check=0, timeout=120)
    assert_exactly_once(mq, "jobs.dlq", n)
    assert partitions_written(mq, "jobs.dlq") > partitions * 3 // 4


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_tail_last_n_costs_one_look_per_partition(mq, tmp_path):
    """`mq-tail -n N` over P partitions finds the last N from the end of each partition: beyond
    what starting every partition at its end costs (`--from end`), a look or two per partition,
    whatever N. Merging every partition's own last N forward, then opening every partition
    again (what mq-tail did) cost about 41 more calls and 5 more preads per partition here."""
    partitions = 500
    mq.create("T", partitions)
    mq.produce("T", b"".join(b"k%d:v%d\n" % (i, i) for i in range(200 * partitions)), "-K", ":")
    end = syscalls(mq, tmp_path, ["mq-tail", "--from", "end", "T"], "end")
    for n in (10, 200):
        last = syscalls(mq, tmp_path, ["mq-tail", "-n", str(n), "T"], f"last{n}")
        extra = (last["total"] - end["total"]) / partitions
        preads = (last.get("pread64", 0) - end.get("pread64", 0)) / partitions
        print(f"mq-tail -n {n}: {extra:.1f} more system calls, {preads:.1f} more preads per partition")
        assert extra <= 25, (n, last, end)
        # Two reads per partition (its batch headers from the end, then its records), and a
        # few partitions a third (readers sharing the buffer budget read 64 KiB at a time).
        assert preads <= 2.25, (n, last, end)


def bytes_read(mq, tmp_path, argv, name):
    """The bytes `argv` reads (read and pread64 results, libraries included), by strace(1)."""
    out = tmp_path / f"strace.{name}"
    p = subprocess.run(["strace", "-f", "-e", "trace=read,pread64", "-o", str(out)] + mq.argv(argv[0], argv[1:]),
                       env=mq.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, p.stderr
    total = sum(int(m.group(1)) for m in re.finditer(r"= (\d+)$", out.read_text(), re.M))
    return total, p.stdout.decode()


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_stat_reads_do_not_grow_with_the_partition(mq, tmp_path):
    """mq-stat's rate looks for the first record of the last minute: in a partition with nothing
    that recent it used to read the whole active segment (207 MB for an idle 194 MiB partition).
    Now head's largest timestamp, or the time index, says where to start: the bytes read stay
    under 6 MiB from 4 MB to 36 MB, with one recent record at the end or without (38 MB before)."""
    mq.create("idle", 1)
    hour_ago = int(time.time() * 1000) - 3_600_000
    value = "x" * 1000

    def write(mb, start):
        lines = (json.dumps({"key": f"k{i}", "value": value, "timestamp": hour_ago + i}) for i in range(start, start + mb * 1000))
        mq.produce("idle", ("\n".join(lines) + "\n").encode(), "--json", timeout=300)
        return start + mb * 1000

    n = write(4, 0)
    small, out = bytes_read(mq, tmp_path, ["mq-stat", "idle"], "small")
    assert f" {n} " in out, out
    n = write(32, n)
    large, out = bytes_read(mq, tmp_path, ["mq-stat", "idle"], "large")
    assert f" {n} " in out, out
    # One message of now at the end: found from the time index's last entry.
    mq.produce("idle", b"now\n")
    recent, out = bytes_read(mq, tmp_path, ["mq-stat", "--json", "idle"], "recent")
    assert json.loads(out)["topics"][0]["partitions"][0]["end_offset"] == n + 1, out
    print(f"mq-stat bytes read: {small} (4 MB idle), {large} (36 MB idle), {recent} (36 MB, one recent)")
    # What is read: the first MiB (twice), and from the offset index's last entry to the end
    # (twice), which is within the last batch or two (mq-produce writes batches up to 1 MiB).
    assert max(small, large, recent) <= 6 << 20, (small, large, recent)
    assert large <= small + (2 << 20), (small, large)


@pytest.mark.skipif(shutil.which("strace") is None, reason="strace is not installed (scripts/setup.sh installs it)")
def test_work_queue_does_not_visit_every_partition_per_message(mq, tmp_path):
    """A work queue (`--queue`) over P partitions visited every partition (its log end and queue
    state) on every round, and fsynced every partition's state at each commit: 839,440 calls
    and 74,800 fdatasyncs for 400 messages over 200 partitions. Partitions with nothing to claim
    now wait for a change (or the once-a-second sweep), and only states written are synced."""
    partitions, n = 200, 400
    mq.create("q", partitions)
    mq.produce("q", keyed(n), "-K", ":")
    counts = syscalls(mq, tmp_path, ["mq-consume", "--queue", "-g", "w", "-e", "q", "--", "true"], "queue")
    assert counts["total"] <= 400 * n, counts
    assert counts.get("fdatasync", 0) + counts.get("fsync", 0) <= 10 * n + 2 * partitions, counts
    assert mq.run("mq-consume", "--queue", "-g", "w", "-e", "q", "--", "false").status == 0


def test_readers_do_not_update_access_times(mq):
    """Reading a partition writes nothing to the disk: with relatime, the first read of every
    segment after a write updated its inode, so a reader of 1,000 fresh partitions made the
    file system write 1.4 MB of journal; readers open segments and head with O_NOATIME."""
    import os
    mq.create("t", 8)
    mq.produce("t", b"".join(b"k%d:v%d\n" % (i, i) for i in range(400)), "-K", ":")
    files = [p for p in mq.topic_dir("t").rglob("*") if p.is_file() and (p.suffix == ".log" or p.name == "head")]
    assert len(files) == 16
    old = 1_000_000_000  # long before any modification: relatime would update it on a read
    for p in files:
        os.utime(p, ns=(old * 10**9, p.stat().st_mtime_ns))
    assert len(mq.tail("-n", "+0", "t").lines()) == 400
    assert len(mq.run("mq-consume", "-g", "g", "-e", "t", check=0).lines()) == 400
    touched = [str(p) for p in files if p.stat().st_atime_ns != old * 10**9]
    assert touched == [], f"access times updated by readers: {touched}"
