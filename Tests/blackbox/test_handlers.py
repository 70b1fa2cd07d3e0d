"""mq-consume -- CMD: acks by exit status, retries, dead letters, per-key order, -P, --batch, timeouts."""

import json
import os
import signal
import time

import pytest

import mqtest
from mqtest import script


def dlq_headers(record):
    return {name: (value if value is not None else None) for name, value in record["headers"]}


def committed(mq, group, topic, partition=0):
    """The committed offset, read as docs/FORMAT.md describes: the valid slot with the larger generation."""
    return mqtest.committed_offset(mq.dir, group, topic, partition)


def test_acks_retries_and_dead_letters_with_provenance(mq, tmp_path):
    mq.produce("h", b"a:1\nb:2\na:3\nb:fail\na:5\n", "-K", ":", "-H", "trace=t1")
    handler = script(tmp_path, "h.sh", 'v=$(cat); echo "$MQ_OFFSET $MQ_ATTEMPT $v" >> "$LOG"\n'
                     '[ "$v" = fail ] && { echo "cannot handle $v" >&2; exit 3; }\nexit 0\n')
    log = tmp_path / "runs"
    res = mq.run("mq-consume", "-g", "w", "-e", "--backoff", "20ms", "h", "--", handler,
                 env_extra={"LOG": str(log)}, check=0)
    runs = [line.split() for line in log.read_text().splitlines()]
    assert [r for r in runs if r[2] == "fail"] == [["3", "1", "fail"], ["3", "2", "fail"], ["3", "3", "fail"]]
    assert sorted(r[0] for r in runs if r[2] != "fail") == ["0", "1", "2", "4"]
    dead = mq.tail_json("h.dlq", "-n", "+0")
    assert len(dead) == 1 and dead[0]["key"] == "b" and dead[0]["value"] == "fail"
    h = dlq_headers(dead[0])
    assert h["trace"] == "t1"  # original headers are kept
    assert h["mq.dlq.reason"] == "failed" and h["mq.attempts"] == "3" and h["mq.exit.status"] == "3"
    assert h["mq.original.topic"] == "h" and h["mq.original.partition"] == "0" and h["mq.original.offset"] == "3"
    assert h["mq.group"] == "w" and "cannot handle fail" in h["mq.stderr"]
    assert int(h["mq.original.timestamp"]) > 0
    assert committed(mq, "w", "h") == 5
    # Nothing left: a second run starts no handler.
    log.unlink()
    mq.run("mq-consume", "-g", "w", "-e", "h", "--", handler, env_extra={"LOG": str(log)}, check=0)
    assert not log.exists()


def test_failing_key_does_not_block_other_keys_and_its_key_stays_in_order(mq, tmp_path):
    lines = [b"slow:s1"] + [b"k%d:%d" % (i % 5, i) for i in range(40)] + [b"slow:s2", b"slow:s3"]
    mq.produce("o", b"\n".join(lines) + b"\n", "-K", ":")
    # s1 fails until the other 40 messages have all run. If other keys waited behind it, s1 would
    # use up its attempts and be dead-lettered instead: no timing in the assertion.
    handler = script(tmp_path, "o.sh",
                     'v=$(cat); n=$(cat "$DIR/$v" 2>/dev/null || echo 0); n=$((n+1)); echo $n > "$DIR/$v"\n'
                     'if [ "$v" = s1 ]; then others=$(grep -cv "^slow " "$DIR/runs.txt" 2>/dev/null || echo 0)\n'
                     '  [ "$others" -lt 40 ] && { echo "$MQ_KEY $v $n fail" >> "$DIR/runs.txt"; exit 1; }; fi\n'
                     'echo "$MQ_KEY $v $n ok" >> "$DIR/runs.txt"\nexit 0\n')
    mq.run("mq-consume", "-g", "g", "-e", "--backoff", "50ms", "--max-attempts", "12", "o", "--", handler,
           env_extra={"DIR": str(tmp_path)}, check=0, timeout=120)
    events = [l.split() for l in (tmp_path / "runs.txt").read_text().splitlines()]
    s1 = [e for e in events if e[1] == "s1"]
    assert s1[0][3] == "fail", "s1 ran first and failed: the other keys had not run yet"
    assert s1[-1][3] == "ok", "other keys waited behind the failing message"
    assert len([e for e in events if e[0] != "slow" and e[3] == "ok"]) == 40
    assert not mq.topic_dir("o.dlq").exists() or mq.tail_json("o.dlq", "-n", "+0") == []
    slow_order = [e[1] for e in events if e[0] == "slow" and e[3] == "ok"]
    assert slow_order == ["s1", "s2", "s3"], slow_order
    assert committed(mq, "g", "o") == len(lines)


