"""mq-dlq: list, show, redrive (exactly once, also after kill -9), purge, filters, the copy lock."""

import fcntl
import json
import os
import pty
import select
import signal
import struct
import subprocess
import time
from collections import Counter

import pytest

from mqtest import EX_NOINPUT, EX_TEMPFAIL, EX_USAGE, assert_error, jline, script

FAILURE_HEADERS = ("mq.dlq.reason", "mq.original.topic", "mq.original.partition", "mq.original.offset",
                   "mq.original.timestamp", "mq.attempts", "mq.exit.status", "mq.exit.signal",
                   "mq.stderr", "mq.group", "mq.dlq.time")


def headers(envelope):
    return {name: value for name, value in envelope["headers"]}


def make_dead_letters(mq, tmp_path, topic="orders", partitions=1):
    """Five failing messages through mq-consume (four exit 1, one exits 3) and one expired."""
    mq.create(topic, partitions)
    data = b"".join(jline(value=f"job {i}" + (" three" if i == 3 else ""), key=f"k{i}",
                          headers=[("trace", f"t{i}")]) for i in range(5))
    old = int(time.time() * 1000) - 3 * 3600 * 1000
    data += jline(value="stale job", key="k9", timestamp=old)
    mq.produce(topic, data, "--json")
    handler = script(tmp_path, "fail.sh", 'v=$(cat); echo "cannot do $v" >&2\n'
                     'case "$v" in *three*) exit 3;; esac\nexit 1\n')
    mq.run("mq-consume", "-g", "workers", "-e", "--max-attempts", "1", "--backoff", "1ms", "--max-age", "1h",
           topic, "--", handler, check=0)
    return mq.tail_json(topic + ".dlq", "-n", "+0")


def test_list_and_show_with_filters(mq, tmp_path):
    letters = make_dead_letters(mq, tmp_path)
    assert len(letters) == 6

    table = mq.run("mq-dlq", "list", check=0).out.splitlines()
    assert table[0].split()[:4] == ["TOPIC", "LETTERS", "OLDEST", "NEWEST"]
    row = table[1].split()
    assert row[0] == "orders.dlq" and row[1] == "6"
    assert "failed=5" in table[1] and "expired=1" in table[1] and "status 1=4" in table[1]

    summary = json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)
    assert summary["topic"] == "orders.dlq" and summary["letters"] == 6
    assert summary["reasons"] == {"failed": 5, "expired": 1}
    assert summary["exit_statuses"] == {"1": 4, "3": 1} and summary["exit_signals"] == {}
    assert summary["oldest_ms"] <= summary["newest_ms"] and summary["oldest_age_ms"] >= 0

    text = mq.run("mq-dlq", "show", "orders.dlq", check=0).out
    blocks = [b for b in text.split("\n\n") if b.strip()]
    assert len(blocks) == 6
    three = next(b for b in blocks if "job 3 three" in b)
    at = {e["value"]: e["offset"] for e in letters}  # where each message's letter is
    assert three.startswith(f"orders.dlq/0 offset {at['job 3 three']}")
    assert "original   orders/0 offset 3" in three
    assert "failed, 1 attempt, exit status 3" in three
    assert "group      workers" in three and "cannot do job 3 three" in three and "trace=t3" in three
    assert "expired" in next(b for b in blocks if "stale job" in b)

    shown = [json.loads(line) for line in mq.run("mq-dlq", "show", "--json", "orders.dlq", check=0).lines()]
    assert shown == letters  # the same envelopes as mq-tail --json

    def values(*filters):
        res = mq.run("mq-dlq", "show", "--json", *filters, "orders.dlq", check=0)
        return sorted(json.loads(line)["value"] for line in res.lines())

    everything = sorted(at)
    assert values("--reason", "expired") == ["stale job"]
    assert values("--status", "3") == ["job 3 three"]
    assert values("--key", "k1") == ["job 1"]
    assert values("--grep", "^job [24]$") == ["job 2", "job 4"]
    assert values("--header", "trace=t0") == ["job 0"]
    assert values("--original-topic", "orders") == everything
    assert values("--original-topic", "other") == []
    first_two = mq.run("mq-dlq", "show", "--json", "-n", "2", "orders.dlq", check=0).lines()
    assert [json.loads(line)["offset"] for line in first_two] == [0, 1]
    assert values("--older-than", "1h") == []   # dead-lettered just now (mq.dlq.time)
    assert values("--newer-than", "1h") == everything
    assert len(values("--reason", "failed", "--status", "1", "--limit", "3")) == 3
    assert values("--reason", "failed", "--status", "1") == ["job 0", "job 1", "job 2", "job 4"]


