#!/usr/bin/env bash
# mq side by side with Redis Streams and NATS JetStream, and with the disk's
# ceilings (cat, dd conv=fdatasync), on one workload. Prints figures and
# ratios; asserts nothing. `make compare` runs it.
#
#   bench/compare.sh [BIN_DIR]        (default .build/release; build it first)
#
# Environment: N (messages, default 1000000), SAMPLES (latency samples,
# default 2000), BUDGET (seconds for the whole run, default 570),
# BENCH_DIR (where the temporary directory is made; default: beside the
# repository, so on the same disk as the log).
#
# It installs what it needs when missing: the Debian packages redis-server,
# redis-tools, nats-server and libnats-dev (apt-get, through sudo unless root; services
# that the packages enable are disabled and stopped again at once), and the
# Python packages redis and hiredis at pinned versions. It runs its
# own redis-server and nats-server on 127.0.0.1, on free ports, with their
# data in the temporary directory, and stops them and removes the directory
# when it exits, also on failure or Ctrl-C.
#
# Workload: 1,000,000 messages of 100 bytes (99 + newline in the file; 99-byte
# values on the peers). For each system: ingest, read everything back, and
# append-to-delivery latency (p50, p99) at 1,000 messages per second.
#
# NATS's rows use libnats, its C client, so that the peer is measured at its
# best: bench/nats_pub.c publishes the lines of the same input file (core
# publishes, and JetStream publishes with every acknowledgement awaited),
# bench/nats_read.c reads them back (a pull consumer fetching 10,000 at a time
# and acknowledging each batch, and an ordered consumer), and bench/nats_lat.c
# measures the latency row (JetStream publishes paced at the rate, every
# acknowledgement awaited, each carrying its send time, and an ordered push
# consumer on a second connection of the same process taking the time of
# delivery); all three are compiled here with cc -lnats. Beside them, "mq-mirror
# to JetStream" times mq-mirror -e --create pushing the same messages from an
# mq topic to the same server, so that its ratio to the C publisher's acked row
# is what the mirror costs (bench/mirror.sh measures that alone, over rounds).
# Redis's latency row goes through the Python harness of compare_peers.py, as
# mq's "via Python" row does (mq-bench e2e is mq's row without Python). Every
# step has a time limit (within BUDGET) and every loop a count. Last, in the
# same run, bench/goals.sh measures mq against its performance goals
# (GOALS_ROUNDS rounds, default 1) and its table is printed after the
# comparison's.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-.build/release}
N=${N:-1000000}
SAMPLES=${SAMPLES:-2000}
BUDGET=${BUDGET:-570}
RATE=1000
helper=bench/compare_peers.py

# Versions this script was run with (Debian 12: Python 3.11, Redis 7.0, NATS 2.9).
python_packages=(redis==8.1.0 hiredis==3.5.0)

for t in mq-produce mq-tail mq-consume mq-bench mq-mirror; do
    [ -x "$BIN/$t" ] || { echo "compare.sh: no $BIN/$t: build first (make build)" >&2; exit 66; }
done
BIN=$(cd "$BIN" && pwd)

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi

say() { printf '%s\n' "$*" >&2; }

# ---------------------------------------------------------------- install

