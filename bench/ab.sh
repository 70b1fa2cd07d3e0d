#!/usr/bin/env bash
# Old and new binaries side by side, alternating round by round on the same
# data, medians printed: the way to measure a change on a shared machine.
#
#   bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]        (default 7)
#
# Two data sets of 1,000,000 messages in a scratch directory under $TMPDIR
# (default: the current directory, so that it is on the disk under test):
# plain 100-byte lines, and JSON envelopes with a key and two headers.
#
# The produce-* rows measure what the backlog bound and --rate cost when they
# never hold mq-produce back: produce-bound writes to a topic whose bound is
# far away (10^12 messages, 10^15 bytes) and that no group reads (the whole
# log counts: heads and listings only), produce-bound-group the same with a
# group whose committed-offset file each measure reads, produce-rate with
# --rate 1000000000/s (a token per message, no wait). Binaries without these
# (before the backlog bound) write the same input with neither, so those rows
# compare against the plain path.
set -euo pipefail
old=${1:?usage: bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]}
new=${2:?usage: bench/ab.sh OLD_BIN_DIR NEW_BIN_DIR [ROUNDS]}
rounds=${3:-7}
dir=$(mktemp -d "${TMPDIR:-.}/ab.XXXXXX")
trap 'rm -rf "$dir"' EXIT
export MQ_DIR=$dir/log
seq 1 1000000 | awk '{printf "%07d message payload padding padding padding padding padding padding pad\n",$1}' >"$dir/plain"
seq 1 1000000 | awk '{printf "{\"key\":\"k%d\",\"value\":\"v %d payload payload payload\",\"headers\":[[\"trace\",\"t%d\"],[\"src\",\"x\"]]}\n",$1%1000,$1,$1}' >"$dir/json"
far=(--config mq.max.backlog.messages=1000000000000 --config mq.max.backlog.bytes=1000000000000000)
ms() { local s; s=$(date +%s%N); "$@" >/dev/null 2>&1; echo $(( ($(date +%s%N) - s) / 1000000 )); }
for r in $(seq 1 "$rounds"); do
    for side in old new; do
        bin=${!side}
        rm -rf "$MQ_DIR"
        echo "$side produce $(ms sh -c "'$bin/mq-produce' plain <'$dir/plain'")"
        echo "$side tail $(ms "$bin/mq-tail" -n +0 plain)"
        echo "$side consume $(ms "$bin/mq-consume" -g g -e plain)"
        "$bin/mq-topic" create far "${far[@]}" 2>/dev/null || "$bin/mq-topic" create far
        echo "$side produce-bound $(ms sh -c "'$bin/mq-produce' far <'$dir/plain'")"
        "$bin/mq-topic" create grouped "${far[@]}" 2>/dev/null || "$bin/mq-topic" create grouped
        echo x | "$bin/mq-produce" grouped && "$bin/mq-consume" -g g -e grouped >/dev/null
        echo "$side produce-bound-group $(ms sh -c "'$bin/mq-produce' grouped <'$dir/plain'")"
        rate=(--rate 1000000000/s); "$bin/mq-produce" --help | grep -q -- --rate || rate=()
        echo "$side produce-rate $(ms sh -c "'$bin/mq-produce' ${rate[*]} rated <'$dir/plain'")"
        "$new/mq-produce" --json hdr <"$dir/json" >/dev/null
        echo "$side tail-headers $(ms "$bin/mq-tail" -n +0 hdr)"
        echo "$side consume-headers $(ms "$bin/mq-consume" -g h -e hdr)"
        echo "$side tail-json $(ms "$bin/mq-tail" -n +0 --json hdr)"
    done
done | python3 -c '
import statistics, sys
rows = {}
for line in sys.stdin:
    side, what, n = line.split()
    rows.setdefault(what, {}).setdefault(side, []).append(int(n))
print("%-16s %8s %8s %8s" % ("path", "old ms", "new ms", "new/old"))
for what, by in rows.items():
    o, n = statistics.median(by["old"]), statistics.median(by["new"])
    print(f"{what:16} {o:8.0f} {n:8.0f} {n / o:8.2f}")
'
