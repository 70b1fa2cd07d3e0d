"""mq-bench: runs the real tools and reports sane figures; --json and --csv parse."""

import csv
import io
import json
import os
import shutil
import signal
import subprocess
import time

import pytest


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


def test_partitions_scenario_json_and_table(mq):
    res = bench(mq, "-n", "3000", "--partitions", "1,7", "--json", "partitions")
    rows = [json.loads(line) for line in res.out.splitlines()]
    assert [(r["scenario"], r["partitions"], r["messages"]) for r in rows] == [("partitions", 1, 3000), ("partitions", 7, 3000)]
    for r in rows:
        for step in ("produce", "tail", "consume"):
            assert isinstance(r[f"{step}_seconds"], float) and r[f"{step}_seconds"] > 0, r
            assert isinstance(r[f"{step}_ratio"], float) and r[f"{step}_ratio"] > 0, r
            assert f"{step}_exit_status" not in r
    assert [rows[0][f"{s}_ratio"] for s in ("produce", "tail", "consume")] == [1.0, 1.0, 1.0]

    table = bench(mq, "-n", "1000", "--partitions", "3,1", "partitions").out.splitlines()
    assert table[0].split() == ["PARTITIONS", "MESSAGES", "PRODUCE", "S", "TAIL", "S", "CONSUME", "S",
                                "PRODUCE", "×", "TAIL", "×", "CONSUME", "×"]
    assert [line.split()[:2] for line in table[1:]] == [["3", "1000"], ["1", "1000"]]
    for line in table[1:]:
        assert all(float(f) > 0 for f in line.split()[2:]), line
    # Ratios are to the fewest partitions measured, wherever it is in the list.
    assert table[2].split()[5:] == ["1.00", "1.00", "1.00"]

    csv_rows = list(csv.DictReader(io.StringIO(bench(mq, "-n", "500", "--partitions", "2", "--csv", "partitions").out)))
    assert len(csv_rows) == 1 and csv_rows[0]["partitions"] == "2" and float(csv_rows[0]["tail_seconds"]) > 0
    assert csv_rows[0]["produce_exit_status"] == ""


def test_e2e_over_partitions(mq):
    res = bench(mq, "-n", "300", "--rate", "2000", "--partitions", "1,5", "--json", "e2e")
    rows = [json.loads(line) for line in res.out.splitlines()]
    assert [r["scenario"] for r in rows] == ["e2e (2000/s), 1 partition", "e2e (2000/s), 5 partitions"]
    for r in rows:
        lat = r["latency_us"]
        assert r["messages"] == 300 and 0 < lat["p50"] <= lat["p99"] <= lat["max"]


def test_rate_takes_units_as_every_rate_does(mq):
    """--rate N/s, N/m, N/h, as mq-replay, mq-dlq and mq-mirror take it; a bare N still works."""
    res = bench(mq, "-n", "20", "--rate", "12000/m", "--json", "e2e")
    assert json.loads(res.out)["scenario"] == "e2e (200/s)"
    for bad in ("0", "-5/s", "10/d", "fast"):
        res = bench(mq, "--rate", bad, "e2e", check=64)
        assert "--rate" in res.stderr, res.stderr


def test_bad_partition_counts(mq):
    for bad in ("0", "1,,2", "x", "1,100001"):
        res = bench(mq, "--partitions", bad, "partitions", check=64)
        assert "'--partitions' must be" in res.stderr
    res = bench(mq, "--csv", "produce", "partitions", check=64)
    assert "'--csv'" in res.stderr


def test_partitions_records_a_failing_tool_and_goes_on(mq, tmp_path):
    # An mq-produce that works for the first partition count and then fails as mq-produce does
    # when it cannot create its files (exit 73; before the writer pool, 5,000 partitions did).
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mq-tail", "mq-consume", "mq-topic"):
        (bin_dir / tool).symlink_to(mq.bin / tool)
    produce = bin_dir / "mq-produce"
    produce.write_text(f"""#!/bin/sh
if [ -e "{tmp_path}/ran" ]; then echo "mq-produce: cannot create 'head': Too many open files" >&2; exit 73; fi
touch "{tmp_path}/ran"
exec "{mq.bin / 'mq-produce'}" "$@"
""")
    produce.chmod(0o755)

    def run(*extra):
        (tmp_path / "ran").unlink(missing_ok=True)
        argv = mq.argv("mq-bench", ["-n", "2000", "--partitions", "1,300", *extra, "partitions"], dir_flag=False)
        env = mq.env(False, {"MQ_BIN": str(bin_dir), "TMPDIR": str(mq.dir.parent)})
        return subprocess.run(argv, env=env, capture_output=True, timeout=300)

    p = run()
    assert p.returncode == 0, p.stderr
    rows = [line.split() for line in p.stdout.decode().splitlines()[1:]]
    assert rows[0][:2] == ["1", "2000"] and all(float(f) > 0 for f in rows[0][2:])
    assert rows[1] == ["300", "2000", "exit", "73", "-", "-", "-", "-", "-"], rows
    assert b"Too many open files" in p.stderr
    p = run("--json")
    failed = json.loads(p.stdout.decode().splitlines()[1])
    assert failed["produce_exit_status"] == 73 and failed["produce_seconds"] is None
    assert failed["tail_seconds"] is None and failed["consume_ratio"] is None and "tail_exit_status" not in failed


