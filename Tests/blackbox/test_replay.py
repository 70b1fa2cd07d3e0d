"""mq-replay: ranges by offsets and times in mq-tail's formats, --into exactly once (reruns,
kill -9), provenance headers, --restamp, filters, --rate, and -g GROUP --reset-to.

What lands in a destination topic is read with kafka_validate (kafka-python), and committed
offsets straight from the group's files (docs/FORMAT.md §13), never with mq code.
"""

import json
import os
import signal
import subprocess
import time
from collections import Counter

import pytest

import mqtest
from mqtest import EX_NOINPUT, EX_TEMPFAIL, EX_USAGE, assert_error, jline, script

T0 = 1_700_000_000_000
PROVENANCE = ("mq.replay.topic", "mq.replay.partition", "mq.replay.offset", "mq.replay.id")


def fill(mq, topic="t", partitions=2, per_partition=10, start=0):
    """Message j of partition p: key k<p>-<j>, value v<p>-<j>, header h=<j>, timestamp T0 + 10*j + p.
    Timestamps interleave the partitions: merged in time order they alternate 0, 1, 0, 1..."""
    if not mq.topic_dir(topic).exists():
        mq.create(topic, partitions)
    lines = b"".join(jline(f"v{p}-{j}", key=f"k{p}-{j}", headers=[("h", str(j))], partition=p,
                           timestamp=T0 + 10 * j + p)
                     for j in range(start, start + per_partition) for p in range(partitions))
    mq.produce(topic, lines, "--json")


def replay(mq, *args, check=0, **kw):
    return mq.run("mq-replay", *args, check=check, **kw)


def envelopes(res):
    return [json.loads(line) for line in res.lines()]


def headers_of(record):
    return dict((n, v) for n, v in record.headers)


def provenance(record):
    h = headers_of(record)
    return h["mq.replay.topic"].decode(), int(h["mq.replay.partition"]), int(h["mq.replay.offset"])


def committed(mq, group, topic, partition):
    return mqtest.committed_offset(mq.dir, group, topic, partition)


def table(res):
    """The --reset-to table as {partition: (current, new, lag)}."""
    lines = res.lines()
    assert lines[0].split() == ["TOPIC", "PARTITION", "CURRENT", "NEW", "LAG"], res
    out = {}
    for line in lines[1:]:
        _topic, p, current, new, lag = line.split()
        out[int(p)] = (None if current == "-" else int(current), int(new), int(lag))
    return out


# ---------------------------------------------------------------------------------------------
# Standard output


def test_offsets_are_inclusive_and_merged_by_time_in_every_format(mq):
    fill(mq)
    res = replay(mq, "t", "--from", "2", "--to", "4")
    assert res.lines() == ["v0-2", "v1-2", "v0-3", "v1-3", "v0-4", "v1-4"]
    assert res.stderr == ""
    env = envelopes(replay(mq, "t", "--from", "2", "--to", "4", "--json"))
    assert [(e["partition"], e["offset"], e["key"], e["timestamp"]) for e in env] == \
        [(p, j, f"k{p}-{j}", T0 + 10 * j + p) for j in (2, 3, 4) for p in (0, 1)]
    assert env[0]["headers"] == [["h", "2"]]
    res = replay(mq, "t", "--from", "8", "--format", "%p@%o %k=%s %h\\n")
    assert res.lines() == ["0@8 k0-8=v0-8 h=8", "1@8 k1-8=v1-8 h=8", "0@9 k0-9=v0-9 h=9", "1@9 k1-9=v1-9 h=9"]
    assert replay(mq, "t", "--from", "9", "-0").stdout == b"v0-9\0v1-9\0"
    assert replay(mq, "t", "--from", "9", "-d", "|").stdout == b"v0-9|v1-9|"
    # One message: --from N --to N.
    assert replay(mq, "t", "-p", "1", "--from", "5", "--to", "5").lines() == ["v1-5"]
    # The default range is everything, as mq-tail -n +0 prints it.
    assert replay(mq, "t").stdout == mq.tail("-n", "+0", "t").stdout


