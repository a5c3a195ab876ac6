#!/usr/bin/env bash
# Run on each node, one at a time: restarts mariadbd when its my.cnf changed, through the
# agent (graceful stop, join, wait until Synced), only while every other node is Synced.
. "$(dirname "$0")/lib.sh" # galley:inline
has_role agent || { ok "no data node on this host"; exit 0; }
if [ -f "$STATE_DIR/restart-mariadbd" ]; then
    "$GALLEY" host restart --config "$CONFIG" --node "$NODE"
    rm -f "$STATE_DIR/restart-mariadbd"
    changed "restarted $NODE with its new configuration"
else
    ok "$NODE needs no restart"
fi
