#!/usr/bin/env bash
# The deployment test bed: several "hosts" on this one machine, each a Linux network
# namespace with its own address (10.77.0.11, .12, ...) on a bridge in the root
# namespace, running its own sshd (Debian's openssh-server) inside a private mount
# namespace, so that each host has its own /etc/mysql, /var/lib/mysql, /opt/galley,
# /etc/galley, /run/galley, /etc/sudoers.d, ... Traffic never leaves this machine.
#
#   bed.sh up DIR COUNT [PASSWORD_SUDO_HOST...]  create hosts h1..hCOUNT (state in DIR)
#   bed.sh down DIR                              stop everything the bed started; remove it
#   bed.sh clean                                 remove a bed left by a killed run (its
#                                                namespaces and bridge; callers hold the lock)
#   bed.sh exec DIR HOST COMMAND...              run a command inside a host (its mounts too)
#   bed.sh overlay-exec DIR HOST COMMAND...      the same, on a throwaway copy-on-write copy of
#                                                the host's root filesystem: what it writes
#                                                outside the host's private directories
#                                                (/usr, dpkg's database) is gone afterwards
#   bed.sh link DIR HOST up|down                 connect or cut a host's network link
#   bed.sh listen DIR HOST PORT                  hold a port on a host (a foreign program);
#                                                prints its pid
#
# Hosts in PASSWORD_SUDO_HOST (like h3) get a sudo that asks for a password. With
# BED_ROOT=overlay, `up` gives every host a root filesystem of its own (the overlay root
# of overlay-exec, for as long as the host lives), so that what a deployment installs
# with apt stays on the host. Needs root, iproute2, openssh-server, sudo, util-linux
# (unshare, nsenter, mount), socat and overlayfs.
set -euo pipefail

SELF=$(realpath "$0")
SUBNET=10.77.0
BRIDGE=galleybr0
USER_NAME=galleytest
PRIVATE_DIRS=(/etc/mysql /var/lib/mysql /var/log/mysql /run/mysqld /opt/galley /etc/galley
    /var/lib/galley /var/log/galley /run/galley /etc/sudoers.d)

die() {
    echo "bed: $*" >&2
    exit 1
}

namespace() { echo "galley-$1"; }
address() { echo "$SUBNET.$((10 + ${1#h}))"; }

require() {
    [ "$(id -u)" -eq 0 ] || die "run as root (network namespaces and mounts need it)"
    local missing=()
    for tool in ip sshd sudo unshare nsenter socat ssh-keygen; do
        command -v "$tool" >/dev/null 2>&1 || [ -x "/usr/sbin/$tool" ] || missing+=("$tool")
    done
    [ "${#missing[@]}" -eq 0 ] || die "missing: ${missing[*]}; run scripts/setup-debian.sh"
}