install_packages() {
    local wanted=(redis-server redis-tools nats-server libnats-dev) missing=() p
    command -v cc >/dev/null || wanted+=(gcc libc6-dev)
    command -v python3 >/dev/null || wanted+=(python3)
    python3 -m pip --version >/dev/null 2>&1 || wanted+=(python3-pip)
    for p in "${wanted[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        say "compare.sh: installing ${missing[*]}"
        local log; log=$(mktemp)
        if ! { "${sudo[@]}" timeout 300 apt-get update -qq &&
               "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive timeout 600 \
                   apt-get install -y -qq --no-install-recommends "${missing[@]}"; } >"$log" 2>&1; then
            tail -20 "$log" >&2; rm -f "$log"; return 1
        fi
        rm -f "$log"
        # The packages enable their services (and start them where systemd
        # runs): this benchmark runs its own instances only.
        for p in redis-server nats-server; do
            case " ${missing[*]} " in *" $p "*) quiet_service "$p" ;; esac
        done
    fi
    # Which pinned Python packages are absent or at another version?
    local pip_wanted
    mapfile -t pip_wanted < <(python3 - "${python_packages[@]}" <<'PY'
import sys
from importlib import metadata
for spec in sys.argv[1:]:
    name, version = spec.split("==")
    try:
        if metadata.version(name) == version:
            continue
    except metadata.PackageNotFoundError:
        pass
    print(spec)
PY
)
    if [ ${#pip_wanted[@]} -gt 0 ]; then
        say "compare.sh: installing ${pip_wanted[*]} for $(command -v python3)"
        local pip_args=(--quiet --disable-pip-version-check)
        if [ "$(id -u)" -ne 0 ] && python3 -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)'; then
            pip_args+=(--user)
        fi
        if ! timeout 300 python3 -m pip install "${pip_args[@]}" "${pip_wanted[@]}"; then
            # Debian's own python3 refuses pip installs (PEP 668) unless told otherwise.
            say "compare.sh: retrying with --break-system-packages"
            timeout 300 python3 -m pip install "${pip_args[@]}" --break-system-packages "${pip_wanted[@]}" || return 1
        fi
    fi
}

quiet_service() { # disable and stop a packaged service that this script installed
    local svc=$1
    if [ -d /run/systemd/system ]; then
        "${sudo[@]}" systemctl disable --now "$svc.service" >/dev/null 2>&1 || true
    else
        "${sudo[@]}" systemctl disable "$svc.service" >/dev/null 2>&1 \
            || "${sudo[@]}" update-rc.d "$svc" disable >/dev/null 2>&1 || true
        if [ -x "/etc/init.d/$svc" ]; then "${sudo[@]}" "/etc/init.d/$svc" stop >/dev/null 2>&1 || true; fi
    fi
    say "compare.sh: disabled the packaged $svc service (and stopped it, if it had started)"
}

install_packages || { say "compare.sh: installing the packages failed"; exit 69; }
NATS_SERVER=$(command -v nats-server || echo /usr/sbin/nats-server)

# ---------------------------------------------------------------- run

work=$(mktemp -d "${BENCH_DIR:-$PWD}/.compare.XXXXXX") || exit 73
results=$work/results.jsonl
redis_pid=
nats_pid=
child=

stop_pid() { # TERM, up to 10 s, then KILL
    local pid=$1 i
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop_pid "$child"; child=
    stop_pid "$redis_pid"; redis_pid=
    stop_pid "$nats_pid"; nats_pid=
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Steps run in the background and are waited for, so that a signal to this
# script is handled at once (a foreground child would delay the trap); the
# child is always `timeout`, which passes the signal on to its command's group.
run() {
    local status
    "$@" &
    child=$!
    wait "$child"; status=$?
    child=
    return $status
}
limit() { # the smaller of the step's own limit and what is left of the budget (callers skip under 5)
    local l=$((BUDGET - SECONDS))
    if [ "$l" -lt "$1" ]; then echo "$l"; else echo "$1"; fi
}
record_error() { # group system key path message
    python3 "$helper" record --out "$results" --group "$1" --system "$2" --key "$3" --path "$4" --error "$5"
}
measure() { # group system key path time-limit command...: wall time of the command
    local group=$1 system=$2 key=$3 path=$4 lim t0 t1 status
    lim=$(limit "$5"); shift 5
    if [ "$lim" -lt 5 ]; then record_error "$group" "$system" "$key" "$path" "skipped: time budget spent"; return 1; fi
    t0=$(date +%s.%N)
    run timeout "$lim" "$@"; status=$?
    t1=$(date +%s.%N)
    if [ $status -ne 0 ]; then
        record_error "$group" "$system" "$key" "$path" "exit status $status (124: time limit ${lim} s)"
        return 1
    fi
    python3 "$helper" record --out "$results" --group "$group" --system "$system" --key "$key" --path "$path" \
        --messages "$N" --seconds "$(python3 -c "print($t1 - $t0)")"
    say "  $system: $path: $(python3 -c "print(f'{$t1 - $t0:.3f} s')")"
}
redis_settle() { # wait (at most 30 s) until no AOF rewrite is running or scheduled
    local i info
    for i in $(seq 300); do
        info=$(redis-cli -h 127.0.0.1 -p "$redis_port" info persistence 2>/dev/null | tr -d '\r')
        grep -q '^aof_rewrite_in_progress:0' <<<"$info" && grep -q '^aof_rewrite_scheduled:0' <<<"$info" && return 0
        sleep 0.1
    done
    say "compare.sh: an AOF rewrite is still running after 30 s; measuring anyway"
}
peer() { # time-limit subcommand args...: a measurement by the Python helper
    local lim; lim=$(limit "$1"); shift
    if [ "$lim" -lt 5 ]; then record_error skipped Redis "$1" "$1 ${*:4}" "skipped: time budget spent"; return 1; fi
    run timeout $((lim + 10)) python3 "$helper" "$@" --out "$results" --time-limit "$lim"
}

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

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
fs=$(df -T "$work" | awk 'NR == 2 {print $2 " on " $1}')
echo "date:     $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine:  $(nproc) cores, $cpu, $mem, Linux $(uname -r), $fs"
echo "versions: redis-server $(redis-server --version | sed -n 's/.* v=\([^ ]*\).*/\1/p')," \
     "nats-server $("$NATS_SERVER" --version | sed 's/.*v//')," \
     "libnats $(dpkg-query -W -f='${Version}' libnats-dev 2>/dev/null || echo '?')," \
     "Python $(python3 -c 'import platform; print(platform.python_version())') with ${python_packages[*]}"
echo "workload: $N messages x 100 bytes; latency: $SAMPLES messages at $RATE/s"
echo

# --- ceilings: the same file through the page cache, and with one fdatasync
say "ceilings"
measure ingest ceiling cat "cat file > file on the same disk (no fsync)" 60 \
    sh -c "cat '$input' > '$work/copy'"
rm -f "$work/copy"; sync
measure ingest ceiling dd "dd bs=1M conv=fdatasync (one fsync at the end)" 60 \
    dd if="$input" of="$work/copy" bs=1M conv=fdatasync status=none
rm -f "$work/copy"; sync

# --- mq: no server; the log is a directory in $work
say "mq"
export MQ_DIR=$work/mq
measure ingest mq mq-produce "mq-produce T < file (default: one fdatasync at exit)" 120 \
    sh -c "'$BIN/mq-produce' bench < '$input'"
got=$("$BIN/mq-tail" -n +0 bench 2>/dev/null | wc -l)
[ "$got" -eq "$N" ] || record_error ingest mq mq-produce-check "mq-tail -n +0 | wc -l" "$got messages, expected $N"
measure read mq mq-tail "mq-tail -n +0 T > /dev/null" 120 \
    sh -c "'$BIN/mq-tail' -n +0 bench > /dev/null"
measure read mq mq-consume "mq-consume -g g -e T > /dev/null (new group, commits)" 120 \
    sh -c "'$BIN/mq-consume' -g g -e bench > /dev/null"
unset MQ_DIR
lim=$(limit 60)
if [ "$lim" -ge 5 ]; then
    run timeout "$lim" "$BIN/mq-bench" --dir "$work" -n "$SAMPLES" --rate "$RATE" --json e2e > "$work/e2e.out"
    python3 "$helper" mq-e2e --out "$results" --key mq-e2e \
        --path "mq-bench e2e: append in mq-bench (Swift) -> log -> mq-tail -f" < "$work/e2e.out"
fi
lim=$(limit 60)
if [ "$lim" -ge 5 ]; then
    run timeout "$lim" python3 bench/follow_latency.py "$BIN" "$work/mq-follow" "$SAMPLES" $((1000000 / RATE)) \
        > "$work/follow.out"
    python3 "$helper" mq-follow --out "$results" --key mq-follow \
        --path "Python -> pipe -> mq-produce --linger 0 --sync none -> log -> mq-tail -f -> pipe -> Python" \
        < "$work/follow.out"
fi
rm -rf "$work/mq" "$work/mq-follow"

# --- Redis: AOF on, fsync every second; no RDB snapshots
say "Redis"
mkdir -p "$work/redis"
redis_port=$(python3 "$helper" free-port)
redis-server --port "$redis_port" --bind 127.0.0.1 --protected-mode yes --dir "$work/redis" \
    --appendonly yes --appendfsync everysec --save '' --logfile "$work/redis/redis.log" --daemonize no &
redis_pid=$!
for _ in $(seq 100); do
    [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ] && break; sleep 0.1
done
if [ "$(redis-cli -h 127.0.0.1 -p "$redis_port" ping 2>/dev/null)" = PONG ]; then
    # Values like the file's lines: "msg " + 12 random digits + " " + 82 x = 99 bytes.
    value="msg __rand_int__ $(printf 'x%.0s' $(seq 82))"
    measure ingest Redis redis-benchmark "redis-benchmark -c 1 -P 1000 XADD T * v <99 bytes> (AOF everysec)" 120 \
        redis-benchmark -h 127.0.0.1 -p "$redis_port" -n "$N" -c 1 -P 1000 -r 1000000000 -q \
        XADD bench '*' v "$value" >/dev/null
    got=$(redis-cli -h 127.0.0.1 -p "$redis_port" xlen bench)
    [ "$got" = "$N" ] || record_error ingest Redis redis-bench-check "XLEN after redis-benchmark" "$got entries, expected $N"
    # The same with two connections (redis-benchmark's default is 50): the
    # server is single-threaded, so a second connection only overlaps one
    # client's round trip with the other's.
    redis_settle
    measure ingest Redis redis-benchmark-c2 "redis-benchmark -c 2 -P 1000 XADD T2 * v <99 bytes> (AOF everysec)" 120 \
        redis-benchmark -h 127.0.0.1 -p "$redis_port" -n "$N" -c 2 -P 1000 -r 1000000000 -q \
        XADD bench2 '*' v "$value" >/dev/null
    redis-cli -h 127.0.0.1 -p "$redis_port" del bench2 >/dev/null
    redis_settle
    peer 120 redis-ingest-py --port "$redis_port" --input "$input" -n "$N"
    redis_settle
    peer 120 redis-read --port "$redis_port" --stream bench -n "$N"
    redis_settle
    peer 60 redis-latency --port "$redis_port" -n "$SAMPLES" --rate "$RATE"
else
    record_error ingest Redis redis-start "redis-server" "did not answer PING: $(tail -3 "$work/redis/redis.log" 2>/dev/null)"
fi
stop_pid "$redis_pid"; redis_pid=
rm -rf "$work/redis"

# --- NATS: JetStream, file storage; libnats (C) for every row
say "NATS"
mkdir -p "$work/nats"
nats_url=
native() { # group system key path time-limit command...: a C client that prints "MESSAGES SECONDS MSG_PER_S"
    local group=$1 system=$2 key=$3 path=$4 lim status got secs
    lim=$(limit "$5"); shift 5
    if [ "$lim" -lt 5 ]; then record_error "$group" "$system" "$key" "$path" "skipped: time budget spent"; return 1; fi
    run timeout "$lim" "$@" > "$work/native.out" 2> "$work/native.err"; status=$?
    if [ $status -ne 0 ]; then
        record_error "$group" "$system" "$key" "$path" \
            "exit status $status (124: time limit ${lim} s): $(tail -1 "$work/native.err")"
        return 1
    fi
    read -r got secs _ < "$work/native.out"
    if [ "$got" != "$N" ]; then
        record_error "$group" "$system" "$key" "$path" "$got messages, expected $N"
        return 1
    fi
    python3 "$helper" record --out "$results" --group "$group" --system "$system" --key "$key" --path "$path" \
        --messages "$N" --seconds "$secs"
    say "  $system: $path: $secs s"
}
native_latency() { # key path time-limit command...: a C client that prints its results row (JSON)
    local key=$1 path=$2 lim status
    lim=$(limit "$3"); shift 3
    if [ "$lim" -lt 5 ]; then record_error latency NATS "$key" "$path" "skipped: time budget spent"; return 1; fi
    run timeout $((lim + 10)) "$1" -t "$lim" "${@:2}" > "$work/native.out" 2> "$work/native.err"; status=$?
    if [ $status -ne 0 ] || ! python3 -c 'import json, sys; json.loads(sys.stdin.read())' < "$work/native.out" 2>/dev/null; then
        record_error latency NATS "$key" "$path" \
            "exit status $status (124: time limit $((lim + 10)) s): $(tail -1 "$work/native.err")"
        return 1
    fi
    cat "$work/native.out" >> "$results"
    say "  NATS: $path: $(cat "$work/native.out")"
}
if ! cc -O2 -o "$work/nats_pub" bench/nats_pub.c -lnats 2> "$work/cc.err" ||
   ! cc -O2 -o "$work/nats_read" bench/nats_read.c -lnats 2>> "$work/cc.err" ||
   ! cc -O2 -o "$work/nats_lat" bench/nats_lat.c -lnats 2>> "$work/cc.err"; then
    record_error ingest NATS nats-c-build "cc -O2 bench/nats_pub.c bench/nats_read.c bench/nats_lat.c -lnats" "$(tail -3 "$work/cc.err")"
else
    nats_port=$(python3 "$helper" free-port)
    nats_url=nats://127.0.0.1:$nats_port
    "$NATS_SERVER" -a 127.0.0.1 -p "$nats_port" -js -sd "$work/nats" -l "$work/nats/nats.log" &
    nats_pid=$!
    for _ in $(seq 100); do grep -q 'Server is ready' "$work/nats/nats.log" 2>/dev/null && break; sleep 0.1; done
    grep -q 'Server is ready' "$work/nats/nats.log" 2>/dev/null ||
        { record_error ingest NATS nats-start "nats-server" "not ready: $(tail -3 "$work/nats/nats.log" 2>/dev/null)"; nats_url=; }
fi
if [ -n "$nats_url" ]; then
    libnats="libnats $(dpkg-query -W -f='${Version}' libnats-dev 2>/dev/null | cut -d- -f1)"
    # The C clients time themselves: from the first publish (the file is read
    # before) to the last acknowledgement, or to the last message read.
    native ingest NATS nats-c-core "$libnats: core publish of the file's lines to the stream subject, flush, then poll stream info until it holds all (file storage)" 120 \
        "$work/nats_pub" -c -f "$input" "$nats_url" CORE core "$N"
    native ingest NATS nats-c-acked "$libnats: JetStream async publish of the file's lines, every ack awaited, up to 65,536 in flight (file storage)" 120 \
        "$work/nats_pub" -f "$input" "$nats_url" BENCH bench "$N"
    # mq-mirror: the same lines, produced into a topic first (not timed); the
    # time is mq-mirror's whole run, start-up and stream creation included.
    export MQ_DIR=$work/mq-mirror
    if "$BIN/mq-produce" bench < "$input"; then
        measure ingest "mq-mirror to JetStream" mq-mirror "mq-mirror -e --create T nats://…/MIRROR: mq topic -> JetStream, acked chunks, exactly once (file storage)" 150 \
            "$BIN/mq-mirror" -e --create --name bench --subject-prefix mirror bench "$nats_url/MIRROR"
    else
        record_error ingest "mq-mirror to JetStream" mq-mirror "mq-mirror -e --create" "mq-produce of the input failed"
    fi
    unset MQ_DIR
    rm -rf "$work/mq-mirror"
    native read NATS nats-c-pull "$libnats: durable pull consumer (AckAll), fetch 10,000, ack each batch" 150 \
        "$work/nats_read" -m pull -b 10000 "$nats_url" BENCH bench "$N"
    native read NATS nats-c-ordered "$libnats: ordered push consumer (flow control), NextMsg per message" 60 \
        "$work/nats_read" -m ordered "$nats_url" BENCH bench "$N"
    # Publish-to-delivery at RATE/s, timed by one process (bench/nats_lat.c).
    native_latency nats-latency "$libnats: js_Publish, ack awaited -> ordered push consumer (bench/nats_lat.c)" 60 \
        "$work/nats_lat" -r "$RATE" "$nats_url" LATENCY latency "$SAMPLES"
fi
stop_pid "$nats_pid"; nats_pid=

# --- The goals of docs/BENCHMARKS.md, in the same run (bench/goals.sh)
say "Goals"
lim=$(limit 180)
if [ "$lim" -ge 30 ]; then
    ROUNDS=${GOALS_ROUNDS:-1} BENCH_DIR="$work" run timeout "$lim" bench/goals.sh "$BIN" > "$work/goals.out" 2> "$work/goals.err" \
        || echo "goals.sh: exit status $? (124: time limit ${lim} s): $(tail -3 "$work/goals.err")" >> "$work/goals.out"
else
    echo "goals: skipped, time budget spent (make goals runs them alone)" > "$work/goals.out"
fi

python3 "$helper" report "$results"
status=$?
echo
cat "$work/goals.out"
echo
echo "run time: ${SECONDS} s"
exit $status
