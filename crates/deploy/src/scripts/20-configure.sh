#!/usr/bin/env bash
# Writes galley.toml, this node's rendered my.cnf (for review and change detection; the
# agent renders the same text at each start) and the service definitions. A changed
# setting marks the running services and server for a restart by the later steps.
. "$(dirname "$0")/lib.sh" # galley:inline
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$STATE_DIR" "$(dirname "$CONFIG")"

# install_if_changed SOURCE TARGET MODE: copies only when the content differs.
install_if_changed() {
    if [ -f "$2" ] && cmp -s "$1" "$2"; then
        return 1
    fi
    install -D -m "$3" "$1" "$2"
    changed "wrote $2"
}

if install_if_changed "$here/files/galley.toml" "$CONFIG" 644; then
    # The proxy reloads galley.toml on SIGHUP and keeps its sessions; it restarts only
    # when what a reload cannot apply changed (its listeners, the node list, below).
    touch "$STATE_DIR/restart-galley-agent" "$STATE_DIR/reload-galley-proxy" "$STATE_DIR/restart-galley-controller"
fi
if has_role proxy && install_if_changed "$here/files/proxy-listeners.txt" "$STATE_DIR/proxy-listeners.txt" 644; then
    touch "$STATE_DIR/restart-galley-proxy"
fi
if has_role garbd && install_if_changed "$here/files/garbd-args.txt" "$STATE_DIR/garbd-args.txt" 644; then
    touch "$STATE_DIR/restart-galley-garbd"
fi
if [ -f "$here/files/secrets.toml" ]; then
    if install_if_changed "$here/files/secrets.toml" "$SECRETS_FILE" 600; then
        touch "$STATE_DIR/restart-galley-agent" "$STATE_DIR/restart-galley-proxy" "$STATE_DIR/restart-galley-controller"
    fi
fi
[ -f "$SECRETS_FILE" ] || fail "the secrets file $SECRETS_FILE is missing; copy it from the operator's machine with mode 0600 (galley deploy does), or generate the bundle with --include-secrets"
chmod 600 "$SECRETS_FILE"

if [ -n "$NODE" ]; then
    if install_if_changed "$here/files/my.cnf" "/etc/galley/$NODE.cnf" 644; then
        # A running server keeps its old settings until restarted, one node at a time.
        if [ -f "$RUN_DIR/mariadbd.pid" ]; then
            touch "$STATE_DIR/restart-mariadbd"
            changed "marked $NODE for a rolling restart (its my.cnf changed)"
        fi
    fi
fi

if use_systemd; then
    reload=no
    for unit in "$here"/files/systemd/*.service; do
        name=$(basename "$unit" .service)
        has_role "${name#galley-}" || continue
        if install_if_changed "$unit" "/etc/systemd/system/$name.service" 644; then
            reload=yes
            touch "$STATE_DIR/restart-$name"
        fi
    done
    [ "$reload" = no ] || systemctl daemon-reload
fi
ok "configuration in place"
