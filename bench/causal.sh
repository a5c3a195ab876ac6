#!/usr/bin/env bash
# bench/causal.sh: the cost and the effect of causal reads (server.causal_reads,
# wsrep_sync_wait = 1) on a local cluster, by bench/causal.py. Starts the cluster with
# `galley up --detach` if it does not run (and stops it again at the end).
#
# Environment (all optional): DIR=/tmp/galley-bench-proxy  GALLEY=/tmp/target-bench/release/galley
#   ROUNDS=2  WRITES=2000  READS=5000
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
trap 'stop_cluster_if_started' EXIT
for tool in mariadb curl /usr/bin/python3; do command -v "$tool" >/dev/null || die "$tool not found"; done
ensure_cluster
ensure_sbtest_user
log "galley: $GALLEY_BIN ($("$GALLEY_BIN" --version)); machine: $(nproc) cores, load $(loadavg)"
# Debian's python3 has PyMySQL (python3-pymysql, scripts/setup-debian.sh).
/usr/bin/python3 "$ROOT_DIR/bench/causal.py" --dir "$DIR" --rounds "${ROUNDS:-2}" \
    --writes "${WRITES:-2000}" --reads "${READS:-5000}"
