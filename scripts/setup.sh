#!/usr/bin/env bash
# Installs what building and testing mq needs on a Debian or Ubuntu machine.
#
#   scripts/setup.sh          everything: what `make` needs, then what `make test` needs
#   scripts/setup.sh build    only what building needs (make, make demo, make install)
#
# Building needs the C libraries of the codecs and of mq-mirror's clients and
# pkg-config, installed with apt-get (through sudo unless already root). Testing
# adds mandoc, jq, FUSE 3 (the power-loss simulator of the black-box tests),
# strace, nats-server and kcat, and the pinned Python packages of the
# interoperability and black-box tests, which go into a virtual environment,
# .build/venv (MQ_VENV overrides), never into the system's Python: `make test`
# runs pytest, and the Swift tests' python3, from there. Safe to run again: it
# installs only what is missing, and asks apt for nothing when nothing is.
#
# The Swift toolchain itself (6.1 or later) is not installed here: see
# https://www.swift.org/install/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
venv=${MQ_VENV:-$root/.build/venv}

case "${1:-test}" in
    build) want_test=false ;;
    test) want_test=true ;;
    *) echo "usage: scripts/setup.sh [build|test]" >&2; exit 64 ;;
esac

# libnats-dev: mq-mirror's NATS client; librdkafka-dev: its Kafka client.
debian_packages=(zlib1g-dev liblz4-dev libsnappy-dev libzstd-dev pkg-config libnats-dev librdkafka-dev)
# nats-server: the server the mirror tests start; kcat: what they read Kafka back with;
# python3-venv: the tests' virtual environment (Debian's python3 comes without it).
if $want_test; then
    debian_packages+=(mandoc jq python3 python3-venv fuse3 libfuse3-dev strace nats-server kcat)
fi

# Versions the tests are known to pass with.
python_packages=(
    kafka-python==3.0.12
    lz4==4.4.5
    python-snappy==0.7.3
    zstandard==0.25.0
    crc32c==2.9.post0
    pytest==9.0.3
    prometheus-client==0.26.0
    nats-py==2.16.0
)

sudo=()
if [ "$(id -u)" -ne 0 ]; then sudo=(sudo); fi

missing=()
for p in "${debian_packages[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing+=("$p")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup.sh: installing ${missing[*]}" >&2
    "${sudo[@]}" apt-get update
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
fi

$want_test || exit 0

# A venv whose python no longer runs (its base Python was removed or moved) is made anew.
if [ -e "$venv" ] && ! "$venv/bin/python" -c '' 2>/dev/null; then
    echo "setup.sh: $venv does not work; making it again" >&2
    rm -rf "$venv"
fi
if [ ! -e "$venv/bin/python" ]; then
    echo "setup.sh: making the tests' virtual environment $venv" >&2
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv"
fi

# Which pinned Python packages are absent from the venv, or at another version?
mapfile -t wanted < <("$venv/bin/python" - "${python_packages[@]}" <<'PY'
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
if [ ${#wanted[@]} -gt 0 ]; then
    echo "setup.sh: installing ${wanted[*]} into $venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "${wanted[@]}"
fi

# kafka-python 3 cannot talk to librdkafka's mock cluster (it needs request
# versions the mock does not answer), 2.0.2 can: the mirror's Kafka tests
# read the mock back with it as well as with kcat, from a directory of its
# own (Tests/blackbox/helpers/kafka_python_read.py puts it on sys.path).
old_kafka_python="$root/.build/kafka-python-2.0.2"
if [ ! -e "$old_kafka_python/kafka/__init__.py" ]; then
    echo "setup.sh: installing kafka-python==2.0.2 into $old_kafka_python" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --target "$old_kafka_python" kafka-python==2.0.2
fi
