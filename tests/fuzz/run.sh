#!/usr/bin/env bash
# Builds libFuzzer targets with clang (ASan+UBSan) into build-fuzz/ and runs
# each for a while on a corpus seeded from tests/fuzz/seeds/<target>/.
#   tests/fuzz/run.sh TARGET|all [SECONDS]      (default 60 s per target)
# Prints one line per target: "fuzz TARGET: ok|FAILED, N execs, N exec/s,
# corpus N" and, on a crash, leak, UBSan report or timeout, the reproducer
# path. Exit status is non-zero when any target failed (or did not build).
# Replay one reproducer: build-fuzz/fuzz_TARGET path/to/crash-file
set -uo pipefail
cd "$(dirname "$0")/../.."

# The library (every src/ file, as visage_lib in CMakeLists.txt) is built
# once with coverage instrumentation into build-fuzz/lib; each target is its
# tests/fuzz/fuzz_TARGET.c linked against it.
# target | extra sources | extra link flags | -max_len (bytes of one input)
# (a new target is one row here and its tests/fuzz/fuzz_TARGET.c)
TABLE=(
  "decode|||1048576"
  "model|||1048576"
  "crawl|||262144"
  "multipart|||262144"
  "base64|||65536"
  "json_msg|||65536"
  "s3_xml|||262144"
  "qdrant|||262144"
  "redis|||65536"
  "schema|||65536"
)
OUT=build-fuzz
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
INC=$(for d in src/*/; do printf -- '-I%s ' "${d%/}"; done)
PKGS="libturbojpeg libpng libwebp libwebpdemux jansson libcrypto sqlite3 libmicrohttpd libcurl hiredis gumbo libpsl"

row_of() { # target -> its table row, or nothing
  local r; for r in "${TABLE[@]}"; do [ "${r%%|*}" = "$1" ] && { echo "$r"; return; }; done
}

# Builds build-fuzz/lib/libvisage_lib.a with clang, instrumented for
# libFuzzer (CMake rebuilds only what changed).
build_lib() {
  cmake -S . -B "$OUT/lib" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=Debug \
    -DCMAKE_C_FLAGS="-O1 -fsanitize=fuzzer-no-link $SAN" >/dev/null &&
    cmake --build "$OUT/lib" --target visage_lib -j2 >/dev/null
}

# Links build-fuzz/fuzz_T from its .c, the table's extra sources and the library.
build() { # target
  local t=$1 row srcs libs
  row=$(row_of "$t"); IFS='|' read -r _ srcs libs _ <<<"$row"
  # shellcheck disable=SC2086
  clang -std=c17 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer $SAN $INC "tests/fuzz/fuzz_$t.c" $srcs \
    "$OUT/lib/libvisage_lib.a" $(pkg-config --libs $PKGS) -lgif -lXNNPACK -lpthreadpool $libs -lm -lpthread \
    -o "$OUT/fuzz_$t"
}

# Copies the seeds (and, for decode, the shared photos) into the corpus dir.
seed() { # target corpus
  [ -d "tests/fuzz/seeds/$1" ] && cp -n tests/fuzz/seeds/"$1"/* "$2"/ 2>/dev/null
  if [ "$1" = decode ] && [ -d ../shared/data/faces ]; then
    cp -n ../shared/data/faces/*.jpg ../shared/data/faces/test_images/32bit.png "$2"/ 2>/dev/null
  elif [ "$1" = model ]; then cp -n models/*.json "$2"/ 2>/dev/null; fi
  return 0
}

# Runs one target for secs; prints its summary line; 0 when clean.
run_one() { # target secs
  local t=$1 secs=$2 row maxlen corpus="$OUT/corpus-$1" log="$OUT/fuzz-$1.log"
  row=$(row_of "$t"); maxlen=${row##*|}
  if ! build "$t" >"$OUT/build-$t.log" 2>&1; then
    echo "fuzz $t: FAILED to build (see $OUT/build-$t.log)"; tail -5 "$OUT/build-$t.log"; return 1
  fi
  mkdir -p "$corpus" "$OUT/crashes"; seed "$t" "$corpus"
  # -timeout: one input may take at most 10 s (a slow decode of a big photo
  # under ASan is ~1 s); -rss_limit_mb/-malloc_limit_mb catch unbounded
  # allocation from a size read in the input.
  local dict=(); [ -f "tests/fuzz/seeds/$t.dict" ] && dict=(-dict="tests/fuzz/seeds/$t.dict")
  "$OUT/fuzz_$t" "${dict[@]}" -max_total_time="$secs" -max_len="$maxlen" -timeout=10 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -print_final_stats=1 -artifact_prefix="$OUT/crashes/$t-" "$corpus" >"$log" 2>&1
  local rc=$?
  local execs per repro n
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  per=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  n=$(find "$corpus" -type f | wc -l)
  repro=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
  if [ $rc = 0 ] && [ -z "$repro" ]; then
    echo "fuzz $t: ok, ${execs:-?} execs, ${per:-?} exec/s, corpus $n"
    return 0
  fi
  echo "fuzz $t: FAILED (exit $rc), ${execs:-?} execs, corpus $n, log $log"
  grep -E "ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY" "$log" | head -5
  [ -n "$repro" ] && echo "fuzz $t: reproducer $repro (replay: $OUT/fuzz_$t $repro)"
  return 1
}

want=${1:?TARGET or all (targets: $(for r in "${TABLE[@]}"; do printf '%s ' "${r%%|*}"; done))}
secs=${2:-60}
command -v clang >/dev/null || { echo "fuzz: clang not found (scripts/deps.sh --test installs it)"; exit 1; }
mkdir -p "$OUT"
build_lib || { echo "fuzz: building the library with clang failed (run: cmake --build $OUT/lib)"; exit 1; }
if [ "$want" = all ]; then
  list=(); for r in "${TABLE[@]}"; do t=${r%%|*}; [ -f "tests/fuzz/fuzz_$t.c" ] && list+=("$t"); done
else
  [ -n "$(row_of "$want")" ] || { echo "fuzz: unknown target $want"; exit 2; }
  list=("$want")
fi
bad=0
for t in "${list[@]}"; do run_one "$t" "$secs" || bad=$((bad + 1)); done
[ "$bad" = 0 ]