def test_errors(mq, tmp_path):
    assert_error(mq.run("mq-dlq", "show", "nothere.dlq"), EX_NOINPUT, "mq-dlq", "nothere.dlq", "does not exist")
    assert_error(mq.run("mq-dlq", "list", "nothere.dlq"), EX_NOINPUT, "mq-dlq", "does not exist")
    assert_error(mq.run("mq-dlq", "redrive", "nothere.dlq"), EX_NOINPUT, "mq-dlq", "does not exist")
    make_dead_letters(mq, tmp_path)
    assert mq.run("mq-dlq", "show", "--older-than", "soon", "orders.dlq").status == EX_USAGE
    assert mq.run("mq-dlq", "redrive", "--rate", "0", "orders.dlq").status == EX_USAGE
    assert mq.run("mq-dlq", "show", "--grep", "(", "orders.dlq").status == EX_USAGE
    assert_error(mq.run("mq-dlq", "redrive", "--to", "missing", "orders.dlq"), EX_NOINPUT, "mq-dlq", "missing")
    # Nothing was moved by the failed runs.
    assert json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)["letters"] == 6


def test_redrive_into_names_the_destination_and_to_still_works_with_a_notice(mq, tmp_path):
    """--into is where letters go, as in mq-replay; the old --to is hidden and says it is deprecated."""
    make_dead_letters(mq, tmp_path)
    mq.create("elsewhere")
    assert_error(mq.run("mq-dlq", "redrive", "--into", "missing", "orders.dlq"), EX_NOINPUT, "mq-dlq", "missing")
    res = mq.run("mq-dlq", "redrive", "--into", "elsewhere", "-n", "2", "orders.dlq", check=0)
    assert "deprecated" not in res.stderr and "moved 2 dead letters" in res.stderr, res.stderr
    res = mq.run("mq-dlq", "redrive", "--to", "elsewhere", "-n", "1", "orders.dlq", check=0)
    assert res.stderr.splitlines() == ["mq-dlq: 'redrive --to' is deprecated and will be removed: use '--into'",
                                       "mq-dlq: moved 1 dead letter from orders.dlq, 2 skipped as already redriven or purged"]
    assert len(mq.tail_json("elsewhere", "-n", "+1")) == 3
    assert_error(mq.run("mq-dlq", "redrive", "--to", "elsewhere", "--into", "elsewhere", "orders.dlq"), EX_USAGE,
                 "mq-dlq", "'--to' is the old name of '--into'")
    help_text = mq.run("mq-dlq", "redrive", "--help", check=0).out
    assert "--into <topic>" in help_text and "--to" not in help_text


def test_purge_dry_run_and_quiet(mq, tmp_path):
    """purge --dry-run lists what it would purge and purges nothing; -q drops the summary lines."""
    make_dead_letters(mq, tmp_path)
    dry = mq.run("mq-dlq", "purge", "--dry-run", "--reason", "failed", "orders.dlq", check=0)
    assert len(dry.lines()) == 5 and all("  failed  " in line for line in dry.lines()), dry.out
    assert dry.lines()[0] == "orders.dlq/0/1  failed  key=k0", dry.out
    assert dry.stderr == "mq-dlq: would purge 5 dead letters from orders.dlq\n"
    assert not (mq.dir / "copies" / "dlq.orders.dlq").exists()  # not even the copy's lock
    assert json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)["letters"] == 6
    quiet = mq.run("mq-dlq", "purge", "-q", "--reason", "failed", "orders.dlq", check=0)
    assert quiet.stderr == "" and quiet.out == ""
    assert json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)["letters"] == 1
    quiet = mq.run("mq-dlq", "redrive", "-q", "orders.dlq", check=0)
    assert quiet.stderr == "" and quiet.out == ""
    assert json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)["letters"] == 0


