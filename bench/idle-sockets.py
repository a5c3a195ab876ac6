#!/usr/bin/env python3
"""bench/idle-sockets.py: 10,000 idle sockets on each HTTP port of a running `galley up`
(the controller's API, one agent, the proxy's admin endpoint) and on the proxy's client
(writer) port, while an authenticated request is timed.

For each port, two floods, one after the other:
  one source    SOCKETS connections from 127.0.0.2 alone;
  many sources  SOCKETS connections spread over SOURCES addresses 127.0.1.1, 127.0.1.2 ...
                (every 127.x.y.z is this host), so that per-source caps do not refuse them.
Each flood opens its connections as fast as the server accepts them (OPENING at a time)
and sends nothing on them. Meanwhile, every 0.25 s, an authenticated request from
127.0.0.1 (another source) and one from the flood's first source:
  HTTP ports    curl with `Authorization: Bearer <cluster token>` (read from a 0600 header
                file, never the command line): controller GET /api/v1/events, agent
                GET /v1/status, proxy admin GET /status; a 2xx answer counts as answered;
  client port   `mariadb --defaults-extra-file=DIR/client.cnf -e 'SELECT 1'` through the
                proxy's writer port: a login and a query (the time includes starting the
                client, some 10-20 ms).
Reported per flood: how long opening took; the flood's sockets still open as the client
sees them 1 s after the last one was opened and HOLD seconds later (on the client port, how
many got a server greeting); how many more descriptors the server process holds than
before (its connections; a socket the client sees open but the server never accepted
sat in a full accept queue, whose final ACK the kernel dropped); and the authenticated
requests' count, failures, median and max latency. (The mariadb client cannot bind a
source address, so on the client port only 127.0.0.1 asks.)

Usage: python3 bench/idle-sockets.py [--dir DIR] [--galley PATH] [--sockets 10000]
           [--sources 100] [--hold 15] [--only controller,agent,admin,client]
Starts `galley up --detach --dir DIR` when the cluster is not running there, and
`galley down --dir DIR` at the end in that case. Raises its own open-files limit to the
hard limit (20,000 on the machine BENCHMARKS.md was measured on: 10,000 sockets at a time
fit). Needs root for `galley up` (mariadbd runs as mysql), curl and the mariadb client.
"""
import argparse
import asyncio
import os
import resource
import select
import socket
import statistics
import subprocess
import threading
import time

try:
    import tomllib
