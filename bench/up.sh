#!/usr/bin/env bash
# bench/up.sh: how long `galley up` takes to reach three Synced nodes on this machine,
# compared with setting up the same three nodes by hand in the same run.
#
# Measures, N times each (interleaved, one run = one of each):
#   fresh    `galley up --detach --dir DIR` on a directory that does not exist yet,
#            until it returns (it returns only once all three nodes are Synced).
#   restart  `galley up --detach --dir DIR` on the same DIR after `galley down --dir DIR`.
#   manual   the by-hand baseline: mariadb-install-db for three datadirs, bootstrap
#            node 1 with --wsrep-new-cluster, then start node 2 and node 3 (rsync SST),
#            each polled over its unix socket until wsrep_local_state = 4 (Synced).
#
# Usage: bash bench/up.sh [--runs N] [--galley PATH] [--keep]
#   --runs N      repetitions of each measurement (default 3)
#   --galley PATH galley binary (default: $GALLEY, else /tmp/target-bench/release/galley,
#                 built with `cargo build --release -p galley` if missing)
#   --keep        keep the work directory (logs, data dirs) for inspection
#
# Needs root (mariadbd runs as --user=mysql), MariaDB + galera-4 + rsync. Uses the galley
# default ports (13301-13303, 14441-14443, 14561-14583) for galley, and 23301-23303 /
# 24401-24403 / 24501-24503 / 24601-24603 for the baseline; if any is taken (e.g. by another
# `galley up`), waits up to 300 s for it to be freed, then fails.
set -euo pipefail

RUNS=3
KEEP=0
GALLEY_BIN="${GALLEY:-}"
POLL_LIMIT=300      # seconds any single wait may take before the benchmark fails
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

while [[ $# -gt 0 ]]; do
    case "$1" in
        --runs) RUNS="${2:?--runs needs a number}"; shift 2 ;;
        --galley) GALLEY_BIN="${2:?--galley needs a path}"; shift 2 ;;
        --keep) KEEP=1; shift ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$RUNS" =~ ^[1-9][0-9]*$ ]] || { echo "--runs must be a positive integer" >&2; exit 2; }

