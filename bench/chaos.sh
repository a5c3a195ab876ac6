#!/usr/bin/env bash
# bench/chaos.sh: the long chaos runs (issue 15), against a local cluster that this
# script starts with `galley up --detach` when it does not run (and stops at the end):
#
#   1. galley: `galley chaos` with FAULTS faults mixing every class, through galley's
#      proxy (report in $DIR/chaos-galley);
#   2. the comparison, unless COMPARE=0: the same seed and COMPARE_FAULTS faults of every
#      class but kill-proxy (HAProxy is not galley's to kill), once through galley's proxy
#      and once through HAProxy 2.6 configured as OpenStack deployment tools do (one
#      active server, the others backup, /clustercheck every 2 s, fall 3), in front of
#      the same cluster (reports in $DIR/chaos-compare-galley and $DIR/chaos-haproxy).
#
# The CI smoke is crates/galley/tests/it/chaos.rs (one fault of each class).
#
# Environment (all optional): DIR=/tmp/galley-bench-chaos  GALLEY=/tmp/target-bench/release/galley
#   FAULTS=100  SEED=2026  BETWEEN=3  COMPARE=1  COMPARE_FAULTS=21
set -euo pipefail
DIR="${DIR:-/tmp/galley-bench-chaos}"
# The HAProxy configuration goes with the run, not over bench/haproxy-galera.cfg.
HAPROXY_CFG="${HAPROXY_CFG:-$DIR/haproxy.cfg}"
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
trap 'stop_haproxy; stop_cluster_if_started' EXIT
ensure_cluster
SEED="${SEED:-2026}"
status=0

run_chaos() { # NAME FAULTS [galley chaos arguments...]
    local name=$1 faults=$2 started code=0
    shift 2
    log "galley chaos ($name): $faults faults, seed $SEED; load $(loadavg)"
    started=$(date +%s)
    "$GALLEY_BIN" chaos --dir "$DIR" --faults "$faults" --seed "$SEED" \
        --between "${BETWEEN:-3}" --report "$DIR/chaos-$name" "$@" >"$DIR/chaos-$name.log" 2>&1 || code=$?
    log "galley chaos ($name) exited with $code after $(($(date +%s) - started)) s; load $(loadavg)"
    sed -n '1,/^## Faults/p' "$DIR/chaos-$name/report.md" 2>/dev/null || tail -20 "$DIR/chaos-$name.log"
    [[ $code -eq 0 ]] || status=$code
}

log "galley: $GALLEY_BIN ($("$GALLEY_BIN" --version)); machine: $(nproc) cores"
run_chaos galley "${FAULTS:-100}"
if [[ ${COMPARE:-1} -eq 1 ]]; then
    command -v haproxy >/dev/null || die "haproxy not found (apt-get install haproxy)"
    classes=kill-node,kill-writer,kill-all,hang-node,hang-writer,kill-agent,kill-controller
    run_chaos compare-galley "${COMPARE_FAULTS:-21}" --classes "$classes"
    start_haproxy
    run_chaos haproxy "${COMPARE_FAULTS:-21}" --classes "$classes" --through "127.0.0.1:$HAPROXY_PORT"
fi
exit "$status"
