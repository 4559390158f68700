#!/usr/bin/env bash
# Runs codex-vaultd in the foreground for development; the body of `make run`.
#
#   scripts/run-dev.sh BUILD_DIR [EXTRA DAEMON ARGS...]
#
# State lives in <repo>/.dev/state (0700, git-ignored). The bus is the system bus when one is
# reachable, else a private dbus-daemon (units/dev-bus.conf) on unix:path=<repo>/.dev/bus/socket.
# Ctrl-C or SIGTERM stops the daemon (SIGTERM forwarded, then waited for) and then the private
# bus; a second Ctrl-C kills the daemon outright.
#
# Environment: CODEX_VAULT_DEV_BUS=auto|private|system   which bus to use (default auto)

# The cleanup and signal functions are called from traps, which shellcheck cannot see.
# shellcheck disable=SC2317
set -euo pipefail

die()
{
    echo "run-dev: $*" >&2
    exit 1
}

[[ $# -ge 1 && -n $1 ]] || {
    echo "usage: $0 BUILD_DIR [EXTRA DAEMON ARGS...]" >&2
    exit 2
}
BUILD_DIR=$(cd "$1" 2>/dev/null && pwd) || die "no build directory: $1 (run 'make all' first)"
shift
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

DAEMON=$BUILD_DIR/codex-vaultd
VAULTCTL=$BUILD_DIR/vaultctl
BUS_CONFIG=$ROOT/units/dev-bus.conf
DEV=$ROOT/.dev
STATE=$DEV/state
BUS_DIR=$DEV/bus
SOCKET=$BUS_DIR/socket
SYSTEM_SOCKET=/run/dbus/system_bus_socket
MODE=${CODEX_VAULT_DEV_BUS:-auto}

[[ -x $DAEMON ]] || die "missing $DAEMON (build it with 'make all')"
case $MODE in
auto | private | system) ;;
*) die "CODEX_VAULT_DEV_BUS must be auto, private or system, not '$MODE'" ;;
esac

# Private folders: the daemon refuses a state folder that others can read.
umask 077
mkdir -p "$STATE"
# .dev is traversable (0711) so an unprivileged user can reach the dev bus socket and be
# refused by the daemon; the state folder itself stays private.
chmod 0711 "$DEV"
chmod 0700 "$STATE"

# One `make run` per checkout: a second one would fight over the state folder and the socket.
exec {LOCK_FD}>"$DEV/run.lock"
flock -n "$LOCK_FD" || die "another 'make run' is already using $DEV (lock $DEV/run.lock)"

system_bus_reachable()
{
    [[ -S $SYSTEM_SOCKET ]] || return 1
    timeout 5 busctl --system status >/dev/null 2>&1 && return 0
    timeout 5 dbus-send --system --print-reply --dest=org.freedesktop.DBus / org.freedesktop.DBus.GetId \
        >/dev/null 2>&1
}

BUS_PID=
DAEMON_PID=
DAEMON_PID_FILE=
STOPPING=0

alive()  # alive PID: exists and is not a zombie (an orphan's parent may be slow to reap it)
{
    local stat
    { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 1
    stat=${stat##*) }
    [[ ${stat%% *} != Z ]]
}

stop_pid()  # stop_pid PID: SIGTERM, up to 5 s, then SIGKILL; always reaped
{
    local pid=$1 i
    [[ -n $pid ]] || return 0
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        if alive "$pid"; then
            echo "run-dev: pid $pid ignored SIGTERM for 5 s; killing it" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
}

stop_stale()  # stop_stale PIDFILE MARKER: stop a process a killed (SIGKILL) earlier run left behind
{
    local pid i
    [[ -r $1 ]] || return 0
    pid=$(<"$1")
    if [[ $pid =~ ^[0-9]+$ ]] && tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qxF -- "$2"; then
        echo "run-dev: stopping pid $pid, left running by an earlier run" >&2
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 50; i++)); do
            alive "$pid" || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$1"
}

cleanup()
{
    local status=$?
    set +e  # clean up as far as possible, even when the terminal is gone and echo fails
    trap - EXIT INT TERM HUP
    trap '' INT TERM HUP  # finish cleaning up even if Ctrl-C is pressed again
    stop_pid "$DAEMON_PID"
    [[ -n $DAEMON_PID_FILE ]] && rm -f "$DAEMON_PID_FILE"
    if [[ -n $BUS_PID ]]; then
        stop_pid "$BUS_PID"
        rm -f "$SOCKET" "$BUS_DIR/dbus-daemon.pid" "$BUS_DIR/address"
        echo "run-dev: private bus stopped"
    fi
    exit "$status"
}
trap cleanup EXIT

