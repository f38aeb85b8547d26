#!/usr/bin/env bash
# Installs the Debian packages visage builds and tests with, only those missing.
# Usage: scripts/deps.sh [--test] [--bench]   (--test adds what the test suite needs; --bench the
# index benchmark's peers, bench/peers.py: Debian's hnswlib and FAISS; CI does not install them)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libxnnpack-dev libpthreadpool-dev libturbojpeg0-dev libpng-dev
      libwebp-dev libgif-dev libjansson-dev libssl-dev libsqlite3-dev libmicrohttpd-dev
      libcurl4-openssl-dev libhiredis-dev libgumbo-dev libpsl-dev ca-certificates)
# npm ships inside NodeSource's nodejs; Debian splits it into its own package.
command -v npm >/dev/null 2>&1 || pkgs+=(nodejs npm)
# clang with its runtime libraries (libclang-rt-dev: libFuzzer and the
# sanitizers, only a Recommends of clang on Debian 12) for tests/fuzz/run.sh
for arg in "$@"; do
  case "$arg" in
    --test) pkgs+=(libcmocka-dev bc chromium redis-server clang libclang-rt-dev sqlite3) ;;
    --bench) pkgs+=(python3-numpy python3-hnswlib python3-faiss) ;;
    *) echo "usage: scripts/deps.sh [--test] [--bench]" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "deps: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "deps: ok"
