#!/usr/bin/env bash
# bench/backup.sh: a full backup of SIZE_MB of InnoDB data through `galley backup now`
# against plain `mariabackup --backup --stream=mbstream | zstd -3` on the same node of
# the same cluster, in the same run; then `galley backup verify` of galley's backup.
#
#   GALLEY=target/debug/galley SIZE_MB=1024 bash bench/backup.sh
#
# Starts its own 3-node cluster on free 127.0.0.1 ports in a temporary directory and
# stops it on exit. Prints one line per measurement; results go into BENCHMARKS.md.
set -euo pipefail

GALLEY_BIN="$(realpath "${GALLEY:-target/debug/galley}")"
SIZE_MB="${SIZE_MB:-1024}"
DIR="$(mktemp -d /tmp/galley-bench-backup-XXXXXX)"
chmod 755 "$DIR"   # the OS user mysql reaches the data dirs below it
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

cleanup() {
    "$GALLEY_BIN" down --dir "$DIR" >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap cleanup EXIT

read -r -a PORTS < <(python3 - <<'EOF'
import socket
socks = []
for _ in range(19):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
)
{
    printf '[cluster]\nname = "benchbackup"\nsecrets_file = "%s/secrets.toml"\n\n' "$DIR"
    printf '[server]\nbuffer_pool_size = "256M"\nlog_file_size = "128M"\ngcache_size = "256M"\n'
    printf '\n[proxy]\naddress = "127.0.0.1"\nwriter_port = %s\nreader_port = %s\nadmin_port = %s\n' \
        "${PORTS[15]}" "${PORTS[16]}" "${PORTS[17]}"
    for n in 1 2 3; do
        b=$(((n - 1) * 5))
        printf '\n[[node]]\nname = "node%s"\naddress = "127.0.0.1"\nclient_port = %s\ngalera_port = %s\n' \
            "$n" "${PORTS[b]}" "${PORTS[b + 1]}"
        printf 'ist_port = %s\nsst_port = %s\nagent_port = %s\n' "${PORTS[b + 2]}" "${PORTS[b + 3]}" "${PORTS[b + 4]}"
        printf 'data_dir = "%s/node%s/data"\nrun_dir = "%s/node%s/run"\nlog_dir = "%s/node%s/log"\n' \
            "$DIR" "$n" "$DIR" "$n" "$DIR" "$n"
    done
} >"$DIR/galley.toml"

log "starting the cluster in $DIR"
"$GALLEY_BIN" up --detach --dir "$DIR" >"$DIR/up.log" 2>&1 || { cat "$DIR/up.log"; exit 1; }

# The admin login for the mariadb client and the plain mariabackup run, in 0600 files.
umask 077
admin_password="$(python3 -c 'import sys,tomllib; print(tomllib.load(open(sys.argv[1],"rb"))["admin_password"])' "$DIR/secrets.toml")"
printf '[client]\nuser = galley_admin\npassword = "%s"\nhost = 127.0.0.1\nport = %s\n' "$admin_password" "${PORTS[0]}" >"$DIR/writer.cnf"
printf '!include %s\n[client]\nuser = galley_admin\npassword = "%s"\nsocket = %s\n' \
    "$DIR/node3/run/my.cnf" "$admin_password" "$DIR/node3/run/mysqld.sock" >"$DIR/node3-backup.cnf"
sql() { mariadb --defaults-extra-file="$DIR/writer.cnf" -N -e "$1"; }

log "loading ${SIZE_MB} MB (rows of ~1 KiB, 64 MiB per transaction)"
sql "CREATE DATABASE bench; CREATE TABLE bench.t (id BIGINT PRIMARY KEY, a CHAR(255), b CHAR(255), c CHAR(255), d CHAR(255)) ENGINE=InnoDB"
sql "CREATE TABLE bench.seq (n INT PRIMARY KEY) ENGINE=InnoDB; INSERT INTO bench.seq SELECT seq FROM seq_1_to_65536"
batches=$((SIZE_MB / 64))
for ((i = 0; i < batches; i++)); do
    sql "INSERT INTO bench.t SELECT $i * 65536 + n, MD5(RAND()), SHA2(RAND(), 256), MD5(n), REPEAT(CHAR(65 + n % 26), 200) FROM bench.seq"
done
data_mb=$(du -sm "$DIR/node3/data" | cut -f1)
log "node3's data dir: ${data_mb} MB"

rate() { python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.1f}')" "$1" "$2"; }

log "plain: mariabackup --backup --galera-info --stream=mbstream | zstd -3, on node3"
start=$(date +%s.%N)
mariabackup --defaults-file="$DIR/node3-backup.cnf" --backup --galera-info --stream=mbstream \
    --target-dir="$DIR/plain-work" 2>"$DIR/plain.log" | zstd -3 -q >"$DIR/plain.mbstream.zst"
plain_s=$(python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.2f}')" "$start")
plain_mb=$(du -m "$DIR/plain.mbstream.zst" | cut -f1)
echo "plain mariabackup | zstd: ${plain_s} s, $(rate "$data_mb" "$plain_s") MB/s of data dir, ${plain_mb} MB stored"

log "galley backup now --node node3"
start=$(date +%s.%N)
out=$("$GALLEY_BIN" backup now --node node3 --target "$DIR/backups" --json --dir "$DIR")
galley_s=$(python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.2f}')" "$start")
id=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$out")
galley_mb=$(du -m "$DIR/backups/$id/backup.mbstream.zst" | cut -f1)
echo "galley backup now: ${galley_s} s, $(rate "$data_mb" "$galley_s") MB/s of data dir, ${galley_mb} MB stored (includes the read lock, CHECKSUM TABLE of every table, and the wait for Synced)"
echo "ratio galley/plain (MB/s): $(python3 -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$plain_s" "$galley_s")"

log "galley backup verify $id"
start=$(date +%s.%N)
"$GALLEY_BIN" backup verify "$id" --target "$DIR/backups" --scratch-dir "$DIR" --json --dir "$DIR" >"$DIR/verify.json"
verify_s=$(python3 -c "import time,sys; print(f'{time.time()-float(sys.argv[1]):.2f}')" "$start")
echo "galley backup verify: ${verify_s} s total: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(f"verified={d[\"verified\"]}, restore+prepare {d[\"restore_seconds\"]:.1f} s, scratch server start + checksums {d[\"compare_seconds\"]:.1f} s")' "$DIR/verify.json")"
echo "restore seconds per GB: $(python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); print(f"{d[\"restore_seconds\"]*1024/float(sys.argv[2]):.1f}")' "$DIR/verify.json" "$data_mb")"