up() {
    local dir=$1 count=$2
    shift 2
    local password_hosts=" $* "
    require
    if ip link show "$BRIDGE" >/dev/null 2>&1; then
        die "a test bed already runs ($BRIDGE exists); run bed.sh down on its directory first"
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    # sshd reads authorized_keys here as the bed's user, who must be able to reach it
    # (mktemp -d makes 0700 directories).
    chmod 755 "$dir"
    echo "$count" >"$dir/count"
    id "$USER_NAME" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$USER_NAME"
    # Not locked (sshd without PAM refuses locked accounts), but no password either.
    usermod -p '*' "$USER_NAME"
    [ -f "$dir/id_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C galley-bed -f "$dir/id_ed25519"
    cp "$dir/id_ed25519.pub" "$dir/authorized_keys"
    chmod 644 "$dir/authorized_keys"
    mkdir -p /run/sshd
    for target in "${PRIVATE_DIRS[@]}"; do mkdir -p "$target"; done

    # Each host resolves every bed address from its own /etc/hosts: the namespaces reach
    # no DNS server, and rsync's reverse lookup of a peer would wait 10 s per connection.
    cp /etc/hosts "$dir/hosts"
    for index in $(seq 1 "$count"); do
        echo "$(address "h$index") h$index" >>"$dir/hosts"
    done
    ip link add "$BRIDGE" type bridge
    ip addr add "$SUBNET.1/24" dev "$BRIDGE"
    ip link set "$BRIDGE" up
    for index in $(seq 1 "$count"); do
        local host="h$index"
        local ns host_dir
        ns=$(namespace "$host")
        host_dir="$dir/$host"
        ip netns add "$ns"
        ip link add "veth-$host" type veth peer name eth0 netns "$ns"
        ip link set "veth-$host" master "$BRIDGE" up
        ip netns exec "$ns" ip link set lo up
        ip netns exec "$ns" ip addr add "$(address "$host")/24" dev eth0
        ip netns exec "$ns" ip link set eth0 up
        ip netns exec "$ns" ip route add default via "$SUBNET.1"

        mkdir -p "$host_dir/ssh" "$host_dir/root"
        for target in "${PRIVATE_DIRS[@]}"; do
            local private="$host_dir/root${target}"
            mkdir -p "$private"
        done
        cp -a /etc/mysql/. "$host_dir/root/etc/mysql/" 2>/dev/null || true
        chown mysql:mysql "$host_dir/root/var/lib/mysql" "$host_dir/root/run/mysqld" "$host_dir/root/var/log/mysql" 2>/dev/null || true
        chmod 750 "$host_dir/root/etc/sudoers.d"
        if [[ "$password_hosts" == *" $host "* ]]; then
            echo "$USER_NAME ALL=(ALL) ALL" >"$host_dir/root/etc/sudoers.d/galleytest"
        else
            echo "$USER_NAME ALL=(ALL) NOPASSWD: ALL" >"$host_dir/root/etc/sudoers.d/galleytest"
        fi
        chmod 440 "$host_dir/root/etc/sudoers.d/galleytest"
        ssh-keygen -q -t ed25519 -N '' -C "$host" -f "$host_dir/ssh/host_key" <<<y >/dev/null 2>&1 || true
        cat >"$host_dir/ssh/sshd_config" <<CONFIG
ListenAddress $(address "$host")
Port 22
HostKey $host_dir/ssh/host_key
PidFile $host_dir/ssh/sshd.pid
AuthorizedKeysFile $dir/authorized_keys
AllowUsers $USER_NAME
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin no
UsePAM no
StrictModes no
PrintMotd no
CONFIG
        # The mount namespace lives as long as sshd does; every login inherits it.
        local mounts="mount --bind '$dir/hosts' /etc/hosts; "
        for target in "${PRIVATE_DIRS[@]}"; do
            mounts+="mount --bind '$host_dir/root$target' '$target'; "
        done
        local chroot=""
        if [ "${BED_ROOT:-}" = overlay ]; then
            mkdir -p "$host_dir/overlay"
            touch "$host_dir/overlay-root"
            chroot="bash '$SELF' overlay-root '$host_dir/overlay' '$dir'"
        fi
        ip netns exec "$ns" unshare --mount --propagation private \
            bash -c "set -e; $mounts exec $chroot /usr/sbin/sshd -f '$host_dir/ssh/sshd_config' -E '$host_dir/ssh/sshd.log'"
        local waited=0
        until [ -s "$host_dir/ssh/sshd.pid" ]; do
            waited=$((waited + 1))
            [ "$waited" -lt 50 ] || die "sshd of $host did not start; see $host_dir/ssh/sshd.log"
            sleep 0.1
        done
        # The host key line for a known_hosts file.
        echo "$(address "$host") $(cut -d' ' -f1,2 "$host_dir/ssh/host_key.pub")" >>"$dir/known_hosts"
        echo "bed: $host at $(address "$host") (sshd pid $(cat "$host_dir/ssh/sshd.pid"))"
    done
}

down() {
    local dir=$1
    [ -d "$dir" ] || return 0
    local count
    count=$(cat "$dir/count" 2>/dev/null || echo 0)
    for index in $(seq 1 "$count"); do
        local ns
        ns=$(namespace "h$index")
        ip netns list 2>/dev/null | grep -qw "$ns" || continue
        # Everything the bed started lives in the host's network namespace: sshd, the
        # sessions, galley's daemons and mariadbd.
        local pids
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -z "$pids" ] || kill -TERM $pids 2>/dev/null || true
        for _ in $(seq 1 50); do
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            [ -n "$pids" ] || break
            sleep 0.1
        done
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
        ip link del "veth-h$index" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
    rm -rf "$dir"
}

