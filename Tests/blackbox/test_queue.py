"""mq-consume --queue: workers sharing one partition message by message."""

import collections
import os
import signal
import time

import pytest

from mqtest import script


@pytest.mark.slow
def test_eight_workers_random_failures(mq, tmp_path):
    """10,000 jobs, 8 workers, a handler failing 20 % of runs at random: every job
    succeeds or is dead-lettered after its attempts; none is lost; none runs twice at once."""
    n = 10_000
    mq.produce("jobs", b"".join(b"job-%05d\n" % i for i in range(n)))
    runs = tmp_path / "runs.txt"
    handler = script(tmp_path, "job.sh",
                     'v=$(cat); s=$(date +%s%N)\n'
                     'r=$(od -An -N2 -tu2 /dev/urandom); r=$((r % 5))\n'
                     'echo "$v $MQ_ATTEMPT $s $(date +%s%N) $r $$" >> "$RUNS"\n'
                     '[ $r -eq 0 ] && exit 1\nexit 0\n')
    workers = [mq.start("mq-consume", "--queue", "-g", "w", "-e", "--backoff", "10ms", "--backoff-max", "50ms",
                        "--max-attempts", "3", "jobs", "--", handler, env_extra={"RUNS": str(runs)})
               for _ in range(8)]
    for w in workers:
        res = w.finish(600)
        assert res.status == 0, res
    rows = [line.split() for line in runs.read_text().splitlines()]
    by_job = collections.defaultdict(list)
    for v, attempt, start, end, r, pid in rows:
        by_job[v].append((int(start), int(end), int(attempt), r == "0"))
    assert len(by_job) == n, "a job never ran"
    succeeded = {v for v, rs in by_job.items() if any(not failed for *_x, failed in rs)}
    dead = {rec["value"]: dict(rec["headers"]) for rec in mq.tail_json("jobs.dlq", "-n", "+0")}
    for v, rs in by_job.items():
        rs.sort()
        for a, b in zip(rs, rs[1:]):
            assert a[1] <= b[0], f"{v} ran in two workers at once"
        assert [x[2] for x in rs] == list(range(1, len(rs) + 1)), f"{v}: attempts {[x[2] for x in rs]}"
        if v in succeeded:
            assert v not in dead and not rs[-1][3] and len([x for x in rs if not x[3]]) == 1
        else:
            assert len(rs) == 3 and v in dead, f"{v} failed {len(rs)} times but is not dead-lettered"
            h = dead[v]
            assert h["mq.dlq.reason"] == "failed" and h["mq.attempts"] == "3" and h["mq.exit.status"] == "1"
            assert h["mq.original.topic"] == "jobs" and h["mq.group"] == "w"
    assert set(dead) == set(by_job) - succeeded
    assert len(set(succeeded)) + len(dead) == n


def test_a_dead_workers_messages_are_delivered_again(mq, tmp_path):
    mq.produce("q", b"".join(b"%d\n" % i for i in range(20)))
    runs = tmp_path / "runs.txt"
    slow = script(tmp_path, "slow.sh", 'v=$(cat); echo "start $v $MQ_ATTEMPT" >> "$RUNS"; sleep 30\n')
    fast = script(tmp_path, "fast.sh", 'v=$(cat); echo "done $v $MQ_ATTEMPT" >> "$RUNS"\n')
    hung = mq.start("mq-consume", "--queue", "-g", "w", "-P", "3", "q", "--", slow, env_extra={"RUNS": str(runs)})
    deadline = time.time() + 10
    while time.time() < deadline and (not runs.exists() or runs.read_text().count("start") < 3):
        time.sleep(0.05)
    assert runs.read_text().count("start") == 3
    os.kill(hung.pid, signal.SIGKILL)
    hung.wait(10)
    res = mq.run("mq-consume", "--queue", "-g", "w", "-e", "q", "--", fast, env_extra={"RUNS": str(runs)}, check=0, timeout=60)
    done = [l.split() for l in runs.read_text().splitlines() if l.startswith("done")]
    assert sorted(int(v) for _d, v, _a in done) == list(range(20))
    started = {l.split()[1] for l in runs.read_text().splitlines() if l.startswith("start")}
    # The three the dead worker held are delivered again, as their second attempt.
    assert all(a == "2" for _d, v, a in done if v in started) and all(a == "1" for _d, v, a in done if v not in started)


def test_lease_stops_a_run_before_it_can_be_delivered_twice(mq, tmp_path):
    mq.produce("l", b"x\n")
    res = mq.run("mq-consume", "--queue", "-g", "w", "-e", "--lease", "500ms", "--max-attempts", "2", "--backoff", "10ms",
                 "l", "--", "sleep", "10", check=0, timeout=30)
    h = dict(mq.tail_json("l.dlq", "-n", "+0")[0]["headers"])
    assert h["mq.dlq.reason"] == "timeout" and h["mq.attempts"] == "2"


def test_queue_needs_a_group_and_a_handler(mq):
    res = mq.run("mq-consume", "--queue", "x", "--", "true", check=64)
    assert "'--queue' needs '-g GROUP'" in res.stderr
