#!/usr/bin/env bash
# Installs what galley needs on Debian 12: MariaDB 10.11, the galera-4 provider, rsync for
# state transfers, and the mariadb client. Safe to run again: installed packages are kept.
set -euo pipefail

packages=(mariadb-server mariadb-client galera-4 rsync openssl)
# mariabackup and mbstream, for `galley backup` and its tests (docs/backup.md).
packages+=(mariadb-backup)
# stunnel4: wsrep_sst_rsync encrypts an rsync state transfer with stunnel when [sst]
# tcert/tkey/tca are set (galley.toml [tls]); without it the transfer aborts.
packages+=(stunnel4)
# The web console's browser test (headless Chromium driven from Node) and the proof that
# provisioned OpenStack credentials work with PyMySQL and SQLAlchemy (Debian's python3).
packages+=(chromium python3-pymysql python3-sqlalchemy)
# Node and npm only when missing: a Node installed from elsewhere (its npm built in) stays.
command -v node >/dev/null || packages+=(nodejs)
command -v npm >/dev/null || packages+=(npm)
# The deployment test bed (tests/netns/bed.sh): network namespaces, one sshd per host,
# sudo, the OpenSSH client galley deploy runs, and socat to hold a port.
packages+=(iproute2 openssh-server openssh-client sudo socat)
# The metrics test: a real Prometheus server scraping galley, and the real mysqld_exporter
# whose metric names the agent's /metrics must cover.
packages+=(prometheus prometheus-mysqld-exporter)
# capsh, for the proxy test that drops CAP_BPF to check the userspace fallback.
packages+=(libcap2-bin)
# The Debian package (scripts/build-deb.sh): dpkg-shlibdeps and strip for cargo-deb, and
# man for its test, which reads the installed man pages.
packages+=(dpkg-dev man-db)
# garbd, the Galera arbitrator: `[[arbitrator]]` and the test of two data nodes and
# garbd (crates/galley/tests/it/arbitrator.rs, docs/arbitrator.md).
packages+=(galera-arbitrator-4)

missing=()
for package in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done

if [ "${#missing[@]}" -eq 0 ]; then
    echo "setup: ${packages[*]} already installed"
    exit 0
fi

if [ "$(id -u)" -eq 0 ]; then
    sudo=()
else
    sudo=(sudo)
fi

echo "setup: installing ${missing[*]}"
"${sudo[@]}" apt-get update -qq
# policy-rc.d or a missing init may refuse to start the packaged service; galley does not
# use it, so that is fine.
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}"
