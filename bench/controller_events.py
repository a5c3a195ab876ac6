#!/usr/bin/env python3
"""bench/controller_events.py T0_MS [END_MS] < `galley events --json`: the controller's
events and executed steps from T0_MS up to END_MS (ms since the epoch; default: no end),
as one line of `+seconds what` items,
for bench/controller.sh. Waiting decisions are left out (they repeat); the rest is kept."""
import json
import sys

t0 = int(sys.argv[1])
end = int(sys.argv[2]) if len(sys.argv) > 2 else None
data = json.load(sys.stdin)
items = []
for e in data.get("events", []):
    if e["at_ms"] >= t0 and (end is None or e["at_ms"] < end):
        node = f" {e['node']}" if e.get("node") else ""
        items.append((e["at_ms"], f"{e['kind']}{node}"))
for d in data.get("decisions", []):
    if d["at_ms"] < t0 or (end is not None and d["at_ms"] >= end):
        continue
    outcome = d.get("outcome", "")
    if outcome.startswith("done"):
        items.append((d["at_ms"], f"{d['action']} done"))
    elif outcome.startswith("failed"):
        items.append((d["at_ms"], f"{d['action']} FAILED"))
items.sort(key=lambda item: item[0])
print("; ".join(f"+{(at - t0) / 1000:.1f} {what}" for at, what in items) or "(no events)")