on_signal()  # first signal: SIGTERM to the daemon; second: SIGKILL
{
    if ((STOPPING == 0)); then
        STOPPING=1
        kill -TERM "$DAEMON_PID" 2>/dev/null || true
        echo "run-dev: $1 received, stopping codex-vaultd (pid $DAEMON_PID)..." >&2 || true
    else
        kill -KILL "$DAEMON_PID" 2>/dev/null || true
        echo "run-dev: $1 received again, killing codex-vaultd (pid $DAEMON_PID)" >&2 || true
    fi
}
# Until the daemon runs, a signal just ends the script (cleanup runs on EXIT).
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

stop_stale "$DEV/codex-vaultd.pid" "$STATE"

use_system=0
case $MODE in
system)
    system_bus_reachable || die "CODEX_VAULT_DEV_BUS=system, but the system bus at $SYSTEM_SOCKET does not answer"
    use_system=1
    ;;
auto) system_bus_reachable && use_system=1 ;;
esac

if ((use_system)); then
    ADDRESS=unix:path=$SYSTEM_SOCKET
    BUS_NOTE="the system bus (taking org.codexvault.Vault1 there needs the bus policy installed)"
else
    command -v dbus-daemon >/dev/null || die "dbus-daemon not found (install the dbus-daemon package: make deps)"
    [[ -r $BUS_CONFIG ]] || die "bus config not readable: $BUS_CONFIG"
    mkdir -p "$BUS_DIR"
    chmod 0755 "$BUS_DIR"
    stop_stale "$BUS_DIR/dbus-daemon.pid" "--address=unix:path=$SOCKET"
    rm -f "$SOCKET" "$BUS_DIR/dbus-daemon.pid" "$BUS_DIR/address"
    ADDRESS=unix:path=$SOCKET
    # stderr goes to a log: as root dbus-daemon warns that it cannot raise its fd limit in a container.
    dbus-daemon --config-file="$BUS_CONFIG" --address="$ADDRESS" --print-address --nofork \
        >"$BUS_DIR/address" 2>"$BUS_DIR/dbus-daemon.log" {LOCK_FD}>&- &
    BUS_PID=$!
    echo "$BUS_PID" >"$BUS_DIR/dbus-daemon.pid"
    for ((i = 0; i < 100; i++)); do
        [[ -s $BUS_DIR/address && -S $SOCKET ]] && break
        alive "$BUS_PID" || break
        sleep 0.05
    done
    if ! [[ -s $BUS_DIR/address && -S $SOCKET ]]; then
        cat "$BUS_DIR/dbus-daemon.log" >&2 || true
        die "private dbus-daemon did not start (config $BUS_CONFIG)"
    fi
    BUS_NOTE="a private dbus-daemon (pid $BUS_PID, config units/dev-bus.conf, log .dev/bus/dbus-daemon.log)"
fi

cat <<EOF
==============================================================================
 codex-vaultd (development)
   bus:      $ADDRESS
             $BUS_NOTE
   state:    $STATE
   vaultctl: $VAULTCTL
 In a second terminal:
   export CODEX_VAULT_BUS=$ADDRESS
   $VAULTCTL --help
 Stop with Ctrl-C.
==============================================================================
EOF

# Not exec: the private bus must be cleaned up after the daemon exits.
"$DAEMON" --bus "$ADDRESS" --state-dir "$STATE" "$@" {LOCK_FD}>&- &
DAEMON_PID=$!
DAEMON_PID_FILE=$DEV/codex-vaultd.pid
echo "$DAEMON_PID" >"$DAEMON_PID_FILE"
trap 'on_signal SIGINT' INT
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGHUP' HUP

# Poll rather than block in `wait`: a signal that interrupts the wait builtin at the moment the
# daemon exits can make bash lose the child's status and then wait forever. The traps run between
# two sleeps (Ctrl-C also ends the current sleep at once).
while alive "$DAEMON_PID"; do
    sleep 0.2 || true
done
wait "$DAEMON_PID" && status=0 || status=$?
# Reaped: stop_pid in cleanup has nothing left to do for it.
DAEMON_PID=
if ((STOPPING)); then
    echo "run-dev: codex-vaultd stopped (exit status $status)" || true
elif ((status != 0)); then
    echo "run-dev: codex-vaultd exited with status $status" >&2 || true
fi
exit "$status"
