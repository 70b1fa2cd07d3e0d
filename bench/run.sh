#!/usr/bin/env bash
# Throughput and latency figures for docs/BENCHMARKS.md. Prints figures; asserts nothing.
#
#   bench/run.sh [BIN_DIR]     (default .build/release; build it first with `make build`)
#
# Workload: 1,000,000 messages of 100 bytes (99 + newline) from a file on the
# same disk as the log. Each measurement runs in a fresh log directory under
# $BENCH_DIR (default: a temporary directory beside the repository, so on the
# same disk), removed afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release}
N=${N:-1000000}
work=$(mktemp -d "${BENCH_DIR:-$PWD}/.bench.XXXXXX")
trap 'rm -rf "$work"' EXIT
input=$work/input.txt
python3 - "$input" "$N" <<'PY'
import sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "w") as f:
    for i in range(n):
        s = "msg %08d " % i
        f.write(s + "x" * (99 - len(s)) + "\n")
PY
sync
now() { date +%s.%N; }
rate() { python3 -c "import sys; n,t=int(sys.argv[1]),float(sys.argv[2]); print(f'{t:8.3f} s  {n/t/1e6:6.2f} M msg/s  {n*100/t/1e6:8.1f} MB/s')" "$1" "$2"; }
measure() { # label, command...
  local label=$1; shift
  local t0 t1
  t0=$(now); "$@"; t1=$(now)
  printf '%-44s %s\n' "$label" "$(rate "$N" "$(python3 -c "print($t1-$t0)")")"
}
echo "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "messages: $N x 100 bytes"
measure "cat file > file (ceiling, no fsync)" sh -c "cat '$input' > '$work/copy'"
measure "dd conv=fdatasync (ceiling, one fsync)" sh -c "dd if='$input' of='$work/copy2' bs=1M conv=fdatasync status=none"
rm -f "$work/copy" "$work/copy2"
for codec in none lz4; do
  export MQ_DIR=$work/log-$codec
  measure "mq-produce -z $codec (fsync at exit)" sh -c "'$BIN/mq-produce' -z $codec bench < '$input'"
  measure "mq-tail -n +0 (-z $codec) > /dev/null" sh -c "'$BIN/mq-tail' -n +0 bench > /dev/null"
done
export MQ_DIR=$work/log-none
measure "mq-consume -g (new group) > /dev/null" sh -c "'$BIN/mq-consume' -g bench -e bench > /dev/null"
measure "mq-consume -g --batch 10000 -- cat" sh -c "'$BIN/mq-consume' -g batch -e --batch 10000 bench -- sh -c 'cat > /dev/null'"
export MQ_DIR=$work/log-batch
measure "mq-produce --sync batch" sh -c "'$BIN/mq-produce' --sync batch bench < '$input'"
python3 bench/follow_latency.py "$BIN" "$work/log-latency" "${SAMPLES:-5000}" 500