def test_parallel_runs_never_overlap_for_one_key(mq, tmp_path):
    data = b"".join(b"k%d:%d\n" % (i % 6, i) for i in range(60))
    mq.produce("p", data, "-K", ":")
    handler = script(tmp_path, "p.sh", 'v=$(cat); echo "$(date +%s%N) start $MQ_KEY $v" >> "$LOG"; sleep 0.03; '
                     'echo "$(date +%s%N) end $MQ_KEY $v" >> "$LOG"\n')
    log = tmp_path / "runs.txt"
    mq.run("mq-consume", "-g", "g", "-e", "-P", "4", "p", "--", handler, env_extra={"LOG": str(log)}, check=0, timeout=60)
    events = sorted((int(t), what, k, int(v)) for t, what, k, v in (l.split() for l in log.read_text().splitlines()))
    running, per_key, peak, now = {}, {}, 0, 0
    for _t, what, k, v in events:
        if what == "start":
            assert not running.get(k), f"two runs of key {k} at once"
            running[k] = 1
            now += 1
            peak = max(peak, now)
            per_key.setdefault(k, []).append(v)
        else:
            running[k] = 0
            now -= 1
    assert peak > 1, "no parallelism with -P 4"
    assert all(v == sorted(v) for v in per_key.values())
    assert sum(len(v) for v in per_key.values()) == 60


def test_timeout_kills_the_run_and_dead_letters_it(mq, tmp_path):
    mq.produce("t", b"x\n")
    mq.run("mq-consume", "-g", "g", "-e", "--timeout", "200ms", "--max-attempts", "2", "--backoff", "10ms",
           "t", "--", "sleep", "30", check=0, timeout=30)
    dead = mq.tail_json("t.dlq", "-n", "+0")
    h = dlq_headers(dead[0])
    assert h["mq.dlq.reason"] == "timeout" and h["mq.attempts"] == "2" and h["mq.exit.signal"] == str(signal.SIGTERM)


def test_permanent_status_skips_retries(mq):
    mq.produce("perm", b"y\n")
    mq.run("mq-consume", "-g", "g", "-e", "--dlq-on", "65", "--dlq", "dead", "perm", "--", "sh", "-c", "exit 65", check=0)
    h = dlq_headers(mq.tail_json("dead", "-n", "+0")[0])
    assert h["mq.dlq.reason"] == "permanent" and h["mq.attempts"] == "1" and h["mq.exit.status"] == "65"


def test_batch_feeds_messages_formatted_as_output(mq, tmp_path):
    mq.produce("b", b"".join(b"%d\n" % i for i in range(10)))
    handler = script(tmp_path, "b.sh", 'cat >> "$LOG"; echo "--- $MQ_COUNT" >> "$LOG"\n')
    log = tmp_path / "runs.txt"
    mq.run("mq-consume", "-g", "g", "-e", "--batch", "4", "--json", "b", "--", handler, env_extra={"LOG": str(log)}, check=0)
    chunks = log.read_text().split("--- ")
    counts = [int(c.split("\n", 1)[0]) for c in chunks[1:]]
    assert counts == [4, 4, 2]
    values = [json.loads(l)["value"] for l in log.read_text().splitlines() if l.startswith("{")]
    assert values == [str(i) for i in range(10)]