needs_nats = pytest.mark.skipif(shutil.which("nats-server") is None,
                                reason="nats-server is not installed (scripts/setup.sh installs it)")


def nats_servers_under(path):
    """The pids of nats-server processes whose command line names a path under `path`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"nats-server") and any(str(path).encode() in a for a in argv):
            found.append(int(pid))
    return found


def leftovers(parent):
    return [f for f in os.listdir(parent) if f.startswith("mq-bench.")], nats_servers_under(parent)


@needs_nats
def test_mirror_scenario_counts_what_the_mirror_committed(mq):
    res = bench(mq, "-n", "3000", "--partitions", "2", "--json", "mirror")
    [row] = [json.loads(line) for line in res.out.splitlines()]
    assert row["scenario"] == "mirror (JetStream)"
    assert row["messages"] == 3000 and row["bytes"] == 3000 * 100
    assert row["seconds"] > 0 and row["messages_per_second"] > 0 and row["max_rss_kib"] > 1000
    assert leftovers(mq.dir.parent) == ([], [])
    table = bench(mq, "-n", "500", "mirror").out.splitlines()
    assert table[1].split()[:3] == ["mirror", "(JetStream)", "500"]


@needs_nats
def test_mirror_scenario_fails_when_the_mirror_forwards_nothing(mq, tmp_path):
    # An mq-mirror that exits 0 without forwarding: the count is checked, not assumed.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("mq-produce", "mq-topic"):
        (bin_dir / tool).symlink_to(mq.bin / tool)
    (bin_dir / "mq-mirror").write_text("#!/bin/sh\nexit 0\n")
    (bin_dir / "mq-mirror").chmod(0o755)
    argv = mq.argv("mq-bench", ["-n", "1000", "mirror"], dir_flag=False)
    env = mq.env(False, {"MQ_BIN": str(bin_dir), "TMPDIR": str(mq.dir.parent)})
    p = subprocess.run(argv, env=env, capture_output=True, timeout=120)
    assert p.returncode == 70, p.stderr
    assert b"mq-mirror committed 0 of 1000 messages" in p.stderr
    assert leftovers(mq.dir.parent) == ([], [])


def test_mirror_scenario_without_nats_server(mq, tmp_path):
    # A PATH with the usual tools but no nats-server: status 69 before any scenario runs.
    bin_dir = tmp_path / "path"
    bin_dir.mkdir()
    for tool in ("sh", "true", "cat"):
        if shutil.which(tool):
            (bin_dir / tool).symlink_to(shutil.which(tool))
    res = mq.run("mq-bench", "-n", "100", "produce", "mirror", check=69, dir_flag=False,
                 env_extra={"MQ_BIN": str(mq.bin), "TMPDIR": str(mq.dir.parent), "PATH": str(bin_dir)})
    assert res.stderr.startswith("mq-bench: ") and "needs nats-server on PATH" in res.stderr
    assert res.out == ""
    assert leftovers(mq.dir.parent) == ([], [])


@needs_nats
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_mirror_scenario_stopped_by_a_signal_leaves_nothing(mq, sig):
    argv = mq.argv("mq-bench", ["-n", "3000000", "mirror"], dir_flag=False)
    env = mq.env(False, {"MQ_BIN": str(mq.bin), "TMPDIR": str(mq.dir.parent)})
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Signalled once its server runs (after producing; the mirror is then under way).
        for _ in range(1200):
            if nats_servers_under(mq.dir.parent) or p.poll() is not None:
                break
            time.sleep(0.1)
        assert nats_servers_under(mq.dir.parent), "no nats-server started"
        time.sleep(1)
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 128 + sig, err
    assert out == b""
    assert leftovers(mq.dir.parent) == ([], [])
