#!/usr/bin/env python3
"""The Redis Streams half of bench/compare.sh, and the report of all its rows.

Each measuring subcommand talks to a server that compare.sh started on
127.0.0.1, does one bounded piece of work (a message count and a deadline),
and appends one JSON object to the results file (--out): what was measured,
by which path, and the seconds or the latency percentiles, or "error" when it
did not complete. `report` turns the results file into the printed tables.

  compare_peers.py free-port
  compare_peers.py record --out F --group G --system S --key K --path P (--seconds S --messages N | --error E)
  compare_peers.py mq-follow --out F --key K --path P < OUT        (parses bench/follow_latency.py's output)
  compare_peers.py mq-e2e --out F --key K --path P < OUT           (parses mq-bench --json e2e's output)
  compare_peers.py redis-ingest-py | redis-read | redis-latency   --port P ...
  compare_peers.py report F

NATS's rows are measured by libnats clients in C (bench/nats_pub.c,
nats_read.c and nats_lat.c); nats_lat.c prints its latency row in this file's
format. Python client packages: redis (with hiredis), installed by compare.sh
at pinned versions.
"""
import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time

# The stream/subject names used on the peers.
REDIS_STREAM_PY = "bench-py"     # written by redis-py pipelines
REDIS_LATENCY = "latency"


def append_result(path, obj):
    with open(path, "a") as f:
        f.write(json.dumps(obj) + "\n")


def percentiles(lat_ns):
    lat = sorted(lat_ns)
    if not lat:
        return {}
    def pct(p):
        return lat[min(len(lat) - 1, int(p / 100 * len(lat)))] / 1000
    return {"samples": len(lat), "p50_us": pct(50), "p90_us": pct(90), "p99_us": pct(99),
            "p99.9_us": pct(99.9), "max_us": lat[-1] / 1000}


def read_lines(path, n):
    """The first n messages of the input file, without their newlines (read before timing)."""
    with open(path, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    if len(lines) < n:
        sys.exit(f"{path}: {len(lines)} messages, wanted {n}")
    return lines[:n]


def timestamped(size):
    """A payload of `size` bytes starting with the CLOCK_MONOTONIC time in ns, zero-padded to 20 digits."""
    return b"%020d" % time.monotonic_ns() + b"." * max(0, size - 20)


class Deadline:
    def __init__(self, seconds):
        self.end = time.monotonic() + seconds
        self.seconds = seconds

    def check(self, what):
        if time.monotonic() > self.end:
            raise TimeoutError(f"{what}: not done within {self.seconds:g} s")

    def left(self):
        return max(0.0, self.end - time.monotonic())


def on_sigterm(*_):
    raise SystemExit(143)


# ---------------------------------------------------------------- generic

def cmd_free_port(_a):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        print(s.getsockname()[1])


def cmd_record(a):
    obj = {"group": a.group, "system": a.system, "key": a.key, "path": a.path}
    if a.error:
        obj["error"] = a.error
    else:
        obj.update(messages=a.messages, seconds=a.seconds)
    append_result(a.out, obj)


def cmd_mq_e2e(a):
    """mq-bench -n N --json e2e, read from stdin."""
    base = {"group": "latency", "system": "mq", "key": a.key, "path": a.path}
    text = sys.stdin.read()
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("{"):
            d = json.loads(line)
            lat = d["latency_us"]
            base.update(samples=d["messages"], p50_us=lat["p50"], p90_us=lat["p90"], p99_us=lat["p99"],
                        **{"p99.9_us": lat["p99.9"]}, max_us=lat["max"])
            append_result(a.out, base)
            return
    base["error"] = "no JSON from mq-bench: " + text.strip()[-200:]
    append_result(a.out, base)


def cmd_mq_follow(a):
    """The two lines bench/follow_latency.py prints, read from stdin."""
    import re
    text = sys.stdin.read()
    found = 0
    for line in text.splitlines():
        m = re.match(r"(.*) over (\d+) messages \(us\): p50 (\d+)\s+p90 (\d+)\s+p99 (\d+)\s+p99\.9 (\d+)\s+max (\d+)", line)
        if not m:
            continue
        harness = line.startswith("harness only")
        obj = {"group": "latency", "system": "floor" if harness else "mq",
               "key": "harness" if harness else a.key,
               "path": "Python harness only: pipe -> cat -> pipe" if harness else a.path,
               "samples": int(m.group(2)), "p50_us": float(m.group(3)), "p90_us": float(m.group(4)),
               "p99_us": float(m.group(5)), "p99.9_us": float(m.group(6)), "max_us": float(m.group(7))}
        append_result(a.out, obj)
        found += 1
    if found < 2:
        append_result(a.out, {"group": "latency", "system": "mq", "key": a.key, "path": a.path,
                              "error": "follow_latency.py: " + text.strip()[-200:]})


def run_measure(a, base, fn):
    """Run fn() -> dict, append base + its result (or the error) to a.out."""
    obj = dict(base)
    try:
        obj.update(fn())
    except BaseException as e:  # noqa: BLE001 - every failure becomes an "error" row
        obj["error"] = f"{type(e).__name__}: {e}"[:300]
        append_result(a.out, obj)
        print(f"{base['path']}: {obj['error']}", file=sys.stderr)
        if isinstance(e, KeyboardInterrupt):
            raise
        sys.exit(1)
    append_result(a.out, obj)
    brief = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in obj.items() if k not in base}
    print(f"  {base['system']}: {base['path']}: {brief}", file=sys.stderr)


