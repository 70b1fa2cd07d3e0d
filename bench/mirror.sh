#!/usr/bin/env bash
# What mq-mirror costs: the same N messages of SIZE bytes pushed to a fresh
# one-node JetStream (nats-server on 127.0.0.1, file storage in a temporary
# directory) by mq-mirror and by libnats's own asynchronous publisher
# (bench/nats_pub.c), ROUNDS times each in turn; prints each run and the
# ratio of the medians. Asserts nothing.
#
#   bench/mirror.sh [BIN_DIR]        (default .build/release)
#
# Environment: N (default 1000000), SIZE (default 100), ROUNDS (default 3).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(cd "${1:-.build/release}" && pwd)
N=${N:-1000000} SIZE=${SIZE:-100} ROUNDS=${ROUNDS:-3}
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
work=$(mktemp -d "${TMPDIR:-/tmp}/mq-mirror-bench.XXXXXX")
server=
cleanup() { [ -n "$server" ] && kill "$server" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cc -O2 -o "$work/nats_pub" bench/nats_pub.c -lnats
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$NATS_SERVER" -js -a 127.0.0.1 -p "$port" -sd "$work/js" -l "$work/nats.log" &
server=$!
for _ in $(seq 100); do grep -q 'Server is ready' "$work/nats.log" 2>/dev/null && break; sleep 0.1; done
export MQ_DIR="$work/log"
"$BIN/mq-topic" create bench >/dev/null
python3 -c "
import sys
line = b'x' * ($SIZE - 1) + b'\n'
sys.stdout.buffer.write(line * $N)" | "$BIN/mq-produce" bench
mirror=() native=()
for r in $(seq "$ROUNDS"); do
    start=$(date +%s.%N)
    "$BIN/mq-mirror" -e --create --subject-prefix "m$r" --name "bench$r" bench "nats://127.0.0.1:$port/M$r"
    end=$(date +%s.%N)
    m=$(python3 -c "print(round($N / ($end - $start)))")
    n=$("$work/nats_pub" "nats://127.0.0.1:$port" "N$r" "n$r.x" "$N" "$SIZE" | awk '{print $3}')
    echo "round $r: mq-mirror $m msg/s, libnats async publisher $n msg/s"
    mirror+=("$m") native+=("$n")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mm=$(median "${mirror[@]}") nn=$(median "${native[@]}")
echo "medians: mq-mirror $mm msg/s, native $nn msg/s: $(python3 -c "print(f'{100 * $mm / $nn:.0f}')") % of the native publisher ($N x $SIZE B, one-node JetStream)"
