#!/usr/bin/env bash
# bench/metrics.sh: what galley's metrics cost on a local 3-node cluster.
#
# Measures:
#   series   samples (non-comment lines) on each page: the three agents' /metrics, the
#            controller's /api/v1/metrics and the proxy's /metrics; the total is what
#            Prometheus stores per scrape of the cluster.
#   ctl      the controller's CPU time per scrape of /api/v1/metrics: utime+stime from
#            /proc/PID/stat over N back-to-back scrapes, minus its idle rate (measured
#            over the same wall time just before) times the scraping time.
#   agent    the agent's CPU per uncached scrape of /metrics against the real
#            mysqld_exporter (Debian's prometheus-mysqld-exporter, default collectors) on
#            the same node: one scrape of each every 1.1 s (past the agent's 1 s cache),
#            N times; each process's CPU over the window minus its idle rate, per scrape.
#            mariadbd's CPU over each window is printed too (the exporter runs more queries).
#
# Usage: bash bench/metrics.sh [--scrapes N] [--dir DIR] [--galley PATH]
#   --scrapes N   scrapes for each measurement (default 200 for ctl, N/5 for agent)
#   --dir DIR     cluster directory (default /tmp/galley-bench-metrics; removed first)
#   --galley PATH galley binary (default $GALLEY, else /tmp/target-bench/release/galley)
#
# Needs root, MariaDB + galera-4 + rsync, curl, prometheus-mysqld-exporter.
set -euo pipefail

SCRAPES=200
DIR=/tmp/galley-bench-metrics
GALLEY_BIN="${GALLEY:-/tmp/target-bench/release/galley}"
while [[ $# -gt 0 ]]; do
    case "$1" in
        --scrapes) SCRAPES="${2:?--scrapes needs a number}"; shift 2 ;;
        --dir) DIR="${2:?--dir needs a path}"; shift 2 ;;
        --galley) GALLEY_BIN="${2:?--galley needs a path}"; shift 2 ;;
        *) echo "bench: unknown argument $1 (allowed: --scrapes N, --dir DIR, --galley PATH)" >&2; exit 2 ;;
    esac
done
[[ $SCRAPES =~ ^[0-9]+$ && $SCRAPES -ge 5 ]] || { echo "bench: --scrapes must be a number >= 5" >&2; exit 2; }
[[ -x $GALLEY_BIN ]] || { echo "bench: galley binary $GALLEY_BIN missing" >&2; exit 2; }
command -v prometheus-mysqld-exporter >/dev/null || { echo "bench: prometheus-mysqld-exporter missing (scripts/setup-debian.sh)" >&2; exit 2; }

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
# CPU seconds (utime + stime) of a pid.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{ sub(/^.*\) /, ""); print ($12 + $13) / hz }' "/proc/$1/stat"; }
now() { date +%s.%N; }
calc() { python3 -c "print(round($1, 3))"; }

if [[ -e $DIR ]]; then
    timeout 10 "$GALLEY_BIN" status --dir "$DIR" >/dev/null 2>&1 && { echo "bench: $DIR holds a running cluster; not touching it" >&2; exit 2; }
    rm -rf "$DIR"