# ---------------------------------------------------------------- Redis

def redis_client(port):
    import redis
    if not redis.utils.HIREDIS_AVAILABLE:
        sys.exit("redis-py does not see hiredis: install hiredis")
    return redis.Redis(host="127.0.0.1", port=port, socket_timeout=30)


def cmd_redis_ingest_py(a):
    """XADD through redis-py pipelines (no MULTI), a.batch commands per round trip."""
    r = redis_client(a.port)
    msgs = read_lines(a.input, a.n)
    r.delete(REDIS_STREAM_PY)
    dl = Deadline(a.time_limit)

    def run():
        t0 = time.monotonic()
        for i in range(0, a.n, a.batch):
            p = r.pipeline(transaction=False)
            for m in msgs[i:i + a.batch]:
                p.xadd(REDIS_STREAM_PY, {"v": m})
            p.execute()
            dl.check("redis-py XADD")
        secs = time.monotonic() - t0
        n = r.xlen(REDIS_STREAM_PY)
        if n != a.n:
            raise RuntimeError(f"stream holds {n} entries, expected {a.n}")
        return {"messages": a.n, "seconds": secs}

    run_measure(a, {"group": "ingest", "system": "Redis", "key": "redis-py",
                    "path": f"redis-py {redis_version()} + hiredis, pipelines of {a.batch} XADD (no MULTI)"}, run)
    r.delete(REDIS_STREAM_PY)  # frees memory for the rest of the run


def redis_version():
    from importlib import metadata
    return metadata.version("redis")


def cmd_redis_read(a):
    """XRANGE in chunks of a.count, each chunk starting after the last ID of the previous one."""
    r = redis_client(a.port)
    # The parsed reply as hiredis builds it (lists of [id, [field, value]]),
    # without redis-py's conversion of every entry into a tuple and a dict.
    r.set_response_callback("XRANGE", lambda reply, **_: reply)
    dl = Deadline(a.time_limit)

    def run():
        t0 = time.monotonic()
        n = 0
        nbytes = 0
        lo = b"-"
        while n < a.n:
            chunk = r.execute_command("XRANGE", a.stream, lo, "+", "COUNT", a.count)
            if not chunk:
                break
            n += len(chunk)
            nbytes += len(chunk[-1][1][1])
            lo = b"(" + chunk[-1][0]
            dl.check("XRANGE")
        secs = time.monotonic() - t0
        if n != a.n:
            raise RuntimeError(f"read {n} entries, expected {a.n}")
        return {"messages": n, "seconds": secs}

    run_measure(a, {"group": "read", "system": "Redis", "key": "redis-xrange",
                    "path": f"XRANGE COUNT {a.count}, redis-py + hiredis (replies not converted to dicts)"}, run)