def test_max_age_dead_letters_without_running(mq, tmp_path):
    old = int(time.time() * 1000) - 3_600_000
    mq.produce("age", (json.dumps({"value": "old", "timestamp": old}) + "\n" + json.dumps({"value": "new"}) + "\n").encode(), "--json")
    log = tmp_path / "runs.txt"
    handler = script(tmp_path, "a.sh", 'cat >> "$LOG"; echo >> "$LOG"\n')
    mq.run("mq-consume", "-g", "g", "-e", "--max-age", "10m", "age", "--", handler, env_extra={"LOG": str(log)}, check=0)
    assert log.read_text().split() == ["new"]
    h = dlq_headers(mq.tail_json("age.dlq", "-n", "+0")[0])
    assert h["mq.dlq.reason"] == "expired"


def test_handler_environment(mq, tmp_path):
    mq.produce("env", b"key1\tvalue1\n", "-K", "\\t", "-H", "X-Trace=abc")
    out = tmp_path / "env"
    handler = script(tmp_path, "e.sh", 'cat > /dev/null; env | grep ^MQ_ | sort > "$OUT"\n')
    mq.run("mq-consume", "-g", "grp", "-e", "env", "--", handler, env_extra={"OUT": str(out)}, check=0)
    env = dict(line.split("=", 1) for line in out.read_text().splitlines())
    assert env["MQ_TOPIC"] == "env" and env["MQ_PARTITION"] == "0" and env["MQ_OFFSET"] == "0"
    assert env["MQ_KEY"] == "key1" and env["MQ_ATTEMPT"] == "1" and env["MQ_GROUP"] == "grp"
    assert env["MQ_HEADER_X_TRACE"] == "abc" and int(env["MQ_TIMESTAMP"]) > 0


def test_kill_9_of_the_consumer_redelivers_only_uncommitted(mq, tmp_path):
    mq.produce("k", b"".join(b"%d\n" % i for i in range(300)))
    log = tmp_path / "runs.txt"
    handler = script(tmp_path, "k.sh", 'v=$(cat); sleep 0.005; echo "$v" >> "$LOG"\n')
    proc = mq.start("mq-consume", "-g", "g", "k", "--", handler, env_extra={"LOG": str(log)})
    deadline = time.time() + 30
    while time.time() < deadline and (not log.exists() or len(log.read_text().split()) < 100):
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    at_kill = committed(mq, "g", "k")
    done_before = [int(v) for v in log.read_text().split()]
    assert at_kill is not None and at_kill <= len(done_before)
    mq.run("mq-consume", "-g", "g", "-e", "k", "--", handler, env_extra={"LOG": str(log)}, check=0, timeout=60)
    done = [int(v) for v in log.read_text().split()]
    assert set(done) == set(range(300)), "a message was never handled"
    dups = [v for v in set(done) if done.count(v) > 1]
    assert all(v >= at_kill for v in dups), "a committed message ran again"
    assert committed(mq, "g", "k") == 300


def test_handler_flags_need_a_handler(mq):
    res = mq.run("mq-consume", "-g", "g", "--batch", "3", "x", check=64)
    assert res.stderr.startswith("mq-consume: ") and "'--batch' needs a handler command" in res.stderr


@pytest.mark.parametrize("kind, status, words", [
    ("missing", 66, "No such file"),
    ("not-executable", 77, "Permission denied"),
    ("bad-format", 71, "Exec format error"),
])
def test_a_handler_that_cannot_start_ends_with_its_documented_status(mq, tmp_path, kind, status, words):
    """mq-consume(1) EXIT STATUS: not found 66, not permitted 77, any other spawn failure 71;
    nothing is committed, so the message is delivered to the next member."""
    mq.produce("spawn", b"one\n")
    path = tmp_path / kind
    if kind == "not-executable":
        path.write_text("#!/bin/sh\nexit 0\n")
    elif kind == "bad-format":
        path.write_bytes(b"\x7fELF\x02\x01\x01garbage")
        path.chmod(0o755)
    for argv in (["mq-consume", "-g", "w", "-e", "spawn", "--", str(path)],
                 ["mq-produce", "--atomic", "spawn2", "--", str(path)]):
        res = mq.run(*argv, check=status)
        assert words in res.stderr and str(path) in res.stderr, res.stderr
    assert mq.run("mq-consume", "-g", "w", "-e", "spawn").stdout == b"one\n"
    assert mq.tail("-n", "+0", "spawn2", check=None).status in (0, 66)
