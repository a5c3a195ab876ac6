#!/usr/bin/env bash
# Installs MariaDB, galera-4 and rsync from the OS packages (only those missing), and
# galley's own programs. The packaged MariaDB service is kept off: galley's agent runs
# mariadbd with its own configuration.
. "$(dirname "$0")/lib.sh" # galley:inline
here=$(cd "$(dirname "$0")" && pwd)

missing=()
for package in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
    # Keep the package scripts from starting the stock server on the client port.
    policy=/usr/sbin/policy-rc.d
    created_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 755 "$policy"
        created_policy=yes
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" ||
        { [ "$created_policy" = no ] || rm -f "$policy"; fail "apt-get install ${missing[*]} failed"; }
    [ "$created_policy" = no ] || rm -f "$policy"
    changed "installed ${missing[*]}"
else
    ok "packages installed"
fi
if [ -n "$NODE" ] && use_systemd && systemctl is-enabled --quiet mariadb.service 2>/dev/null; then
    systemctl disable --now --quiet mariadb.service
    changed "disabled the packaged mariadb.service (galley's agent runs mariadbd)"
fi

# The package enables its own garb.service (from /etc/default/garb); galley runs garbd as
# galley-garbd with the spec's settings instead.
if has_role garbd && use_systemd && systemctl is-enabled --quiet garb.service 2>/dev/null; then
    systemctl disable --now --quiet garb.service
    changed "disabled the packaged garb.service (galley-garbd runs garbd)"
fi

mkdir -p "$INSTALL_DIR/bin" "$STATE_DIR"
if [ -f "$here/galley" ]; then
    if ! cmp -s "$here/galley" "$GALLEY"; then
        install -m 755 "$here/galley" "$GALLEY.new"
        mv -f "$GALLEY.new" "$GALLEY"
        changed "installed $GALLEY"
        touch "$STATE_DIR/restart-galley-agent" "$STATE_DIR/restart-galley-proxy" "$STATE_DIR/restart-galley-controller"
    fi
fi
[ -x "$GALLEY" ] || fail "$GALLEY is missing; copy the galley binary next to this script (as ./galley) and run it again"
if ! cmp -s "$here/files/galley-supervise" "$SUPERVISE"; then
    install -m 755 "$here/files/galley-supervise" "$SUPERVISE"
    changed "installed $SUPERVISE"
fi
ok "$("$GALLEY" --version)"