def cmd_redis_follow(a):
    """Follower: XREAD BLOCK on the latency stream; prints 'ready', then one JSON line of percentiles."""
    signal.signal(signal.SIGTERM, on_sigterm)
    r = redis_client(a.port)
    dl = Deadline(a.time_limit)
    lat = []
    last = b"0-0"
    print("ready", flush=True)
    while len(lat) < a.n and dl.left() > 0:
        reply = r.xread({REDIS_LATENCY: last}, count=1000, block=200)
        now = time.monotonic_ns()
        for _stream, entries in reply or []:
            for eid, fields in entries:
                lat.append(now - int(fields[b"v"][:20]))
                last = eid
    print(json.dumps(percentiles(lat)), flush=True)


def cmd_redis_latency(a):
    r = redis_client(a.port)
    r.delete(REDIS_LATENCY)
    base = {"group": "latency", "system": "Redis", "key": "redis-latency",
            "path": f"XADD (redis-py, one per {1e6 / a.rate:.0f} us) -> XREAD BLOCK follower in another process"}
    run_measure(a, base, lambda: paced_latency(a, [sys.executable, __file__, "redis-follow", "--port", str(a.port)],
                                               lambda payload: r.xadd(REDIS_LATENCY, {"v": payload})))


def paced_latency(a, follower_cmd, publish):
    """Start the follower, wait for 'ready', publish a.n timestamped messages at a.rate/s, collect its JSON."""
    limit = min(a.time_limit, a.n / a.rate + 30)
    follower = subprocess.Popen(follower_cmd + ["-n", str(a.n), "--time-limit", str(limit)],
                                stdout=subprocess.PIPE, text=True)
    try:
        if follower.stdout.readline().strip() != "ready":
            raise RuntimeError("follower did not start")
        time.sleep(0.2)
        dl = Deadline(limit)
        t0 = time.monotonic()
        for i in range(a.n):
            wait = t0 + i / a.rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            publish(timestamped(a.size))
            dl.check("publishing")
        out, _ = follower.communicate(timeout=dl.left() + 5)
        res = json.loads(out.strip().splitlines()[-1])
        if res.get("samples", 0) != a.n:
            raise RuntimeError(f"follower saw {res.get('samples', 0)} of {a.n} messages")
        return res
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()


# ---------------------------------------------------------------- report

def fmt_rate(r):
    if r >= 1e6:
        return f"{r / 1e6:.2f} M"
    if r >= 1e3:
        return f"{r / 1e3:.0f} k"
    return f"{r:.0f}"


