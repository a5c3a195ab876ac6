#!/usr/bin/env bash
# bench/chaos.sh: the long chaos run (issue 15): `galley chaos` with FAULTS faults mixing
# every class against a local cluster, the report kept in $DIR/chaos-report. Starts the
# cluster with `galley up --detach` if it does not run (and stops it again at the end).
# The CI smoke is crates/galley/tests/it/chaos.rs (one fault of each class).
#
# Environment (all optional): DIR=/tmp/galley-bench-chaos  GALLEY=/tmp/target-bench/release/galley
#   FAULTS=100  SEED=2026  BETWEEN=3  CLASSES=(all)
set -euo pipefail
DIR="${DIR:-/tmp/galley-bench-chaos}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
trap 'stop_cluster_if_started' EXIT
ensure_cluster
log "galley: $GALLEY_BIN ($("$GALLEY_BIN" --version)); machine: $(nproc) cores, load $(loadavg)"
args=(chaos --dir "$DIR" --faults "${FAULTS:-100}" --seed "${SEED:-2026}"
    --between "${BETWEEN:-3}" --report "$DIR/chaos-report")
[[ -n ${CLASSES:-} ]] && args+=(--classes "$CLASSES")
started=$(date +%s)
status=0
"$GALLEY_BIN" "${args[@]}" || status=$?
log "galley chaos exited with $status after $(($(date +%s) - started)) s; load $(loadavg)"
log "report: $DIR/chaos-report/report.md"
exit "$status"
