#!/usr/bin/env bash
# Run on the other nodes, one at a time, each after the previous is Synced: joins the
# running cluster (a full state transfer from a donor the first time).
. "$(dirname "$0")/lib.sh" # galley:inline
"$GALLEY" host join --config "$CONFIG" --node "$NODE"