def fmt_us(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def fmt_ratio(x):
    if x is None:
        return ""
    return f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def cmd_report(a):
    rows = []
    with open(a.results) as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    by_key = {r["key"]: r for r in rows if "error" not in r}

    def rate(r):
        return r["messages"] / r["seconds"] if r.get("seconds") else None

    def ratio(num, den):
        return num / den if num and den else None

    failed = [r for r in rows if "error" in r]
    n = next((r["messages"] for r in rows if r.get("messages")), None)

    print(f"\n### Ingest: {n:,} messages of 100 bytes\n" if n else "\n### Ingest\n")
    mq = rate(by_key["mq-produce"]) if "mq-produce" in by_key else None
    print("| system | path | seconds | msg/s | MB/s | mq-produce ÷ this |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        if r["group"] != "ingest":
            continue
        if "error" in r:
            print(f"| {r['system']} | {r['path']} | failed | | | |")
            continue
        x = rate(r)
        path = r["path"]
        if "sent_seconds" in r:
            path += f"; all sent after {r['sent_seconds']:.2f} s"
        print(f"| {r['system']} | {path} | {r['seconds']:.3f} | {fmt_rate(x)} | {x * 100 / 1e6:.0f} "
              f"| {fmt_ratio(ratio(mq, x))} |")

    mirror, native = by_key.get("mq-mirror"), by_key.get("nats-c-acked")
    if mirror and native:
        m, x = rate(mirror), rate(native)
        print(f"\nmq-mirror to JetStream: {fmt_rate(m)} msg/s, {100 * m / x:.0f} % of libnats's acked "
              f"publisher's {fmt_rate(x)} msg/s on the same server (native ÷ mirror: {fmt_ratio(x / m)}).")

    print(f"\n### Read back: the same {n:,} messages\n" if n else "\n### Read back\n")
    tail = rate(by_key["mq-tail"]) if "mq-tail" in by_key else None
    cons = rate(by_key["mq-consume"]) if "mq-consume" in by_key else None
    print("| system | path | seconds | msg/s | mq-tail ÷ this | mq-consume ÷ this |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        if r["group"] != "read":
            continue
        if "error" in r:
            print(f"| {r['system']} | {r['path']} | failed | | | |")
            continue
        x = rate(r)
        print(f"| {r['system']} | {r['path']} | {r['seconds']:.3f} | {fmt_rate(x)} "
              f"| {fmt_ratio(ratio(tail, x))} | {fmt_ratio(ratio(cons, x))} |")

    print("\n### Append-to-delivery latency\n")
    e2e = by_key.get("mq-e2e")
    py = by_key.get("mq-follow")
    print("| system | path | samples | p50 | p99 | p99.9 | p50 ÷ mq-bench's | p99 ÷ mq-bench's "
          "| p50 ÷ mq via Python | p99 ÷ mq via Python |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        if r["group"] != "latency":
            continue
        if "error" in r:
            print(f"| {r['system']} | {r['path']} | failed | | | | | | | |")
            continue
        cells = []
        for ref in (e2e, py):
            for q in ("p50_us", "p99_us"):
                cells.append(fmt_ratio(ratio(r[q], ref[q])) if ref else "")
        print(f"| {r['system']} | {r['path']} | {r['samples']:,} | {fmt_us(r['p50_us'])} | {fmt_us(r['p99_us'])} "
              f"| {fmt_us(r['p99.9_us'])} | {' | '.join(cells)} |")

    print("\nRatios: above 1× means mq is faster. Rates: mq's rate ÷ the row's. Latency: the row's "
          "÷ mq's, against mq-bench e2e (no Python) and against mq through the same kind of Python "
          "harness as the peers (follow_latency.py).")
    if failed:
        print("\nFailed:")
        for r in failed:
            print(f"  {r['system']}: {r['path']}: {r['error']}")
        sys.exit(1)


# ---------------------------------------------------------------- main

def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def add(name, fn, server=False, out=True):
        s = sub.add_parser(name)
        s.set_defaults(fn=fn)
        if out:
            s.add_argument("--out", required=True)
        if server:
            s.add_argument("--port", type=int, required=True)
            s.add_argument("--time-limit", type=float, default=120)
        return s

    add("free-port", cmd_free_port, out=False)
    s = add("record", cmd_record)
    for o in ("--group", "--system", "--key", "--path"):
        s.add_argument(o, required=True)
    s.add_argument("--seconds", type=float)
    s.add_argument("--messages", type=int)
    s.add_argument("--error")
    for name, fn in (("mq-e2e", cmd_mq_e2e), ("mq-follow", cmd_mq_follow)):
        s = add(name, fn)
        s.add_argument("--key", required=True)
        s.add_argument("--path", required=True)

    s = add("redis-ingest-py", cmd_redis_ingest_py, server=True)
    s.add_argument("--input", required=True)
    s.add_argument("-n", type=int, required=True)
    s.add_argument("--batch", type=int, default=10000)
    s = add("redis-read", cmd_redis_read, server=True)
    s.add_argument("--stream", required=True)
    s.add_argument("-n", type=int, required=True)
    s.add_argument("--count", type=int, default=10000)
    s = add("redis-latency", cmd_redis_latency, server=True)
    s.add_argument("-n", type=int, default=2000)
    s.add_argument("--rate", type=float, default=1000)
    s.add_argument("--size", type=int, default=99)
    s = add("redis-follow", cmd_redis_follow, server=True, out=False)
    s.add_argument("-n", type=int, required=True)

    s = sub.add_parser("report")
    s.set_defaults(fn=cmd_report)
    s.add_argument("results")

    a = p.parse_args()
    signal.signal(signal.SIGTERM, on_sigterm)
    a.fn(a)


if __name__ == "__main__":
    main()