die() { echo "bench/up.sh: error: $*" >&2; exit 1; }
log() { echo "[$(date +%H:%M:%S)] $*"; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.2f", v[(NR + 1) / 2]; else printf "%.2f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
minimum() { printf '%s\n' "$@" | sort -g | head -n1; }
maximum() { printf '%s\n' "$@" | sort -g | tail -n1; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

[[ $EUID -eq 0 ]] || die "run as root: mariadbd is started with --user=mysql"
id mysql >/dev/null 2>&1 || die "no OS user mysql (install mariadb-server)"
for tool in mariadbd mariadb mariadb-install-db mariadb-admin rsync ss awk timeout; do
    command -v "$tool" >/dev/null || die "$tool not found"
done
PROVIDER=/usr/lib/galera/libgalera_smm.so
[[ -f $PROVIDER ]] || die "$PROVIDER not found (install galera-4)"

if [[ -z $GALLEY_BIN ]]; then
    GALLEY_BIN=/tmp/target-bench/release/galley
    if [[ ! -x $GALLEY_BIN ]]; then
        log "building galley (release) into /tmp/target-bench"
        (cd "$ROOT_DIR" && CARGO_TARGET_DIR=/tmp/target-bench cargo build --release -p galley)
    fi
fi
[[ -x $GALLEY_BIN ]] || die "galley binary $GALLEY_BIN not found or not executable"

GALLEY_PORTS=(13301 13302 13303 14441 14442 14443 14561 14562 14563 14571 14572 14573 14581 14582 14583)
MANUAL_PORTS=()
for n in 1 2 3; do MANUAL_PORTS+=($((23300 + n)) $((24400 + n)) $((24500 + n)) $((24600 + n))); done
taken_ports() {   # prints the given ports that something listens on
    local listening port
    listening="$(ss -Hltn | awk '{ n = split($4, a, ":"); print a[n] }')"
    for port in "$@"; do
        if grep -qx "$port" <<<"$listening"; then printf '%s ' "$port"; fi
    done
}
# Another cluster on these ports (e.g. someone else's `galley up` on the default ports)
# would collide with ours: wait for it to go away, at most POLL_LIMIT s, then fail.
wait_ports_free() {
    local deadline taken said=0
    deadline=$(($(date +%s) + POLL_LIMIT))
    while taken="$(taken_ports "$@")"; [[ -n $taken ]]; do
        if [[ $said -eq 0 ]]; then
            log "ports in use by another process: ${taken}; waiting up to $POLL_LIMIT s for them to be freed"
            said=1
        fi
        (($(date +%s) <= deadline)) ||
            die "ports still in use after $POLL_LIMIT s: ${taken}(another cluster on this machine? stop it first)"
        sleep 2
    done
}
wait_ports_free "${GALLEY_PORTS[@]}" "${MANUAL_PORTS[@]}"

WORK="$(mktemp -d /tmp/galley-bench.XXXXXX)"
chmod 755 "$WORK"   # mariadbd runs as mysql and must traverse into its dirs
GALLEY_DIRS=()      # galley state dirs this script created
MANUAL_PIDS=()      # mariadbd pids of the by-hand baseline still running

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    for dir in "${GALLEY_DIRS[@]}"; do
        if [[ -f $dir/galley.toml ]] && pgrep -f -- "$dir/galley.toml" >/dev/null; then
            log "cleanup: galley down --dir $dir"
            timeout 120 "$GALLEY_BIN" down --dir "$dir" >/dev/null 2>&1
        fi
    done
    for pid in "${MANUAL_PIDS[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for _ in $(seq 1 300); do   # up to 60 s for a graceful stop
        local alive=0
        for pid in "${MANUAL_PIDS[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
        [[ $alive -eq 0 ]] && break
        sleep 0.2
    done
    # Anything still running whose command line names the work dir is ours (agents,
    # mariadbd, the rsync daemons of SST): stop it, by pid.
    local leftovers
    leftovers="$(pgrep -f -- "$WORK" | grep -vx "$$" || true)"
    if [[ -n $leftovers ]]; then
        log "cleanup: killing leftover processes: $(tr '\n' ' ' <<<"$leftovers")"
        for pid in $leftovers; do kill -TERM "$pid" 2>/dev/null; done
        sleep 3
        for pid in $leftovers; do kill -KILL "$pid" 2>/dev/null; done
    fi
    # A failure keeps the logs for diagnosis; an interrupt (130/143) or success does not.
    if [[ $KEEP -eq 1 || ($status -ne 0 && $status -ne 130 && $status -ne 143) ]]; then
        log "work directory kept: $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# wsrep_local_state of a node, read as root over its unix socket ("" if it does not answer).
local_state() {
    mariadb --no-defaults --socket="$1" -u root -N -B \
        -e "SHOW STATUS LIKE 'wsrep_local_state'" 2>/dev/null | awk '{ print $2 }' || true
}
status_var() {
    mariadb --no-defaults --socket="$1" -u root -N -B \
        -e "SHOW STATUS LIKE '$2'" 2>/dev/null | awk '{ print $2 }' || true
}

# How a joiner got its state, from the part of its error log written after line $2:
# "SST 2.45 s" (full copy by wsrep_sst_rsync), "IST 3 ws 1.40 s" (the rsync script ran in
# IST mode and Galera replayed that many writesets), or "none". The seconds are those of
# the joiner-side wsrep_sst_rsync script, from its own millisecond timestamps.
transfer_kind() {
    tail -n +"$(($2 + 1))" "$1" 2>/dev/null | awk '
        function ts(field) { gsub(/\)/, "", field); split(field, t, ":"); return t[1] * 3600 + t[2] * 60 + t[3] }
        /rsync (SST|IST) started on joiner/ { started = ts($NF) }
        /rsync (SST|IST) completed on joiner/ { kind = $4; took = ts($NF) - started }
        /Receiving IST: [0-9]+ writesets/ { for (i = 1; i <= NF; i++) if ($i == "writesets,") ws = $(i - 1) }
        END {
            if (kind == "") { print "none"; exit }
            if (kind == "IST") printf "IST %d ws %.2f s\n", ws, took
            else printf "SST %.2f s\n", took
        }' || echo "unknown"
}
line_count() { if [[ -f $1 ]]; then wc -l <"$1"; else echo 0; fi; }

# ---------------------------------------------------------------- galley
# galley's own per-step times, from its output ("✓ node1 ... in 1.2 s").
galley_steps() {
    grep -E '✓' "$1" | sed -E 's/^✓ //' | awk '{ printf "%s%s", sep, $0; sep = "; " }' || true
}

verify_galley_synced() {
    local dir=$1 n state size
    for n in 1 2 3; do
        state="$(local_state "$dir/node$n/run/mysqld.sock")"
        size="$(status_var "$dir/node$n/run/mysqld.sock" wsrep_cluster_size)"
        [[ $state == 4 && $size == 3 ]] ||
            die "after galley up, node$n has wsrep_local_state='$state' cluster_size='$size'"
    done
}

# After `galley down` no agent or mariadbd of the dir may remain (else the restart would
# reuse running agents); they get 10 s to exit.
wait_no_processes() {
    local dir=$1 _
    for _ in $(seq 1 50); do
        pgrep -f -- "$dir/" >/dev/null || return 0
        sleep 0.2
    done
    die "processes of $dir still run 10 s after galley down: $(pgrep -af -- "$dir/" | tr '\n' ';')"
}

galley_up_timed() {   # dir, output file -> prints seconds
    local dir=$1 out=$2 t0 t1
    t0="$(now)"
    if ! timeout "$POLL_LIMIT" "$GALLEY_BIN" up --detach --dir "$dir" >"$out" 2>&1; then
        cat "$out" >&2
        die "galley up --detach --dir $dir failed or took over $POLL_LIMIT s"
    fi
    t1="$(now)"
    elapsed "$t0" "$t1"
}

galley_down_timed() {
    local dir=$1 out=$2 t0 t1
    t0="$(now)"
    if ! timeout "$POLL_LIMIT" "$GALLEY_BIN" down --dir "$dir" >"$out" 2>&1; then
        cat "$out" >&2
        die "galley down --dir $dir failed or took over $POLL_LIMIT s"
    fi
    t1="$(now)"
    elapsed "$t0" "$t1"
}

FRESH=() RESTART=() DOWN=() MANUAL=()
M_INSTALL=() M_BOOT=() M_JOIN2=() M_JOIN3=()
FRESH_NOTES=() RESTART_NOTES=() MANUAL_NOTES=()

bench_galley() {
    local i=$1 dir="$WORK/galley-$i" secs before2 before3 uuid1 uuid2 down
    GALLEY_DIRS+=("$dir")
    [[ ! -e $dir ]] || die "$dir exists"

    wait_ports_free "${GALLEY_PORTS[@]}"
    log "run $i: galley fresh (load $(loadavg))"
    secs="$(galley_up_timed "$dir" "$WORK/galley-$i-up1.out")"
    verify_galley_synced "$dir"
    uuid1="$(status_var "$dir/node1/run/mysqld.sock" wsrep_cluster_state_uuid)"
    FRESH+=("$secs")
    FRESH_NOTES+=("node2 $(transfer_kind "$dir/node2/log/mariadbd.err" 0), node3 $(transfer_kind "$dir/node3/log/mariadbd.err" 0); galley: $(galley_steps "$WORK/galley-$i-up1.out")")
    log "run $i: galley fresh      ${secs} s  (${FRESH_NOTES[-1]})"

    down="$(galley_down_timed "$dir" "$WORK/galley-$i-down.out")"
    DOWN+=("$down")
    log "run $i: galley down       ${down} s"
    wait_no_processes "$dir"

    before2="$(line_count "$dir/node2/log/mariadbd.err")"
    before3="$(line_count "$dir/node3/log/mariadbd.err")"
    wait_ports_free "${GALLEY_PORTS[@]}"
    log "run $i: galley restart (load $(loadavg))"
    secs="$(galley_up_timed "$dir" "$WORK/galley-$i-up2.out")"
    verify_galley_synced "$dir"
    uuid2="$(status_var "$dir/node1/run/mysqld.sock" wsrep_cluster_state_uuid)"
    [[ -n $uuid1 && $uuid1 == "$uuid2" ]] ||
        die "galley up on the existing dir brought back a different cluster ($uuid1 -> $uuid2)"
    RESTART+=("$secs")
    RESTART_NOTES+=("node2 $(transfer_kind "$dir/node2/log/mariadbd.err" "$before2"), node3 $(transfer_kind "$dir/node3/log/mariadbd.err" "$before3"); galley: $(galley_steps "$WORK/galley-$i-up2.out")")
    log "run $i: galley restart    ${secs} s  (${RESTART_NOTES[-1]})"

    galley_down_timed "$dir" "$WORK/galley-$i-down2.out" >/dev/null
    wait_no_processes "$dir"
    [[ $KEEP -eq 1 ]] || rm -rf "$dir"
}

# ---------------------------------------------------------------- by hand
# Same sizing as the spec `galley up` writes, so the two set up comparable servers.
write_manual_cnf() {
    local base=$1 n=$2 node="$1/node$2"
    cat >"$node/my.cnf" <<EOF
[mariadbd]
datadir = $node/data
socket = $node/run/mysqld.sock
pid_file = $node/run/mariadbd.pid
log_error = $node/log/mariadbd.err
bind_address = 127.0.0.1
port = $((23300 + n))
skip_name_resolve = ON
max_connections = 1000
innodb_buffer_pool_size = 128M
innodb_log_file_size = 48M
innodb_flush_log_at_trx_commit = 1
binlog_format = ROW
default_storage_engine = InnoDB
innodb_autoinc_lock_mode = 2
wsrep_on = ON
wsrep_provider = $PROVIDER
wsrep_cluster_name = manual
wsrep_cluster_address = gcomm://127.0.0.1:24401,127.0.0.1:24402,127.0.0.1:24403
wsrep_node_name = node$n
wsrep_node_address = 127.0.0.1:$((24400 + n))
wsrep_provider_options = "gmcast.listen_addr=tcp://127.0.0.1:$((24400 + n));ist.recv_addr=127.0.0.1:$((24500 + n));gcache.size=128M"
wsrep_sst_method = rsync
wsrep_sst_receive_address = 127.0.0.1:$((24600 + n))
EOF
}

start_manual_node() {   # base n [extra args] -> sets STARTED_PID
    local base=$1 n=$2
    shift 2
    mariadbd --defaults-file="$base/node$n/my.cnf" --user=mysql "$@" \
        >>"$base/node$n/log/stdout.log" 2>&1 </dev/null &
    STARTED_PID=$!
    MANUAL_PIDS+=("$STARTED_PID")
}

wait_manual_synced() {  # base n pid
    local base=$1 n=$2 pid=$3 deadline state=""
    deadline=$(($(date +%s) + POLL_LIMIT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 20 "$base/node$n/log/mariadbd.err" >&2 || true
            die "by-hand node$n (pid $pid) exited before reaching Synced"
        fi
        state="$(local_state "$base/node$n/run/mysqld.sock")"
        [[ $state == 4 ]] && return 0
        if (($(date +%s) > deadline)); then
            tail -n 20 "$base/node$n/log/mariadbd.err" >&2 || true
            die "by-hand node$n not Synced after $POLL_LIMIT s (wsrep_local_state='$state')"
        fi
        sleep 0.2
    done
}

stop_manual() {
    local base=$1 n pid deadline
    for n in 3 2 1; do   # node 1 leaves last
        [[ -f $base/node$n/run/mariadbd.pid ]] || continue
        pid="$(cat "$base/node$n/run/mariadbd.pid")"
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$(($(date +%s) + POLL_LIMIT))
        while kill -0 "$pid" 2>/dev/null; do
            (($(date +%s) <= deadline)) || die "by-hand node$n (pid $pid) did not stop within $POLL_LIMIT s"
            sleep 0.2
        done
    done
    MANUAL_PIDS=()
}

bench_manual() {
    local i=$1 base="$WORK/manual-$i" n t0 t1 t2 t3 t4 size
    mkdir -p "$base"
    chmod 755 "$base"
    for n in 1 2 3; do
        mkdir -p "$base/node$n/data" "$base/node$n/run" "$base/node$n/log"
        write_manual_cnf "$base" "$n"
        chown -R mysql:mysql "$base/node$n"
        chmod 755 "$base/node$n"
        chmod 700 "$base/node$n/data"
    done

    wait_ports_free "${MANUAL_PORTS[@]}"
    log "run $i: by hand (load $(loadavg))"
    t0="$(now)"
    for n in 1 2 3; do
        if ! timeout "$POLL_LIMIT" mariadb-install-db --defaults-file="$base/node$n/my.cnf" \
            --user=mysql --skip-test-db >"$base/node$n/log/install-db.out" 2>&1; then
            cat "$base/node$n/log/install-db.out" >&2
            die "mariadb-install-db for by-hand node$n failed"
        fi
    done
    t1="$(now)"
    start_manual_node "$base" 1 --wsrep-new-cluster
    wait_manual_synced "$base" 1 "$STARTED_PID"
    t2="$(now)"
    start_manual_node "$base" 2
    wait_manual_synced "$base" 2 "$STARTED_PID"
    t3="$(now)"
    start_manual_node "$base" 3
    wait_manual_synced "$base" 3 "$STARTED_PID"
    t4="$(now)"
    size="$(status_var "$base/node1/run/mysqld.sock" wsrep_cluster_size)"
    [[ $size == 3 ]] || die "by-hand cluster size is '$size', not 3"

    MANUAL+=("$(elapsed "$t0" "$t4")")
    M_INSTALL+=("$(elapsed "$t0" "$t1")")
    M_BOOT+=("$(elapsed "$t1" "$t2")")
    M_JOIN2+=("$(elapsed "$t2" "$t3")")
    M_JOIN3+=("$(elapsed "$t3" "$t4")")
    MANUAL_NOTES+=("install-db x3 ${M_INSTALL[-1]} s, bootstrap ${M_BOOT[-1]} s, node2 $(transfer_kind "$base/node2/log/mariadbd.err" 0) ${M_JOIN2[-1]} s, node3 $(transfer_kind "$base/node3/log/mariadbd.err" 0) ${M_JOIN3[-1]} s")
    log "run $i: by hand           ${MANUAL[-1]} s  (${MANUAL_NOTES[-1]})"

    stop_manual "$base"
    [[ $KEEP -eq 1 ]] || rm -rf "$base"
}

# ---------------------------------------------------------------- main
log "galley: $GALLEY_BIN ($("$GALLEY_BIN" --version))"
log "$(mariadbd --version)"
log "galera: $(dpkg-query -W -f='${Package} ${Version}' galera-4 2>/dev/null || echo unknown)"
log "machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"), load $(loadavg)"
log "work dir: $WORK, runs: $RUNS"
LOAD_START="$(loadavg)"

for i in $(seq 1 "$RUNS"); do
    bench_galley "$i"
    bench_manual "$i"
done
LOAD_END="$(loadavg)"

echo
echo "== all runs (seconds) =="
for i in $(seq 1 "$RUNS"); do
    k=$((i - 1))
    echo "run $i: galley fresh ${FRESH[k]} | galley restart ${RESTART[k]} | by hand ${MANUAL[k]} | galley down ${DOWN[k]}"
    echo "       fresh:   ${FRESH_NOTES[k]}"
    echo "       restart: ${RESTART_NOTES[k]}"
    echo "       by hand: ${MANUAL_NOTES[k]}"
done
echo
echo "load average (1/5/15 min): at start $LOAD_START, at end $LOAD_END"
echo
row() {   # label values...
    local label=$1
    shift
    printf '| %s | %s | %s | %s | %s |\n' "$label" "$(median "$@")" "$(minimum "$@")" "$(maximum "$@")" "$(printf '%s, ' "$@" | sed 's/, $//')"
}
echo "| measurement ($RUNS runs, seconds) | median | min | max | all runs |"
echo "|---|---:|---:|---:|---|"
row "\`galley up --detach\`, fresh dir → 3 Synced" "${FRESH[@]}"
row "\`galley up --detach\`, existing dir after \`galley down\`" "${RESTART[@]}"
row "by hand: install-db ×3 + bootstrap + 2 rsync SST joins" "${MANUAL[@]}"
row "  by hand: mariadb-install-db ×3" "${M_INSTALL[@]}"
row "  by hand: node1 bootstrap → Synced" "${M_BOOT[@]}"
row "  by hand: node2 join (SST) → Synced" "${M_JOIN2[@]}"
row "  by hand: node3 join (SST) → Synced" "${M_JOIN3[@]}"
row "\`galley down\` (3 nodes, informational)" "${DOWN[@]}"
