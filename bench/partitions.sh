#!/usr/bin/env bash
# Cost against partitions (issue 12's table), beside the file system's own:
# `mq-bench partitions` and bench/partitions_floor.c (the same bytes written
# to and read from P partitions without mq, with the least a durable log
# must do, then again with the two index files mq's format keeps beside
# each segment and, reading, the `head` a reader looks at first), in turn,
# in one sitting. Prints medians and each one's ratio to its own
# one-partition figure, then the writes in units of mq's one-partition
# produce; asserts nothing.
#
#   bench/partitions.sh [BIN_DIR]      (default .build/release; build it first)
#
# Environment: ROUNDS (default 3), MESSAGES (default 1000000), SIZE (bytes
# per message, default 100), PARTITIONS (default 1,1000,10000), BENCH_DIR
# (where the temporary directory is made; default beside the repository),
# RESULTS (a file to keep every run's figure in, one line each: who, what,
# partitions, seconds, round; default: kept nowhere).
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release}
ROUNDS=${ROUNDS:-3}
MESSAGES=${MESSAGES:-1000000}
SIZE=${SIZE:-100}
PARTITIONS=${PARTITIONS:-1,1000,10000}
[ -x "$BIN/mq-bench" ] || { echo "partitions.sh: no $BIN/mq-bench: build first (make build)" >&2; exit 66; }
BIN=$(cd "$BIN" && pwd)
work=$(mktemp -d "${BENCH_DIR:-$PWD}/.partitions.XXXXXX") || exit 73
trap 'rm -rf "$work"' EXIT
source bench/cc.sh
build_c partitions.sh "$work/floor" bench/partitions_floor.c

results=$work/results.txt
total=$((MESSAGES * SIZE))
for round in $(seq "$ROUNDS"); do
    "$BIN/mq-bench" --dir "$work" --json -n "$MESSAGES" -s "$SIZE" --partitions "$PARTITIONS" partitions |
        python3 -c '
import json, sys
for line in sys.stdin:
    r = json.loads(line)
    for k in ("produce", "tail", "consume"):
        print("mq", k, r["partitions"], r[k + "_seconds"], sys.argv[1])' "$round" >> "$results" || { echo "partitions.sh: mq-bench failed" >&2; exit 70; }
    for p in ${PARTITIONS//,/ }; do
        # The producer's bound on pending batches (TopicAppender.defaultMaxPendingBytes).
        bound=$(( p * 16384 > 33554432 ? p * 16384 : 33554432 ))
        bound=$(( bound > 268435456 ? 268435456 : bound ))
        # The floor (indexed 0), then with the segment's two index files
        # written as mq's format has them and `head` read first (1).
        for indexed in 0 1; do
            who=$([ "$indexed" = 1 ] && echo format || echo floor)
            rm -rf "$work/floor.d"
            "$work/floor" "$work/floor.d" "$p" "$total" "$bound" "$indexed" |
                awk -v who="$who" -v round="$round" '{ print who, "write", $1, $2, round; print who, "read", $1, $3, round }' >> "$results" || { echo "partitions.sh: the floor failed" >&2; exit 70; }
        done
    done
done
rm -rf "$work/floor.d"
if [ -n "${RESULTS:-}" ]; then cp "$results" "$RESULTS" || exit 73; fi

python3 - "$results" "$MESSAGES" "$SIZE" "$ROUNDS" <<'EOF'
import statistics, sys
path, messages, size, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
runs = {}
by_round = {}
for line in open(path):
    who, what, p, s, r = line.split()
    runs.setdefault((who, what, int(p)), []).append(float(s))
    by_round[(who, what, int(p), r)] = float(s)
med = {k: statistics.median(v) for k, v in runs.items()}
parts = sorted({k[2] for k in med})
rows = [("mq", "produce"), ("floor", "write"), ("format", "write"), ("mq", "tail"), ("mq", "consume"), ("floor", "read"), ("format", "read")]
label = {"floor": "floor (no mq) ", "format": "floor, indexed ", "mq": "mq "}
print(f"{messages:,} messages of {size} bytes, medians of {rounds} rounds (seconds, and × the same row's one partition)")
print(f"{'':24}" + "".join(f"{p:>20,}" for p in parts))
for who, what in rows:
    base = med.get((who, what, parts[0]))
    cells = []
    for p in parts:
        s = med.get((who, what, p))
        cells.append(f"{'-':>20}" if s is None else f"{s:>11.3f} ({s / base:5.1f}×)" if base else f"{s:>20.3f}")
    name = label[who] + what
    print(f"{name:24}" + "".join(cells))
# The same ratios taken within each round (against that round's one
# partition, run minutes apart at most), then their median: a machine
# that is slower for one round moves both sides of its ratio.
def per_round(title, rows, yardstick):
    print(title)
    for who, what in rows:
        cells = []
        for p in parts:
            ratios = [s / by_round[yardstick(w, x) + (parts[0], r)] for (w, x, q, r), s in by_round.items()
                      if (w, x, q) == (who, what, p) and by_round.get(yardstick(w, x) + (parts[0], r))]
            cells.append(f"{statistics.median(ratios):>19.1f}×" if ratios else f"{'-':>20}")
        name = label[who] + what
        print(f"{name:24}" + "".join(cells))
per_round(f"median of each round's ratio to its own one partition ({rounds} rounds)", rows, lambda w, x: (w, x))
# The writes in units of mq's own one-partition produce, the yardstick of
# a goal such as "within 2x of one partition": the floors are what no
# writer of those files could go below, in the same round.
writes = [(who, what) for who, what in rows if what in ("produce", "write")]
per_round(f"writes against mq produce of one partition, median of each round's ({rounds} rounds)", writes,
          lambda w, x: ("mq", "produce"))
EOF
