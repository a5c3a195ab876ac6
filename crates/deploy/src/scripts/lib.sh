# Shared by every step of this host's bundle: settings, change reporting, and services.
# Each step is plain bash, run as root (`sudo bash NN-step.sh`), and safe to run again:
# it changes only what differs and prints `changed: ...` for each change it makes.
set -euo pipefail
umask 022
# How galley is installed: `binary` unless the host's settings say `package`.
INSTALL=binary
. "$(dirname "${BASH_SOURCE[0]}")/host.env" # galley:inline

changed() { echo "changed: $*"; }
ok() { echo "ok: $*"; }
fail() {
    echo "error: $*" >&2
    exit 1
}

if [ "$(id -u)" -ne 0 ]; then
    fail "run this step as root (sudo bash $0)"
fi

STATE_DIR="$INSTALL_DIR/state"
# The Debian package puts galley in /usr/bin (spec::PACKAGED_GALLEY).
case "$INSTALL" in
package) GALLEY=/usr/bin/galley ;;
*) GALLEY="$INSTALL_DIR/bin/galley" ;;
esac
SUPERVISE="$INSTALL_DIR/bin/galley-supervise"

# systemd units where PID 1 is systemd, supervised daemons everywhere else.
use_systemd() {
    case "$SERVICE_MANAGER" in
    systemd) return 0 ;;
    supervised) return 1 ;;
    esac
    [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]
}

# The command line each service runs, into the array `service_argv` (no secret on it: they
# read the secrets file). Each setting is one word, never split or expanded again.
service_command() {
    case "$1" in
    galley-agent) service_argv=("$GALLEY" agent --config "$CONFIG" --node "$NODE") ;;
    galley-proxy) service_argv=("$GALLEY" proxy --config "$CONFIG") ;;
    galley-controller) service_argv=("$GALLEY" controller --config "$CONFIG" --dir /var/lib/galley) ;;
    # `galley arbitrator` becomes garbd, its arguments taken from galley.toml.
    galley-garbd) service_argv=("$GALLEY" arbitrator --config "$CONFIG" --name "$ARBITRATOR") ;;
    *) fail "unknown service $1" ;;
    esac
}

supervisor_pid() {
    local pid_file="/run/galley/$1.pid" pid
    [ -f "$pid_file" ] || return 1
    pid=$(cat "$pid_file")
    [ -n "$pid" ] && [ -d "/proc/$pid" ] && grep -q galley-supervise "/proc/$pid/cmdline" 2>/dev/null || return 1
    echo "$pid"
}

service_running() {
    if use_systemd; then
        systemctl is-active --quiet "$1.service"
    else
        supervisor_pid "$1" >/dev/null
    fi
}

service_start() {
    if use_systemd; then
        systemctl enable --quiet "$1.service"
        systemctl start "$1.service"
    else
        mkdir -p /run/galley /var/log/galley
        local service_argv
        service_command "$1"
        setsid "$SUPERVISE" "$1" "/var/log/galley/$1.log" "${service_argv[@]}" </dev/null >/dev/null 2>&1 &
        local waited=0
        until supervisor_pid "$1" >/dev/null; do
            waited=$((waited + 1))
            [ "$waited" -lt 50 ] || fail "$1 did not start; see /var/log/galley/$1.log"
            sleep 0.1
        done
    fi
    changed "started $1"
}

# Restarts the daemon only; an agent that exits leaves its mariadbd running.
service_restart() {
    if use_systemd; then
        systemctl restart "$1.service"
    else
        local child new waited=0
        child=$(cat "/run/galley/$1.child.pid" 2>/dev/null || true)
        if [ -n "$child" ] && [ -d "/proc/$child" ]; then
            kill -TERM "$child"
        fi
        # Wait for the supervisor to run a new daemon, so that the next step never
        # talks to the old one on its way out.
        while :; do
            new=$(cat "/run/galley/$1.child.pid" 2>/dev/null || true)
            if [ -n "$new" ] && [ "$new" != "$child" ] && [ -d "/proc/$new" ]; then
                break
            fi
            waited=$((waited + 1))
            [ "$waited" -lt 150 ] || fail "$1 did not come back after a restart; see /var/log/galley/$1.log"
            sleep 0.1
        done
    fi
    changed "restarted $1"
}

# Asks a daemon to read galley.toml again without a restart (the proxy keeps its sessions).
service_reload() {
    if use_systemd; then
        systemctl reload "$1.service"
    else
        local child
        child=$(cat "/run/galley/$1.child.pid" 2>/dev/null || true)
        [ -n "$child" ] && [ -d "/proc/$child" ] || fail "$1 has no running daemon to reload"
        kill -HUP "$child"
    fi
    changed "reloaded $1"
}

# Starts a service that is down; restarts one whose binary or settings it cannot reload
# changed; reloads one whose galley.toml changed otherwise.
service_ensure() {
    local restart="$STATE_DIR/restart-$1" reload="$STATE_DIR/reload-$1"
    if ! service_running "$1"; then
        service_start "$1"
    elif [ -f "$restart" ]; then
        service_restart "$1"
    elif [ -f "$reload" ]; then
        service_reload "$1"
    else
        ok "$1 running"
    fi
    rm -f "$restart" "$reload"
}

# Waits until something accepts TCP connections on ADDRESS PORT.
wait_port() {
    local waited=0
    # The address and port reach the inner bash as arguments, never as script text.
    until timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>/dev/null; do
        waited=$((waited + 1))
        [ "$waited" -lt 60 ] || fail "nothing answers on $1:$2 after 30 s; see /var/log/galley/"
        sleep 0.5
    done
}

has_role() {
    case " $ROLES " in *" $1 "*) return 0 ;; esac
    return 1
}
