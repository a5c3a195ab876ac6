#!/usr/bin/env python3
"""bench/scale.py: memory per client connection and new-connection rate of the galley
proxy (and of HAProxy 2.6 for comparison).

What is measured (RSS = VmRSS of /proc/<pid>/status, user-space memory only; kernel socket
buffers are not in it):

A. real sessions: N_REAL (default 900; the nodes have max_connections = 1000) pymysql
   connections through the cluster's galley proxy writer port, each fully authenticated
   and having run `SELECT 1`, held open. RSS of the proxy before/with/after. Same through
   HAProxy (bench/haproxy-galera.cfg).
B. 10,000 held sessions, proxy alone: MariaDB cannot hold 10,000 sessions, so a second
   proxy process of the same binary is started from a copy of galley.toml whose nodes'
   client ports point at a relay (this script, in a child process). The relay forwards
   the proxy's health-probe connections to the real nodes; once the proxy has chosen a
   writer the relay switches to "hold": it accepts every further connection, sends it a
   9-byte stand-in for a server greeting (one MySQL packet) and holds it. The client then
   opens N_HOLD (default 10,000) TCP connections to that proxy's writer port and reads the
   greeting on each. So each proxy session is real and past the greeting: in the kernel
   splice (forwarding = "kernel"), or in the copy loop with both buffers (forwarding =
   "userspace"); each mode gets its own proxy and relay. The same for a second HAProxy
   whose one server is the relay. Besides RSS, the machine's slab memory (/proc/meminfo
   Slab) before and with the sessions: it includes the client's and the relay's sockets
   too, so only the difference between the two galley modes is the proxy's own.
C. new connections per second: sysbench with bench/connect.lua (connect + handshake +
   `SELECT 1` + close), 8 threads, RATE_SECONDS (10) s, direct / HAProxy / galley.

Usage: python3 bench/scale.py [--dir DIR] [--real 900] [--hold 10000] [--rate-seconds 10]
"""
import argparse
import asyncio
import json
import multiprocessing
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pymysql  # failover.py installs it if missing

try:
    import tomllib
except ImportError:
    tomllib = None

HERE = os.path.dirname(os.path.abspath(__file__))


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def raise_nofile():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def nofile_limit(pid):
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                return int(line.split()[3])


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def http_json(url):
    with urllib.request.urlopen(url, timeout=2) as r:
        return json.load(r)


def wait_until(what, check, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except Exception:  # noqa: BLE001
            pass
        time.sleep(0.1)
    raise SystemExit(f"scale.py: timed out after {timeout} s waiting for {what}")


# ---------------------------------------------------------------- relay (child process)
# One MySQL packet (3-byte length 5, sequence 0, 5 bytes): enough for the proxy to pass
# the session to the kernel, as it does after a real greeting.
FAKE_GREETING = b"\x05\x00\x00\x00" + b"hello"


def slab_kib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("Slab:"):
                return int(line.split()[1])
    raise RuntimeError("no Slab in /proc/meminfo")


def relay_main(pairs, hold_flag, counter_file):
    """pairs: [(listen_port, target_port)]. Forwards until SIGUSR1 (or hold_flag exists at
    start), then greets and holds every new connection."""
    raise_nofile()
    held = []
    state = {"hold": os.path.exists(hold_flag)}

    async def pipe(r, w):
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    break
                w.write(data)
                await w.drain()
        except Exception:  # noqa: BLE001
            pass
        finally:
            try:
                w.close()
            except Exception:  # noqa: BLE001
                pass

    def handler(target):
        async def handle(reader, writer):
            if state["hold"]:
                writer.write(FAKE_GREETING)
                held.append(writer)
                return
            try:
                r2, w2 = await asyncio.open_connection("127.0.0.1", target)
            except OSError:
                writer.close()
                return
            await asyncio.gather(pipe(reader, w2), pipe(r2, writer))
        return handle

    async def report():
        while True:
            await asyncio.sleep(0.5)
            with open(counter_file + ".tmp", "w") as f:
                f.write(str(len(held)))
            os.replace(counter_file + ".tmp", counter_file)

    async def main():
        asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, lambda: state.update(hold=True))
        servers = [await asyncio.start_server(handler(t), "127.0.0.1", l, backlog=4096) for l, t in pairs]
        await asyncio.gather(report(), *(s.serve_forever() for s in servers))

    asyncio.run(main())


# ---------------------------------------------------------------- client side
async def hold_connections(port, count, concurrency=256):
    """Opens `count` TCP connections to port and reads the greeting on each; returns the
    open writers and the failures."""
    sem = asyncio.Semaphore(concurrency)
    writers, failures = [], []

    async def one():
        async with sem:
            try:
                r, w = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)
                greeting = await asyncio.wait_for(r.readexactly(len(FAKE_GREETING)), 10)
                if greeting != FAKE_GREETING:
                    raise RuntimeError(f"got {greeting!r} instead of the greeting")
                writers.append(w)
            except Exception as e:  # noqa: BLE001
                failures.append(f"{type(e).__name__}: {e}")

    await asyncio.gather(*(one() for _ in range(count)))
    return writers, failures