def test_times_from_at_or_after_to_at_or_before(mq):
    fill(mq)
    # Partition 0 has T0+0, +10, +20...; partition 1 T0+1, +11, +21...
    res = replay(mq, "t", "--from", f"@{T0 + 20}", "--to", f"@{T0 + 40}", "--format", "%p@%o\\n")
    assert res.lines() == ["0@2", "1@2", "0@3", "1@3", "0@4"]
    iso = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime((T0 + 50) // 1000))
    frac = (T0 + 50) % 1000
    res = replay(mq, "t", "--from", f"{iso}.{frac:03d}Z", "-p", "0", "--format", "%o\\n")
    assert res.lines() == ["5", "6", "7", "8", "9"]
    # Relative times: everything is older than an hour ago, nothing is newer.
    assert replay(mq, "t", "--from", "-1h").stdout == b""
    assert len(replay(mq, "t", "--to", "-1h").lines()) == 20
    assert replay(mq, "t", "--to", f"@{T0}").lines() == ["v0-0"]


def test_partition_offsets_and_partition_selection(mq):
    fill(mq)
    res = replay(mq, "t", "--from", "1:7", "--to", "0:1", "--format", "%p@%o\\n")
    assert res.lines() == ["0@0", "0@1", "1@7", "1@8", "1@9"]
    res = replay(mq, "t", "-p", "1", "--from", "8", "--format", "%p@%o\\n")
    assert res.lines() == ["1@8", "1@9"]


def test_filters_as_in_mq_consume(mq):
    fill(mq)
    assert replay(mq, "t", "--grep", "^v1-[3-4]$").lines() == ["v1-3", "v1-4"]
    assert replay(mq, "t", "--key", "k0-7").lines() == ["v0-7"]
    assert replay(mq, "t", "--header", "h=6").lines() == ["v0-6", "v1-6"]
    assert replay(mq, "t", "--header", "h=6", "--key", "k1-6").lines() == ["v1-6"]
    res = replay(mq, "t", "--header", "h=6", "-v")
    assert "2 messages printed, 18 skipped" in res.stderr


def test_bad_command_lines(mq):
    fill(mq)
    assert_error(replay(mq, "t", "--from", "5", "--to", "3", check=None), EX_USAGE, "mq-replay", "--to 3 is before --from 5")
    assert_error(replay(mq, "t", "--from", f"@{T0 + 5}", "--to", f"@{T0}", check=None), EX_USAGE, "mq-replay", "before")
    assert_error(replay(mq, "t", "--from", "yesterday", check=None), EX_USAGE, "mq-replay", "invalid time")
    assert_error(replay(mq, "t", "--from", "7:1", check=None), EX_USAGE, "mq-replay", "partition 7 does not exist")
    assert_error(replay(mq, "t", "-p", "2", check=None), EX_USAGE, "mq-replay", "partition 2 does not exist")
    assert_error(replay(mq, "t", "--rate", "fast", check=None), EX_USAGE, "mq-replay", "--rate")
    assert_error(replay(mq, "t", "--grep", "(", check=None), EX_USAGE, "mq-replay", "--grep")
    assert_error(replay(mq, "t", "--restamp", check=None), EX_USAGE, "mq-replay", "needs '--into'")
    assert_error(replay(mq, "t", "--dry-run", check=None), EX_USAGE, "mq-replay", "--reset-to")
    assert_error(replay(mq, "t", "--into", "d", "--json", check=None), EX_USAGE, "mq-replay", "standard output")
    assert_error(replay(mq, "-g", "g", "t", "--reset-to", "end", "--from", "3", check=None), EX_USAGE, "mq-replay")
    assert_error(replay(mq, "nope", check=None), EX_NOINPUT, "mq-replay", "'nope' does not exist")
    assert_error(replay(mq, "t", "--into", "d", "--no-create", check=None), EX_NOINPUT, "mq-replay", "'d' does not exist")


def test_a_closed_output_ends_quietly(mq):
    fill(mq, per_partition=20000)
    p = subprocess.Popen(mq.argv("mq-replay", ["t"]), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=mq.env())
    assert p.stdout.readline() == b"v0-0\n"
    p.stdout.close()
    status = p.wait(60)
    err = p.stderr.read()
    assert status in (0, -signal.SIGPIPE) and err == b"", (status, err)


def test_progress_only_at_a_terminal(mq):
    fill(mq)
    assert replay(mq, "t", "--rate", "200/s").stderr == ""
    status, out, seen = mqtest.run_with_terminal_stderr(mq.argv("mq-replay", ["t", "--rate", "200/s"]), mq.env())
    assert status == 0 and len(out.splitlines()) == 20, seen
    assert b"mq-replay: " in seen and b" of 20 (" in seen, seen


def test_rate_spaces_the_messages(mq):
    fill(mq, partitions=1, per_partition=200)
    started = time.monotonic()
    res = replay(mq, "t", "--rate", "100/s")
    took = time.monotonic() - started
    assert len(res.lines()) == 200
    assert took >= 1.5, f"200 messages at 100/s took {took:.2f} s"


# ---------------------------------------------------------------------------------------------
# --into


def test_into_keeps_keys_headers_timestamps_and_adds_provenance(mq):
    fill(mq)
    replay(mq, "t", "--into", "d", "--from", "3", "--to", "5")
    assert mq.properties("d")["partitions"] == "2"
    for p in (0, 1):
        recs = mq.records("d", p)
        assert [(r.key, r.value, r.timestamp) for r in recs] == \
            [(f"k{p}-{j}".encode(), f"v{p}-{j}".encode(), T0 + 10 * j + p) for j in (3, 4, 5)]
        for r, j in zip(recs, (3, 4, 5)):
            assert [n for n, _ in r.headers] == ["h", *PROVENANCE]
            assert headers_of(r)["h"] == str(j).encode()
            assert provenance(r) == ("t", p, j)
            assert headers_of(r)["mq.replay.id"].startswith(b"replay.")


def test_into_a_topic_with_other_partitions_goes_by_key(mq):
    fill(mq, partitions=2)
    mq.create("one", 1)
    replay(mq, "t", "--into", "one")
    recs = mq.records("one")
    assert sorted(provenance(r)[1:] for r in recs) == sorted((p, j) for p in (0, 1) for j in range(10))


def test_restamp_gives_the_time_of_the_copy(mq):
    fill(mq)
    before = int(time.time() * 1000)
    replay(mq, "t", "--into", "d", "--restamp")
    after = int(time.time() * 1000)
    stamps = [r.timestamp for r in mq.records("d")]
    assert len(stamps) == 20 and all(before <= s <= after for s in stamps)


def test_into_with_filters(mq):
    fill(mq)
    res = replay(mq, "t", "--into", "d", "--grep", "[12]$", "-v")
    assert sorted(r.value for r in mq.records("d")) == [b"v0-1", b"v0-2", b"v1-1", b"v1-2"]
    assert "4 messages copied into 'd'" in res.stderr and "16 skipped" in res.stderr


def test_running_a_replay_again_copies_nothing(mq):
    fill(mq)
    first = replay(mq, "t", "--into", "d", "--from", "2")
    assert first.stderr == ""  # silent on success
    again = replay(mq, "t", "--into", "d", "--from", "2")
    assert "already complete: 16 messages copied on" in again.stderr and "--again" in again.stderr
    assert len(mq.records("d")) == 16
    # Messages appended since do not change a complete replay of "to the end".
    fill(mq, start=10, per_partition=2)
    replay(mq, "t", "--into", "d", "--from", "2")
    assert len(mq.records("d")) == 16
    # --again is a new run, which resolves the range anew.
    res = replay(mq, "t", "--into", "d", "--from", "2", "--again", "-v")
    assert "20 messages copied" in res.stderr and ".2:" in res.stderr
    assert len(mq.records("d")) == 36
    # Another range is another replay.
    replay(mq, "t", "--into", "d", "--from", "11")
    assert len(mq.records("d")) == 38
    # --name: the name is the identity, whatever the arguments.
    replay(mq, "t", "--into", "d", "--name", "fix-1", "--from", "11")
    res = replay(mq, "t", "--into", "d", "--name", "fix-1", "--from", "10")
    assert "replay.fix-1 already complete: 2 messages" in res.stderr
    assert len(mq.records("d")) == 40


def test_kill_9_in_the_middle_and_run_again_copies_each_message_once(mq):
    n = 3000
    fill(mq, partitions=2, per_partition=n // 2)
    args = ["t", "--into", "d", "--from", "-1000w"]

    def copied_bytes():
        return sum(f.stat().st_size for f in mq.topic_dir("d").glob("*/*.log"))

    for _ in range(2):
        before = copied_bytes()
        proc = mq.start("mq-replay", *args, "--rate", "1000/s")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and copied_bytes() < before + 20_000:
            time.sleep(0.05)
        proc.signal(signal.SIGKILL)
        proc.wait(10)
    # mq-tail reads up to a torn tail the kill may have left (the next writer cuts it).
    copied = len(mq.tail("-n", "+0", "d").lines())
    assert 0 < copied < n, f"the kills should land in the middle; {copied} of {n} copied"
    res = replay(mq, *args, "-v")
    assert "copied before" in res.stderr
    seen = Counter(provenance(r) for r in mq.records("d"))
    assert set(seen) == {("t", p, j) for p in (0, 1) for j in range(n // 2)}
    assert max(seen.values()) == 1, [k for k, c in seen.items() if c > 1][:5]
    assert "already complete: 3000 messages" in replay(mq, *args).stderr


def test_sigterm_settles_and_the_rerun_completes(mq):
    fill(mq, partitions=1, per_partition=400)
    proc = mq.start("mq-replay", "t", "--into", "d", "--rate", "200/s")
    time.sleep(0.8)
    proc.signal(signal.SIGTERM)
    res = proc.finish(30)
    assert res.status == 143 and "run the same command again" in res.stderr, res
    assert 0 < len(mq.records("d")) < 400
    # The rerun copies the range the first run resolved: not what was appended since.
    fill(mq, partitions=1, per_partition=10, start=400)
    replay(mq, "t", "--into", "d")
    assert sorted(provenance(r)[2] for r in mq.records("d")) == list(range(400))


def test_an_interrupted_again_run_is_resumed_not_started_over(mq):
    fill(mq, partitions=1, per_partition=300)
    replay(mq, "t", "--into", "d")
    proc = mq.start("mq-replay", "t", "--into", "d", "--again", "--rate", "300/s")
    time.sleep(0.5)
    proc.signal(signal.SIGKILL)
    proc.wait(10)
    res = replay(mq, "t", "--into", "d", "--again", "-v")
    assert ".2:" in res.stderr and "copied before" in res.stderr
    runs = Counter(headers_of(r)["mq.replay.id"].decode().count(".") for r in mq.records("d"))
    assert runs == {1: 300, 2: 300}, runs
    assert ".2 already complete: 300 messages" in replay(mq, "t", "--into", "d").stderr


def test_replay_into_the_same_topic(mq):
    fill(mq)
    replay(mq, "t", "--into", "t", "--from", "5")
    for p in (0, 1):
        recs = mq.records("t", p)
        assert len(recs) == 15
        assert [r.value for r in recs[10:]] == [f"v{p}-{j}".encode() for j in range(5, 10)]
        assert [provenance(r) for r in recs[10:]] == [("t", p, j) for j in range(5, 10)]
    replay(mq, "t", "--into", "t", "--from", "5")
    assert len(mq.records("t")) == 30


def test_a_running_replay_is_waited_for_or_refused(mq):
    fill(mq, partitions=1, per_partition=300)
    proc = mq.start("mq-replay", "t", "--into", "d", "--rate", "300/s")
    time.sleep(0.4)
    res = replay(mq, "t", "--into", "d", "--no-wait", check=None)
    assert_error(res, EX_TEMPFAIL, "mq-replay", "in use")
    res = replay(mq, "t", "--into", "d")  # waits for the first, then finds it complete
    assert "already complete: 300 messages" in res.stderr
    assert proc.finish(30).status == 0
    assert len(mq.records("d")) == 300


# ---------------------------------------------------------------------------------------------
# --reset-to


def consume(mq, group, topic, *args):
    return mq.run("mq-consume", "-g", group, "-e", topic, "--format", "%p@%o\\n", *args, check=0).lines()


def test_reset_to_each_form_with_dry_run(mq):
    fill(mq)
    assert len(consume(mq, "g", "t")) == 20
    cases = [
        (["beginning"], {0: 0, 1: 0}),
        (["end"], {0: 10, 1: 10}),
        (["4"], {0: 4, 1: 4}),
        (["99"], {0: 10, 1: 10}),
        (["-3"], {0: 7, 1: 7}),
        (["+1", "-p", "1"], {1: 8}),
        ([f"@{T0 + 61}"], {0: 7, 1: 6}),
    ]
    for args, want in cases:
        before = {p: committed(mq, "g", "t", p) for p in (0, 1)}
        dry = replay(mq, "-g", "g", "t", "--reset-to", *args, "-n" if "-p" in args else "--dry-run")
        assert {p: v[1] for p, v in table(dry).items()} == want, (args, dry.out)
        assert {p: v[0] for p, v in table(dry).items()} == {p: before[p] for p in want}
        assert {p: v[2] for p, v in table(dry).items()} == {p: 10 - n for p, n in want.items()}
        assert {p: committed(mq, "g", "t", p) for p in (0, 1)} == before, "--dry-run changed offsets"
        res = replay(mq, "-g", "g", "t", "--reset-to", *args)
        assert table(res) == table(dry)
        for p, n in want.items():
            assert committed(mq, "g", "t", p) == n
    # A consumer resumes at the new offsets.
    replay(mq, "-g", "g", "t", "--reset-to", "8")
    assert sorted(consume(mq, "g", "t")) == ["0@8", "0@9", "1@8", "1@9"]


def test_reset_is_refused_while_a_consumer_runs(mq):
    fill(mq)
    member = mq.start("mq-consume", "-g", "g", "t")
    assert member.out.wait_for(lambda d: d.count(b"\n") >= 20, 30)
    time.sleep(0.3)
    res = replay(mq, "-g", "g", "t", "--reset-to", "beginning", check=None)
    assert_error(res, EX_TEMPFAIL, "mq-replay", "group 'g'", "topic 't' partition", "lease")
    member.signal(signal.SIGTERM)
    member.finish(30)
    assert committed(mq, "g", "t", 0) == 10 and committed(mq, "g", "t", 1) == 10
    replay(mq, "-g", "g", "t", "--reset-to", "beginning")
    assert len(consume(mq, "g", "t")) == 20


def test_reset_of_a_missing_group_or_topic(mq):
    fill(mq)
    assert_error(replay(mq, "-g", "nobody", "t", "--reset-to", "end", check=None), EX_NOINPUT, "mq-replay", "group 'nobody'")
    consume(mq, "g", "t")
    assert_error(replay(mq, "-g", "g", "nope", "--reset-to", "end", check=None), EX_NOINPUT, "mq-replay", "'nope'")


def test_reset_of_a_work_queue(mq, tmp_path):
    mq.create("q", 1)
    mq.produce("q", b"".join(b"job-%d\n" % i for i in range(6)))
    done = tmp_path / "done.txt"
    handler = script(tmp_path, "h.sh", 'cat >> "$OUT"; echo >> "$OUT"\n')
    mq.run("mq-consume", "--queue", "-g", "w", "-e", "q", "--", handler, env_extra={"OUT": str(done)}, check=0)
    assert done.read_text().split() == [f"job-{i}" for i in range(6)]
    rows = table(replay(mq, "-g", "w", "q", "--reset-to", "2"))
    assert rows == {0: (6, 2, 4)}
    done.write_text("")
    mq.run("mq-consume", "--queue", "-g", "w", "-e", "q", "--", handler, env_extra={"OUT": str(done)}, check=0)
    assert done.read_text().split() == [f"job-{i}" for i in range(2, 6)]
    assert mqtest.commit_slots(mq.dir, "w", "q", 0) == [None, None], "a queue-only group got a committed offset"
    # A message held by a live member: refused.
    slow = script(tmp_path, "slow.sh", "cat > /dev/null; sleep 30\n")
    replay(mq, "-g", "w", "q", "--reset-to", "beginning")
    worker = mq.start("mq-consume", "--queue", "-g", "w", "q", "--", slow)
    deadline = time.monotonic() + 20
    res = None
    while time.monotonic() < deadline:
        time.sleep(0.3)
        res = replay(mq, "-g", "w", "q", "--reset-to", "beginning", check=None)
        if res.status != 0:
            break
    assert_error(res, EX_TEMPFAIL, "mq-replay", "queue")
    worker.kill()
    replay(mq, "-g", "w", "q", "--reset-to", "end")
