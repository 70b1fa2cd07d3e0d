"""Idempotent producers and deduplication: mq-produce --id-header / --dedup-window,
mq-produce --producer NAME, mq-consume --dedup (exactly once across processes, reruns and kill -9)."""

import json
import signal
import struct
import time
from collections import Counter

from kafka.record.util import calc_crc32c

from mqtest import EX_DATAERR, EX_USAGE, assert_error, jline, script

N = 100_000


def id_input(tmp_path, n=N, name="in.json"):
    """n JSON envelopes, value 'message I', header id = 'id-I'."""
    path = tmp_path / name
    with open(path, "w") as f:
        for i in range(n):
            f.write(json.dumps({"value": f"message {i}", "headers": {"id": f"id-{i}"}}) + "\n")
    return path


def start_producer(mq, path, topic, *args):
    return mq.start("mq-produce", topic, *args, stdin=open(path, "rb"))


def assert_each_once(mq, topic, n=N, prefix="message "):
    values = mq.values(topic)
    counts = Counter(values)
    repeated = [v for v, c in counts.items() if c > 1][:5]
    assert not repeated, f"written more than once: {repeated}"
    assert len(values) == n, f"{len(values)} records, expected {n}"
    assert set(values) == {f"{prefix}{i}".encode() for i in range(n)}


def topic_records(mq, topic):
    """Records in the topic now, from the partitions' log sizes (no decoding): > 0 once data landed."""
    return sum(f.stat().st_size for f in mq.topic_dir(topic).glob("*/*.log")) if mq.topic_dir(topic).is_dir() else 0


def kill_mid_write(mq, path, topic, *args, after_bytes=1):
    """Starts a producer and kills it with SIGKILL once some of its data is in the topic."""
    p = start_producer(mq, path, topic, *args)
    deadline = time.time() + 60
    while topic_records(mq, topic) < after_bytes and p.running() and time.time() < deadline:
        time.sleep(0.002)
    p.signal(signal.SIGKILL)
    return p.wait()


def test_the_same_ids_three_times_concurrently_are_written_once(mq, tmp_path):
    path = id_input(tmp_path)
    mq.create("orders", 3)
    procs = [start_producer(mq, path, "orders", "--json", "--id-header", "id", "--batch-messages", "5000")
             for _ in range(3)]
    for p in procs:
        res = p.finish()
        assert res.status == 0, res.stderr
    assert_each_once(mq, "orders")
    # Each partition holds whole, valid Kafka batches, and every id once.
    ids = Counter(dict(r.headers)["id"] for r in mq.records("orders"))
    assert len(ids) == N and max(ids.values()) == 1


def test_after_kill_9_reruns_write_each_id_once(mq, tmp_path):
    path = id_input(tmp_path)
    mq.create("orders", 2)
    args = ("--json", "--id-header", "id", "--batch-messages", "2000")
    # A producer killed mid-write, at different depths, three times.
    for after in (1, 200_000, 1_000_000):
        status = kill_mid_write(mq, path, "orders", *args, after_bytes=after)
        assert status in (-signal.SIGKILL, 0)
    partial = len(mq.values("orders"))
    assert partial <= N
    # Then the same input three times at once, and once more.
    procs = [start_producer(mq, path, "orders", *args) for _ in range(3)]
    for p in procs:
        res = p.finish()
        assert res.status == 0, res.stderr
    assert_each_once(mq, "orders")
    res = mq.run("mq-produce", "orders", *args, "--print-offsets", input=path.read_bytes(), check=0)
    assert all(line.startswith("dup ") for line in res.lines()) and len(res.lines()) == N
    assert_each_once(mq, "orders")


def test_print_offsets_marks_duplicates_with_the_first_copy(mq):
    data = b"".join(jline(value=v, headers=[("Msg-Id", i)]) for v, i in
                    [("a1", "a"), ("b1", "b"), ("a2", "a"), ("c1", "c"), ("b2", "b")])
    res = mq.produce("t", data, "--json", "--id-header", "Msg-Id", "--print-offsets")
    assert res.lines() == ["0 0", "0 1", "dup 0 0", "0 2", "dup 0 1"]
    res = mq.produce("t", jline(value="c2", headers=[("Msg-Id", "c")]) + jline(value="d1", headers=[("Msg-Id", "d")]),
                     "--json", "--id-header", "Msg-Id", "--print-offsets")
    assert res.lines() == ["dup 0 2", "0 3"]
    assert mq.values("t") == [b"a1", b"b1", b"c1", b"d1"]
    # The id header stays on the record; a producer without --id-header does not deduplicate.
    assert [dict(r.headers)["Msg-Id"] for r in mq.records("t")] == [b"a", b"b", b"c", b"d"]
    mq.produce("t", jline(value="a3", headers=[("Msg-Id", "a")]), "--json")
    assert len(mq.values("t")) == 5


