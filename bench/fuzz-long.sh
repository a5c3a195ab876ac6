#!/usr/bin/env bash
# bench/fuzz-long.sh: the long fuzz run that BENCHMARKS.md records ("Fuzzing"): each
# target in fuzz/ for S seconds (default 600), one after another, then one table row per
# target: executions (libFuzzer's stat::number_of_executed_units), executions per second,
# the corpus it ended with, peak RSS, and whether it crashed (the input is then in
# fuzz/artifacts/TARGET/; a crash ends that target's run early, the others still run).
#
# Usage: bash bench/fuzz-long.sh [--seconds S] [--targets "a b"]
#
# The corpus grows in fuzz/target/long-corpus/TARGET (kept between runs, so a second run
# goes on from the first; not committed: fuzz/README.md says how to fold it into
# fuzz/corpus with `cargo fuzz cmin`). Builds exactly as scripts/fuzz-smoke.sh does
# (nightly, no sanitizer, debug assertions). Runs one target at a time on one core.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=600
targets=""
while [ $# -gt 0 ]; do
    case $1 in
        --seconds) seconds=$2; shift 2 ;;
        --targets) targets=$2; shift 2 ;;
        *) echo "usage: bash bench/fuzz-long.sh [--seconds S] [--targets \"a b\"]" >&2; exit 2 ;;
    esac
done

flags=(--fuzz-dir fuzz -s none -a)
# As scripts/fuzz-smoke.sh: nightly when there is one, else the default toolchain.
toolchain=+nightly
rustup toolchain list | grep -q '^nightly' || toolchain=+$(rustup show active-toolchain | cut -d' ' -f1)
cargo fuzz --version >/dev/null 2>&1 || cargo install cargo-fuzz --locked
cargo "$toolchain" fuzz build "${flags[@]}"
targets=${targets:-$(cargo "$toolchain" fuzz list --fuzz-dir fuzz)}

logs=fuzz/target/long-logs
mkdir -p "$logs"
rows=()
crashed=0
started=$(date -u +%Y-%m-%dT%H:%MZ)
for target in $targets; do
    grown=fuzz/target/long-corpus/$target
    mkdir -p "$grown" "fuzz/corpus/$target"
    log=$logs/$target.log
    echo "[$(date +%H:%M:%S)] $target: ${seconds} s" >&2
    dict=()
    [ -f "fuzz/dict/$target.dict" ] && dict=(-dict="fuzz/dict/$target.dict")
    if cargo "$toolchain" fuzz run "${flags[@]}" "$target" "$grown" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
        outcome="none"
    else
        crashed=$((crashed + 1))
        outcome="CRASH: $(sed -n 's/.*Test unit written to //p' "$log" | tail -1)"
    fi
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    units=$(find "$grown" "fuzz/corpus/$target" -type f | wc -l)
    rows+=("| $target | $(stat number_of_executed_units) | $(stat average_exec_per_sec) | $units | $(stat peak_rss_mb) | $outcome |")
done

echo
echo "Fuzzing, $seconds s per target, started $started, commit $(git rev-parse --short HEAD), load $(cut -d' ' -f1-3 /proc/loadavg):"
echo
echo "| target | executions | exec/s | corpus (files) | peak RSS (MB) | crashes |"
echo "|---|---:|---:|---:|---:|---|"
printf '%s\n' "${rows[@]}"
[ "$crashed" -eq 0 ]
