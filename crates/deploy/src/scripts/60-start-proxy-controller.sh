#!/usr/bin/env bash
# Starts the proxy, the controller and the arbitrators' garbd where the spec puts them,
# once the nodes are Synced (the controller heals the cluster by itself from then on).
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
if has_role garbd; then
    # After the joins: garbd joins the data nodes' Primary component (it cannot start one).
    service_ensure galley-garbd
    sleep 1
    service_running galley-garbd || fail "garbd exited; see $ARBITRATOR_LOG_DIR/garbd.log and /var/log/galley/galley-garbd.log"
    ok "arbitrator $ARBITRATOR (garbd) running"
fi
if ! has_role proxy && ! has_role controller && ! has_role garbd; then
    ok "no proxy, controller or arbitrator on this host"
fi
