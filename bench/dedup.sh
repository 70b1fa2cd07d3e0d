#!/usr/bin/env bash
# Measures the exactly-once paths of mq-produce and mq-consume (docs/BENCHMARKS.md):
#
#   bench/dedup.sh BIN_DIR [BASELINE_BIN_DIR]
#
# N (default 1000000) messages of about 100 bytes: JSON envelopes with an id
# header for --id-header, plain lines for --producer. Prints seconds per run.
# With BASELINE_BIN_DIR, also times that build's plain `mq-produce --json`, to
# show the normal path is unchanged. Asserts the record counts, nothing else.
set -euo pipefail
bin=$(cd "$1" && pwd)
base=${2:+$(cd "$2" && pwd)}
n=${N:-1000000}
work=$(mktemp -d "${TMPDIR:-/tmp}/mq-dedup-bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
python3 - "$n" "$work" <<'PY'
import json, sys
n, work = int(sys.argv[1]), sys.argv[2]
pad = "x" * 40
with open(f"{work}/ids.json", "w") as f:
    for i in range(n):
        f.write(json.dumps({"value": f"message {i} {pad}", "headers": {"id": f"order-{i:09d}"}}) + "\n")
with open(f"{work}/lines.txt", "w") as f:
    for i in range(n):
        f.write(f"line {i:09d} {pad}{pad}{pad[:19]}\n")
PY
t() {  # label, command...
    local label=$1; shift
    local s e
    s=$(date +%s.%N)
    "$@"
    e=$(date +%s.%N)
    printf '%-58s %7.2f s %9.0f msg/s\n' "$label" "$(echo "$e - $s" | bc)" "$(echo "$n / ($e - $s)" | bc)"
}
count() { "$bin/mq-tail" --dir "$work/log" -n +0 "$1" | wc -l; }
d="--dir $work/log"
if [ -n "$base" ]; then
    t "baseline build: mq-produce --json" "$base/mq-produce" $d --json base < "$work/ids.json"
fi
t "mq-produce --json (no dedup)" "$bin/mq-produce" $d --json plain < "$work/ids.json"
t "mq-produce --json --id-header id (all new)" "$bin/mq-produce" $d --json --id-header id ids < "$work/ids.json"
t "mq-produce --json --id-header id (all duplicates)" "$bin/mq-produce" $d --json --id-header id ids < "$work/ids.json"
three() { for _ in 1 2 3; do "$bin/mq-produce" $d --json --id-header id --dedup-window 10m ids3 < "$work/ids.json" & done; wait; }
t "3 x --id-header concurrently (same input, per input)" three
[ "$(count ids)" = "$n" ] && [ "$(count ids3)" = "$n" ] || { echo "wrong record count" >&2; exit 1; }
t "mq-produce (lines, no dedup)" "$bin/mq-produce" $d lines < "$work/lines.txt"
t "mq-produce --producer p (all new)" "$bin/mq-produce" $d --producer p named < "$work/lines.txt"
t "mq-produce --producer p (rerun, all written)" "$bin/mq-produce" $d --producer p named < "$work/lines.txt"
[ "$(count named)" = "$n" ] || { echo "wrong record count" >&2; exit 1; }
t "mq-consume -g g -e > /dev/null (no dedup)" sh -c "'$bin/mq-consume' $d -g g -e ids > /dev/null"
t "mq-consume -g g2 -e --dedup --id-header id > /dev/null" sh -c "'$bin/mq-consume' $d -g g2 -e --dedup --id-header id ids > /dev/null"
ls -l "$work/log/topics/ids/dedup/ids" | awk '{ printf "topics/ids/dedup/ids: %d bytes\n", $5 }'
