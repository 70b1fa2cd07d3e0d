"""mq-compact: retention, key compaction, --check/--repair, locking, dry runs, and the two
checks a new user tries: compaction in a loop under producers and a consumer group, and
kill -9 at random moments. Results are read back with kafka-python (kafka_validate)."""

import fcntl
import hashlib
import json
import os
import pty
import random
import signal
import struct
import subprocess
import threading
import time

from mqtest import EX_DATAERR, EX_NOINPUT, EX_TEMPFAIL, EX_USAGE, assert_error, jline

DAY_MS = 86_400_000


def keyed(n, keys, start=0, prefix="v", timestamp=None, key_prefix="k"):
    return b"".join(jline(value=f"{prefix}{i}", key=f"{key_prefix}{i % keys}", timestamp=timestamp)
                    for i in range(start, start + n))


def segments(mq, topic, p=0):
    return sorted(q.name for q in mq.partition_dir(topic, p).glob("*.log"))


def latest_by_key(records):
    out = {}
    for r in records:
        out[r.key] = r.value
    return out


def listing(mq):
    """Every file under the log with its content hash (but the empty compact.lock, which any
    run creates to take its lock)."""
    out = {}
    for path in sorted(mq.dir.rglob("*")):
        if path.is_file() and path.name != "compact.lock":
            out[str(path.relative_to(mq.dir))] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def commit_offset(mq, group, topic, offset, partition=0):
    """Commit `offset` for a group by running a real consumer over exactly `offset` messages."""
    res = mq.run("mq-consume", "-g", group, "-c", str(offset), topic, check=0)
    assert len(res.lines()) == offset


# ---------------------------------------------------------------------------------------------
# Command line


def test_usage_and_missing_topic(mq):
    assert_error(mq.run("mq-compact"), EX_USAGE, "mq-compact", "--all")
    assert_error(mq.run("mq-compact", "--all", "t"), EX_USAGE, "mq-compact")
    assert_error(mq.run("mq-compact", "--check", "--repair", "--all"), EX_USAGE, "mq-compact")
    mq.create("t")
    assert_error(mq.run("mq-compact", "nope"), EX_NOINPUT, "mq-compact", "nope")
    res = mq.run("mq-compact", "--all", check=0)
    assert res.stdout == b"" and res.stderr == ""


def test_no_wait_exits_75_while_another_run_holds_the_lock(mq):
    mq.create("t")
    with open(mq.dir / "compact.lock", "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        assert_error(mq.run("mq-compact", "--no-wait", "t"), EX_TEMPFAIL, "mq-compact",
                     "another mq-compact is running")
        waiting = mq.start("mq-compact", "t")
        stopped = mq.start("mq-compact", "t")
        time.sleep(0.5)
        assert waiting.running() and stopped.running(), "without --no-wait a second run waits"
        stopped.signal(signal.SIGTERM)
        res = stopped.finish(10)
        assert res.status == 143 and res.stderr.startswith("mq-compact: stopped by SIGTERM"), res
    assert waiting.finish(10).status == 0