def test_ids_from_keys(mq):
    res = mq.produce("k", b"x\tone\ny\ttwo\nx\tthree\n", "-K", "\\t", "--id-header", "id", "--print-offsets")
    assert res.lines() == ["0 0", "0 1", "dup 0 0"]
    recs = mq.records("k")
    assert [(r.key, r.value, dict(r.headers)["id"]) for r in recs] == [(b"x", b"one", b"x"), (b"y", b"two", b"y")]


def test_the_window_expires(mq):
    args = ("--json", "--id-header", "id", "--dedup-window", "1s")
    mq.produce("w", jline(value="first", headers=[("id", "x")]), *args)
    mq.produce("w", jline(value="within", headers=[("id", "x")]), *args)
    assert mq.values("w") == [b"first"]
    time.sleep(1.3)
    res = mq.produce("w", jline(value="later", headers=[("id", "x")]), *args, "--print-offsets")
    assert res.lines() == ["0 1"]
    # A longer window (another producer's) still sees the first copy.
    res = mq.produce("w", jline(value="long", headers=[("id", "x")]), "--json", "--id-header", "id",
                     "--dedup-window", "1h", "--print-offsets")
    assert res.lines() == ["dup 0 1"]
    assert mq.values("w") == [b"first", b"later"]


def test_messages_without_an_id_are_bad_input(mq):
    data = (jline(value="a", headers=[("id", "1")]) + jline(value="no id") +
            jline(value="b", headers=[("id", "2")]))
    res = mq.produce("m", data, "--json", "--id-header", "id", check=None)
    assert_error(res, EX_DATAERR, "mq-produce", "line 2", "no id", "'id'")
    assert mq.values("m") == [b"a"]  # what came before the bad line is written
    res = mq.produce("m", data, "--json", "--id-header", "id", "--skip-bad", "--print-offsets")
    assert res.lines() == ["dup 0 0", "0 1"]
    assert "line 2" in res.stderr and "(skipped)" in res.stderr
    assert mq.values("m") == [b"a", b"b"]
    res = mq.produce("m", b"k1\tv\nno key here\n", "-K", "\\t", "--id-header", "id", check=None)
    assert_error(res, EX_DATAERR, "mq-produce", "line 2", "no id", "key delimiter")


def test_bad_options(mq):
    for args, needle in [
        (["--id-header", "id"], "needs ids"),
        (["--json", "--id-header", ""], "header name"),
        (["--dedup-window", "1m"], "needs '--id-header'"),
        (["--json", "--id-header", "id", "--dedup-window", "soon"], "invalid duration 'soon'"),
        (["--json", "--id-header", "id", "--dedup-window", "0s"], "positive"),
        (["--json", "--id-header", "id", "--producer", "p"], "mutually exclusive"),
        (["--producer", "p", "--print-offsets"], "--print-offsets"),
        (["--producer", "p", "--delay", "1s"], "--delay"),
        (["--json", "--id-header", "id", "--atomic"], "--atomic"),
        (["--producer", "p", "--atomic"], "--atomic"),
        (["--producer", "bad/name"], "invalid copy id"),
    ]:
        res = mq.run("mq-produce", "t", *args, input=b"x\n", check=None)
        assert_error(res, EX_USAGE, "mq-produce", needle, argv=args)
    mq.produce("c", b"x\n")
    for args, needle in [
        (["--dedup", "--id-header", "id"], "-g GROUP"),
        (["-g", "g", "--dedup"], "--id-header NAME"),
        (["-g", "g", "--id-header", "id"], "needs '--dedup'"),
        (["-g", "g", "--dedup-window", "1m"], "needs '--dedup'"),
        (["-g", "g", "--dedup", "--id-header", "id", "--queue", "--", "true"], "--queue"),
    ]:
        res = mq.run("mq-consume", "-e", "c", *args, check=None)
        assert_error(res, EX_USAGE, "mq-consume", needle, argv=args)
    assert not (mq.dir / "groups").exists() or not list((mq.dir / "groups").iterdir())


