"""Cost that grows with the work, not with the partition count (issue 12 §1).

Not timed: the system calls of `mq-tail -n +0` are counted with strace(1). Reading N messages
spread over P partitions must cost O(P + batches) calls; merging partitions by scanning every
cursor for every record (what mq-tail did) went back to the disk for each exhausted cursor on
each record: 109,724 preads for 20,000 messages over 64 partitions, against 384 now.
"""

import json
import re
import shutil
import subprocess
import time

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
    # About 9.5 since mq-stat lists each partition once and one reader answers its questions
    # (20 before: the directory listed six times, the log opened four).
    assert per_partition <= 13, (counts, per_partition)
    print(f"mq-stat: {counts} system calls, {per_partition:.1f} per partition")


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