# A run killed before its teardown leaves namespaces named galley-h*: stop what runs in
# them and remove them. The caller holds the bed's lock, so no live bed is touched.
clean() {
    local ns pids
    for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep '^galley-h' || true); do
        pids=$(ip netns pids "$ns" 2>/dev/null || true)
        [ -z "$pids" ] || kill -KILL $pids 2>/dev/null || true
        ip netns del "$ns" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}

# Runs a command in a host's network and mount namespaces (those of its sshd), and in its
# own root filesystem when it has one.
host_exec() {
    local dir=$1 host=$2
    shift 2
    local pid root=()
    pid=$(cat "$dir/$host/ssh/sshd.pid")
    [ ! -e "$dir/$host/overlay-root" ] || root=(--root --wd)
    nsenter --target "$pid" --net --mount "${root[@]}" -- "$@"
}

# The hosts share this machine's /usr and /var/lib/dpkg; installing a package on one would
# install it here. An overlay root keeps such a host clean and the machine untouched: in a
# mount namespace of its own, an overlayfs whose lower layer is / (this machine's root
# filesystem as it is, without the mounts on top of it) and whose upper layer is a tmpfs,
# with the host's own mounts (/dev, /proc, /sys, /etc/hosts, its private directories and
# the bed's directory) bound into it, then chroot. The namespace, the tmpfs and all it
# caught end with the last process in it.
host_overlay_exec() {
    local dir=$1 host=$2
    shift 2
    local pid layer
    pid=$(cat "$dir/$host/ssh/sshd.pid")
    layer="$dir/$host/overlay-exec"
    mkdir -p "$layer"
    nsenter --target "$pid" --net --mount -- unshare --mount --propagation private -- \
        bash "$SELF" overlay-root "$layer" "$dir" "$@"
}

# overlay-root LAYER BED COMMAND...: run inside a new mount namespace; mounts the overlay
# root at LAYER/root and runs COMMAND chrooted into it.
overlay_root() {
    local layer=$1 bed=$2
    shift 2
    mount -t tmpfs galley-overlay "$layer"
    mkdir "$layer/upper" "$layer/work" "$layer/root"
    mount -t overlay galley-root -o "lowerdir=/,upperdir=$layer/upper,workdir=$layer/work" "$layer/root"
    local root=$layer/root target
    for target in /dev /proc /sys; do
        mount --rbind "$target" "$root$target"
    done
    for target in "${PRIVATE_DIRS[@]}" "$bed"; do
        mkdir -p "$root$target"
        mount --bind "$target" "$root$target"
    done
    mount --bind /etc/hosts "$root/etc/hosts"
    # sshd's privilege separation directory, on a /run the overlay does not carry.
    mkdir -p "$root/run/sshd"
    exec chroot "$root" "$@"
}

case "${1:-}" in
up) up "$2" "$3" "${@:4}" ;;
down) down "$2" ;;
clean) clean ;;
exec) host_exec "$2" "$3" "${@:4}" ;;
overlay-exec) host_overlay_exec "$2" "$3" "${@:4}" ;;
overlay-root) overlay_root "$2" "$3" "${@:4}" ;;
link) ip link set "veth-$3" "$4" ;;
listen)
    ip netns exec "$(namespace "$3")" socat "TCP-LISTEN:$4,bind=$(address "$3"),reuseaddr,fork" /dev/null </dev/null >/dev/null 2>&1 &
    listener=$!
    for _ in $(seq 1 50); do
        if ip netns exec "$(namespace "$3")" ss -Hltn "sport = :$4" | grep -q .; then
            echo "$listener"
            exit 0
        fi
        sleep 0.1
    done
    die "socat did not listen on $3:$4"
    ;;
*) sed -n '2,25p' "$0" >&2; exit 2 ;;
esac