def test_named_producer_rerun_after_kill_9_writes_each_record_once(mq, tmp_path):
    path = tmp_path / "lines.txt"
    path.write_bytes(b"".join(b"line %d\n" % i for i in range(N)))
    mq.create("feed", 3)
    # Small chunks (--batch-messages) so that the kill lands between two of them, or inside one.
    status = kill_mid_write(mq, path, "feed", "--producer", "nightly", "--batch-messages", "1000", after_bytes=300_000)
    assert status in (-signal.SIGKILL, 0)
    assert len(mq.values("feed")) < N or status == 0
    res = mq.run("mq-produce", "feed", "--producer", "nightly", input=path.read_bytes(), check=0)
    assert_each_once(mq, "feed", prefix="line ")
    # The same input again writes nothing; more input writes only what is new.
    mq.run("mq-produce", "feed", "--producer", "nightly", input=path.read_bytes(), check=0)
    assert len(mq.values("feed")) == N
    more = path.read_bytes() + b"".join(b"line %d\n" % i for i in range(N, N + 10))
    mq.run("mq-produce", "feed", "--producer", "nightly", input=more, check=0)
    assert_each_once(mq, "feed", n=N + 10, prefix="line ")
    # Another name is another producer.
    mq.run("mq-produce", "feed", "--producer", "other", input=b"line 0\n", check=0)
    assert len(mq.values("feed")) == N + 11
    # Batches carry the producer's id and sequences (Kafka's idempotent-producer fields).
    assert (mq.dir / "copies" / "produce.feed.nightly" / "state").is_file()


def test_consume_dedup_runs_each_id_once(mq, tmp_path):
    runs = tmp_path / "runs"
    handler = script(tmp_path, "count.sh", f'v=$(cat); echo "$v" >> {runs}\n')
    data = b"".join(jline(value=f"m{i}", headers=[("id", f"id{i % 10}")]) for i in range(30))
    data += jline(value="no id")
    mq.produce("jobs", data, "--json")
    dedup = ("-g", "workers", "--dedup", "--id-header", "id")
    mq.run("mq-consume", *dedup, "-e", "jobs", "--", handler, check=0)
    assert runs.read_text().split() == [f"m{i}" for i in range(10)] + ["no", "id"]
    # The same messages produced again: the group skips them (and commits past them).
    mq.produce("jobs", data, "--json")
    mq.run("mq-consume", *dedup, "-e", "jobs", "--", handler, check=0)
    assert runs.read_text().split() == [f"m{i}" for i in range(10)] + ["no", "id"] * 2
    # Another group has its own ids; without --dedup every message is delivered.
    res = mq.run("mq-consume", "-g", "other", "--dedup", "--id-header", "id", "-e", "jobs", check=0)
    assert res.lines() == [f"m{i}" for i in range(10)] + ["no id"] * 2
    res = mq.run("mq-consume", "-g", "plain", "-e", "jobs", check=0)
    assert len(res.lines()) == 62
    assert (mq.dir / "groups" / "workers" / "dedup" / "ids").is_file()


def test_consume_dedup_does_not_record_dead_letters(mq, tmp_path):
    handler = script(tmp_path, "fail.sh", 'cat >/dev/null; exit 1\n')
    mq.produce("jobs", jline(value="x", headers=[("id", "1")]), "--json")
    dedup = ("-g", "w", "--dedup", "--id-header", "id")
    mq.run("mq-consume", *dedup, "-e", "--max-attempts", "1", "jobs", "--", handler, check=0)
    assert mq.values("jobs.dlq") == [b"x"]
    # A failed id is not "processed": the message comes through when sent again.
    mq.produce("jobs", jline(value="x again", headers=[("id", "1")]), "--json")
    res = mq.run("mq-consume", *dedup, "-e", "jobs", check=0)
    assert res.lines() == ["x again"]


def test_consume_dedup_window_expires(mq):
    mq.produce("e", jline(value="one", headers=[("id", "x")]), "--json")
    dedup = ("-g", "w", "--dedup", "--id-header", "id", "--dedup-window", "1s")
    assert mq.run("mq-consume", *dedup, "-e", "e", check=0).lines() == ["one"]
    mq.produce("e", jline(value="two", headers=[("id", "x")]), "--json")
    assert mq.run("mq-consume", *dedup, "-e", "e", check=0).lines() == []
    time.sleep(1.3)
    mq.produce("e", jline(value="three", headers=[("id", "x")]), "--json")
    assert mq.run("mq-consume", *dedup, "-e", "e", check=0).lines() == ["three"]


