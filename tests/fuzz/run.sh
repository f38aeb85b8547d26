#!/usr/bin/env bash
# Builds a libFuzzer target with clang (ASan+UBSan) and runs it for a while
# on the seed corpus (shared photos / the real model.json files).
#   tests/fuzz/run.sh decode|model|crawl [seconds]
set -euo pipefail
cd "$(dirname "$0")/../.."
target=${1:?decode, model or crawl}; secs=${2:-60}
out=build-fuzz; mkdir -p "$out/corpus-$target"
flags="-std=c17 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -Isrc/core -Isrc/image -Isrc/nn -Isrc/crawler"
if [ "$target" = crawl ]; then
  # the parsers only: robots.txt, HTML extraction, URL normalisation (no network code runs)
  clang $flags tests/fuzz/fuzz_crawl.c src/core/*.c src/crawler/vs_robots.c src/crawler/vs_html.c \
    src/crawler/vs_crawl.c src/crawler/vs_fetch.c src/image/*.c -o "$out/fuzz_crawl" \
    $(pkg-config --libs libturbojpeg libpng libwebp libwebpdemux jansson gumbo libcurl sqlite3 libcrypto libpsl) -lgif -lm -lpthread
else
  clang $flags tests/fuzz/fuzz_$target.c src/core/*.c src/image/*.c src/nn/*.c -o "$out/fuzz_$target" \
    $(pkg-config --libs libturbojpeg libpng libwebp libwebpdemux jansson sqlite3 libcrypto) -lgif -lXNNPACK -lpthreadpool -lm -lpthread
fi
if [ "$target" = decode ]; then cp ../shared/data/faces/*.jpg ../shared/data/faces/test_images/32bit.png "$out/corpus-$target/" 2>/dev/null || true
elif [ "$target" = crawl ]; then
  printf 'User-agent: *\nDisallow: /private/\nAllow: /private/ok$\nCrawl-delay: 2\n\0<html><base href="/b/"><img srcset="a.jpg 1x, b.jpg 2x"><picture><source srcset="c.webp 800w"></picture><meta property="og:image" content="//cdn.example.com/o.jpg"><a href="../up.html#f">u</a><a href="HTTP://EXAMPLE.com:80/x">x</a></html>' > "$out/corpus-crawl/seed1"
else cp models/*.json "$out/corpus-$target/" 2>/dev/null || true; fi
"$out/fuzz_$target" -max_total_time="$secs" -max_len=1048576 -rss_limit_mb=2048 "$out/corpus-$target"
