#!/usr/bin/env bash
# bench/proxy.sh: throughput and latency of the galley proxy's writer port against HAProxy
# 2.6 (configured the OpenStack way for Galera, see bench/common.sh) and against the writer
# node directly, with sysbench, in one run on one machine.
#
# A fourth target, galley-userspace, is a second galley proxy started by this script with
# `forwarding = "userspace"` (ports +50), to show what the kernel splice buys.
#
# For each test (oltp_point_select, oltp_read_write) and thread count (8, 32, 64), the
# targets run back to back; their order rotates from cell to cell and
# from round to round, to spread drift (other load on the machine) over all of them.
#
# Environment (all optional):
#   DIR=/tmp/galley-bench-proxy   cluster state dir (started with `galley up --detach` if
#                                 it does not run; then stopped again at the end)
#   DURATION=20  seconds per sysbench run      THREADS="8 32 64"   ROUNDS=1
#   TESTS="oltp_point_select oltp_read_write"  TABLES=4  TABLE_SIZE=10000
#   GALLEY=/tmp/target-bench/release/galley    DOWN_AT_END=1 (stop the cluster even if it
#                                              was already running)
#   OUT=/tmp/galley-bench-proxy-results        raw sysbench output and results.csv
#
# sysbench takes the password on its command line (visible in `ps` while it runs): it is
# the password of the throwaway account `sbtest` that this script creates (file
# DIR/bench-sbtest.pw, mode 0600), never the admin password.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DURATION="${DURATION:-20}"
THREADS="${THREADS:-8 32 64}"
ROUNDS="${ROUNDS:-1}"
TESTS="${TESTS:-oltp_point_select oltp_read_write}"
TABLES="${TABLES:-4}"
TABLE_SIZE="${TABLE_SIZE:-10000}"
OUT="${OUT:-/tmp/galley-bench-proxy-results}"

