"""mq-stat: sizes, offsets, lag, queue and delay figures; JSON and Prometheus output."""

import json
import subprocess
import os
import time

from prometheus_client.parser import text_string_to_metric_families


def stat_json(mq, *args):
    return json.loads(mq.run("mq-stat", "--json", *args, check=0).stdout)


def test_topics_groups_dead_letters_and_delays(mq, tmp_path):
    mq.produce("orders", b"".join(b"k%d:%d\n" % (i % 7, i) for i in range(1000)), "-K", ":", "--partitions", "2")
    mq.run("mq-consume", "-g", "billing", "-e", "-c", "300", "orders", "--format", "", check=0)
    mq.produce("orders", b"later\n", "--delay", "1h")
    mq.produce("jobs", b"bad\n")
    mq.run("mq-consume", "-g", "w", "-e", "--dlq-on", "3", "jobs", "--", "sh", "-c", "exit 3", check=0)
    s = stat_json(mq)
    topics = {t["topic"]: t for t in s["topics"]}
    assert "orders.delay" not in topics
    assert topics["orders"]["messages"] == 1000 and topics["orders"]["delayed"] == 1
    assert sum(p["end_offset"] for p in topics["orders"]["partitions"]) == 1000
    assert all(p["bytes"] > 0 and p["segments"] == 1 and p["oldest_age_ms"] >= 0 for p in topics["orders"]["partitions"])
    assert topics["jobs"]["dead_letters"] == 1
    # Appended within the last minute: the rate counts them.
    assert abs(sum(p["rate_per_second"] for p in topics["orders"]["partitions"]) - 1000 / 60) < 1
    billing = [g for g in s["groups"] if g["group"] == "billing"]
    assert sum(g["committed"] or 0 for g in billing) == 300
    assert sum(g["lag_messages"] for g in billing) == 700
    w = [g for g in s["groups"] if g["group"] == "w"]
    assert w and w[0]["lag_messages"] == 0 and w[0]["committed"] == 1


def test_owner_pid_and_queue_in_flight(mq, tmp_path):
    mq.produce("q", b"1\n2\n3\n")
    owner = mq.start("mq-consume", "-g", "live", "q", "--format", "")
    worker = mq.start("mq-consume", "--queue", "-g", "wq", "-P", "2", "q", "--", "sleep", "30")
    deadline = time.time() + 10
    while time.time() < deadline:
        s = stat_json(mq, "q")
        live = [g for g in s["groups"] if g["group"] == "live"]
        queue = [g for g in s["groups"] if g["group"] == "wq"]
        if live and live[0]["owner_pids"] == [owner.pid] and queue and queue[0]["in_flight"] == 2:
            break
        time.sleep(0.1)
    assert live[0]["owner_pids"] == [owner.pid], live
    assert queue[0]["in_flight"] == 2 and queue[0]["lag_messages"] == 3, queue


def test_prometheus_file_parses_and_is_replaced_atomically(mq, tmp_path):
    mq.produce("p", b"a\nb\n")
    mq.run("mq-consume", "-g", "g", "-e", "p", "--format", "", check=0)
    out = tmp_path / "mq.prom"
    res = mq.run("mq-stat", "--prometheus", str(out), check=0)
    assert res.stdout == b""
    families = {f.name: f for f in text_string_to_metric_families(out.read_text())}
    assert families["mq_messages"].type == "counter"
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value for f in families.values() for s in f.samples}
    assert samples[("mq_messages_total", (("partition", "0"), ("topic", "p")))] == 2
    assert samples[("mq_consumer_lag_messages", (("group", "g"), ("mode", "group"), ("partition", "0"), ("topic", "p")))] == 0
    assert not [f for f in os.listdir(tmp_path) if ".~tmp" in f]


def test_missing_topic_and_bad_pattern(mq):
    res = mq.run("mq-stat", "nope", check=66)
    assert res.stderr.startswith("mq-stat: ") and "nope" in res.stderr
    mq.run("mq-stat", "a(", check=64)


def watch_on_terminal(mq, env_extra, seconds=2.5):
    """Runs mq-stat -w with standard output on a pseudo-terminal while a producer appends;
    returns what the terminal showed."""
    import pty
    import select
    import signal
    master, slave = pty.openpty()
    p = subprocess.Popen(mq.argv("mq-stat", ["-w", "--interval", "200ms"]), stdout=slave, stderr=subprocess.PIPE,
                         env=mq.env(extra=env_extra))
    os.close(slave)
    seen = b""
    deadline = time.time() + seconds
    i = 0
    try:
        while time.time() < deadline:
            mq.produce("busy", b"m%d\n" % i)
            i += 1
            ready, _, _ = select.select([master], [], [], 0.05)
            if ready:
                try:
                    seen += os.read(master, 65536)
                except OSError:
                    break
    finally:
        p.send_signal(signal.SIGINT)
        p.wait(10)
        os.close(master)
    return seen.decode("utf-8", "replace")


def test_watch_draws_trends_at_a_terminal_unless_no_color(mq):
    mq.produce("busy", b"first\n")
    mq.run("mq-consume", "-g", "slow", "-e", "busy", "--format", "", check=0)
    shown = watch_on_terminal(mq, {})
    assert "TREND" in shown and "busy" in shown and "slow on busy" in shown, shown[-2000:]
    last = shown.rsplit("TREND", 1)[1]
    line = next(l for l in last.splitlines() if l.startswith("busy"))
    assert "appends/s" in line and any(c in line for c in "▂▃▄▅▆▇█"), line
    # NO_COLOR: the tables alone, refreshed as before.
    plain = watch_on_terminal(mq, {"NO_COLOR": "1"}, seconds=1.0)
    assert "TOPIC" in plain and "TREND" not in plain and "▁" not in plain
    # Not a terminal: no trend either.
    p = subprocess.Popen(mq.argv("mq-stat", ["-w", "--interval", "100ms"]), stdout=subprocess.PIPE, env=mq.env())
    time.sleep(0.8)
    p.terminate()
    out, _ = p.communicate(timeout=10)
    assert b"TOPIC" in out and b"TREND" not in out
