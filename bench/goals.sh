#!/usr/bin/env bash
# The performance goals of docs/BENCHMARKS.md ("Goals"), measured side by side
# in one run, with the physical ceilings they are judged against. Prints a
# table; asserts nothing. `make goals` runs it.
#
#   bench/goals.sh [BIN_DIR]        (default .build/release; build it first)
#
# Environment: ROUNDS (default 3: each figure is the median of that many
# runs, taken in turn with the others), BENCH_DIR (where the temporary
# directory is made; default beside the repository, on the log's disk).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release}
ROUNDS=${ROUNDS:-3}
for t in mq-bench mq-produce mq-tail mq-consume; do
    [ -x "$BIN/$t" ] || { echo "goals.sh: no $BIN/$t: build first (make build)" >&2; exit 66; }
done
BIN=$(cd "$BIN" && pwd)
work=$(mktemp -d "${BENCH_DIR:-$PWD}/.goals.XXXXXX") || exit 73
trap 'rm -rf "$work"' EXIT
source bench/cc.sh
build_c goals.sh "$work/wake_floor" bench/wake_floor.c -pthread

results=$work/results.jsonl
bench() { # key, mq-bench arguments...
    local key=$1; shift
    "$BIN/mq-bench" --dir "$work" --json "$@" | python3 -c '
import json, sys
key = sys.argv[1]
for line in sys.stdin:
    r = json.loads(line)
    r["key"] = key
    print(json.dumps(r))' "$key" >> "$results"
}
ceiling() { # key, value, unit
    printf '{"key": "%s", "value": %s}\n' "$1" "$2" >> "$results"
}

# The same 100 MB that mq-produce writes, through cat and dd.
python3 -c 'import sys; sys.stdout.write(("x" * 99 + "\n") * 1000000)' > "$work/input"
sync
for round in $(seq "$ROUNDS"); do
    echo "goals.sh: round $round of $ROUNDS" >&2
    bench produce -n 1000000 produce
    bench read-tail -n 1000000 --plain consume
    bench read-group -n 1000000 consume
    bench sync-batch -n 1000000 --sync batch produce
    # One 1,000-byte message per batch: one fdatasync per message, as dd oflag=dsync does per write.
    bench fsync-each -n 2000 -s 1000 --sync batch --batch-bytes 1024 produce
    bench produce-4 -n 1000000 --producers 4 produce
    bench e2e -n 2000 e2e
    bench queue -n 200000 --handler-batch 10000 queue
    t0=$(date +%s.%N); cat "$work/input" > "$work/cat.out"; t1=$(date +%s.%N)
    ceiling cat "$(python3 -c "print(1000000 / ($t1 - $t0))")"
    rm -f "$work/cat.out"
    t0=$(date +%s.%N); dd if="$work/input" of="$work/dd.out" bs=1M conv=fdatasync status=none; t1=$(date +%s.%N)
    ceiling dd-fdatasync "$(python3 -c "print(1000000 / ($t1 - $t0))")"
    rm -f "$work/dd.out"
    t0=$(date +%s.%N); dd if=/dev/zero of="$work/dd.out" bs=1000 count=2000 oflag=dsync status=none; t1=$(date +%s.%N)
    ceiling dd-dsync "$(python3 -c "print(2000 / ($t1 - $t0))")"
    rm -f "$work/dd.out"
    "$work/wake_floor" 2 | python3 -c '
import re, sys
m = re.search(r"p50 ([\d.]+) p90 ([\d.]+) p99 ([\d.]+)", sys.stdin.read())
print("{\"key\": \"floor\", \"p50\": %s, \"p99\": %s}" % (m.group(1), m.group(3)))' >> "$results"
done

python3 - "$results" "$ROUNDS" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
by = {}
for r in rows:
    by.setdefault(r["key"], []).append(r)
def med(key, field):
    values = []
    for r in by.get(key, []):
        v = r
        for part in field.split("."):
            v = v.get(part) if isinstance(v, dict) else None
        if v is not None:
            values.append(v)
    return statistics.median(values) if values else float("nan")
rate = lambda k: med(k, "messages_per_second")
produce, cat, dd = rate("produce"), med("cat", "value"), med("dd-fdatasync", "value")
rss = max(r.get("max_rss_kib", 0) for r in rows) / 1024
goals = [
    ("produce, 1 process, default durability", "≥ 5,000,000 msg/s", produce, produce >= 5e6,
     f"{produce / cat:.0%} of cat, {produce / dd:.0%} of dd conv=fdatasync"),
    ("read to /dev/null (mq-tail)", "≥ 10,000,000 msg/s", rate("read-tail"), rate("read-tail") >= 10e6, ""),
    ("read to /dev/null (mq-consume -g)", "≥ 10,000,000 msg/s", rate("read-group"), rate("read-group") >= 10e6,
     "includes joining the group and its commits"),
    ("--sync batch", "≥ 2,000,000 msg/s", rate("sync-batch"), rate("sync-batch") >= 2e6, ""),
    ("per-message fsync", "≥ 80 % of dd oflag=dsync", rate("fsync-each"), rate("fsync-each") >= 0.8 * med("dd-dsync", "value"),
     f"{rate('fsync-each') / med('dd-dsync', 'value'):.0%} of dd oflag=dsync ({med('dd-dsync', 'value'):,.0f} writes/s)"),
    ("4 producer processes, one partition", "≥ 80 % of one", rate("produce-4"), rate("produce-4") >= 0.8 * produce,
     f"{rate('produce-4') / produce:.0%} of one producer"),
    ("follow latency p50", "≤ 50 µs", med("e2e", "latency_us.p50"), med("e2e", "latency_us.p50") <= 50,
     f"floor without mq (bench/wake_floor 2): {med('floor', 'p50'):.0f} µs"),
    ("follow latency p99", "≤ 250 µs", med("e2e", "latency_us.p99"), med("e2e", "latency_us.p99") <= 250,
     f"floor without mq: {med('floor', 'p99'):.0f} µs"),
    ("work queue, --batch handler", "≥ 200,000 msg/s", rate("queue"), rate("queue") >= 200e3, "4 workers, 10,000 per run"),
    ("memory, largest RSS of any run", "≤ 32 MiB", rss, rss <= 32, ""),
]
rounds = int(sys.argv[2])
print(f"Medians of {rounds} rounds." if rounds > 1 else "One round: run ROUNDS=5 bench/goals.sh for medians.")
print(f"{'goal':40} {'target':26} {'measured':>14}  met  notes")
for name, target, value, ok, note in goals:
    shown = f"{value:,.0f}" if value >= 1000 else f"{value:,.1f}"
    print(f"{name:40} {target:26} {shown:>14}  {'yes' if ok else 'NO ':3}  {note}")
PY
