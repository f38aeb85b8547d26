#!/usr/bin/env bash
# Fresh Debian 12 -> a built visage: system packages, models (npm, hash-checked), release build.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh "$@"
scripts/fetch-models.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
echo "setup: build/visage ready"