def measure_hold(label, pid, port, count, session_count):
    """B: open `count` greeted, idle connections; RSS per connection from the process `pid`."""
    before = rss_kib(pid)
    slab_before = slab_kib()
    t0 = time.monotonic()
    loop = asyncio.new_event_loop()
    writers, failures = loop.run_until_complete(hold_connections(port, count))
    took = time.monotonic() - t0
    sessions, stable_since, deadline = -1, time.monotonic(), time.monotonic() + 30
    while time.monotonic() < deadline and time.monotonic() - stable_since < 3:
        loop.run_until_complete(asyncio.sleep(0.5))
        now = session_count()
        if now != sessions:
            sessions, stable_since = now, time.monotonic()
    with_conns = rss_kib(pid)
    slab_with = slab_kib()
    fds = fd_count(pid)
    for w in writers:
        w.close()
    loop.run_until_complete(asyncio.sleep(3))
    loop.close()
    after = rss_kib(pid)
    per = (with_conns - before) / sessions if sessions else float("nan")
    slab_per = (slab_with - slab_before) / sessions if sessions else float("nan")
    log(f"{label}: opened and greeted {len(writers)}/{count} connections in {took:.1f} s ({len(failures)} failed"
        f"{', e.g. ' + failures[0] if failures else ''}); sessions held by the balancer: {sessions}; "
        f"fds {fds}; RSS before {before} KiB, with {with_conns} KiB, after close {after} KiB "
        f"-> {per:.1f} KiB per session; machine slab +{slab_with - slab_before} KiB -> {slab_per:.1f} KiB per session")
    return {"label": label, "target": count, "opened": len(writers), "failed": len(failures),
            "sessions": sessions, "rss_before_kib": before, "rss_with_kib": with_conns,
            "rss_after_kib": after, "kib_per_session": round(per, 2),
            "machine_slab_kib_per_session": round(slab_per, 2)}


def measure_real(label, pid, port, password, count, session_count):
    """A: `count` authenticated pymysql sessions through port, held."""
    before = rss_kib(pid)
    conns, failures = [], []
    t0 = time.monotonic()
    for _ in range(count):
        try:
            c = pymysql.connect(host="127.0.0.1", port=port, user="sbtest", password=password,
                                connect_timeout=5)
            with c.cursor() as cur:
                cur.execute("SELECT 1")
            conns.append(c)
        except Exception as e:  # noqa: BLE001
            failures.append(f"{type(e).__name__}: {e}")
    took = time.monotonic() - t0
    time.sleep(2)
    sessions = session_count()
    with_conns = rss_kib(pid)
    for c in conns:
        c.close()
    time.sleep(2)
    after = rss_kib(pid)
    per = (with_conns - before) / len(conns) if conns else float("nan")
    log(f"{label}: {len(conns)}/{count} authenticated sessions in {took:.1f} s ({len(failures)} failed"
        f"{', e.g. ' + failures[0] if failures else ''}); balancer reports {sessions}; "
        f"RSS before {before} KiB, with {with_conns} KiB, after close {after} KiB -> {per:.1f} KiB per session")
    return {"label": label, "target": count, "opened": len(conns), "failed": len(failures),
            "sessions": sessions, "rss_before_kib": before, "rss_with_kib": with_conns,
            "rss_after_kib": after, "kib_per_session": round(per, 2)}


def haproxy_scur(sock_path):
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
    for line in data.decode().splitlines():
        f = line.split(",")
        if len(f) > 4 and f[1] == "FRONTEND":
            return int(f[4])
    return -1


