#!/usr/bin/env bash
# bench/controller.sh: how fast the galley controller heals a local 3-node cluster by
# itself, and what it costs while the cluster is healthy.
#
# Measures, N times each (no operator action at any point; the controller that
# `galley up --detach` starts does all the healing):
#   kill1    kill -9 of one node's mariadbd (node1, node2, node3, node1, ...) → seconds
#            until `galley status` exits 0 (all three Synced), polled every 0.2 s.
#   killall  kill -9 of all three mariadbd at once while a client loop INSERTs through the
#            proxy writer port → (a) seconds until an INSERT succeeds on some node's client
#            port (a Primary component serves writes; tried on all three nodes every 0.2 s,
#            as galley_admin via DIR/client.cnf) and (b) seconds until all three are Synced.
#            At the end, every acknowledged row (writer loop and probes) must be on every node.
#   idle     the controller's CPU (% of one core, from utime+stime in /proc/PID/stat over
#            the wall time) and VmRSS while it watches the healthy cluster for W seconds
#            (default 60), and the three agents' CPU over the same window.
# The controller's own step timestamps (from `galley events --dir DIR --json`) are printed
# per run so that the time can be split into detection, recovery, bootstrap and joins.
#
# Usage: bash bench/controller.sh [--runs N] [--window S] [--dir DIR] [--galley PATH] [--keep]
#   --runs N      repetitions of each measurement (default 5)
#   --window S    length of each idle footprint window, seconds (default 60); N windows
#   --dir DIR     cluster directory (default /tmp/galley-bench-ctl; removed first, chmod 755)
#   --galley PATH galley binary (default $GALLEY, else /tmp/target-bench/release/galley)
#   --keep        leave the cluster directory (logs, controller history) after `galley down`
#
# Needs root, MariaDB + galera-4 + rsync, python3. galley picks a free block of ports.
set -euo pipefail

RUNS=5
WINDOW=60
DIR=/tmp/galley-bench-ctl
GALLEY_BIN="${GALLEY:-/tmp/target-bench/release/galley}"
KEEP=0
LIMIT=180            # seconds any single wait may take before the benchmark fails
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
        --window) WINDOW="${2:?--window needs seconds}"; shift 2 ;;
        --dir) DIR="${2:?--dir needs a path}"; shift 2 ;;
        --galley) GALLEY_BIN="${2:?--galley needs a path}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ $RUNS =~ ^[1-9][0-9]*$ ]] || { echo "--runs must be a positive integer" >&2; exit 2; }
