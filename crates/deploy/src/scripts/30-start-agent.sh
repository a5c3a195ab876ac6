#!/usr/bin/env bash
# Starts this node's galley agent (or restarts it after a new binary or galley.toml; its
# mariadbd keeps running and the new agent adopts it), and waits until it answers.
. "$(dirname "$0")/lib.sh" # galley:inline
has_role agent || { ok "no data node on this host"; exit 0; }
service_ensure galley-agent
"$GALLEY" host wait-agent --config "$CONFIG" --node "$NODE"