def test_redrive_back_to_a_consumer_that_now_succeeds_and_twice_moves_once(mq, tmp_path):
    make_dead_letters(mq, tmp_path, partitions=3)
    before = mq.tail_json("orders", "-n", "+0")
    dry = mq.run("mq-dlq", "redrive", "--dry-run", "orders.dlq", check=0)
    assert len(dry.lines()) == 6 and "would move 6" in dry.stderr
    assert len(mq.tail_json("orders", "-n", "+0")) == len(before)

    def stat_dead_letters():
        return json.loads(mq.run("mq-stat", "--json", "orders", check=0).out)["topics"][0]["dead_letters"]

    assert stat_dead_letters() == 6
    res = mq.run("mq-dlq", "redrive", "orders.dlq", check=0)
    assert "moved 6 dead letters" in res.stderr and "0 skipped" in res.stderr, res.stderr
    assert stat_dead_letters() == 0  # mq-stat counts what is not redriven or purged
    again = mq.run("mq-dlq", "redrive", "orders.dlq", check=0)
    assert "moved 0 dead letters" in again.stderr and "6 skipped" in again.stderr, again.stderr

    after = mq.tail_json("orders", "-n", "+0")
    redriven = [e for e in after if "mq.redrive.from" in headers(e)]
    assert len(redriven) == 6 and len(after) == len(before) + 6
    dlq = {f"orders.dlq/{e['partition']}/{e['offset']}": e for e in mq.tail_json("orders.dlq", "-n", "+0")}
    for e in redriven:
        h = headers(e)
        letter = dlq[h["mq.redrive.from"]]
        lh = headers(letter)
        assert h["mq.redrive.count"] == "1"
        assert not any(name in h for name in FAILURE_HEADERS), h
        assert (e["key"], e["value"], e["timestamp"]) == (letter["key"], letter["value"], letter["timestamp"])
        assert e["partition"] == int(lh["mq.original.partition"])
        if "trace" in lh:
            assert h["trace"] == lh["trace"]
    assert json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)["letters"] == 0
    assert mq.run("mq-dlq", "show", "orders.dlq", check=0).out == ""
    assert len(mq.run("mq-dlq", "show", "--all", "--json", "orders.dlq", check=0).lines()) == 6
    mq.validate("orders")

    # The group resumes after what it dead-lettered: a handler that works now gets just the six.
    got = tmp_path / "got"
    ok = script(tmp_path, "ok.sh", 'cat >> "$OUT"; echo >> "$OUT"\n')
    mq.run("mq-consume", "-g", "workers", "-e", "--max-age", "1d", "orders", "--", ok, env_extra={"OUT": str(got)}, check=0)
    assert sorted(got.read_text().split("\n")[:-1]) == sorted(e["value"] for e in redriven)


def dead_letter_lines(n, topic="orders"):
    """Letters as mq-consume writes them, produced directly (many, quickly)."""
    now = int(time.time() * 1000)
    return b"".join(jline(value=f"m{i}", key=f"k{i % 7}", timestamp=now, headers=[
        ("mq.dlq.reason", "failed"), ("mq.original.topic", topic), ("mq.original.partition", str(i % 2)),
        ("mq.original.offset", str(i)), ("mq.attempts", "3"), ("mq.exit.status", "1"),
        ("mq.dlq.time", str(now))]) for i in range(n))


def redriven_sources(mq, topic="orders"):
    return Counter(headers(e)["mq.redrive.from"] for e in mq.tail_json(topic, "-n", "+0"))


@pytest.mark.parametrize("how", [signal.SIGKILL, signal.SIGTERM])
def test_interrupted_redrive_run_again_moves_each_letter_exactly_once(mq, how):
    n = 1500
    mq.create("orders", 2)
    mq.create("orders.dlq", 1)
    mq.produce("orders.dlq", dead_letter_lines(n), "--json")
    p = mq.start("mq-dlq", "redrive", "--rate", "500/s", "orders.dlq")
    deadline = time.time() + 60
    while time.time() < deadline and sum(redriven_sources(mq).values()) < 200:
        time.sleep(0.1)
    p.signal(how)
    status = p.wait(30)
    if how == signal.SIGKILL:
        assert status == -signal.SIGKILL
    else:
        res = p.finish()
        assert res.status == 143 and "stopped by SIGTERM" in res.stderr, res
    moved = sum(redriven_sources(mq).values())
    assert 200 <= moved < n, "the redrive was not interrupted in the middle"

    res = mq.run("mq-dlq", "redrive", "orders.dlq", check=0)
    sources = redriven_sources(mq)
    assert len(sources) == n and set(sources.values()) == {1}, [s for s, c in sources.items() if c > 1][:5]
    assert set(sources) == {f"orders.dlq/0/{i}" for i in range(n)}
    assert f"moved {n - moved} dead letters" in res.stderr, (moved, res.stderr)
    for e in mq.tail_json("orders", "-n", "+0"):
        i = int(headers(e)["mq.redrive.from"].rsplit("/", 1)[1])
        assert e["value"] == f"m{i}" and e["partition"] == i % 2
    # Each batch carries its source in Kafka's producer fields: one producer id
    # for the dead-letter partition, and the first source offset as
    # (epoch << 31 | sequence), with consecutive source offsets inside.
    source = {(e["partition"], e["offset"]): int(headers(e)["mq.redrive.from"].rsplit("/", 1)[1])
              for e in mq.tail_json("orders", "-n", "+0")}
    producers = set()
    for part in mq.validate("orders"):
        p = int(part.directory.name)
        for b in part.batches:
            with open(b.file, "rb") as f:
                f.seek(b.position + 43)
                producer, epoch, sequence = struct.unpack(">qhi", f.read(14))
            producers.add(producer)
            assert (epoch << 31 | sequence) == source[(p, b.base_offset)]
            for o in range(b.base_offset, b.last_offset + 1):
                assert source[(p, o)] == source[(p, b.base_offset)] + (o - b.base_offset)
    assert len(producers) == 1 and producers.pop() > 0


