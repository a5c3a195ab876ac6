#!/usr/bin/env bash
# bench/deploy.sh: how long `galley deploy` takes on the netns test bed (tests/netns/bed.sh):
# three data hosts and one proxy + controller host, each with its own sshd, reached over
# real SSH. Packages are already installed on the bed (it shares /usr with this machine),
# so the times leave out package downloads.
#
# Measures, once per run:
#   first     `galley deploy --accept-new-host-keys` on fresh hosts, until it returns (it
#             returns once every node is Synced and the proxy and controller run)
#   again     the same command a second time (nothing to change; says so)
#   rolling   `galley deploy` after max_connections changed in galley.toml: a rolling
#             restart of the three nodes, drained at the proxy, each Synced before the next
#
# Usage: bash bench/deploy.sh [--runs N] [--galley PATH]
#   --galley PATH  galley binary (default: $GALLEY, else target/release/galley, built with
#                  `cargo build --release -p galley` if missing)
# Needs root. Takes the bed's lock (/tmp/galley-netns-bed.lock), so it waits for a running
# deployment test to finish instead of disturbing it.
set -euo pipefail

RUNS=1
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
GALLEY_BIN="${GALLEY:-$ROOT_DIR/target/release/galley}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
        --galley) GALLEY_BIN="${2:?--galley needs a path}"; shift 2 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "--runs must be a positive integer" >&2; exit 2; }
if [[ ! -x "$GALLEY_BIN" ]]; then
    (cd "$ROOT_DIR" && cargo build --release -p galley)
fi
BED="$ROOT_DIR/tests/netns/bed.sh"

exec 9>/tmp/galley-netns-bed.lock
flock 9
bash "$BED" clean

seconds_of() {
    local started=$EPOCHREALTIME
    "$@" >>"$LOG" 2>&1 || { echo "failed: $* (see $LOG)" >&2; tail -20 "$LOG" >&2; exit 1; }
    awk -v a="$EPOCHREALTIME" -v b="$started" 'BEGIN { print a - b }'
}

spec() {
    local max_connections=$1
    cat <<EOF
[cluster]
name = "bench"
secrets_file = "/etc/galley/secrets.toml"

[server]
buffer_pool_size = "64M"
log_file_size = "48M"
gcache_size = "64M"
max_connections = $max_connections

[deploy]
ssh_user = "galleytest"
ssh_key = "$WORK/id_ed25519"

[proxy]
address = "10.77.0.14"

[controller]
address = "10.77.0.14"

[[node]]
name = "db1"
address = "10.77.0.11"
data_dir = "/var/lib/mysql"

[[node]]
name = "db2"
address = "10.77.0.12"
data_dir = "/var/lib/mysql"

[[node]]
name = "db3"
address = "10.77.0.13"
data_dir = "/var/lib/mysql"
EOF
}

printf '%-4s %10s %10s %10s\n' run first_s again_s rolling_s
for run in $(seq 1 "$RUNS"); do
    WORK=$(mktemp -d /tmp/galley-bench-deploy.XXXXXX)
    LOG="$WORK/bench.log"
    trap 'bash "$BED" down "$WORK" >/dev/null 2>&1 || true' EXIT
    bash "$BED" up "$WORK" 4 >>"$LOG" 2>&1
    mkdir -p "$WORK/operator"
    spec 200 >"$WORK/operator/galley.toml"
    first=$(seconds_of "$GALLEY_BIN" deploy --accept-new-host-keys --dir "$WORK/operator")
    again=$(seconds_of "$GALLEY_BIN" deploy --dir "$WORK/operator")
    grep -q "Nothing changed" "$LOG" || { echo "the second deploy changed something (see $LOG)" >&2; exit 1; }
    spec 300 >"$WORK/operator/galley.toml"
    rolling=$(seconds_of "$GALLEY_BIN" deploy --dir "$WORK/operator")
    printf '%-4s %10.1f %10.1f %10.1f\n' "$run" "$first" "$again" "$rolling"
    bash "$BED" down "$WORK" >>"$LOG" 2>&1
    trap - EXIT
    rm -rf "$WORK"
done
