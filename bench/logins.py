#!/usr/bin/env python3
"""bench/logins.py: what a flood of wrong console logins costs the controller.

Against the controller of a running `galley up` cluster (started here with
`galley up --detach` when DIR has none running, and stopped again at the end), for each
round: N concurrent wrong logins for `admin` (one TCP connection each), while the
controller's VmRSS is sampled every 10 ms from /proc/PID/status; once every wrong login
has been sent, one login with the right password from another source address, timed
from its connect to its answer. Rounds:

  one-300    300 wrong logins from 127.0.0.1; the right one from 127.0.0.2
  one-3000   3,000 wrong logins from 127.0.0.1; the right one from 127.0.0.2
  many-3000  3,000 wrong logins spread over 100 addresses (127.0.1.1-100, 30 each);
             the right one from 127.0.0.2 (a harder case than the goal's)

Reported per round: the answers by status, the controller's RSS before, at its peak and
3 s after, the growth (peak - before), and the right login's status and latency.
Goal (issue 13): growth under 50 MiB and the right login answered (200) in under 1 s.

Usage: python3 bench/logins.py [--dir DIR] [--galley PATH] [--rounds one-300,...]
  --dir DIR       cluster directory (default /tmp/galley-bench-logins)
  --galley PATH   galley binary (default $GALLEY, else /tmp/target-bench/release/galley)
  --pause S       seconds between rounds, so that the limits refill (default 65)

Needs root for `galley up` (mariadbd runs as mysql), MariaDB + galera-4 + rsync, Linux
(any 127/8 source address reaches lo). Uses only the Python standard library.
"""

import argparse
import asyncio
import json
import os
import resource
import subprocess
import sys
import threading
import time
import tomllib


def log(message):
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


class Sampler(threading.Thread):
    """The highest VmRSS seen while it runs, sampled every 10 ms."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = rss_kib(pid)
        self.done = threading.Event()

    def run(self):
        while not self.done.is_set():
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.01)

    def stop(self):
        self.done.set()
        self.join()
        return self.peak


async def login(port, source, password, sent=None):
    """One login over its own connection from `source`: (status, seconds)."""
    body = json.dumps({"username": "admin", "password": password}).encode()
    request = (
        f"POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode() + body
    started = time.monotonic()
    try:
        reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, local_addr=(source, 0)
        )
        writer.write(request)
        await writer.drain()
        if sent is not None:
            sent()
        status_line = await asyncio.wait_for(reader.readline(), 120)
        await reader.read()
        writer.close()
        status = int(status_line.split()[1]) if status_line else 0
    except (OSError, asyncio.TimeoutError) as error:
        if sent is not None:
            sent()
        status = f"error:{type(error).__name__}"
    return status, time.monotonic() - started


async def round_of(port, pid, password, sources, per_source):
    total = len(sources) * per_source
    before = rss_kib(pid)
    sampler = Sampler(pid)
    sampler.start()
    all_sent = asyncio.Event()
    sent_count = 0

    def sent():
        nonlocal sent_count
        sent_count += 1
        if sent_count == total:
            all_sent.set()

    flood = [
        asyncio.create_task(login(port, source, "wrong password", sent))
        for source in sources
        for _ in range(per_source)
    ]
    await asyncio.wait_for(all_sent.wait(), 120)
    right_status, right_seconds = await login(port, "127.0.0.2", password)
    answers = await asyncio.gather(*flood)
    peak = sampler.stop()
    await asyncio.sleep(3)
    after = rss_kib(pid)
    statuses = {}
    for status, _ in answers:
        statuses[str(status)] = statuses.get(str(status), 0) + 1
    return {
        "wrong_logins": total,
        "sources": len(sources),
        "statuses": dict(sorted(statuses.items())),
        "rss_before_mib": round(before / 1024, 1),
        "rss_peak_mib": round(peak / 1024, 1),
        "rss_after_mib": round(after / 1024, 1),
        "growth_mib": round((peak - before) / 1024, 1),
        "right_login_status": right_status,
        "right_login_s": round(right_seconds, 3),
        "slowest_wrong_s": round(max(seconds for _, seconds in answers), 3),
    }


ROUNDS = {
    "one-300": (["127.0.0.1"], 300),
    "one-3000": (["127.0.0.1"], 3000),
    "many-3000": ([f"127.0.1.{n}" for n in range(1, 101)], 30),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", default="/tmp/galley-bench-logins")
    parser.add_argument(
        "--galley",
        default=os.environ.get("GALLEY", "/tmp/target-bench/release/galley"),
    )
    parser.add_argument("--rounds", default="one-300,one-3000,many-3000")
    parser.add_argument("--pause", type=float, default=65)
    args = parser.parse_args()
    rounds = args.rounds.split(",")
    for name in rounds:
        if name not in ROUNDS:
            parser.error(f"unknown round {name!r}: use {', '.join(ROUNDS)}")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    started_cluster = False
    status = subprocess.run(
        [args.galley, "status", "--dir", args.dir], capture_output=True
    )
    if status.returncode != 0:
        log(f"galley up --detach --dir {args.dir}")
        subprocess.run(
            [args.galley, "up", "--detach", "--dir", args.dir],
            check=True,
            stdout=subprocess.DEVNULL,
            timeout=600,
        )
        started_cluster = True
    try:
        with open(os.path.join(args.dir, "galley.toml"), "rb") as spec_file:
            spec = tomllib.load(spec_file)
        with open(os.path.join(args.dir, "secrets.toml"), "rb") as secrets_file:
            password = tomllib.load(secrets_file)["console_admin_password"]
        controller = spec.get("controller", {})
        port = controller.get("port", 4600)
        state_dir = controller.get("state_dir", os.path.join(args.dir, "controller"))
        with open(os.path.join(state_dir, "controller.pid")) as pid_file:
            pid = int(pid_file.read().strip())
        log(f"controller pid {pid}, API port {port}")
        results = {}
        for index, name in enumerate(rounds):
            if index > 0:
                log(f"pausing {args.pause:.0f} s so that the limits refill")
                time.sleep(args.pause)
            sources, per_source = ROUNDS[name]
            log(f"round {name}")
            results[name] = asyncio.run(round_of(port, pid, password, sources, per_source))
            log(json.dumps(results[name]))
        print(json.dumps(results, indent=2))
        print()
        print("| round | wrong logins (sources) | answers | RSS before / peak / 3 s after (MiB) | growth (MiB) | right login |")
        print("|---|---:|---|---|---:|---|")
        for name, r in results.items():
            answers = ", ".join(f"{count}× {status}" for status, count in r["statuses"].items())
            print(
                f"| {name} | {r['wrong_logins']} ({r['sources']}) | {answers} | "
                f"{r['rss_before_mib']} / {r['rss_peak_mib']} / {r['rss_after_mib']} | "
                f"{r['growth_mib']} | {r['right_login_status']} in {r['right_login_s']} s |"
            )
    finally:
        if started_cluster:
            log(f"galley down --dir {args.dir}")
            subprocess.run(
                [args.galley, "down", "--dir", args.dir],
                stdout=subprocess.DEVNULL,
                timeout=300,
            )


if __name__ == "__main__":
    main()