def test_purge_confirms_only_at_a_terminal(mq, tmp_path):
    make_dead_letters(mq, tmp_path)
    # Not at a terminal: goes ahead without asking.
    res = mq.run("mq-dlq", "purge", "--reason", "expired", "orders.dlq", check=0)
    assert "purged 1 dead letter from orders.dlq" in res.stderr, res.stderr
    assert json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)["letters"] == 5

    def at_terminal(answer, *args):
        master, slave = pty.openpty()
        proc = subprocess.Popen(mq.argv("mq-dlq", ["purge", *args, "orders.dlq"]), stdin=slave, stderr=slave,
                                stdout=subprocess.PIPE, env=mq.env(), start_new_session=True)
        os.close(slave)
        seen = b""
        deadline = time.time() + 30
        while answer is not None and b"[y/N]" not in seen and time.time() < deadline:
            if select.select([master], [], [], 1)[0]:
                seen += os.read(master, 4096)
        if answer is not None:
            os.write(master, answer)
        proc.wait(30)
        try:
            while select.select([master], [], [], 0.2)[0]:
                seen += os.read(master, 4096)
        except OSError:
            pass
        os.close(master)
        return proc.returncode, seen.decode(errors="replace")

    status, out = at_terminal(b"n\n", "--status", "3")
    assert status == 0 and "purge 1 dead letter from orders.dlq? [y/N]" in out and "nothing purged" in out, out
    assert json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)["letters"] == 5
    status, out = at_terminal(b"y\n", "--status", "3")
    assert status == 0 and "purged 1 dead letter" in out, out
    status, out = at_terminal(None, "--yes", "--key", "k0")
    assert status == 0 and "[y/N]" not in out and "purged 1 dead letter" in out, out
    assert json.loads(mq.run("mq-dlq", "list", "--json", check=0).out)["letters"] == 3

    # Purged letters are never redriven.
    res = mq.run("mq-dlq", "redrive", "orders.dlq", check=0)
    assert "moved 3 dead letters" in res.stderr and "3 skipped" in res.stderr, res.stderr
    assert len(mq.run("mq-dlq", "show", "--all", "--json", "orders.dlq", check=0).lines()) == 6


def test_a_held_copy_makes_no_wait_fail_with_75_and_others_wait(mq, tmp_path):
    make_dead_letters(mq, tmp_path)
    copy = mq.dir / "copies" / "dlq.orders.dlq"
    copy.mkdir(parents=True)
    with open(copy / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert_error(mq.run("mq-dlq", "redrive", "--no-wait", "orders.dlq"), EX_TEMPFAIL, "mq-dlq",
                     "in use by process " + str(os.getpid()))
        assert_error(mq.run("mq-dlq", "purge", "--no-wait", "orders.dlq"), EX_TEMPFAIL, "mq-dlq", "in use")
        waiting = mq.start("mq-dlq", "redrive", "orders.dlq")
        time.sleep(0.5)
        assert waiting.running()
        assert len(mq.tail_json("orders", "-n", "+0")) == 6
        fcntl.flock(lock, fcntl.LOCK_UN)
    res = waiting.finish(30)
    assert res.status == 0 and "moved 6 dead letters" in res.stderr, res


def test_a_letter_that_fails_again_is_redriven_again_with_its_count(mq):
    mq.produce("orders", b"x\n")
    fail = ["-g", "g", "-e", "--max-attempts", "1", "orders", "--", "false"]
    mq.run("mq-consume", *fail, check=0)
    mq.run("mq-dlq", "redrive", "orders.dlq", check=0)
    mq.run("mq-consume", *fail, check=0)
    second = mq.tail_json("orders.dlq", "-n", "+0")[1]
    assert headers(second)["mq.redrive.count"] == "1" and headers(second)["mq.exit.status"] == "1"
    assert "redriven   1×, last from orders.dlq/0/0" in mq.run("mq-dlq", "show", "orders.dlq", check=0).out
    mq.run("mq-dlq", "redrive", "orders.dlq", check=0)
    last = mq.tail_json("orders", "-n", "1")[0]
    names = [name for name, _ in last["headers"]]
    assert last["value"] == "x" and names == ["mq.redrive.from", "mq.redrive.count"]
    assert headers(last) == {"mq.redrive.from": "orders.dlq/0/1", "mq.redrive.count": "2"}
