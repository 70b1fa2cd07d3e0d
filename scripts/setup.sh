#!/usr/bin/env bash
# Installs what building and testing mq needs on a Debian or Ubuntu machine:
# the C libraries of the codecs, pkg-config, mandoc, FUSE 3 (for the
# power-loss simulator of the black-box tests), and the Python packages
# of the interoperability and black-box tests. Safe to run again: it installs
# only what is missing, and asks apt for nothing when nothing is.
#
#   scripts/setup.sh
#
# Runs apt-get through sudo unless already root. The Swift toolchain itself
# (6.1 or later) is not installed here: see https://www.swift.org/install/.
set -euo pipefail

# libnats-dev: mq-mirror's NATS client; nats-server: the server its tests start.
# librdkafka-dev: mq-mirror's Kafka client (its tests also build a mock cluster with it);
# kcat: what those tests read Kafka back with.
debian_packages=(zlib1g-dev liblz4-dev libsnappy-dev libzstd-dev pkg-config mandoc python3-pip fuse3 libfuse3-dev strace
                 libnats-dev nats-server librdkafka-dev kcat)

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

# Which pinned Python packages are absent or at another version?
mapfile -t wanted < <(python3 - "${python_packages[@]}" <<'PY'
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
    echo "setup.sh: installing ${wanted[*]} for $(command -v python3)" >&2
    pip_args=(--quiet --disable-pip-version-check)
    # Outside a virtual environment, a non-root user installs into ~/.local.
    if [ "$(id -u)" -ne 0 ] && python3 -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)'; then
        pip_args+=(--user)
    fi
    if ! python3 -m pip install "${pip_args[@]}" "${wanted[@]}"; then
        # Debian's own python3 refuses pip installs (PEP 668) unless told otherwise.
        echo "setup.sh: retrying with --break-system-packages" >&2
        python3 -m pip install "${pip_args[@]}" --break-system-packages "${wanted[@]}"
    fi
fi
