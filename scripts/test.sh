#!/usr/bin/env bash
# The whole test suite, as CI runs it: install MariaDB + Galera, check formatting and
# lints, then run every test (unit tests and real-cluster integration tests).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-debian.sh
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
# The pure crates must stay free of I/O dependencies (ARCHITECTURE.md, invariants).
for crate in spec galera planner; do
    if cargo tree -p "$crate" -e normal --prefix none | grep -E '^(tokio|mysql_async|reqwest|axum) ' ; then
        echo "error: $crate depends on an I/O crate" >&2
        exit 1
    fi
done
# The console's browser test (crates/galley/tests/it/console.rs) runs Node with
# playwright-core from tests/browser; the lock file pins it, the npm cache keeps it offline.
(cd tests/browser && npm ci --no-audit --no-fund --prefer-offline)
# The Grafana dashboard (deploy/grafana/galley.json) against Grafana's dashboard types
# (@grafana/schema, checked by the TypeScript compiler); the metrics test runs it too.
(cd tests/grafana && npm ci --no-audit --no-fund --prefer-offline && node check.mjs)
# The Debian package of the debug binary (and cargo-deb, when missing); the package test
# (crates/galley/tests/it/deb.rs) packs it again without building.
bash scripts/build-deb.sh --dev
cargo test --workspace
# The fuzz targets (fuzz/): replay each committed corpus and fuzz each briefly; the long
# runs are bench/fuzz-long.sh (BENCHMARKS.md).
FUZZ_SECONDS=8 bash scripts/fuzz-smoke.sh
