#!/usr/bin/env python3
"""bench/failover.py: how long writes stop when the writer node dies (kill -9), through the
galley proxy's writer port and through HAProxy 2.6 configured the OpenStack way
(bench/haproxy-galera.cfg, written by bench/common.sh), and whether any acknowledged
write is lost.

One client thread does acknowledged single-row inserts (autocommit, unique ids) in a loop
through the balancer; on any error it closes the connection, sleeps 20 ms and reconnects.
Each run: the client reconnects (so it sits on the balancer's current writer), 2 s of
steady inserts, then kill -9 of that node's mariadbd (pid file
DIR/<node>/run/mariadbd.pid). Measured from the kill: the first error the client sees,
the first successful reconnect, and the first insert acknowledged after that first error
(= the failover time; an insert in flight at the kill may still be acknowledged a few ms
after it, which does not count).
Then `galley start <node>` brings the node back (returns once Synced) and the script waits
until the balancer sees it healthy again. At the end every acknowledged id is looked up
on every node directly.

Usage: python3 bench/failover.py [--dir DIR] [--runs 5] [--balancers galley,haproxy]
Needs the cluster running (it is started with `galley up --detach` and stopped at the end
if it does not run) and the `sbtest` account that bench/proxy.sh creates (created here too).
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request

try:
    import pymysql
except ImportError:  # the brief allows installing it
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q", "pymysql"])
    import pymysql

try:
    import tomllib
except ImportError:
    tomllib = None

HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Cluster:
    def __init__(self, directory, galley):
        self.dir = directory
        self.galley = galley
        with open(os.path.join(directory, "galley.toml"), "rb") as f:
            spec = tomllib.load(f)
        self.nodes = {n["name"]: n for n in spec["node"]}
        self.proxy = spec["proxy"]
        with open(os.path.join(directory, "bench-sbtest.pw")) as f:
            self.password = f.read().strip()

    def connect(self, port, **kw):
        return pymysql.connect(host="127.0.0.1", port=port, user="sbtest", password=self.password,
                               database="galley_bench", autocommit=True, connect_timeout=2,
                               read_timeout=30, write_timeout=30, **kw)

    def status(self):
        out = subprocess.run([self.galley, "status", "--json", "--dir", self.dir],
                             capture_output=True, text=True, timeout=30)
        return out.returncode, out.stdout

    def proxy_status(self):
        url = f"http://127.0.0.1:{self.proxy['admin_port']}/status"
        with urllib.request.urlopen(url, timeout=2) as r:
            return json.load(r)

    def pid(self, node):
        with open(os.path.join(self.dir, node, "run", "mariadbd.pid")) as f:
            return int(f.read().strip())


def haproxy_servers(sock_path):
    import socket
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(b"show stat\n")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    rows = [l.split(",") for l in data.decode().splitlines() if l and not l.startswith("#")]
    return [(r[1], r[17], r[20]) for r in rows if r[1] not in ("FRONTEND", "BACKEND")]


def haproxy_active(sock_path):
    servers = haproxy_servers(sock_path)
    for want_backup in ("0", "1"):
        for name, status, backup in servers:
            if backup == want_backup and status.startswith("UP"):
                return name
    return None


class Writer(threading.Thread):
    """Acknowledged inserts in a loop; records every ack and every (re)connect."""

    def __init__(self, cluster, port, label, id_base):
        super().__init__(daemon=True)
        self.cluster, self.port, self.label = cluster, port, label
        self.next_id = id_base
        self.acked = []          # (id, time of ack)
        self.attempted = set()
        self.errors = []         # (time, text)
        self.connects = []       # (time, node name)
        self.node = None
        self.stop_flag = threading.Event()
        self.reconnect_flag = threading.Event()
        self.lock = threading.Lock()

    def run(self):
        conn = None
        while not self.stop_flag.is_set():
            try:
                if conn is None or self.reconnect_flag.is_set():
                    if conn is not None:
                        conn.close()
                        conn = None
                    self.reconnect_flag.clear()
                    conn = self.cluster.connect(self.port)
                    with conn.cursor() as c:
                        c.execute("SELECT @@wsrep_node_name")
                        self.node = c.fetchone()[0]
                    with self.lock:
                        self.connects.append((time.monotonic(), self.node))
                i = self.next_id
                self.next_id += 1
                self.attempted.add(i)
                with conn.cursor() as c:
                    c.execute("INSERT INTO failover (id, balancer, ts) VALUES (%s, %s, %s)",
                              (i, self.label, time.time()))
                with self.lock:
                    self.acked.append((i, time.monotonic()))
            except Exception as e:  # noqa: BLE001 - any failure: reconnect
                with self.lock:
                    self.errors.append((time.monotonic(), f"{type(e).__name__}: {e}"))
                try:
                    if conn is not None:
                        conn.close()
                except Exception:  # noqa: BLE001
                    pass
                conn = None
                time.sleep(0.02)
        if conn is not None:
            conn.close()

    def first_after(self, series, t0):
        with self.lock:
            for item in series:
                if item[0 if series is not self.acked else 1] > t0:
                    return item
        return None


def wait_until(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.1)
    raise SystemExit(f"failover.py: timed out after {timeout} s waiting for {what}")


def all_synced(cluster):
    code, out = cluster.status()
    return code == 0


def run_balancer(cluster, label, port, runs, id_base, results, haproxy_sock):
    w = Writer(cluster, port, label, id_base)
    w.start()
    wait_until("first acknowledged insert", lambda: len(w.acked) > 0, 30)
    for run in range(1, runs + 1):
        wait_until("all nodes Synced", lambda: all_synced(cluster), 180)
        if label == "galley":
            wait_until("galley proxy: every node write-healthy", lambda: all(
                b["write_healthy"] for b in cluster.proxy_status()["backends"]), 60)
        else:
            wait_until("haproxy: every server UP", lambda: all(
                s.startswith("UP") for _, s, _ in haproxy_servers(haproxy_sock)), 60)
        # Put the client on the balancer's current writer, then let it run steadily.
        n_conn = len(w.connects)
        w.reconnect_flag.set()
        wait_until("client reconnect", lambda: len(w.connects) > n_conn, 30)
        time.sleep(2)
        if label == "galley":
            expected = cluster.proxy_status()["writer"]
        else:
            expected = haproxy_active(haproxy_sock)
        victim = w.node
        if victim != expected:
            log(f"  note: the client is on {victim}, the balancer reports {expected} as writer")
        pid = cluster.pid(victim)
        acked_before = len(w.acked)
        t0 = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        # An insert already in flight at the kill can still be acknowledged a few ms
        # after it; that is not a failover. The failover ends with the first insert
        # acknowledged after the client's first error following the kill (the broken
        # connection). If the client sees no error within 10 s, the first ack counts.
        try:
            wait_until("the client's first error after the kill",
                       lambda: w.first_after(w.errors, t0) is not None, 10)
        except SystemExit:
            log("  note: no client error within 10 s of the kill")
        err = w.first_after(w.errors, t0)
        t_err = err[0] if err else t0
        wait_until("first acknowledged insert after the kill",
                   lambda: w.first_after(w.acked, t_err) is not None, 120)
        ack = w.first_after(w.acked, t_err)
        con = w.first_after(w.connects, t0)
        with w.lock:
            in_flight = sum(1 for _, t in w.acked if t0 < t <= t_err)
        failover = ack[1] - t0
        row = {
            "balancer": label, "run": run, "victim": victim, "pid": pid,
            "failover_s": round(failover, 3),
            "first_error_s": round(err[0] - t0, 3) if err else None,
            "first_error": err[1][:160] if err else None,
            "reconnected_s": round(con[0] - t0, 3) if con else None,
            "new_node": con[1] if con else w.node,
            "errors_during": sum(1 for t, _ in w.errors if t0 < t <= ack[1]),
            "acked_before_kill": acked_before,
            "acked_after_kill_before_error": in_flight,
        }
        results.append(row)
        log(f"{label} run {run}: killed {victim} (pid {pid}); first error +{row['first_error_s']} s, "
            f"reconnected to {row['new_node']} +{row['reconnected_s']} s, first ack +{row['failover_s']} s "
            f"({row['errors_during']} errors; first: {row['first_error']}; "
            f"{in_flight} in-flight insert(s) acknowledged between the kill and the error)")
        # Bring the node back (returns once Synced).
        t1 = time.monotonic()
        out = subprocess.run([cluster.galley, "start", victim, "--dir", cluster.dir],
                             capture_output=True, text=True, timeout=300)
        if out.returncode != 0:
            raise SystemExit(f"galley start {victim} failed: {out.stdout}{out.stderr}")
        log(f"  galley start {victim}: Synced after {time.monotonic() - t1:.1f} s")
    w.stop_flag.set()
    w.join(60)
    return w


def verify(cluster, writers):
    """Every acknowledged id must be on every node (read directly from each node)."""
    wait_until("all nodes Synced before verification", lambda: all_synced(cluster), 180)
    acked = set()
    attempted = set()
    for w in writers:
        acked.update(i for i, _ in w.acked)
        attempted.update(w.attempted)
    report = {}
    for name, node in sorted(cluster.nodes.items()):
        conn = cluster.connect(node["client_port"])
        with conn.cursor() as c:
            c.execute("SET SESSION wsrep_sync_wait = 1")
            c.execute("SELECT id FROM failover")
            present = {r[0] for r in c.fetchall()}
        conn.close()
        missing = acked - present
        extra = (present & attempted) - acked
        report[name] = (len(present), len(missing), len(extra))
        log(f"verify {name}: {len(present)} rows, acknowledged {len(acked)}, missing {len(missing)}"
            f"{' e.g. ' + str(sorted(missing)[:5]) if missing else ''}, "
            f"committed but not acknowledged {len(extra)}")
    return report


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.environ.get("DIR", "/tmp/galley-bench-proxy"))
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--balancers", default="galley,haproxy")
    ap.add_argument("--galley", default=os.environ.get("GALLEY", "/tmp/target-bench/release/galley"))
    ap.add_argument("--json", help="write the per-run results here")
    args = ap.parse_args()
    if tomllib is None:
        raise SystemExit("needs python >= 3.11 (tomllib)")
    os.environ["DIR"] = args.dir
    os.environ["GALLEY"] = args.galley

    # Cluster, sbtest account and haproxy config through the shared shell helpers.
    started_cluster = subprocess.run(
        ["bash", "-c", f'set -e; source "{HERE}/common.sh"; ensure_cluster; ensure_sbtest_user; '
                       'write_haproxy_cfg; echo "$STARTED_CLUSTER $HAPROXY_PORT $HAPROXY_CFG $HAPROXY_SOCK $HAPROXY_PIDFILE"'],
        check=True, capture_output=True, text=True).stdout.split()
    did_start, ha_port, ha_cfg, ha_sock, ha_pidfile = started_cluster[0] == "1", int(started_cluster[1]), *started_cluster[2:]
    cluster = Cluster(args.dir, args.galley)
    haproxy_pid = None
    results = []
    writers = []
    try:
        conn = cluster.connect(cluster.nodes["node1"]["client_port"])
        with conn.cursor() as c:
            c.execute("CREATE TABLE IF NOT EXISTS failover (id BIGINT PRIMARY KEY, balancer VARCHAR(16), ts DOUBLE)")
            c.execute("SELECT COALESCE(MAX(id), 0) FROM failover")
            id_base = c.fetchone()[0] + 1
        conn.close()
        balancers = [b.strip() for b in args.balancers.split(",") if b.strip()]
        if "haproxy" in balancers:
            subprocess.run(["haproxy", "-D", "-f", ha_cfg], check=True)
            with open(ha_pidfile) as f:
                haproxy_pid = int(f.read().strip())
            wait_until("haproxy UP server", lambda: haproxy_active(ha_sock) is not None, 20)
        log(f"galley {subprocess.run([args.galley, '--version'], capture_output=True, text=True).stdout.strip()}, "
            f"load {open('/proc/loadavg').read().split()[:3]}")
        for i, label in enumerate(balancers):
            port = cluster.proxy["writer_port"] if label == "galley" else ha_port
            log(f"== {label} (port {port}), {args.runs} kills")
            writers.append(run_balancer(cluster, label, port, args.runs, id_base + i * 10_000_000,
                                        results, ha_sock))
        report = verify(cluster, writers)
    finally:
        for w in writers:
            w.stop_flag.set()
        if haproxy_pid:
            os.kill(haproxy_pid, signal.SIGTERM)
        if did_start:
            subprocess.run([args.galley, "down", "--dir", args.dir], timeout=120)
    print()
    print("| balancer | runs | failover p50 (s) | max (s) | min (s) | all runs (s) | first error p50 (s) | reconnected p50 (s) |")
    print("|---|---:|---:|---:|---:|---|---:|---:|")
    for label in dict.fromkeys(r["balancer"] for r in results):
        rs = [r for r in results if r["balancer"] == label]
        f = [r["failover_s"] for r in rs]
        e = [r["first_error_s"] for r in rs if r["first_error_s"] is not None]
        c = [r["reconnected_s"] for r in rs if r["reconnected_s"] is not None]
        print(f"| {label} | {len(rs)} | {statistics.median(f):.2f} | {max(f):.2f} | {min(f):.2f} | "
              f"{', '.join(f'{x:.2f}' for x in f)} | {statistics.median(e) if e else float('nan'):.2f} | "
              f"{statistics.median(c) if c else float('nan'):.2f} |")
    lost = sum(m for _, m, _ in report.values())
    print(f"\nacknowledged inserts missing on some node: {lost} (per node rows/missing/unacked-but-committed: {report})")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