def test_mq_compact_trims_expired_ids(mq):
    mq.produce("h", jline(value="one", headers=[("id", "x")]), "--json", "--id-header", "id", "--dedup-window", "1s")
    mq.produce("h", jline(value="c", headers=[("id", "y")]), "--json")
    mq.run("mq-consume", "-g", "g", "--dedup", "--id-header", "id", "--dedup-window", "1s", "-e", "h", check=0)
    store, group_store = mq.topic_dir("h") / "dedup", mq.dir / "groups" / "g" / "dedup"
    assert (store / "window").read_text().strip() == "1000"
    assert (store / "ids").stat().st_size > 0 and (group_store / "ids").stat().st_size > 0
    time.sleep(1.3)
    res = mq.run("mq-compact", "--all", "-v", check=0)
    assert "expired dedup entries trimmed" in res.out
    assert (store / "ids").stat().st_size == 0 and (group_store / "ids").stat().st_size == 0
    res = mq.produce("h", jline(value="two", headers=[("id", "x")]), "--json", "--id-header", "id",
                     "--dedup-window", "1s", "--print-offsets")
    assert res.lines() == ["0 2"]


def fnv1a128(data: bytes) -> int:
    """docs/FORMAT.md §18, written independently of mq."""
    h = 0x6c62272e07bb014262b821756295c58d
    for b in data:
        h = ((h ^ b) * 0x0000000001000000000000000000013B) % (1 << 128)
    return h


def entry(kind, partition, hash128, time_ms, offset) -> bytes:
    body = struct.pack("<B3xiQQqq", kind, partition, hash128 >> 64, hash128 & (2**64 - 1), time_ms, offset)
    return body + struct.pack("<I4x", calc_crc32c(body))


def read_entries(path):
    raw = path.read_bytes()
    out = []
    for at in range(0, len(raw), 48):
        e = raw[at:at + 48]
        kind, partition, hi, lo, ts, offset = struct.unpack("<B3xiQQqq", e[:40])
        assert struct.unpack("<I", e[40:44])[0] == calc_crc32c(e[:40]), f"bad CRC at {at}"
        out.append((kind, partition, (hi << 64) | lo, ts, offset))
    return out


def test_store_entries_follow_the_documented_format(mq):
    mq.produce("f", jline(value="a", headers=[("id", "first")]) + jline(value="b", headers=[("id", "second")]),
               "--json", "--id-header", "id")
    entries = read_entries(mq.topic_dir("f") / "dedup" / "ids")
    # One chunk: a pending entry (log end 0, hash of the header name), the two ids, done.
    assert [(k, p, o) for k, p, _, _, o in entries] == [(2, 0, 0), (1, 0, 0), (1, 0, 1), (3, -1, -1)] or \
        [(k, p, o) for k, p, _, _, o in entries] == [(2, 0, 0), (1, 0, 1), (1, 0, 0), (3, -1, -1)]
    assert entries[0][2] == fnv1a128(b"id")
    assert {e[2] for e in entries[1:3]} == {fnv1a128(b"first"), fnv1a128(b"second")}
    assert all(abs(e[3] - time.time() * 1000) < 60_000 for e in entries)


def test_a_chunk_left_open_by_a_dead_producer_is_finished(mq):
    """A producer that died after writing its data, before recording its ids: the store ends in a pending
    entry, written here by hand from the documented format."""
    mq.produce("r", jline(value="before", headers=[("id", "old")]), "--json")
    store = mq.topic_dir("r") / "dedup"
    store.mkdir()
    now = int(time.time() * 1000)
    (store / "ids").write_bytes(entry(2, 0, fnv1a128(b"id"), now, 1))
    # The dead producer's data reached the log.
    mq.produce("r", jline(value="a", headers=[("id", "x")]) + jline(value="b", headers=[("id", "y")]), "--json")
    res = mq.produce("r", b"".join(jline(value=v, headers=[("id", i)]) for v, i in
                                   [("a again", "x"), ("b again", "y"), ("old again", "old"), ("c", "z")]),
                     "--json", "--id-header", "id", "--print-offsets")
    # x and y were recorded from the log past offset 1; "old" (before the pending offset) was not.
    assert res.lines() == ["dup 0 1", "dup 0 2", "0 3", "0 4"]
    assert "interrupted" in res.stderr and "recorded 2 ids" in res.stderr
    assert mq.values("r") == [b"before", b"a", b"b", b"old again", b"c"]
    kinds = [e[0] for e in read_entries(store / "ids")]
    assert kinds[:4] == [2, 1, 1, 3] and kinds[-1] == 3
