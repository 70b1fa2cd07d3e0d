#!/usr/bin/env bash
# Regenerates the committed shell completions from built binaries:
#
#   scripts/generate-completions.sh BIN_DIR      (e.g. .build/release)
#
# Each tool writes its own with ArgumentParser's --generate-completion-script.
# Tests/blackbox/test_docs.py fails when the committed files differ from what
# the binaries generate.
set -euo pipefail
if [ $# -ne 1 ]; then
    echo "usage: scripts/generate-completions.sh BIN_DIR (e.g. .build/release)" >&2
    exit 64
fi
bin=$(cd "$1" && pwd)
cd "$(dirname "$0")/.."
tools=(mq-produce mq-tail mq-topic mq-consume mq-stat mq-bench mq-replay mq-dlq mq-compact mq-group mq-mirror)
mkdir -p completions/bash completions/zsh completions/fish
for tool in "${tools[@]}"; do
    "$bin/$tool" --generate-completion-script bash > "completions/bash/$tool"
    "$bin/$tool" --generate-completion-script zsh > "completions/zsh/_$tool"
    "$bin/$tool" --generate-completion-script fish > "completions/fish/$tool.fish"
done
