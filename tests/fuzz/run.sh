#!/usr/bin/env bash
# Builds a libFuzzer target with clang (ASan+UBSan) and runs it for a while
# on the seed corpus (shared photos / the real model.json files).
#   tests/fuzz/run.sh decode|model [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?decode or model}; secs=${2:-60}
out=build-fuzz; mkdir -p "$out/corpus-$target"
flags="-std=c17 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc/core -Isrc/image -Isrc/nn"
clang $flags tests/fuzz/fuzz_$target.c src/core/*.c src/image/*.c src/nn/*.c -o "$out/fuzz_$target" \
  $(pkg-config --libs libturbojpeg libpng libwebp libwebpdemux jansson) -lgif -lXNNPACK -lpthreadpool -lm -lpthread
if [ "$target" = decode ]; then cp ../shared/data/faces/*.jpg ../shared/data/faces/test_images/32bit.png "$out/corpus-$target/" 2>/dev/null || true
else cp models/*.json "$out/corpus-$target/" 2>/dev/null || true; fi
"$out/fuzz_$target" -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 "$out/corpus-$target"
