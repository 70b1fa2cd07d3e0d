#!/usr/bin/env bash
# What mq-mirror costs: the same N messages of SIZE bytes pushed to a fresh
# JetStream stream (nats-server on 127.0.0.1, file storage in a temporary
# directory; NODES=3 runs a three-server cluster and streams of three
# replicas) by mq-mirror and by libnats's own asynchronous publisher
# (bench/nats_pub.c), ROUNDS times each in turn; prints each run and the
# ratio of the medians. Asserts nothing.
#
#   bench/mirror.sh [BIN_DIR]        (default .build/release)
#
# Environment: N (default 1000000), SIZE (default 100), ROUNDS (default 3),
# NODES (1 or 3, default 1).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=$(cd "${1:-.build/release}" && pwd)
N=${N:-1000000} SIZE=${SIZE:-100} ROUNDS=${ROUNDS:-3} NODES=${NODES:-1}
case "$NODES" in 1|3) ;; *) echo "mirror.sh: NODES must be 1 or 3" >&2; exit 64 ;; esac
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)
work=$(mktemp -d "${TMPDIR:-/tmp}/mq-mirror-bench.XXXXXX")
servers=()
cleanup() { for s in "${servers[@]}"; do kill "$s" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
cc -O2 -o "$work/nats_pub" bench/nats_pub.c -lnats
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
ports=() routes=()
for i in $(seq "$NODES"); do ports+=("$(free_port)") routes+=("$(free_port)"); done
for i in $(seq 0 $((NODES - 1))); do
    cluster=()
    if [ "$NODES" -gt 1 ]; then
        others=$(for j in $(seq 0 $((NODES - 1))); do if [ "$j" != "$i" ]; then printf 'nats://127.0.0.1:%s,' "${routes[$j]}"; fi; done)
        cluster=(--server_name "n$i" --cluster_name bench --cluster "nats://127.0.0.1:${routes[$i]}" --routes "${others%,}")
    fi
    "$NATS_SERVER" -js -a 127.0.0.1 -p "${ports[$i]}" -sd "$work/js$i" -l "$work/nats$i.log" "${cluster[@]}" &
    servers+=($!)
done
for i in $(seq 0 $((NODES - 1))); do
    for _ in $(seq 100); do grep -q 'Server is ready' "$work/nats$i.log" 2>/dev/null && break; sleep 0.1; done
done
# JetStream in a cluster is ready once its meta leader is elected.
if [ "$NODES" -gt 1 ]; then sleep 5; fi
url="nats://$(for p in "${ports[@]}"; do printf '127.0.0.1:%s,' "$p"; done)"
url=${url%,}
export MQ_DIR="$work/log"
"$BIN/mq-topic" create bench >/dev/null
python3 -c "
import sys
line = b'x' * ($SIZE - 1) + b'\n'
sys.stdout.buffer.write(line * $N)" | "$BIN/mq-produce" bench
mirror=() native=()
for r in $(seq "$ROUNDS"); do
    start=$(date +%s.%N)
    "$BIN/mq-mirror" -e --create --replicas "$NODES" --subject-prefix "m$r" --name "bench$r" bench "$url/M$r"
    end=$(date +%s.%N)
    m=$(python3 -c "print(round($N / ($end - $start)))")
    n=$("$work/nats_pub" "nats://127.0.0.1:${ports[0]}" "N$r" "n$r.x" "$N" "$SIZE" "$NODES" | awk '{print $3}')
    echo "round $r: mq-mirror $m msg/s, libnats async publisher $n msg/s"
    mirror+=("$m") native+=("$n")
done
median() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
mm=$(median "${mirror[@]}") nn=$(median "${native[@]}")
echo "medians: mq-mirror $mm msg/s, native $nn msg/s: $(python3 -c "print(f'{100 * $mm / $nn:.0f}')") % of the native publisher ($N x $SIZE B, $NODES-node JetStream, $NODES replica(s))"
