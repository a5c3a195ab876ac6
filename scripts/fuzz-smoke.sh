#!/usr/bin/env bash
# The fuzz targets' smoke run, for CI: builds every target in fuzz/ (cargo-fuzz and
# libFuzzer; nightly, or the default toolchain), replays its committed corpus
# (fuzz/corpus/TARGET) and fuzzes it for a few seconds. Exits non-zero when any target
# crashes (a panic, a failed property, a hang of more than 10 s on one input); the input
# is kept in fuzz/artifacts/TARGET/. New inputs found here are thrown away: the committed
# corpus changes only by hand (fuzz/README.md).
#
#   FUZZ_SECONDS=N   seconds of fuzzing per target after the replay (default 8)
#   FUZZ_TARGETS="a b"   only these targets (default: every one, `cargo fuzz list`)
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${FUZZ_SECONDS:-8}
# No sanitizer: the code under test has no unsafe (the workspace denies it, the one
# exception is the proxy's bpf module, which no target reaches); panics and failed
# assertions are what a target finds, and ASan would halve the executions. -a keeps
# debug assertions and overflow checks on.
flags=(--fuzz-dir fuzz -s none -a)

# cargo-fuzz wants nightly, but without a sanitizer it needs no -Z flag, so the default
# toolchain builds the same targets where no nightly can be had.
toolchain=+nightly
if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz-smoke: no nightly toolchain; installing it (rustup toolchain install nightly)"
    if ! rustup toolchain install nightly --profile minimal; then
        echo "fuzz-smoke: nightly cannot be installed here; building with the default toolchain"
        toolchain=+$(rustup show active-toolchain | cut -d' ' -f1)
    fi
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz-smoke: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

cargo "$toolchain" fuzz build "${flags[@]}"
targets=${FUZZ_TARGETS:-$(cargo "$toolchain" fuzz list --fuzz-dir fuzz)}

scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
passed=0
failed=0
for target in $targets; do
    mkdir -p "$scratch/$target" "fuzz/corpus/$target"
    log="$scratch/$target.log"
    # The first directory takes new inputs (scratch); the second is the committed corpus,
    # every input of which is run first.
    dict=()
    [ -f "fuzz/dict/$target.dict" ] && dict=(-dict="fuzz/dict/$target.dict")
    if cargo "$toolchain" fuzz run "${flags[@]}" "$target" "$scratch/$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 "${dict[@]}" >"$log" 2>&1; then
        passed=$((passed + 1))
        status=ok
    else
        failed=$((failed + 1))
        status=CRASHED
    fi
    stat() { sed -n "s/^stat::$1: *//p" "$log" | tail -1; }
    seeds=$(find "fuzz/corpus/$target" -type f | wc -l)
    printf 'fuzz-smoke: %-14s %-7s %9s runs %7s/s, corpus %s seeds + %s new\n' \
        "$target" "$status" "$(stat number_of_executed_units)" "$(stat average_exec_per_sec)" \
        "$seeds" "$(find "$scratch/$target" -type f | wc -l)"
    if [ "$status" != ok ]; then
        grep -E 'panicked at|^SUMMARY|Test unit written to|^==[0-9]+== ERROR' "$log" | head -20 || true
        tail -40 "$log"
    fi
done
echo "fuzz-smoke: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
