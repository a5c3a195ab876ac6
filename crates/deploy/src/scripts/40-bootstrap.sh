#!/usr/bin/env bash
# Run on the first node only: initializes and secures its data dir and bootstraps the
# cluster through the agent, exactly as `galley up` does. When a Primary component
# already runs, it joins it instead; a stopped cluster with data is left to
# `galley recover`, which picks the node by the recovery safety rules.
. "$(dirname "$0")/lib.sh" # galley:inline
"$GALLEY" host bootstrap --config "$CONFIG" --node "$NODE"
