#!/usr/bin/env python3
"""bench/causal.py: what `server.causal_reads` (wsrep_sync_wait = 1, docs/galera.md,
"Causal reads") buys and costs, through the galley proxy, in one run.

For each setting (0, then 1, then 0 and 1 again: interleaved rounds against drift), every
node gets `SET GLOBAL wsrep_sync_wait = N` (what the setting writes into my.cnf; new
sessions take the global value), then, with new sessions:

- read-your-writes: one writer session on the writer port inserts a row and, as soon as
  the insert is acknowledged, a reader session on a node that is not the writer (directly
  on its client port, as the reader port would place it) looks the row up. A miss is a
  read that did not see a write acknowledged before it began.
- cost: point selects by primary key on that reader session alone, one at a time: reads
  per second and the median and p99 latency.

At the end every node gets wsrep_sync_wait back as it was.

Usage: python3 bench/causal.py [--dir DIR] [--rounds 2] [--writes 2000] [--reads 5000]
Needs the cluster running (`galley up --detach --dir DIR`, with a [proxy]) and the `sbtest`
account that bench/proxy.sh creates (bench/common.sh, ensure_sbtest_user).
"""
import argparse
import json
import statistics
import subprocess
import time
import urllib.request

import pymysql


def toml_ports(path):
    """(writer_port, admin_port, {node: client_port}) from galley.toml."""
    import tomllib

    with open(path, "rb") as f:
        spec = tomllib.load(f)
    nodes = {n["name"]: n["client_port"] for n in spec["node"]}
    return spec["proxy"]["writer_port"], spec["proxy"]["admin_port"], nodes


def set_global(dir_, port, value):
    # The admin password stays in client.cnf; the statement goes on stdin.
    subprocess.run(
        ["mariadb", f"--defaults-extra-file={dir_}/client.cnf", "-h", "127.0.0.1", "-P", str(port)],
        input=f"SET GLOBAL wsrep_sync_wait = {int(value)};\n",
        text=True,
        check=True,
    )


def get_global(dir_, port):
    out = subprocess.run(
        ["mariadb", f"--defaults-extra-file={dir_}/client.cnf", "-h", "127.0.0.1", "-P", str(port), "-N", "-B"],
        input="SELECT @@global.wsrep_sync_wait;\n",
        text=True,
        check=True,
        capture_output=True,
    )
    return int(out.stdout.strip())


def connect(port, password):
    return pymysql.connect(
        host="127.0.0.1", port=port, user="sbtest", password=password, database="galley_bench", autocommit=True
    )


def one_round(writer_port, reader_port, password, writes, reads, round_id):
    writer = connect(writer_port, password)
    reader = connect(reader_port, password)
    wc, rc = writer.cursor(), reader.cursor()
    wc.execute("CREATE TABLE IF NOT EXISTS causal (id BIGINT PRIMARY KEY, round INT)")
    base = round_id * 10_000_000
    misses = 0
    for i in range(writes):
        wc.execute("INSERT INTO causal VALUES (%s, %s)", (base + i, round_id))
        rc.execute("SELECT id FROM causal WHERE id = %s", (base + i,))
        if rc.fetchone() is None:
            misses += 1
    latencies = []
    start = time.perf_counter()
    for i in range(reads):
        t0 = time.perf_counter()
        rc.execute("SELECT id FROM causal WHERE id = %s", (base + i % writes,))
        rc.fetchone()
        latencies.append(time.perf_counter() - t0)
    elapsed = time.perf_counter() - start
    writer.close()
    reader.close()
    latencies.sort()
    return {
        "misses": misses,
        "writes": writes,
        "reads_per_s": reads / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--dir", default="/tmp/galley-bench-proxy")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--writes", type=int, default=2000)
    parser.add_argument("--reads", type=int, default=5000)
    args = parser.parse_args()
    writer_port, admin_port, nodes = toml_ports(f"{args.dir}/galley.toml")
    password = open(f"{args.dir}/bench-sbtest.pw").read().strip()
    status = json.load(urllib.request.urlopen(f"http://127.0.0.1:{admin_port}/status"))
    writer = status["writer"]
    reader_node = next(n for n in sorted(nodes) if n != writer)
    before = {n: get_global(args.dir, p) for n, p in nodes.items()}
    print(f"writer {writer}; reader {reader_node}; wsrep_sync_wait before: {before}")
    results = {0: [], 1: []}
    try:
        for r in range(args.rounds):
            for value in (0, 1):
                for port in nodes.values():
                    set_global(args.dir, port, value)
                result = one_round(writer_port, nodes[reader_node], password, args.writes, args.reads, r * 2 + value)
                results[value].append(result)
                print(f"round {r + 1} wsrep_sync_wait={value}: {json.dumps(result)}")
    finally:
        for n, p in nodes.items():
            set_global(args.dir, p, before[n])
        cleanup = connect(writer_port, password)
        cleanup.cursor().execute("DROP TABLE IF EXISTS causal")
        cleanup.close()
    for value, rows in results.items():
        misses = sum(x["misses"] for x in rows)
        writes = sum(x["writes"] for x in rows)
        print(
            f"wsrep_sync_wait={value}: {misses} of {writes} reads missed the write just acknowledged; "
            f"point selects {statistics.median(x['reads_per_s'] for x in rows):.0f}/s, "
            f"p50 {statistics.median(x['p50_ms'] for x in rows):.3f} ms, "
            f"p99 {statistics.median(x['p99_ms'] for x in rows):.3f} ms (median of {len(rows)} rounds)"
        )


if __name__ == "__main__":
    main()