cleanup() {
    local status=$?
    trap - EXIT INT TERM
    set +e
    stop_haproxy
    stop_userspace_proxy
    stop_cluster_if_started
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for tool in sysbench haproxy mariadb curl python3; do command -v "$tool" >/dev/null || die "$tool not found"; done
mkdir -p "$OUT"
ensure_cluster
ensure_sbtest_user
start_haproxy
start_userspace_proxy
SBPW="$(cat "$SBTEST_PWFILE")"
WRITER="$(galley_writer)"
[[ -n $WRITER && $WRITER != None ]] || die "the galley proxy has no writer"
DIRECT_PORT="${CLIENT_PORT[$WRITER]}"
HA_ACTIVE="$(haproxy_active)"
[[ $HA_ACTIVE == "$WRITER" ]] || log "note: HAProxy's active server ($HA_ACTIVE) differs from galley's writer ($WRITER)"

declare -A PORT=([direct]="$DIRECT_PORT" [haproxy]="$HAPROXY_PORT" [galley]="$WRITER_PORT" [galley-userspace]="$USERSPACE_WRITER_PORT")
[[ "$(galley_forwarding "$ADMIN_PORT")" == kernel ]] ||
    log "note: the galley proxy forwards in userspace (not root?); the galley and galley-userspace columns measure the same thing"
# The two proxies' processes, to read the CPU time each spends per query (user + system,
# all threads, from /proc/PID/stat; direct has no proxy).
GALLEY_PROXY_PID="$(ss -Htlnp "sport = :$WRITER_PORT" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)"
[[ -n $GALLEY_PROXY_PID ]] || die "cannot find the galley proxy listening on $WRITER_PORT"
declare -A PROXY_PID=([direct]="" [haproxy]="$(cat "$HAPROXY_PIDFILE")" [galley]="$GALLEY_PROXY_PID" [galley-userspace]="$USERSPACE_PROXY_PID")
CLK_TCK="$(getconf CLK_TCK)"
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
# The whole machine's busy time (all cores, everything but idle and iowait), in ticks: the
# fair cost per query, since the kernel splice's work (softirq, kworkers) is not charged
# to the proxy's process.
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
TARGETS=(direct haproxy galley galley-userspace)

sb() {   # test port threads duration [extra...]
    local test=$1 port=$2 threads=$3 duration=$4
    shift 4
    sysbench "$test" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$port" \
        --mysql-user=sbtest --mysql-password="$SBPW" --mysql-db=sbtest \
        --tables="$TABLES" --table-size="$TABLE_SIZE" --threads="$threads" --time="$duration" \
        --report-interval=0 --percentile=99 --histogram=on "$@"
}

log "galley: $GALLEY_BIN ($("$GALLEY_BIN" --version)); $(haproxy -v | head -1); $(sysbench --version)"
log "machine: $(nproc) cores, $(. /etc/os-release && echo "$PRETTY_NAME"), load $(loadavg)"
log "ports: direct ($WRITER) ${PORT[direct]}, haproxy ${PORT[haproxy]} (active $HA_ACTIVE), galley writer ${PORT[galley]} ($(galley_forwarding "$ADMIN_PORT") forwarding), galley-userspace writer ${PORT[galley-userspace]}"
log "haproxy config: $HAPROXY_CFG"

# Prepare once, on the writer node directly (replicated to all three).
have="$(mariadb --defaults-extra-file="$DIR/client.cnf" -N -B -e \
    "SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA='sbtest'")"
if [[ $have -ne $TABLES ]]; then
    log "preparing $TABLES tables x $TABLE_SIZE rows"
    sb oltp_read_write "$DIRECT_PORT" 4 0 cleanup >/dev/null 2>&1 || true
    sb oltp_read_write "$DIRECT_PORT" 4 0 prepare >"$OUT/prepare.log" 2>&1 ||
        { cat "$OUT/prepare.log" >&2; die "sysbench prepare failed"; }
fi
log "warm-up: 5 s of oltp_read_write through each target"
for t in "${TARGETS[@]}"; do sb oltp_read_write "${PORT[$t]}" 8 5 run >/dev/null 2>&1 || die "warm-up via $t failed"; done

# Parses one sysbench output: qps, p95 and p99 (ms, from the histogram), sysbench's own p99,
# errors, reconnects.
parse() {
    python3 - "$1" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
qps = float(re.search(r"queries:\s+\d+\s+\(([\d.]+) per sec", text).group(1))
tps = float(re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", text).group(1))
errors = int(re.search(r"ignored errors:\s+(\d+)", text).group(1))
reconnects = int(re.search(r"reconnects:\s+(\d+)", text).group(1))
own_p99 = float(re.search(r"99th percentile:\s+([\d.]+)", text).group(1))
hist = []
in_hist = False
for line in text.splitlines():
    if "Latency histogram" in line:
        in_hist = True
        continue
    if in_hist:
        m = re.match(r"\s*([\d.]+)\s+\|[^|]*?\s(\d+)\s*$", line)
        if m:
            hist.append((float(m.group(1)), int(m.group(2))))
        elif hist:
            break
total = sum(c for _, c in hist)
def pct(p):
    need = total * p / 100.0
    acc = 0
    for value, count in hist:
        acc += count
        if acc >= need:
            return value
    return float("nan")
print(f"{qps:.1f},{tps:.1f},{pct(95):.3f},{pct(99):.3f},{own_p99:.3f},{errors},{reconnects}")
PY
}

CSV="$OUT/results.csv"
echo "round,test,threads,target,qps,tps,p95_ms,p99_ms,sysbench_p99_ms,errors,reconnects,load1,proxy_cpu_us_per_query,machine_cpu_us_per_query" >"$CSV"
cell=0
for round in $(seq 1 "$ROUNDS"); do
    for test in $TESTS; do
        for threads in $THREADS; do
            for k in "${!TARGETS[@]}"; do
                t="${TARGETS[$(((cell + round - 1 + k) % ${#TARGETS[@]}))]}"
                raw="$OUT/r$round-$test-$threads-$t.txt"
                log "round $round: $test, $threads threads, $t (port ${PORT[$t]}), ${DURATION} s, load $(loadavg)"
                pid="${PROXY_PID[$t]}"
                before="$([[ -n $pid ]] && cpu_ticks "$pid" || echo 0)"
                machine_before="$(machine_ticks)"
                sb "$test" "${PORT[$t]}" "$threads" "$DURATION" run >"$raw" 2>&1 ||
                    { tail -20 "$raw" >&2; die "sysbench $test via $t failed"; }
                after="$([[ -n $pid ]] && cpu_ticks "$pid" || echo 0)"
                machine_after="$(machine_ticks)"
                line="$(parse "$raw")"
                qps="${line%%,*}"
                cpu_per_query="$(awk -v t=$((after - before)) -v hz="$CLK_TCK" -v q="$qps" -v d="$DURATION" -v has="$pid" \
                    'BEGIN { if (has == "" || q == 0) print "nan"; else printf "%.1f", t * 1e6 / hz / (q * d) }')"
                machine_per_query="$(awk -v t=$((machine_after - machine_before)) -v hz="$CLK_TCK" -v q="$qps" -v d="$DURATION" \
                    'BEGIN { if (q == 0) print "nan"; else printf "%.1f", t * 1e6 / hz / (q * d) }')"
                echo "$round,$test,$threads,$t,$line,$(cut -d' ' -f1 /proc/loadavg),$cpu_per_query,$machine_per_query" >>"$CSV"
                log "  -> qps,tps,p95,p99,sb_p99,errors,reconnects = $line"
            done
            cell=$((cell + 1))
        done
    done
done
# The galley writer must not have moved during the run (it would make "direct" a non-writer).
[[ "$(galley_writer)" == "$WRITER" ]] || log "WARNING: the galley writer moved during the run"

log "summary (median over rounds):"
python3 - "$CSV" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1])))
cells = {}
for r in rows:
    cells.setdefault((r["test"], int(r["threads"])), {}).setdefault(r["target"], []).append(r)