except ImportError:  # Python < 3.11
    tomllib = None


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def raise_nofile(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < wanted + 200:
        raise SystemExit(f"the open-files hard limit is {hard}; {wanted} sockets need {wanted + 200}")


def read_toml(path):
    with open(path, "rb") as f:
        return tomllib.load(f)


def cluster_running(galley, directory):
    return subprocess.run([galley, "status", "--dir", directory],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


async def open_sockets(port, sources, count, opening):
    """Opens `count` connections to 127.0.0.1:port, round-robin over `sources`."""
    loop = asyncio.get_running_loop()
    sockets = []
    gate = asyncio.Semaphore(opening)
    failed = 0

    async def one(index):
        nonlocal failed
        source = sources[index % len(sources)]
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setblocking(False)
        async with gate:
            try:
                sock.bind((source, 0))
                await asyncio.wait_for(loop.sock_connect(sock, ("127.0.0.1", port)), 30)
                sockets.append(sock)
            except (OSError, asyncio.TimeoutError):
                failed += 1
                sock.close()

    await asyncio.gather(*(one(i) for i in range(count)))
    return sockets, failed


def server_side(port):
    """(pid, open descriptors of the process listening on `port`, its accept queue)."""
    out = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True).stdout
    if "pid=" not in out:
        return None, None, None
    pid = int(out.split("pid=")[1].split(",")[0])
    queue = int(out.split()[1])
    try:
        descriptors = len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        descriptors = None
    return pid, descriptors, queue


def census(sockets):
    """(open and silent, open with data from the server, closed by the server)."""
    poller = select.poll()
    by_fd = {}
    for sock in sockets:
        poller.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
        by_fd[sock.fileno()] = sock
    silent, greeted, closed = len(sockets), 0, 0
    for fd, _ in poller.poll(0):
        sock = by_fd[fd]
        try:
            data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
        except BlockingIOError:
            continue
        except OSError:
            data = b""
        silent -= 1
        if data:
            greeted += 1
        else:
            closed += 1
    return silent, greeted, closed


class Prober(threading.Thread):
    """Runs `command` from each source every 0.25 s until stopped; records latencies."""

    def __init__(self, command_for, sources):
        super().__init__(daemon=True)
        self.command_for = command_for
        self.sources = sources
        self.results = {source: [] for source in sources}
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for source in self.sources:
                started = time.monotonic()
                try:
                    ok = self.command_for(source)()
                except subprocess.TimeoutExpired:
                    ok = False
                self.results[source].append((ok, time.monotonic() - started))
            self.stop.wait(0.25)


def summary(results):
    if not results:
        return "no request"
    times = [t for ok, t in results if ok]
    failures = sum(1 for ok, _ in results if not ok)
    if not times:
        return f"{len(results)} requests, all failed"
    return (f"{len(results)} requests, {failures} failed, median {statistics.median(times) * 1000:.0f} ms, "
            f"max {max(times) * 1000:.0f} ms")


def flood(name, port, sources, count, hold, opening, command_for, probe_from_flood=True):
    log(f"{name}: {count} sockets from {len(sources)} source(s) ({sources[0]}...) to port {port}")
    prober = Prober(command_for, ["127.0.0.1", sources[0]] if probe_from_flood else ["127.0.0.1"])
    pid, baseline, _ = server_side(port)
    prober.start()
    time.sleep(0.6)  # a few requests before the flood
    started = time.monotonic()
    sockets, failed = asyncio.run(open_sockets(port, sources, count, opening))
    opened_in = time.monotonic() - started
    time.sleep(1)
    first = census(sockets)
    _, first_fds, first_queue = server_side(port)
    time.sleep(max(hold - 1, 0))
    later = census(sockets)
    _, later_fds, _ = server_side(port)
    prober.stop.set()
    prober.join()
    for sock in sockets:
        sock.close()
    line = (f"{name}, {len(sources)} source(s): opened {len(sockets)} of {count} in {opened_in:.1f} s "
            f"({failed} failed to connect); 1 s later open {first[0] + first[1]} (greeted {first[1]}), "
            f"closed by the server {first[2]}; {hold} s later open {later[0] + later[1]} "
            f"(greeted {later[1]}), closed {later[2]}")
    held = lambda fds: "?" if fds is None or baseline is None else fds - baseline
    line += (f"; the server (pid {pid}) held {held(first_fds)} more descriptors than before 1 s later "
             f"(accept queue {first_queue}), {held(later_fds)} {hold} s later")
    log(line)
    for source in prober.sources:
        log(f"    authenticated request from {source}: {summary(prober.results[source])}")
    time.sleep(2)  # let the server close what is left before the next flood
    return line, {source: summary(prober.results[source]) for source in prober.sources}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--dir", default=os.environ.get("DIR", "/tmp/galley-bench-idle"))
    parser.add_argument("--galley", default=os.environ.get("GALLEY", "target/release/galley"))
    parser.add_argument("--sockets", type=int, default=10_000)
    parser.add_argument("--sources", type=int, default=100)
    parser.add_argument("--hold", type=int, default=15)
    parser.add_argument("--opening", type=int, default=512, help="connects in flight at once")
    parser.add_argument("--only", default="controller,agent,admin,client")
    args = parser.parse_args()
    if tomllib is None:
        raise SystemExit("needs Python 3.11 (tomllib)")
    raise_nofile(args.sockets)
    started_cluster = False
    if not cluster_running(args.galley, args.dir):
        log(f"starting the cluster: {args.galley} up --detach --dir {args.dir}")
        subprocess.run([args.galley, "up", "--detach", "--dir", args.dir], check=True, timeout=600,
                       stdout=subprocess.DEVNULL)
        started_cluster = True
    try:
        spec = read_toml(os.path.join(args.dir, "galley.toml"))
        token = read_toml(spec["cluster"]["secrets_file"])["cluster_token"]
        header_file = os.path.join(args.dir, "bench-auth-header")
        with open(os.open(header_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(f"Authorization: Bearer {token}\n")

        def curl(url):
            def command_for(source):
                def run():
                    out = subprocess.run(
                        ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10",
                         "--interface", source, "-H", f"@{header_file}", url],
                        capture_output=True, text=True, timeout=15)
                    return out.stdout.startswith("2")
                return run
            return command_for

        def mariadb(port):
            def command_for(source):
                def run():
                    out = subprocess.run(
                        ["mariadb", f"--defaults-extra-file={args.dir}/client.cnf", "--protocol=TCP",
                         "-h", "127.0.0.1", "-P", str(port),
                         "--connect-timeout", "10", "-N", "-e", "SELECT 1"],
                        capture_output=True, text=True, timeout=15)
                    return out.returncode == 0 and out.stdout.strip() == "1"
                return run
            return command_for

        controller = spec.get("controller", {})
        controller_port = controller.get("port", 13390)
        node = spec["node"][0]
        proxy = spec["proxy"]
        targets = {
            "controller": ("controller API", controller_port,
                           curl(f"http://127.0.0.1:{controller_port}/api/v1/events")),
            "agent": (f"agent {node['name']}", node["agent_port"],
                      curl(f"http://127.0.0.1:{node['agent_port']}/v1/status")),
            "admin": ("proxy admin", proxy["admin_port"],
                      curl(f"http://127.0.0.1:{proxy['admin_port']}/status")),
            "client": ("proxy writer (client port)", proxy["writer_port"], mariadb(proxy["writer_port"])),
        }
        many = [f"127.0.1.{i}" for i in range(1, 255)][: args.sources]
        log(f"load {open('/proc/loadavg').read().split()[:3]}")
        for key in args.only.split(","):
            name, port, command_for = targets[key]
            probe_from_flood = key != "client"
            flood(name, port, ["127.0.0.2"], args.sockets, args.hold, args.opening, command_for,
                  probe_from_flood)
            flood(name, port, many, args.sockets, args.hold, args.opening, command_for, probe_from_flood)
    finally:
        if started_cluster:
            log(f"stopping the cluster: {args.galley} down --dir {args.dir}")
            subprocess.run([args.galley, "down", "--dir", args.dir], timeout=300,
                           stdout=subprocess.DEVNULL)


if __name__ == "__main__":
    main()
