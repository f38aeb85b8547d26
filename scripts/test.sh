#!/usr/bin/env bash
# Installs what is missing, builds release and ASan+UBSan builds, runs every
# test in both, then the CLI tests. Ends with "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test || exit 1
(cd tests/s3 && npm ci --silent --no-audit --no-fund >/dev/null) || exit 1
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DVS_SANITIZE=ON >/dev/null || exit 1
cmake --build build-asan -j"$(nproc)" >/dev/null || exit 1
passed=0; failed=0; skipped=0
run_suite() { # name dir
  local out; out=$(cd "$2" && ctest --output-on-failure 2>&1); local rc=$?
  echo "$out" | grep -E "^ *[0-9]+/[0-9]+ Test|tests passed|FAILED|Error|ERROR|LINE|^#" || true
  local total fails
  total=$(echo "$out" | sed -n 's/.*tests failed out of \([0-9]*\).*/\1/p' | tail -1)
  fails=$(echo "$out" | sed -n 's/.* \([0-9]*\) tests failed out of.*/\1/p' | tail -1)
  if [ -z "$total" ] || [ "$total" = 0 ]; then
    echo "$1: no tests collected"; failed=$((failed + 1)); return
  fi
  local skips; skips=$(echo "$out" | grep -c "(Skipped)")
  passed=$((passed + total - fails - skips)); failed=$((failed + fails)); skipped=$((skipped + skips))
  [ $rc = 0 ] || [ "$fails" != 0 ] || failed=$((failed + 1))
}
echo "== release build"; run_suite release build
echo "== asan+ubsan build"; ASAN_OPTIONS=detect_leaks=1 run_suite asan build-asan
echo "== fuzz: each target 20 s on the seeds (clang, ASan+UBSan)"
fuzz_out=$(bash tests/fuzz/run.sh all 20 2>&1); echo "$fuzz_out" | grep -E "^fuzz |ERROR|runtime error|SUMMARY"
fp=$(echo "$fuzz_out" | grep -c "^fuzz [a-z0-9_]*: ok"); ff=$(echo "$fuzz_out" | grep -c "^fuzz [a-z0-9_]*: FAILED")
[ $((fp + ff)) = 0 ] && ff=1 && echo "fuzz: no target ran"
passed=$((passed + fp)); failed=$((failed + ff))
echo "== cli"
if bash tests/cli/test_cli.sh build/visage; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
(cd tests/integration && npm ci --silent --no-audit --no-fund >/dev/null) || { echo "npm ci failed"; failed=$((failed + 1)); }
run_node() { # label, binary, test dir
  echo "== ${3#tests/}: over HTTP ($1)"
  local out p f
  out=$(VISAGE_BIN="$2" node --test "$3" 2>&1); echo "$out" | grep -A3 -E "^# (tests|pass|fail)|not ok|error:|Sanitizer|runtime error" | grep -v -E "^--$|^ *(---|duration_ms|type:|\.\.\.)" | head -60
  p=$(echo "$out" | sed -n 's/^# pass \([0-9]*\)/\1/p'); f=$(echo "$out" | sed -n 's/^# fail \([0-9]*\)/\1/p')
  if [ -z "$p" ] || [ "$p" = 0 ]; then echo "integration ($1): no tests collected"; failed=$((failed + 1)); fi
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
}
run_node release "$PWD/build/visage" tests/integration/
ASAN_OPTIONS=detect_leaks=1 run_node "asan+ubsan" "$PWD/build-asan/visage" tests/integration/
# distributed mode: real redis-server and s3rver, started by the tests on loopback
run_node release "$PWD/build/visage" tests/distributed/
ASAN_OPTIONS=detect_leaks=1 run_node "asan+ubsan" "$PWD/build-asan/visage" tests/distributed/
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" = 0 ]