[[ $WINDOW =~ ^[1-9][0-9]*$ ]] || { echo "--window must be a positive integer" >&2; exit 2; }
[[ $DIR == /tmp/* ]] || { echo "--dir must be under /tmp (it is removed first)" >&2; exit 2; }

die() { echo "bench/controller.sh: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*"; }
now() { date +%s.%N; }
now_ms() { date +%s%3N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
p50() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n1; }
HELPER="$ROOT_DIR/bench/controller_events.py"

[[ $EUID -eq 0 ]] || die "run as root"
for tool in mariadb python3 awk timeout; do command -v "$tool" >/dev/null || die "$tool not found"; done
[[ -x $GALLEY_BIN ]] || die "galley binary $GALLEY_BIN missing (CARGO_TARGET_DIR=/tmp/target-bench cargo build --release -p galley)"
[[ -f $HELPER ]] || die "$HELPER missing"
galley() { "$GALLEY_BIN" "$@"; }

WRITER_PID=""
STOP_FILE="$DIR/bench-writer.stop"
cleanup() {
    local rc=$?
    if [[ -n $WRITER_PID ]]; then
        touch "$STOP_FILE"
        wait "$WRITER_PID" 2>/dev/null || true
    fi
    if [[ -f $DIR/galley.toml ]]; then
        log "cleanup: galley down --dir $DIR"
        timeout 120 "$GALLEY_BIN" down --dir "$DIR" >/dev/null 2>&1 || log "galley down failed"
    fi
    if [[ $KEEP -eq 0 ]]; then rm -rf "$DIR" "$STOP_FILE" "$DIR.up.log"; fi
    log "uptime at end: $(uptime)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- the cluster -------------------------------------------------------------------
log "uptime at start: $(uptime)"
log "galley: $GALLEY_BIN ($("$GALLEY_BIN" --version 2>/dev/null || echo '?'))"
if [[ -e $DIR ]]; then
    if timeout 10 "$GALLEY_BIN" status --dir "$DIR" >/dev/null 2>&1; then
        die "$DIR holds a running cluster; not touching it"
    fi
    timeout 120 "$GALLEY_BIN" down --dir "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
fi
mkdir -p "$DIR"
chmod 755 "$DIR"
rm -f "$STOP_FILE"
log "galley up --detach --dir $DIR"
t=$(now)
timeout 300 "$GALLEY_BIN" up --detach --dir "$DIR" >"$DIR.up.log" 2>&1 || { cat "$DIR.up.log" >&2; die "galley up failed"; }
log "up in $(elapsed "$t" "$(now)") s"
CNF="$DIR/client.cnf"
[[ -f $CNF ]] || die "no $CNF"

toml_get() {   # toml_get proxy|NODE KEY
    awk -v want="$1" -v key="$2" '
        /^\[proxy\]/ { sect = "proxy"; next }
        /^\[\[node\]\]/ { sect = "node"; node = ""; next }
        /^\[/ { sect = ""; next }
        sect == "node" && $1 == "name" { gsub(/"/, "", $3); node = $3 }
        (sect == want || (sect == "node" && node == want)) && $1 == key { gsub(/"/, "", $3); print $3; exit }
    ' "$DIR/galley.toml"
}
NODES=(node1 node2 node3)
declare -A PORT
for n in "${NODES[@]}"; do
    PORT[$n]="$(toml_get "$n" client_port)"
    [[ -n ${PORT[$n]} ]] || die "no client_port for $n in $DIR/galley.toml"
done
WRITER_PORT="$(toml_get proxy writer_port)"
[[ -n $WRITER_PORT ]] || die "no proxy writer_port in $DIR/galley.toml"
log "client ports: ${PORT[node1]} ${PORT[node2]} ${PORT[node3]}; proxy writer $WRITER_PORT"

# sql PORT STATEMENT: admin login over TCP; the password stays in the 0600 client.cnf.
sql() {
    timeout 5 mariadb --defaults-extra-file="$CNF" --protocol=TCP --host=127.0.0.1 \
        --port="$1" --connect-timeout=2 -N -B -e "$2"
}
all_synced() { timeout 10 "$GALLEY_BIN" status --dir "$DIR" >/dev/null 2>&1; }
wait_synced() {
    local i
    for ((i = 0; i < LIMIT * 5; i++)); do
        all_synced && return 0
        sleep 0.2
    done
    die "cluster not Synced after $LIMIT s"
}
mariadbd_pid() { cat "$DIR/$1/run/mariadbd.pid"; }
alive() { kill -0 "$1" 2>/dev/null; }

sql "${PORT[node1]}" "CREATE DATABASE IF NOT EXISTS galley_bench;
CREATE TABLE IF NOT EXISTS galley_bench.acks (id BIGINT PRIMARY KEY, source VARCHAR(16) NOT NULL, at DATETIME(6) NOT NULL);" ||
    die "cannot create galley_bench.acks"
wait_synced

# --- 1: kill -9 of one node ---------------------------------------------------------
declare -a ONE_S=() ONE_T0=() ONE_NODE=()
ONE_DETAIL=()
for ((run = 1; run <= RUNS; run++)); do
    node="${NODES[$(((run - 1) % 3))]}"
    wait_synced
    sleep 2
    pid="$(mariadbd_pid "$node")"
    alive "$pid" || die "$node mariadbd pid $pid not alive"
    t0_ms=$(now_ms); t0=$(now)
    kill -9 "$pid"
    # Status must first show the loss (bounded), then all Synced again.
    seen_down=0
    for ((i = 0; i < 50; i++)); do
        if ! all_synced; then seen_down=1; break; fi
        sleep 0.1
    done
    [[ $seen_down -eq 1 ]] || die "run $run: status never showed $node down"
    ok=0
    for ((i = 0; i < LIMIT * 5; i++)); do
        if all_synced; then ok=1; break; fi
        sleep 0.2
    done
    t1=$(now)
    [[ $ok -eq 1 ]] || die "run $run: not all Synced $LIMIT s after killing $node"
    s=$(elapsed "$t0" "$t1")
    ONE_S+=("$s")
    ONE_T0+=("$t0_ms"); ONE_NODE+=("$node")
    log "kill1 run $run: $node (pid $pid → $(mariadbd_pid "$node")) all Synced after $s s"
done
# The controller records its last events up to one tick after status shows all Synced:
# read them once, each run up to the next kill.
sleep 2
galley events --dir "$DIR" --json --limit 1000 >"$DIR/bench-events-kill1.json"
for ((run = 1; run <= RUNS; run++)); do
    end="${ONE_T0[$run]:-}"
    detail="$(python3 "$HELPER" "${ONE_T0[$((run - 1))]}" $end <"$DIR/bench-events-kill1.json")"
    ONE_DETAIL+=("| $run | ${ONE_NODE[$((run - 1))]} | ${ONE_S[$((run - 1))]} | $detail |")
    log "kill1 run $run steps: $detail"
done

# --- 2: kill -9 of all three under a write loop -------------------------------------
ACKS="$DIR/bench-acks"      # ids acknowledged to the client, one a line
: >"$ACKS"
NEXT_ID_FILE="$DIR/bench-nextid"
echo 1 >"$NEXT_ID_FILE"
# The writer loop: one INSERT per connection through the proxy writer port; an id is
# recorded only after the server acknowledged the commit. Stops on $STOP_FILE (bounded
# anyway to one hour).
writer_loop() {
    local id end=$((SECONDS + 3600))
    id=$(cat "$NEXT_ID_FILE")
    while [[ ! -e $STOP_FILE && $SECONDS -lt $end ]]; do
        if sql "$WRITER_PORT" "INSERT INTO galley_bench.acks VALUES ($id, 'writer', NOW(6))" >/dev/null 2>&1; then
            echo "$id" >>"$ACKS"
            id=$((id + 1))
        else
            # Unknown outcome: never reuse the id (the commit may have happened).
            id=$((id + 1))
            sleep 0.05
        fi
    done
    echo "$id" >"$NEXT_ID_FILE"
}
PROBE_ID=1000000000
declare -a ALL_PRIMARY_S=() ALL_SYNCED_S=()
ALL_DETAIL=()
for ((run = 1; run <= RUNS; run++)); do
    wait_synced
    rm -f "$STOP_FILE"
    writer_loop &
    WRITER_PID=$!
    before=$(wc -l <"$ACKS")
    sleep 3
    during=$(wc -l <"$ACKS")
    ((during > before)) || die "run $run: the writer loop acknowledged nothing in 3 s"
    pids=()
    for n in "${NODES[@]}"; do pids+=("$(mariadbd_pid "$n")"); done
    t0_ms=$(now_ms); t0=$(now)
    kill -9 "${pids[@]}"
    tp=""; ts=""; primary_node=""
    for ((i = 0; i < LIMIT * 5; i++)); do
        if [[ -z $tp ]]; then
            for n in "${NODES[@]}"; do
                PROBE_ID=$((PROBE_ID + 1))
                if sql "${PORT[$n]}" "INSERT INTO galley_bench.acks VALUES ($PROBE_ID, 'probe-$n', NOW(6))" >/dev/null 2>&1; then
                    tp=$(now); primary_node=$n
                    echo "$PROBE_ID" >>"$ACKS"
                    break
                fi
            done
        fi
        if [[ -n $tp ]] && all_synced; then ts=$(now); break; fi
        sleep 0.2
    done
    [[ -n $tp ]] || die "run $run: no node took a write $LIMIT s after kill -9 of all"
    [[ -n $ts ]] || die "run $run: not all Synced $LIMIT s after kill -9 of all"
    sleep 2    # the writer loop writes through the recovered proxy too
    touch "$STOP_FILE"
    wait "$WRITER_PID" || true
    WRITER_PID=""
    a=$(elapsed "$t0" "$tp"); b=$(elapsed "$t0" "$ts")
    ALL_PRIMARY_S+=("$a"); ALL_SYNCED_S+=("$b")
    detail="$(galley events --dir "$DIR" --json --limit 400 | python3 "$HELPER" "$t0_ms")"
    ALL_DETAIL+=("| $run | $a ($primary_node) | $b | $detail |")
    log "killall run $run: first write on $primary_node after $a s, all Synced after $b s; $detail"
done

# Every acknowledged row on every node (read after a causality wait on each node).
sort "$ACKS" >"$ACKS.sorted"   # comm needs lexical order
acked=$(wc -l <"$ACKS.sorted")
DURABILITY=()
for n in "${NODES[@]}"; do
    sql "${PORT[$n]}" "SET SESSION wsrep_sync_wait = 1; SELECT id FROM galley_bench.acks ORDER BY id" | sort >"$DIR/bench-rows.$n"
    missing=$(comm -23 "$ACKS.sorted" "$DIR/bench-rows.$n" | wc -l)
    rows=$(wc -l <"$DIR/bench-rows.$n")
    DURABILITY+=("$n: $rows rows, $missing of $acked acknowledged missing")
    log "durability $n: $rows rows, $missing of $acked acknowledged ids missing"
    [[ $missing -eq 0 ]] || die "$n lost $missing acknowledged rows"
done

# --- 3: footprint while the cluster is healthy ---------------------------------------
CLK_TCK=$(getconf CLK_TCK)
CTL_PID="$(cat "$DIR/controller/controller.pid")"
alive "$CTL_PID" || die "controller pid $CTL_PID not alive"
AGENT_PIDS=()
for n in "${NODES[@]}"; do
    p=""
    for c in /proc/[0-9]*/cmdline; do
        cmd="$( { tr '\0' ' ' <"$c"; } 2>/dev/null || true)"   # processes may vanish
        if [[ $cmd == *" agent "* && $cmd == *"$DIR/"* && $cmd == *" $n"* ]]; then
            p="${c#/proc/}"; p="${p%/cmdline}"; break
        fi
    done
    [[ -n $p ]] || die "no agent process found for $n"
    AGENT_PIDS+=("$p")
done
log "controller pid $CTL_PID; agents ${AGENT_PIDS[*]}"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }   # utime + stime (no ')' in comm)
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
declare -a CTL_CPU=() CTL_RSS=() AGENT_CPU=()
for ((run = 1; run <= RUNS; run++)); do
    wait_synced
    c0=$(cpu_ticks "$CTL_PID"); a0=0
    for p in "${AGENT_PIDS[@]}"; do a0=$((a0 + $(cpu_ticks "$p"))); done
    t0=$(now); rss_max=0
    for ((i = 0; i < WINDOW; i++)); do
        sleep 1
        r=$(rss_kb "$CTL_PID"); ((r > rss_max)) && rss_max=$r
    done
    t1=$(now)
    c1=$(cpu_ticks "$CTL_PID"); a1=0
    for p in "${AGENT_PIDS[@]}"; do a1=$((a1 + $(cpu_ticks "$p"))); done
    all_synced || die "footprint run $run: cluster not Synced at the end of the window"
    wall=$(elapsed "$t0" "$t1")
    cpu=$(awk -v d=$((c1 - c0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { printf "%.2f", 100 * d / hz / w }')
    acpu=$(awk -v d=$((a1 - a0)) -v hz="$CLK_TCK" -v w="$wall" 'BEGIN { printf "%.2f", 100 * d / hz / w }')
    rss=$(awk -v k="$rss_max" 'BEGIN { printf "%.1f", k / 1024 }')
    CTL_CPU+=("$cpu"); CTL_RSS+=("$rss"); AGENT_CPU+=("$acpu")
    log "idle run $run: ${wall} s, controller CPU $cpu % ($((c1 - c0)) ticks), VmRSS max $rss MiB; 3 agents together $acpu %"
done

# --- report ------------------------------------------------------------------------
echo
echo "## Results ($RUNS runs; $(date -u '+%F %H:%M UTC'); $(nproc) cores; load $(cut -d' ' -f1-3 /proc/loadavg))"
echo
echo "| measurement | p50 | max | all runs |"
echo "|---|---:|---:|---|"
echo "| kill -9 one mariadbd → all 3 Synced (s) | $(p50 "${ONE_S[@]}") | $(maximum "${ONE_S[@]}") | ${ONE_S[*]} |"
echo "| kill -9 all three → a Primary serves writes (s) | $(p50 "${ALL_PRIMARY_S[@]}") | $(maximum "${ALL_PRIMARY_S[@]}") | ${ALL_PRIMARY_S[*]} |"
echo "| kill -9 all three → all 3 Synced (s) | $(p50 "${ALL_SYNCED_S[@]}") | $(maximum "${ALL_SYNCED_S[@]}") | ${ALL_SYNCED_S[*]} |"
echo "| controller CPU, healthy, ${WINDOW} s windows (% of one core) | $(p50 "${CTL_CPU[@]}") | $(maximum "${CTL_CPU[@]}") | ${CTL_CPU[*]} |"
echo "| controller VmRSS (max per window, MiB) | $(p50 "${CTL_RSS[@]}") | $(maximum "${CTL_RSS[@]}") | ${CTL_RSS[*]} |"
echo "| 3 agents together, same windows (% of one core) | $(p50 "${AGENT_CPU[@]}") | $(maximum "${AGENT_CPU[@]}") | ${AGENT_CPU[*]} |"
echo
echo "Durability after the kill-all runs: ${DURABILITY[*]}"
echo
echo "kill -9 one node, controller steps (seconds after the kill, from galley events):"
echo
echo "| run | node | all Synced (s) | controller steps |"
echo "|---|---|---:|---|"
printf '%s\n' "${ONE_DETAIL[@]}"
echo
echo "kill -9 all three, controller steps (seconds after the kill, from galley events):"
echo
echo "| run | first write (s, node) | all Synced (s) | controller steps |"
echo "|---|---|---:|---|"
printf '%s\n' "${ALL_DETAIL[@]}"
