#!/bin/sh
# run_index_search.sh OUT ARGS... - runs build/bench_index_search ARGS with a
# header of the machine's state (date, CPU, cores, load) written to OUT first.
out=$1; shift
{
  echo "# $(date -u '+%Y-%m-%d %H:%M UTC')  $(lscpu | sed -n 's/^Model name: *//p'), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "# (the 2 cores are shared with other sessions: timings are noisy, compare ratios within this run)"
  echo "\$ build/bench_index_search $*"
} > "$out"
build/bench_index_search "$@" >> "$out"
echo "# finished $(date -u '+%Y-%m-%d %H:%M UTC'), load average $(cut -d' ' -f1-3 /proc/loadavg)" >> "$out"
