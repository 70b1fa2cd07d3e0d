"""Cost that grows with the work, not with the partition count (issue 12 §1).

Not timed: the system calls of `mq-tail -n +0` are counted with strace(1). Reading N messages
spread over P partitions must cost O(P + batches) calls; merging partitions by scanning every
cursor for every record (what mq-tail did) went back to the disk for each exhausted cursor on
each record: 109,724 preads for 20,000 messages over 64 partitions, against 384 now.
"""

import shutil
import subprocess

import pytest

N = 20000


def syscalls(mq, tmp_path, argv, name):
    out = tmp_path / f"strace.{name}"
    p = subprocess.run(["strace", "-f", "-c", "-o", str(out)] + mq.argv(argv[0], argv[1:]),
                       env=mq.env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=300)
    assert p.returncode == 0, p.stderr
    counts = {}
    for line in out.read_text().splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[-1].isidentifier() and fields[3].isdigit():
            counts[fields[-1]] = int(fields[3])
    return counts


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
    # Per partition: opening its files, a read or two, a look at head and the listing.
    budget = one.get("total", 0) + 40 * partitions
    assert many["total"] <= budget, (
        f"{partitions} partitions: {many['total']} system calls for {N} messages "
        f"(one partition: {one['total']}; budget {budget}); pread64: {many.get('pread64')}")
    assert many.get("pread64", 0) <= one.get("pread64", 0) + 4 * partitions, many


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