def test_progress_only_at_a_terminal(mq):
    mq.create("t", 3, "cleanup.policy=compact", "segment.bytes=1024")
    mq.produce("t", keyed(1500, 10), "--json", "--batch-messages", "5")
    pid, fd = pty.fork()
    if pid == 0:  # the child: stdout and stderr are the terminal
        os.execve(str(mq.bin / "mq-compact"), ["mq-compact", "--dir", str(mq.dir), "-v", "t"], mq.env())
    out = b""
    while True:
        try:
            chunk = os.read(fd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert b"mq-compact [" in out and b"2/3 t/2" in out, out
    assert out.split(b"\x1b[K")[-1].startswith(b"mq-compact: 1 topic, 3 partitions:"), "the bar is cleared"
    # Not a terminal: nothing but the summary.
    mq.produce("t", keyed(1500, 10), "--json", "--batch-messages", "5")
    res = mq.run("mq-compact", "-v", "t", check=0)
    assert res.stderr == "" and len(res.lines()) == 1


# ---------------------------------------------------------------------------------------------
# Retention


def test_retention_ms_deletes_old_segments_but_not_what_a_group_needs(mq):
    mq.create("t", 1, "segment.bytes=1024", "retention.ms=3600000")
    old = int(time.time() * 1000) - DAY_MS
    mq.produce("t", keyed(300, 300, timestamp=old), "--json", "--batch-messages", "5")
    mq.produce("t", keyed(20, 20, start=300), "--json", "--batch-messages", "5")
    before = segments(mq, "t")
    assert len(before) > 5
    commit_offset(mq, "g", "t", 100)  # the group still needs offsets 100 and after
    mq.run("mq-compact", "t", check=0)
    after = segments(mq, "t")
    assert len(after) < len(before)
    parts = mq.validate("t")
    offsets = [r.offset for r in parts[0].records]
    assert offsets[0] <= 100 < offsets[0] + 30, "deleted up to the segment holding the group's offset"
    assert offsets[-1] == 319 and offsets == list(range(offsets[0], 320))
    # --ignore-consumers: every old segment goes; the active one and the young data stay.
    res = mq.run("mq-compact", "-v", "--ignore-consumers", "t", check=0)
    assert res.out.startswith("mq-compact: 1 topic, 1 partition: ") and "deleted" in res.out
    assert len(res.lines()) == 1
    offsets = [r.offset for r in mq.records("t")]
    assert offsets[0] > 100 and offsets[-1] == 319
    assert before[-1] in segments(mq, "t"), "the active segment is never deleted"


def test_retention_bytes_keeps_the_newest_data_within_the_limit(mq):
    mq.create("t", 1, "segment.bytes=1024", "retention.bytes=4096", "retention.ms=-1")
    mq.produce("t", keyed(400, 400), "--json", "--batch-messages", "5")
    mq.run("mq-compact", "t", check=0)
    total = sum(p.stat().st_size for p in mq.partition_dir("t", 0).glob("*.log"))
    assert total <= 4096 + 1024
    offsets = [r.offset for r in mq.records("t")]
    assert offsets[-1] == 399 and offsets == list(range(offsets[0], 400)) and offsets[0] > 0


def test_dry_run_changes_nothing_and_says_what_it_would_do(mq):
    mq.create("t", 2, "segment.bytes=1024", "retention.ms=3600000", "cleanup.policy=compact,delete")
    old = int(time.time() * 1000) - DAY_MS
    mq.produce("t", keyed(400, 10, timestamp=old), "--json", "--batch-messages", "5")
    mq.produce("t", keyed(5, 10, start=400), "--json")
    before = listing(mq)
    res = mq.run("mq-compact", "--dry-run", "t", check=0)
    assert "would be deleted" in res.out and "would be reclaimed" in res.out
    assert listing(mq) == before
    assert mq.run("mq-compact", "-n", "--force", "--all", check=0).status == 0
    assert listing(mq) == before


# ---------------------------------------------------------------------------------------------
# Compaction


def test_compaction_keeps_the_latest_value_of_each_key_at_its_offset(mq):
    mq.create("t", 3, "cleanup.policy=compact", "segment.bytes=2048", "min.cleanable.dirty.ratio=0.1")
    mq.produce("t", keyed(3000, 50), "--json", "--batch-messages", "7", "-z", "lz4")
    mq.produce("t", b"".join(jline(key=f"k{i}", value=None) for i in range(0, 50, 10)), "--json")
    mq.produce("t", jline(value="no key 1") + jline(value="no key 2"), "--json")
    before = mq.validate("t")
    expected = {}
    for part in before:
        for r in part.records:
            expected[(int(part.directory.name), r.key)] = (r.offset, r.value)
    size_before = sum(p.stat().st_size for p in mq.topic_dir("t").rglob("*.log"))
    res = mq.run("mq-compact", "-v", "t", check=0)
    assert "records removed" in res.out and res.stderr == ""
    after = mq.validate("t", allow_gaps=True)
    size_after = sum(p.stat().st_size for p in mq.topic_dir("t").rglob("*.log"))
    assert size_after < size_before / 3
    for part in after:
        p = int(part.directory.name)
        offsets = [r.offset for r in part.records]
        assert offsets == sorted(set(offsets)), "offsets keep their order, no repeats"
        got = {}
        for r in part.records:
            got[r.key] = (r.offset, r.value)
        # Every key's latest record is there, at its original offset (tombstones are young:
        # delete.retention.ms is a day).
        want = {k: v for (pp, k), v in expected.items() if pp == p}
        assert got == want
    values = [r.value for part in after for r in part.records]
    assert b"no key 1" in values and b"no key 2" in values, "records without a key are kept"
    # mq's own reader agrees, and a second run finds nothing to do.
    tail = {e["key"]: e["value"] for e in mq.tail_json("-n", "+0", "t") if e["key"] is not None}
    assert tail == {k.decode(): (v.decode() if v is not None else None) for (_, k), (_, v) in expected.items() if k}
    res = mq.run("mq-compact", "-v", "t", check=0)
    assert ": 0 segments deleted, 0 compacted into 0 (0 records removed)" in res.out


def test_check_finds_a_corrupt_byte_and_repair_leaves_it(mq):
    mq.create("t", 1, "segment.bytes=2048")
    mq.produce("t", keyed(500, 500), "--json", "--batch-messages", "10")
    assert mq.run("mq-compact", "--check", "t", check=0).stdout == b""
    res = mq.run("mq-compact", "--check", "-v", "t", check=0)
    assert "no problems" in res.out
    seg = mq.partition_dir("t", 0) / segments(mq, "t")[1]
    data = bytearray(seg.read_bytes())
    data[200] ^= 0x40
    seg.write_bytes(bytes(data))
    res = mq.run("mq-compact", "--check", "t", check=EX_DATAERR)
    assert res.out.startswith(f"t/0: {seg} at byte "), res.out
    assert "CRC" in res.out or "malformed" in res.out
    assert "problem" in res.stderr
    # --repair does not delete data that is not a torn tail.
    res = mq.run("mq-compact", "--repair", "t", check=EX_DATAERR)
    assert seg.read_bytes() == bytes(data)


def test_check_while_a_producer_writes_finds_no_problem(mq):
    """Appends in progress at the end of the active segment are not problems."""
    mq.create("t", 1, "segment.bytes=65536")
    producer = mq.start("mq-produce", "--batch-messages", "3", "--linger", "0", "t")
    line = b"x" * 300 + b"\n"
    for i in range(40):
        producer.write(line * 200)
        res = mq.run("mq-compact", "--check", "t")
        assert (res.status, res.out, res.stderr) == (0, "", ""), f"check {i}: {res}"
    producer.close_stdin()
    assert producer.finish(30).status == 0


def test_repair_cuts_torn_tails_and_rebuilds_indexes(mq):
    mq.create("t", 1, "segment.bytes=2048", "index.interval.bytes=100")
    mq.produce("t", keyed(500, 500), "--json", "--batch-messages", "10")
    part = mq.partition_dir("t", 0)
    names = segments(mq, "t")
    good = mq.validate("t")
    index = part / names[2].replace(".log", ".index")
    expected_index = index.read_bytes()
    assert expected_index
    index.unlink()
    (part / names[3].replace(".log", ".timeindex")).write_bytes(b"\xff" * 12)
    torn = part / names[1]
    torn_size = torn.stat().st_size
    with open(torn, "ab") as f:
        f.write(b"\0\0\0\0\0\0\0\x99\0\0\0\x40")  # the start of a batch that never finished
    active = part / names[-1]
    with open(active, "ab") as f:
        f.write(b"\x01" * 30)
    (part / names[-1].replace(".log", ".timeindex")).unlink()
    res = mq.run("mq-compact", "--check", "t", check=EX_DATAERR)
    assert f"{index}: missing" in res.out and f"{torn} at byte {torn_size}" in res.out
    res = mq.run("mq-compact", "--repair", "t", check=0)
    assert f"{torn}: cut 12 bytes" in res.out
    assert f"{active}: recovered the active segment, cut 30 bytes" in res.out
    assert (part / names[-1].replace(".log", ".timeindex")).exists()
    assert index.read_bytes() == expected_index
    assert torn.stat().st_size == torn_size
    assert mq.run("mq-compact", "--check", "t", check=0).stdout == b""
    assert [r.value for r in mq.records("t")] == [r.value for p in good for r in p.records]
    # The writer carries on after the repair.
    mq.produce("t", jline(value="after", key="x"), "--json")
    assert mq.records("t")[-1].value == b"after"


def test_a_reader_stalled_in_old_segments_sees_every_kept_record_once(mq):
    """mq-tail -f blocked on a full pipe in the middle of old segments while they are merged
    and swapped: afterwards it goes on with no offset twice and none of the kept ones missing."""
    mq.create("t", 1, "cleanup.policy=compact", "segment.bytes=8192")
    mq.produce("t", keyed(20_000, 200), "--json", "--batch-messages", "20")
    argv = mq.argv("mq-tail", ["-f", "-n", "+0", "--format", "%o %k %s\n", "t"])
    reader = subprocess.Popen(argv, env=mq.env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              bufsize=0)
    try:
        first = b""
        while len(first) < 40_000:  # then it stalls: the pipe is full
            first += os.read(reader.stdout.fileno(), 40_000 - len(first))
        time.sleep(0.3)
        res = mq.run("mq-compact", "-v", "--force", "t", check=0)
        assert " 0 compacted" not in res.out
        kept = [r.offset for r in mq.validate("t", allow_gaps=True)[0].records]
        last = kept[-1]
        data = first
        while not data.endswith(f"{last} k{last % 200} v{last}\n".encode()):
            chunk = os.read(reader.stdout.fileno(), 1 << 16)
            assert chunk, reader.stderr.read()
            data += chunk
    finally:
        reader.kill()
        reader.wait()
    offsets = [int(line.split(" ")[0]) for line in data.decode().splitlines()]
    bad = [i for i in range(1, len(offsets)) if offsets[i] <= offsets[i - 1]]
    assert not bad, f"offset repeated or out of order: {data.decode().splitlines()[bad[0] - 2:bad[0] + 2]}"
    stalled_at = int(first.decode().splitlines()[-2].split(" ")[0])
    assert stalled_at < 10_000, "the reader stalled in the segments being merged"
    missing = set(o for o in kept if o > stalled_at + 2000) - set(offsets)
    assert not missing, f"{len(missing)} kept records never reached the reader, e.g. {sorted(missing)[:5]}"


# ---------------------------------------------------------------------------------------------
# The checks a new user tries


def test_compaction_loop_under_producers_and_a_consumer_group(mq):
    """2 producers write 200,000 keyed messages over 1,000 keys while mq-compact runs every
    second and a consumer group and mq-tail -f read: the readers end with each key's final
    value and no repeated offsets, the topic shrinks, every segment validates, nobody errs."""
    mq.create("t", 2, "cleanup.policy=compact", "segment.bytes=65536", "min.cleanable.dirty.ratio=0.2")
    per_producer, keys = 100_000, 1000
    consumer = mq.start("mq-consume", "-g", "g", "--format", "%p %o %k %s\n", "t")
    tail = mq.start("mq-tail", "-f", "-n", "+0", "--format", "%p %o %k %s\n", "t")
    producers = []
    for n in range(2):
        p = mq.start("mq-produce", "--json", "--batch-messages", "50", "t")
        producers.append(p)
    compactions = []
    stop = threading.Event()

    def compact_every_second():
        while not stop.is_set():
            compactions.append(mq.run("mq-compact", "-v", "t"))
            stop.wait(1.0)

    loop = threading.Thread(target=compact_every_second)
    loop.start()
    rows = {}
    for n, p in enumerate(producers):
        rows[n] = [jline(value=f"p{n}-{i}", key=f"k{(i * 7 + n) % keys}") for i in range(per_producer)]
    chunk = 4000
    for start in range(0, per_producer, chunk):
        for n, p in enumerate(producers):
            p.write(b"".join(rows[n][start:start + chunk]))
        time.sleep(0.2)
    for p in producers:
        p.close_stdin()
    for p in producers:
        res = p.finish(60)
        assert res.status == 0 and res.stderr == "", res.stderr
    time.sleep(1.5)
    stop.set()
    loop.join()
    compactions.append(mq.run("mq-compact", "-v", "--force", "t"))
    for res in compactions:
        assert res.status == 0 and res.stderr == "", res.stderr
    assert any("compacted into" in r.out and " 0 compacted" not in r.out for r in compactions)
    # Final values per key, from an independent read of the log.
    parts = mq.validate("t", allow_gaps=True)
    final = {}
    total_records = 0
    for part in parts:
        for r in part.records:
            final[r.key.decode()] = r.value.decode()
            total_records += 1
    assert len(final) == keys
    assert total_records < 2 * per_producer / 5, "the topic shrank"
    ends = {int(part.directory.name): part.records[-1].offset for part in parts}

    def caught_up(data):
        seen = {}
        for line in data.decode().splitlines():
            p, o, _k, _v = line.split(" ")
            seen[int(p)] = int(o)
        return all(seen.get(p) == o for p, o in ends.items())

    for reader in (consumer, tail):
        assert reader.out.wait_for(caught_up, 60), reader.err.snapshot()
        reader.signal(signal.SIGTERM)
        res = reader.finish(20)
        assert res.stderr in ("", "mq-consume: stopped by SIGTERM; delivered messages are committed\n"), res.stderr
        last = {}
        previous = {}
        for line in res.out.splitlines():
            p, o, k, v = line.split(" ")
            assert int(o) > previous.get(p, -1), f"offset {o} of partition {p} seen twice or out of order"
            previous[p] = int(o)
            last[k] = v
        assert last == final, "the reader ends with each key's final value"
    assert len(compactions) >= 5
    print("\n".join(r.out.strip() for r in compactions))


def test_kill_9_at_random_moments_never_loses_what_compaction_keeps(mq):
    mq.create("t", 1, "cleanup.policy=compact", "segment.bytes=4096", "min.cleanable.dirty.ratio=0.01",
              "index.interval.bytes=512")
    rng = random.Random(4711)
    written = 0
    journals = killed = 0
    latest = {}
    for round_ in range(30):
        data = []
        for _ in range(400):
            key = f"k{rng.randrange(300)}"
            value = f"r{round_}-{written}"
            data.append(jline(value=value, key=key))
            latest[key] = value
            written += 1
        mq.produce("t", b"".join(data), "--json", "--batch-messages", "8")
        p = mq.start("mq-compact", "--force", "t")
        time.sleep(rng.uniform(0, 0.03))
        killed += p.running()
        p.signal(signal.SIGKILL)
        p.wait(10)
        part = mq.partition_dir("t", 0)
        # mq's reader sees every key's latest value whatever the moment of the kill.
        seen = {}
        for line in mq.tail("-n", "+0", "--format", "%o %k %s\n", "t").lines():
            o, k, v = line.split(" ")
            seen[k] = v
        assert seen == latest, f"round {round_}: mq-tail after the kill"
        # Without a swap journal nothing is half done: the files validate as they are. With
        # one, a swap was committed and the next run finishes it (here, --check).
        journal = (part / "compact.swap").exists()
        if not journal:
            got = latest_by_key(mq.validate("t", allow_gaps=True)[0].records)
            assert {k.decode(): v.decode() for k, v in got.items()} == latest, f"round {round_}"
        res = mq.run("mq-compact", "--check", "t")
        assert (res.status, res.out, res.stderr) == (0, "", ""), f"round {round_}: {res}"
        assert not (part / "compact.swap").exists() and not list(part.glob("*.cleaned"))
        got = latest_by_key(mq.validate("t", allow_gaps=True)[0].records)
        assert {k.decode(): v.decode() for k, v in got.items()} == latest, f"round {round_}"
        journals += journal
    print(f"killed while running: {killed}/30, with a committed swap: {journals}")
    assert killed >= 10, "most kills land in the middle of a run"
    res = mq.run("mq-compact", "-v", "--force", "t", check=0)
    assert res.stderr == ""
    assert not list(mq.partition_dir("t", 0).glob("*.cleaned"))
    assert not (mq.partition_dir("t", 0) / "compact.swap").exists()
    parts = mq.validate("t", allow_gaps=True)
    assert len(parts[0].records) < written / 5
    assert {k.decode(): v.decode() for k, v in latest_by_key(parts[0].records).items()} == latest
    assert mq.run("mq-compact", "--check", "t", check=0).stdout == b""
