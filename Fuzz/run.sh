#!/usr/bin/env bash
# Builds the fuzz target, makes the seed corpus, runs libFuzzer (docs/TESTING.md).
#
#   Fuzz/run.sh [SECONDS] [JOBS]          what `make fuzz` runs (defaults 300, 1)
#   Fuzz/run.sh --build                   only build Fuzz/.build/release/mq-fuzz
#
# Environment: SWIFT (default swift), MQ_FUZZ_TARGET (fuzz one target only:
# batches, rewrite, gzip, snappy, lz4, zstd, uncompressed, head,
# committedOffsets, queueState, swapJournal, copyState, partition, dedupStore),
# ASAN_OPTIONS (default below), FUZZ_ARGS (more libFuzzer flags).
#
# Everything it makes is under Fuzz/.build/: the seeds (corpus-seed/, made
# afresh each run from the release tools and the fixtures), what libFuzzer
# added (corpus/, kept across runs), the inputs that crashed (crashes/,
# one file per crash, with crash-, oom-, timeout- or leak- in its name) and
# the log (fuzz.log). Crashes do not stop the run: libFuzzer runs in fork
# mode and carries on. The exit status is 1 when this run found any.
set -euo pipefail

cd "$(dirname "$0")/.."
SWIFT=${SWIFT:-swift}
seconds=${1:-300}
jobs=${2:-1}
work=Fuzz/.build
bin=$work/release/mq-fuzz

build() {
    # The sanitizer flags reach every target of the graph, MQLog and its
    # C targets' Swift users included; -enable-testing lets the harness
    # reach MQLog's internal decoders through @testable import.
    "$SWIFT" build -c release --package-path Fuzz --product mq-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -parse-as-library -Xswiftc -enable-testing
}

if [ "${1:-}" = "--build" ]; then
    build
    exit 0
fi
if [ "$jobs" -gt 2 ]; then
    echo "run.sh: at most 2 jobs (the machine has 2 cores)" >&2
    jobs=2
fi

"$SWIFT" build -c release  # the seed corpus is made with the release tools
build
mkdir -p "$work/corpus" "$work/crashes"
fixtures=(Tests/MQLogTests/Fixtures)
[ -d ../shared/fixtures ] && fixtures+=(../shared/fixtures)
python3 Fuzz/make-corpus.py .build/release "$work/corpus-seed" "${fixtures[@]}"

before=$(find "$work/crashes" -type f | wc -l)
# The Swift runtime's own crash handler would read the dying process's
# memory under the address sanitizer and be reported instead of the crash.
export SWIFT_BACKTRACE=enable=no
# Smaller than default quarantine and allocation stacks: the partition target
# allocates several 1 MiB buffers per input, and these set its speed.
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=2:quarantine_size_mb=16}
if [ -x /opt/swift/usr/bin/llvm-symbolizer ] && [ -z "${ASAN_SYMBOLIZER_PATH:-}" ]; then
    export ASAN_SYMBOLIZER_PATH=/opt/swift/usr/bin/llvm-symbolizer
fi
# The file targets' scratch directories (one per process; a crashed one leaves its own).
scratch_parent=/dev/shm
[ -d "$scratch_parent" ] && [ -w "$scratch_parent" ] || scratch_parent=${TMPDIR:-/tmp}
MQ_FUZZ_SCRATCH=$(mktemp -d "$scratch_parent/mq-fuzz-run.XXXXXX")
export MQ_FUZZ_SCRATCH
trap 'rm -rf "$MQ_FUZZ_SCRATCH"' EXIT
echo "run.sh: fuzzing for ${seconds}s with $jobs job(s); log in $work/fuzz.log, crashes in $work/crashes/"
status=0
# shellcheck disable=SC2086
"$bin" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -dict=Fuzz/mq.dict -artifact_prefix="$work/crashes/" ${FUZZ_ARGS:-} \
    "$work/corpus" "$work/corpus-seed" >"$work/fuzz.log" 2>&1 || status=$?

# Fork mode's progress lines: "#EXECS: cov: ... oom/timeout/crash: O/T/C time: ...".
last=$(grep -E '^#[0-9]+: cov:' "$work/fuzz.log" | tail -1 || true)
execs=$(printf '%s\n' "$last" | sed -nE 's/^#([0-9]+):.*/\1/p')
found=$(( $(find "$work/crashes" -type f | wc -l) - before ))
echo "run.sh: ${execs:-0} executions in ${seconds}s; ${found} new crash input(s) in $work/crashes/ (libFuzzer exit status $status)"
[ -n "$last" ] && echo "run.sh: $last"
if [ "$found" -gt 0 ]; then
    echo "run.sh: reproduce one with: SWIFT_BACKTRACE=enable=no $bin $work/crashes/<file>" >&2
    exit 1
fi