def connect_rate(label, port, password, seconds, threads=8):
    out = subprocess.run(
        ["sysbench", os.path.join(HERE, "connect.lua"), "--db-driver=mysql", "--mysql-host=127.0.0.1",
         f"--mysql-port={port}", "--mysql-user=sbtest", f"--mysql-password={password}",
         f"--threads={threads}", f"--time={seconds}", "--percentile=99", "--report-interval=0", "run"],
        capture_output=True, text=True, timeout=seconds + 60)
    import re
    text = out.stdout
    m = re.search(r"events/s \(eps\):\s+([\d.]+)", text) or re.search(r"transactions:\s+\d+\s+\(([\d.]+) per sec", text)
    p99 = re.search(r"99th percentile:\s+([\d.]+)", text)
    errs = re.search(r"ignored errors:\s+(\d+)", text)
    if out.returncode != 0 or not m:
        log(f"connect rate via {label} failed: {text[-800:]} {out.stderr[-800:]}")
        return {"label": label, "per_s": None}
    r = {"label": label, "per_s": float(m.group(1)), "p99_ms": float(p99.group(1)) if p99 else None,
         "errors": int(errs.group(1)) if errs else None}
    log(f"connect+handshake+SELECT 1+close via {label}: {r['per_s']:.0f}/s, p99 {r['p99_ms']} ms")
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", default=os.environ.get("DIR", "/tmp/galley-bench-proxy"))
    ap.add_argument("--galley", default=os.environ.get("GALLEY", "/tmp/target-bench/release/galley"))
    ap.add_argument("--real", type=int, default=900)
    ap.add_argument("--hold", type=int, default=10_000)
    ap.add_argument("--rate-seconds", type=int, default=10)
    ap.add_argument("--skip", default="", help="comma list of: real,hold,rate")
    args = ap.parse_args()
    skip = set(args.skip.split(","))
    raise_nofile()
    os.environ["DIR"] = args.dir
    os.environ["GALLEY"] = args.galley
    info = subprocess.run(
        ["bash", "-c", f'set -e; source "{HERE}/common.sh"; ensure_cluster; ensure_sbtest_user; '
                       'write_haproxy_cfg; echo "$STARTED_CLUSTER $HAPROXY_PORT $HAPROXY_CFG $HAPROXY_SOCK $HAPROXY_PIDFILE"'],
        check=True, capture_output=True, text=True).stdout.split()
    did_start, ha_port, ha_cfg, ha_sock, ha_pidfile = info[0] == "1", int(info[1]), *info[2:]
    with open(os.path.join(args.dir, "galley.toml"), "rb") as f:
        spec = tomllib.load(f)
    with open(os.path.join(args.dir, "bench-sbtest.pw")) as f:
        password = f.read().strip()
    proxy = spec["proxy"]
    admin = f"http://127.0.0.1:{proxy['admin_port']}/status"
    proxy_pid = int(subprocess.run(["pgrep", "-f", f"galley proxy --config {args.dir}/galley.toml"],
                                   capture_output=True, text=True).stdout.split()[0])
    log(f"cluster proxy pid {proxy_pid}, open-files limit {nofile_limit(proxy_pid)}; "
        f"load {open('/proc/loadavg').read().split()[:3]}")
    results = {"real": [], "hold": [], "rate": []}
    children = []   # (kind, Popen or Process)
    work = os.path.join(args.dir, "scale")
    os.makedirs(work, exist_ok=True)
    try:
        # HAProxy as in bench/proxy.sh
        subprocess.run(["haproxy", "-D", "-f", ha_cfg], check=True)
        with open(ha_pidfile) as f:
            ha_pid = int(f.read().strip())
        children.append(("pid", ha_pid))
        wait_until("haproxy", lambda: haproxy_scur(ha_sock) >= 0, 20)
        time.sleep(4)  # rise 2 x 2 s

        if "real" not in skip:
            results["real"].append(measure_real(
                "galley proxy (cluster)", proxy_pid, proxy["writer_port"], password, args.real,
                lambda: http_json(admin)["active_connections"]))
            results["real"].append(measure_real(
                "HAProxy 2.6", ha_pid, ha_port, password, args.real, lambda: haproxy_scur(ha_sock)))

        if "rate" not in skip:
            writer = http_json(admin)["writer"]
            direct_port = next(n["client_port"] for n in spec["node"] if n["name"] == writer)
            for label, port in (("direct", direct_port), ("HAProxy 2.6", ha_port),
                                ("galley proxy", proxy["writer_port"]),
                                ("galley proxy", proxy["writer_port"]), ("HAProxy 2.6", ha_port),
                                ("direct", direct_port)):
                results["rate"].append(connect_rate(label, port, password, args.rate_seconds))

        if "hold" not in skip:
            # The relay: node i's client port seen as relay port base+i.
            base = proxy["writer_port"] + 70
            pairs = [(base + i, n["client_port"]) for i, n in enumerate(spec["node"])]
            hold_flag = os.path.join(work, "hold")
            counter = os.path.join(work, "held")
            for mode, shift in (("kernel", 60), ("userspace", 80)):
                for p in (hold_flag, counter):
                    if os.path.exists(p):
                        os.remove(p)
                mode_pairs = [(relay_port + shift - 60, client_port) for relay_port, client_port in pairs]
                relay = multiprocessing.Process(target=relay_main, args=(mode_pairs, hold_flag, counter), daemon=True)
                relay.start()
                children.append(("proc", relay))
                time.sleep(0.5)
                # Second galley proxy: same spec, nodes behind the relay, other listener ports.
                text = open(os.path.join(args.dir, "galley.toml")).read()
                text = text.replace(f"writer_port = {proxy['writer_port']}", f"writer_port = {proxy['writer_port'] + shift}")
                text = text.replace(f"reader_port = {proxy['reader_port']}", f"reader_port = {proxy['reader_port'] + shift}")
                text = text.replace(f"admin_port = {proxy['admin_port']}", f"admin_port = {proxy['admin_port'] + shift}")
                if "multi_writer_port" in proxy:
                    text = text.replace(f"multi_writer_port = {proxy['multi_writer_port']}",
                                        f"multi_writer_port = {proxy['multi_writer_port'] + shift}")
                for (relay_port, client_port) in mode_pairs:
                    text = text.replace(f"client_port = {client_port}", f"client_port = {relay_port}")
                # The probes run through the relay too: give them slack so that a slow relay
                # (python, busy accepting) cannot make the proxy drop its writer mid-test.
                text = text.replace(f"admin_port = {proxy['admin_port'] + shift}\n",
                                    f"admin_port = {proxy['admin_port'] + shift}\nprobe_timeout_ms = 30000\nfall = 100\n"
                                    f"forwarding = \"{mode}\"\n"
                                    # Its backends are the relay, not servers: lift the limits
                                    # derived from the servers' max_connections.
                                    f"max_connections = {args.hold + 1000}\n"
                                    f"max_connections_per_source = {args.hold + 1000}\n")
                cfg2 = os.path.join(work, f"galley-relay-{mode}.toml")
                with open(cfg2, "w") as f:
                    f.write(text)
                plog = open(os.path.join(work, f"proxy2-{mode}.log"), "w")
                proxy2 = subprocess.Popen([args.galley, "proxy", "--config", cfg2], stdout=plog, stderr=plog,
                                          preexec_fn=raise_nofile)
                children.append(("popen", proxy2))
                admin2 = f"http://127.0.0.1:{proxy['admin_port'] + shift}/status"
                wait_until("second proxy has a writer", lambda: http_json(admin2)["writer"] is not None, 20)
                log(f"second galley proxy pid {proxy2.pid} (open-files limit {nofile_limit(proxy2.pid)}), "
                    f"forwarding {http_json(admin2).get('forwarding')}, nodes behind the relay, "
                    f"writer {http_json(admin2)['writer']}")
                os.kill(relay.pid, signal.SIGUSR1)
                time.sleep(0.2)
                results["hold"].append(measure_hold(
                    f"galley proxy (2nd instance, relay backends, forwarding {mode})", proxy2.pid,
                    proxy["writer_port"] + shift, args.hold, lambda: http_json(admin2)["active_connections"]))
                st = http_json(admin2)
                log(f"second proxy after the test: writer {st['writer']}, "
                    f"{[(b['name'], b['write_healthy'], b['connect_errors']) for b in st['backends']]}")
                proxy2.terminate()
                proxy2.wait(10)
                relay.terminate()
                relay.join(10)
            # HAProxy needs a relay of its own, in hold mode from the start.
            open(hold_flag, "w").close()
            relay = multiprocessing.Process(target=relay_main, args=(pairs, hold_flag, counter), daemon=True)
            relay.start()
            children.append(("proc", relay))
            time.sleep(0.5)
            # HAProxy with the relay as its one server, no health check.
            ha2_cfg = os.path.join(work, "haproxy-relay.cfg")
            ha2_sock = os.path.join(work, "haproxy-relay.sock")
            ha2_pidfile = os.path.join(work, "haproxy-relay.pid")
            with open(ha2_cfg, "w") as f:
                f.write(f"global\n    maxconn 9900\n    stats socket {ha2_sock} mode 600 level admin\n"
                        f"    pidfile {ha2_pidfile}\n\ndefaults\n    mode tcp\n    timeout connect 5s\n"
                        f"    timeout client 3600s\n    timeout server 3600s\n\n"
                        f"listen relay\n    bind 127.0.0.1:{ha_port + 60}\n    maxconn 9900\n"
                        f"    server relay 127.0.0.1:{pairs[0][0]}\n")
            subprocess.run(["haproxy", "-D", "-f", ha2_cfg], check=True, preexec_fn=raise_nofile)
            with open(ha2_pidfile) as f:
                ha2_pid = int(f.read().strip())
            children.append(("pid", ha2_pid))
            time.sleep(0.5)
            results["hold"].append(measure_hold(
                "HAProxy 2.6 (relay backend, maxconn 9900)", ha2_pid, ha_port + 60,
                args.hold, lambda: haproxy_scur(ha2_sock)))
    finally:
        for kind, child in reversed(children):
            try:
                if kind == "pid":
                    os.kill(child, signal.SIGTERM)
                elif kind == "popen":
                    child.terminate()
                    child.wait(10)
                else:
                    child.terminate()
                    child.join(10)
            except Exception:  # noqa: BLE001
                pass
        if did_start:
            subprocess.run([args.galley, "down", "--dir", args.dir], timeout=120)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    sys.exit(main())
