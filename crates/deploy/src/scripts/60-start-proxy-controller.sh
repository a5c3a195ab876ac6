#!/usr/bin/env bash
# Starts the proxy and the controller where the spec puts them, once the nodes are
# Synced (the controller heals the cluster by itself from then on).
. "$(dirname "$0")/lib.sh" # galley:inline
if has_role proxy; then
    service_ensure galley-proxy
    wait_port "$PROXY_ADMIN_ADDRESS" "$PROXY_ADMIN_PORT"
    ok "proxy answers on $PROXY_ADMIN_ADDRESS:$PROXY_ADMIN_PORT"
fi
if has_role controller; then
    service_ensure galley-controller
    sleep 1
    service_running galley-controller || fail "the controller exited; see /var/log/galley/galley-controller.log"
    ok "controller running"
fi
if ! has_role proxy && ! has_role controller; then
    ok "no proxy or controller on this host"
fi