fi
mkdir -p "$DIR"
chmod 755 "$DIR"
EXPORTER_PID=""
cleanup() {
    [[ -n $EXPORTER_PID ]] && kill "$EXPORTER_PID" 2>/dev/null || true
    "$GALLEY_BIN" down --dir "$DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT
log "galley up --detach --dir $DIR"
timeout 300 "$GALLEY_BIN" up --detach --dir "$DIR" >"$DIR.up.log" 2>&1 || { cat "$DIR.up.log" >&2; exit 1; }

toml_node() {
    awk -v want="$1" -v key="$2" '
        /^\[\[node\]\]/ { node = ""; sect = "node"; next }
        /^\[/ { sect = ""; next }
        sect == "node" && $1 == "name" { gsub(/"/, "", $3); node = $3 }
        sect == "node" && node == want && $1 == key { gsub(/"/, "", $3); print $3; exit }
    ' "$DIR/galley.toml"
}
toml_section() {
    awk -v want="$1" -v key="$2" '
        /^\[/ { sect = $0; gsub(/[\[\]]/, "", sect); next }
        sect == want && $1 == key { gsub(/"/, "", $3); print $3; exit }
    ' "$DIR/galley.toml"
}
ADMIN_PORT="$(toml_section proxy admin_port)"
CTL_PORT="$(toml_section controller port)"
TOKEN_FILE="$DIR/bench-token"
(umask 077 && awk -F' = ' '$1 == "cluster_token" { gsub(/"/, "", $2); print $2 }' "$DIR/secrets.toml" >"$TOKEN_FILE")
# curl reads the header from a file, so the token is on no command line.
(umask 077 && printf 'Authorization: Bearer %s\n' "$(cat "$TOKEN_FILE")" >"$DIR/bench-header")
ctl_scrape() { curl -fsS -H "@$DIR/bench-header" "http://127.0.0.1:$CTL_PORT/api/v1/metrics"; }

for _ in $(seq 1 120); do "$GALLEY_BIN" status --dir "$DIR" >/dev/null 2>&1 && break; sleep 0.5; done

echo "== series (samples per scrape)"
total=0
for n in node1 node2 node3; do
    count=$(curl -fsS "http://127.0.0.1:$(toml_node "$n" agent_port)/metrics" | grep -vc '^#')
    echo "agent $n: $count"; total=$((total + count))
done
count=$(ctl_scrape | grep -vc '^#'); echo "controller: $count"; total=$((total + count))
if [[ -n $ADMIN_PORT ]]; then
    count=$(curl -fsS "http://127.0.0.1:$ADMIN_PORT/metrics" | grep -vc '^#'); echo "proxy: $count"; total=$((total + count))
fi
echo "total: $total"

CTL_PID="$(cat "$DIR/controller/controller.pid" 2>/dev/null || pgrep -f "galley controller --config $DIR/" | head -1)"
echo "== controller CPU per scrape ($SCRAPES scrapes, pid $CTL_PID)"
start=$(now); c0=$(cpu "$CTL_PID")
for _ in $(seq 1 "$SCRAPES"); do ctl_scrape >/dev/null; done
t1=$(now); c1=$(cpu "$CTL_PID")
sleep "$(calc "$t1 - $start")"
t2=$(now); c2=$(cpu "$CTL_PID")
idle_rate=$(calc "($c2 - $c1) / ($t2 - $t1)")
echo "scraping: $(calc "$c1 - $c0") s CPU in $(calc "$t1 - $start") s; idle: $idle_rate s CPU/s"
echo "controller CPU per scrape: $(calc "(($c1 - $c0) - $idle_rate * ($t1 - $start)) / $SCRAPES * 1000") ms"

AGENT_SCRAPES=$((SCRAPES / 5))
AGENT_PORT="$(toml_node node1 agent_port)"
CLIENT_PORT="$(toml_node node1 client_port)"
AGENT_PID="$(pgrep -f "galley agent --config .*--node node1" | head -1)"
MARIADB_PID="$(cat "$DIR/node1/run/mariadbd.pid" 2>/dev/null || toml_node node1 data_dir)"
EXPORTER_PORT=$((CLIENT_PORT + 7))
# node1's admin login (client.cnf, 0600), pointed at node1.
(umask 077 && { echo "[client]"; awk '/^user|^password/' "$DIR/client.cnf"; echo "host = 127.0.0.1"; echo "port = $CLIENT_PORT"; } >"$DIR/exporter.cnf")
prometheus-mysqld-exporter --config.my-cnf="$DIR/exporter.cnf" --web.listen-address="127.0.0.1:$EXPORTER_PORT" >"$DIR/exporter.log" 2>&1 &
EXPORTER_PID=$!
exporter_up() { local page; page="$(curl -fsS "http://127.0.0.1:$EXPORTER_PORT/metrics" 2>/dev/null)" && grep -q '^mysql_up 1' <<<"$page"; }
for _ in $(seq 1 40); do exporter_up && break; sleep 0.25; done
exporter_up || { echo "bench: the exporter cannot reach node1; see $DIR/exporter.log" >&2; exit 1; }
echo "exporter: $(curl -fsS "http://127.0.0.1:$EXPORTER_PORT/metrics" | grep -vc '^#') samples; agent node1: $(curl -fsS "http://127.0.0.1:$AGENT_PORT/metrics" | grep -vc '^#')"
echo "== agent vs mysqld_exporter CPU per scrape ($AGENT_SCRAPES scrapes each, 1.1 s apart)"
window=$(calc "$AGENT_SCRAPES * 1.1")
a0=$(cpu "$AGENT_PID"); e0=$(cpu "$EXPORTER_PID"); m0=$(cpu "$MARIADB_PID")
sleep "$window"
a1=$(cpu "$AGENT_PID"); e1=$(cpu "$EXPORTER_PID"); m1=$(cpu "$MARIADB_PID")
for _ in $(seq 1 "$AGENT_SCRAPES"); do
    curl -fsS "http://127.0.0.1:$AGENT_PORT/metrics" >/dev/null
    curl -fsS "http://127.0.0.1:$EXPORTER_PORT/metrics" >/dev/null
    sleep 1.1
done
a2=$(cpu "$AGENT_PID"); e2=$(cpu "$EXPORTER_PID"); m2=$(cpu "$MARIADB_PID")
echo "agent: idle $(calc "$a1 - $a0") s, scraped $(calc "$a2 - $a1") s -> $(calc "(($a2 - $a1) - ($a1 - $a0)) / $AGENT_SCRAPES * 1000") ms per scrape"
echo "mysqld_exporter: idle $(calc "$e1 - $e0") s, scraped $(calc "$e2 - $e1") s -> $(calc "(($e2 - $e1) - ($e1 - $e0)) / $AGENT_SCRAPES * 1000") ms per scrape"
echo "mariadbd node1 (both scrapers together): idle $(calc "$m1 - $m0") s, scraped $(calc "$m2 - $m1") s -> $(calc "(($m2 - $m1) - ($m1 - $m0)) / $AGENT_SCRAPES * 1000") ms per pair of scrapes"
