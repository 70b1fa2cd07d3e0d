"""mq-bench: runs the real tools and reports sane figures; --json and --csv parse."""

import csv
import io
import json
import os


def bench(mq, *args, check=0, timeout=300):
    env = {"MQ_BIN": str(mq.bin), "TMPDIR": str(mq.dir.parent)}
    return mq.run("mq-bench", *args, check=check, timeout=timeout, dir_flag=False, env_extra=env)


def test_default_scenarios_json(mq):
    res = bench(mq, "-n", "20000", "--json", "produce", "consume", "e2e")
    rows = [json.loads(line) for line in res.out.splitlines()]
    assert [r["scenario"] for r in rows] == ["produce", "consume (group)", "e2e (1000/s)"]
    for r in rows:
        assert r["messages"] == 20000 and r["bytes"] == 20000 * 100
        assert r["seconds"] > 0 and r["messages_per_second"] > 0
        assert r["max_rss_kib"] > 1000 and r["user_cpu_seconds"] >= 0
    lat = rows[2]["latency_us"]
    assert 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["p99.9"] <= lat["max"]
    # Nothing is left behind in the temporary directory.
    assert not [f for f in os.listdir(mq.dir.parent) if f.startswith("mq-bench.")]


def test_queue_and_csv(mq):
    res = bench(mq, "-n", "5000", "--workers", "2", "--handler-batch", "500", "--csv", "queue")
    rows = list(csv.DictReader(io.StringIO(res.out)))
    assert len(rows) == 1 and rows[0]["messages"] == "5000" and float(rows[0]["messages_per_second"]) > 0


def test_table_and_bad_scenario(mq):
    res = bench(mq, "-n", "2000", "--producers", "2", "--partitions", "2", "-z", "lz4", "produce")
    assert res.out.splitlines()[0].split()[:4] == ["SCENARIO", "MESSAGES", "SECONDS", "MSG/S"]
    assert "produce" in res.out.splitlines()[1]
    bad = bench(mq, "nope", check=64)
    assert bad.stderr.startswith("mq-bench: ") and "unknown scenario 'nope'" in bad.stderr
