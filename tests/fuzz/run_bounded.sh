#!/usr/bin/env bash
# tests/fuzz/run_bounded.sh FUZZER SECONDS SEED_DIR WORK_DIR — run libFuzzer
# for a bounded time on a copy of the seed corpus. A crash leaves its input in
# WORK_DIR/crash-*; copy it into tests/fuzz/regressions/ with the fix.
set -euo pipefail
fuzzer=$1 secs=$2 seeds=$3 work=$4
rm -rf "$work" && mkdir -p "$work/corpus"
cp "$seeds"/* "$work/corpus/"
cd "$work"
"$fuzzer" -max_total_time="$secs" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
    -print_final_stats=1 corpus 2>&1 | tail -n 25
