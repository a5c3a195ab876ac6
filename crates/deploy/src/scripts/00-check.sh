#!/usr/bin/env bash
# Checks this host before anything is changed: OS, packages, disk space, free ports.
# It changes nothing; galley deploy stops on every host when one host fails here.
. "$(dirname "$0")/lib.sh" # galley:inline

. /etc/os-release
case " ${ID:-} ${ID_LIKE:-} " in
*" debian "*) ok "OS ${PRETTY_NAME:-$ID}" ;;
*) fail "unsupported OS ${PRETTY_NAME:-unknown}; galley deploys to Debian and its derivatives (apt, dpkg)" ;;
esac

missing=()
for package in $PACKAGES; do
    if dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
        continue
    fi
    candidate=$(apt-cache policy "$package" 2>/dev/null | awk '/Candidate:/ {print $2}')
    if [ -z "$candidate" ] || [ "$candidate" = "(none)" ]; then
        fail "package $package is missing: not installed, and apt knows no version of it (check /etc/apt/sources.list)"
    fi
    missing+=("$package")
done
if [ "${#missing[@]}" -eq 0 ]; then
    ok "packages installed: $PACKAGES"
else
    ok "packages to install: ${missing[*]}"
fi

if command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ]; then
    version=$( (command -v mariadbd >/dev/null && mariadbd --version || /usr/sbin/mariadbd --version) 2>/dev/null || true)
    case "$version" in
    *" $DB_VERSION."*) ok "MariaDB $DB_VERSION" ;;
    *) fail "installed MariaDB is not $DB_VERSION: ${version:-unknown}; galley supports MariaDB $DB_VERSION only" ;;
    esac
fi

# galley's directories as this host resolves them: the agent runs as root and gives its
# directories to the server's OS user, so none may be a symbolic link, have a link above
# it that someone other than root owns, or lead to a system directory.
is_system_directory() { # KIND PATH: KIND own (data, run, log, state) or install
    local entry
    for entry in $SYSTEM_DIRECTORIES; do
        [ "$2" != "$entry" ] || return 0
    done
    [ "$1" = own ] || return 1
    for entry in $SYSTEM_TREES; do
        case "$2/" in "$entry"/*) return 0 ;; esac
    done
    case "$2" in /home/*/*) ;; /home/?*) return 0 ;; esac
    return 1
}
check_directory() { # KIND FIELD PATH
    local kind=$1 field=$2 dir=$3 prefix="" part parts resolved
    [ -n "$dir" ] || return 0
    if [ -L "$dir" ]; then
        fail "$field $dir is a symbolic link (to $(readlink -- "$dir")); galley refuses links as its directories: give the real directory in galley.toml"
    fi
    IFS=/ read -r -a parts <<<"${dir#/}"
    for part in "${parts[@]}"; do
        prefix="$prefix/$part"
        if [ -L "$prefix" ] && [ "$(stat -c %u -- "$prefix")" != 0 ]; then
            fail "$field $dir lies below $prefix, a symbolic link owned by uid $(stat -c %u -- "$prefix") (not root), who could point it anywhere; give a path without it"
        fi
    done
    resolved=$(realpath -m -- "$dir")
    if is_system_directory "$kind" "$resolved"; then
        fail "$field $dir leads to $resolved, a system directory (through a symbolic link above it); give a directory of galley's own"
    fi
}
check_directory own data_dir "$DATA_DIR"
check_directory own run_dir "$RUN_DIR"
check_directory own log_dir "$LOG_DIR"
check_directory own controller.state_dir "$CONTROLLER_STATE_DIR"
check_directory install install_dir "$INSTALL_DIR"
ok "directories: no links, no system directories"

if [ -n "$DATA_DIR" ]; then
    dir="$DATA_DIR"
    while [ ! -d "$dir" ]; do dir=$(dirname "$dir"); done
    free_mb=$(df -Pm "$dir" | awk 'NR == 2 {print $4}')
    if [ "$free_mb" -lt "$MIN_FREE_MB" ]; then
        fail "disk too small: $free_mb MiB free for $DATA_DIR (on $dir); at least $MIN_FREE_MB MiB needed"
    fi
    ok "disk: $free_mb MiB free for $DATA_DIR"
fi

# A port is fine when it is free or held by galley's own daemons, mariadbd or garbd (a
# second run).
command -v ss >/dev/null 2>&1 || fail "cannot check the ports: ss is missing; install iproute2 (apt-get install iproute2) and run again"
for entry in $PORTS; do
    port=${entry%%=*}
    what=${entry#*=}
    holders=$(ss -Hltnp "sport = :$port" 2>/dev/null || true)
    if [ -z "$holders" ]; then
        continue
    fi
    if echo "$holders" | grep -q -E '"(mariadbd|galley)"'; then
        continue
    fi
    # On an arbitrator's host, galley-garbd's garbd (it replaced `galley arbitrator`).
    if has_role garbd && echo "$holders" | grep -q '"garbd"'; then
        continue
    fi
    owner=$(echo "$holders" | head -n1 | sed -n -E 's/.*users:\(\("([^"]+)",pid=([0-9]+).*/\1 (pid \2)/p')
    fail "port $port ($what) is taken${owner:+ by $owner}; stop that program or choose another port in galley.toml"
done
ok "ports free: $(for entry in $PORTS; do printf '%s ' "${entry%%=*}"; done)"