def med(rs, key):
    return statistics.median(float(r[key]) for r in rs)
U = "galley-userspace"
def cell_rows():
    for (test, threads), t in sorted(cells.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        yield test, threads, t, {k: med(v, "qps") for k, v in t.items()}
print("Throughput (QPS; galley = kernel splice, galley-userspace = the proxy's own copy loop):\n")
print("| test | threads | direct | HAProxy | galley | galley-userspace | galley/HAProxy | galley/direct | galley-userspace/HAProxy | galley-userspace/direct |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for test, threads, t, q in cell_rows():
    print(f"| {test} | {threads} | {q['direct']:.0f} | {q['haproxy']:.0f} | {q['galley']:.0f} | {q[U]:.0f} | "
          f"{q['galley']/q['haproxy']:.2f} | {q['galley']/q['direct']:.2f} | {q[U]/q['haproxy']:.2f} | {q[U]/q['direct']:.2f} |")
print("\nLatency (ms, from sysbench's histogram), direct / HAProxy / galley / galley-userspace:\n")
print("| test | threads | p95 | p99 |")
print("|---|---:|---|---|")
order = ["direct", "haproxy", "galley", U]
for test, threads, t, q in cell_rows():
    p95 = " / ".join(f"{med(t[k], 'p95_ms'):.2f}" for k in order)
    p99 = " / ".join(f"{med(t[k], 'p99_ms'):.2f}" for k in order)
    print(f"| {test} | {threads} | {p95} | {p99} |")
print("\nCPU per query (µs): the whole machine's busy time, direct / HAProxy / galley / galley-userspace;")
print("and the proxy process's own, HAProxy / galley / galley-userspace (the kernel splice's work is not charged to galley's process):\n")
print("| test | threads | machine | proxy process |")
print("|---|---:|---|---|")
for test, threads, t, q in cell_rows():
    machine = " / ".join(f"{med(t[k], 'machine_cpu_us_per_query'):.1f}" for k in order)
    process = " / ".join(f"{med(t[k], 'proxy_cpu_us_per_query'):.1f}" for k in order[1:])
    errors = sum(int(r["errors"]) for k in order for r in t[k])
    print(f"| {test} | {threads} | {machine} | {process} |" + (f" errors: {errors}" if errors else ""))
PY
log "raw output and results.csv in $OUT; load at end $(loadavg)"
