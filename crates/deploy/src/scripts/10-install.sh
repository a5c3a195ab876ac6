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
if [ "$INSTALL" = package ]; then
    # galley's Debian package: galley deploy copies it to $package; by hand it is
    # ./galley.deb. It is installed again only when it differs from the one installed last.
    package="$INSTALL_DIR/package/galley.deb"
    if [ -f "$here/galley.deb" ] && ! cmp -s "$here/galley.deb" "$package"; then
        mkdir -p "$INSTALL_DIR/package"
        install -m 644 "$here/galley.deb" "$package.new"
        mv -f "$package.new" "$package"
    fi
    [ -f "$package" ] || fail "$package is missing; copy galley's Debian package next to this script (as ./galley.deb) and run it again"
    [ "$(dpkg-deb --field "$package" Package 2>/dev/null)" = galley ] || fail "$package is not galley's Debian package"
    installed="$STATE_DIR/installed-package.sha256"
    checksum=$(sha256sum <"$package" | cut -d' ' -f1)
    if [ "$(cat "$installed" 2>/dev/null || true)" != "$checksum" ] || [ ! -x "$GALLEY" ]; then
        # --reinstall: a rebuilt package of the same version replaces the installed one;
        # --allow-downgrades: the operator chose this package. Its dependencies come from
        # the OS packages; the database packages it recommends are in $PACKAGES on node hosts.
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends --reinstall --allow-downgrades "$package" ||
            fail "apt-get install $package failed"
        echo "$checksum" >"$installed"
        changed "installed the galley package $(dpkg-deb --field "$package" Version)"
        touch "$STATE_DIR/restart-galley-agent" "$STATE_DIR/restart-galley-proxy" "$STATE_DIR/restart-galley-controller"
    fi
elif [ -f "$here/galley" ]; then
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
