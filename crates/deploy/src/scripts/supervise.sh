#!/bin/sh
# galley-supervise NAME LOG COMMAND...: runs COMMAND, restarts it whenever it exits, and
# stops it on SIGTERM. For hosts without systemd. Pid files: /run/galley/NAME.pid (this
# supervisor) and /run/galley/NAME.child.pid (the daemon).
name=$1
log=$2
shift 2
mkdir -p /run/galley "$(dirname "$log")"
echo $$ >"/run/galley/$name.pid"
child=
stop() {
    [ -z "$child" ] || kill -TERM "$child" 2>/dev/null
    [ -z "$child" ] || wait "$child"
    rm -f "/run/galley/$name.pid" "/run/galley/$name.child.pid"
    exit 0
}
trap stop TERM INT
while :; do
    "$@" >>"$log" 2>&1 &
    child=$!
    echo "$child" >"/run/galley/$name.child.pid"
    wait "$child"
    echo "galley-supervise: $name exited with status $?; restarting in 1 s" >>"$log"
    sleep 1
done
