#!/usr/bin/env bash
# Bus benchmarks for Codex Vault, run by `make bench`.
#
#   scripts/run-bench.sh BUILD_DIR [--only-noop]
#
# This script only starts and stops processes and hands their addresses and paths to the bench
# programs, which measure, compute and print every figure themselves (bench/bench_stats.hpp: the
# median over interleaved rounds, percentiles, ratios between measurements of the same run, each
# figure on one line next to its target). It starts a private dbus-daemon (units/dev-bus.conf), the
# no-op baseline server (BUILD_DIR/bench/noop_server) and the vault daemon (BUILD_DIR/codex-vaultd)
# on it, then runs, all on this one bus and this one daemon:
#   bench/bus_bench --suite bus      1. single client, sequential (every process pinned to one
#                                       CPU): Ping, WhoAmI, Status on the vault, Ping and Nop on the
#                                       no-op server; 2. throughput with 1 and 4 clients vs Nop;
#                                       3. the vault's idle RSS 1 s after start and after the load;
# then initializes the vault (a throw-away founder key) and issues one runtime grant to this uid
# with vaultctl, and runs
#   bench/bus_bench --suite durable  4. durable Use at 1/4/16 clients vs one fdatasync per record
#                                       (measured in this run's folder, on the state's filesystem)
#                                       and vs audited informational Check at 16 clients;
#                                       5. Status p99 seen by one extra client during 16 clients of
#                                       durable Use vs of audited Check; 6. audited Check vs the
#                                       no-op server, 4 clients; 7. the latency a durable record
#                                       adds (Use vs Check, 1 client, against 1.2 fdatasyncs);
# stops the daemon in order and runs
#   bench/audit_verify_bench --dir   offline verify of the log the daemon wrote during the run.
# and, with no daemon running,
#   bench/redact_bench               the streaming redactor's throughput (lib/redact)
#   bench/monitor_bench              ns per read/mmap and forks/execs per second with the eBPF
#                                    monitor detached vs attached (root; skipped with the reason
#                                    where BPF is refused).
# Finally it prints the summary the programs appended to one file (their measurements and
# figures). The state folder (and this run's other files) go under $TMPDIR or /tmp unless that is
# a tmpfs, where fdatasync costs nothing; then /var/tmp is used. Timing never fails the run. The
# exit status is 0 when the measurements ran, 1 when something could not be started (or the daemon
# died during the run), 2 on bad usage.
#
# --only-noop  stands a second no-op server in for the vault (WhoAmI and Status become Nop there,
#              the durable suite measures only the fdatasync baseline), to exercise the script and
#              the tools without codex-vaultd.
# Environment: BENCH_SECONDS  measured seconds per measurement (default 3), split into rounds
#              BENCH_ROUNDS   interleaved rounds per measurement, median reported (default 5)
#              BENCH_WARMUP   unrecorded warm-up calls per client per round (default 200)
#              BENCH_PIN      1 (default): pin everything to one CPU for the single-client section
#              BENCH_DURABLE_SECONDS  measured seconds per durable measurement, sections 4, 5, 7
#                                     (default 5)
#              BENCH_DURABLE_WARMUP   warm-up calls per client per round there (default 20)
#              BENCH_STATE_PARENT     folder for this run's files and the daemon's state (default
#                                     $TMPDIR or /tmp; /var/tmp if that is a tmpfs)
#              CODEX_VAULT_BENCH_BUS_CONFIG  dbus-daemon config (default units/dev-bus.conf)
set -euo pipefail
export LC_ALL=C

usage()
{
    echo "usage: $0 BUILD_DIR [--only-noop]" >&2
    exit 2
}

[[ $# -ge 1 ]] || usage
BUILD_DIR=$1
shift
ONLY_NOOP=0
for arg in "$@"; do
    case $arg in
    --only-noop) ONLY_NOOP=1 ;;
    *) usage ;;
    esac
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
[[ -d $BUILD_DIR ]] || {
    echo "run-bench: no build directory: $BUILD_DIR" >&2
    exit 1
}
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)

# The programs check the ranges (bus_bench exits 2 on a bad value); only the shapes are checked here.
SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-5}
WARMUP=${BENCH_WARMUP:-200}
DURABLE_SECS=${BENCH_DURABLE_SECONDS:-5}
DURABLE_WARMUP=${BENCH_DURABLE_WARMUP:-20}
bad_env()
{
    echo "run-bench: $1 must be $2, got '$3'" >&2
    exit 2
}
[[ $SECS =~ ^[0-9]+([.][0-9]+)?$ ]] || bad_env BENCH_SECONDS "a number of seconds" "$SECS"
[[ $DURABLE_SECS =~ ^[0-9]+([.][0-9]+)?$ ]] || bad_env BENCH_DURABLE_SECONDS "a number of seconds" "$DURABLE_SECS"
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || bad_env BENCH_ROUNDS "1..99" "$ROUNDS"
[[ $WARMUP =~ ^[0-9]+$ ]] || bad_env BENCH_WARMUP "a whole number" "$WARMUP"
[[ $DURABLE_WARMUP =~ ^[0-9]+$ ]] || bad_env BENCH_DURABLE_WARMUP "a whole number" "$DURABLE_WARMUP"
BUS_CONFIG=${CODEX_VAULT_BENCH_BUS_CONFIG:-$ROOT/units/dev-bus.conf}

BUS_BENCH=$BUILD_DIR/bench/bus_bench
NOOP_SERVER=$BUILD_DIR/bench/noop_server
VERIFY_BENCH=$BUILD_DIR/bench/audit_verify_bench
VAULTD=$BUILD_DIR/codex-vaultd
VAULTCTL=$BUILD_DIR/vaultctl

# Bus names and objects (the programs know the paths and interfaces).
NOOP_NAME=org.codexvault.BenchNoop
if ((ONLY_NOOP)); then
    VAULT_NAME=org.codexvault.BenchNoop2
    VAULT_PATH=/org/codexvault/BenchNoop
    VL=noop2
else
    VAULT_NAME=org.codexvault.Vault1
    VAULT_PATH=/org/codexvault/Vault1
    VL=vault
fi

# Sections 4-7: the capability granted to this uid for the run, and one it has no grant for.
GRANTED_CAP=audit:read
UNGRANTED_CAP=ingest:scan

die()
{
    echo "run-bench: $*" >&2
    exit 1
}

for tool in "$BUS_BENCH" "$NOOP_SERVER" "$VERIFY_BENCH"; do
    [[ -x $tool ]] || die "missing $tool (build it with 'make bench')"
done
if ((!ONLY_NOOP)); then
    for tool in "$VAULTD" "$VAULTCTL"; do
        [[ -x $tool ]] || die "missing $tool (build it with 'make all', or pass --only-noop)"
    done
fi
command -v dbus-daemon >/dev/null || die "dbus-daemon not found (install the dbus-daemon package)"
[[ -r $BUS_CONFIG ]] || die "bus config not readable: $BUS_CONFIG"

# fs_type DIR -> the filesystem type DIR is on (ext4, xfs, tmpfs, ...), or "unknown"
fs_type()
{
    local t
    t=$(findmnt -n -o FSTYPE --target "$1" 2>/dev/null | head -n 1) || t=
    [[ -n $t ]] || t=$(stat -f -c %T "$1" 2>/dev/null) || t=
    echo "${t:-unknown}"
}
in_memory_fs() { [[ $1 == tmpfs || $1 == ramfs ]]; }

# The daemon's state folder lives in this run's folder, and fdatasync must cost there what it
# costs on a disk: a tmpfs /tmp is passed over for /var/tmp.
STATE_PARENT=${BENCH_STATE_PARENT:-${TMPDIR:-/tmp}}
[[ -d $STATE_PARENT ]] || die "no such folder: $STATE_PARENT (BENCH_STATE_PARENT / TMPDIR)"
STATE_NOTE="fdatasync is real there"
STATE_FS=$(fs_type "$STATE_PARENT")
if [[ -z ${BENCH_STATE_PARENT:-} ]] && in_memory_fs "$STATE_FS" && [[ -d /var/tmp ]]; then
    if ! in_memory_fs "$(fs_type /var/tmp)"; then
        STATE_NOTE="$STATE_PARENT is $STATE_FS (fdatasync would cost nothing there), so /var/tmp is used"
        STATE_PARENT=/var/tmp
        STATE_FS=$(fs_type "$STATE_PARENT")
    fi
fi
in_memory_fs "$STATE_FS" && STATE_NOTE="WARNING: $STATE_FS: fdatasync costs nothing there, so the durable figures say nothing about a disk"

TMP=$(mktemp -d "$STATE_PARENT/codex-vault-bench.XXXXXX")
chmod 0755 "$TMP" # the bus socket lives here; units/dev-bus.conf wants its folder traversable
SUMMARY=$TMP/summary.txt
PIDS=() # started processes, torn down in reverse order

# shellcheck disable=SC2317  # reached through cleanup, the EXIT trap
stop_pid()
{
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || {
        wait "$pid" 2>/dev/null || true
        return 0
    }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

# shellcheck disable=SC2317  # the EXIT trap
cleanup()
{
    local status=$? i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
    # The daemon sets the append-only flag on its audit segments; rm cannot remove them until it
    # is cleared.
    command -v chattr >/dev/null && chattr -R -a "$TMP" 2>/dev/null
    rm -rf "$TMP"
    exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

alive() { kill -0 "$1" 2>/dev/null; }

# show_log FILE TITLE
show_log()
{
    [[ -s $1 ]] || return 0
    echo "---- $2 (last 20 lines) ----" >&2
    tail -n 20 "$1" >&2
    echo "----" >&2
}

# ---------------------------------------------------------------------------------------------
# Start everything.

dbus-daemon --config-file="$BUS_CONFIG" --address="unix:path=$TMP/bus" --print-address --nofork \
    >"$TMP/bus.addr" 2>"$TMP/bus.log" &
BUS_PID=$!
PIDS+=("$BUS_PID")
ADDR=
for ((i = 0; i < 100; i++)); do
    if [[ -s $TMP/bus.addr ]]; then
        ADDR=$(head -n 1 "$TMP/bus.addr")
        [[ -n $ADDR ]] && break
    fi
    alive "$BUS_PID" || break
    sleep 0.1
done
if [[ -z $ADDR ]]; then
    show_log "$TMP/bus.log" "dbus-daemon"
    die "dbus-daemon did not start (config $BUS_CONFIG)"
fi

# start_noop NAME TAG -> sets REPLY to the pid
start_noop()
{
    local name=$1 tag=$2 pid i
    "$NOOP_SERVER" --bus "$ADDR" "$name" >"$TMP/$tag.out" 2>"$TMP/$tag.log" &
    pid=$!
    PIDS+=("$pid")
    for ((i = 0; i < 100; i++)); do
        if grep -qx ready "$TMP/$tag.out" 2>/dev/null; then
            REPLY=$pid
            return 0
        fi
        alive "$pid" || break
        sleep 0.1
    done
    show_log "$TMP/$tag.log" "noop_server $name"
    die "noop_server did not become ready as $name"
}

# ping_once NAME PATH
ping_once()
{
    "$BUS_BENCH" --bus "$ADDR" --dest "$1" --path "$2" --iface org.freedesktop.DBus.Peer --method Ping \
        --calls 1 --warmup 0 --timeout 1 >/dev/null 2>&1
}

start_noop "$NOOP_NAME" noop
NOOP_PID=$REPLY

if ((ONLY_NOOP)); then
    start_noop "$VAULT_NAME" noop2
    VAULT_PID=$REPLY
    VAULT_LOG=$TMP/noop2.log
else
    install -d -m 0700 "$TMP/state" "$TMP/policy"
    # This uid is the founder (the durable suite needs a throw-away founder key); no policy files.
    echo "founder_uid = $(id -u)" >"$TMP/codex-vaultd.toml"
    VAULT_LOG=$TMP/vaultd.log
    "$VAULTD" --bus "$ADDR" --state-dir "$TMP/state" --config "$TMP/codex-vaultd.toml" --policy-dir "$TMP/policy" \
        >"$VAULT_LOG" 2>&1 &
    VAULT_PID=$!
    PIDS+=("$VAULT_PID")
    ready=0
    deadline=$(($(date +%s%N) + 10000000000))
    while (($(date +%s%N) < deadline)); do
        if ping_once "$VAULT_NAME" "$VAULT_PATH"; then
            ready=1
            break
        fi
        alive "$VAULT_PID" || break
        sleep 0.1
    done
    if ((!ready)); then
        show_log "$VAULT_LOG" "codex-vaultd"
        alive "$VAULT_PID" && die "codex-vaultd did not answer Ping as $VAULT_NAME within 10 s"
        die "codex-vaultd exited before answering Ping as $VAULT_NAME"
    fi
fi

# check_vault WHAT: dies (showing the log) when the vault or its stand-in is gone unasked
VAULT_STOPPED=0
check_vault()
{
    ((VAULT_STOPPED)) || alive "$VAULT_PID" && return 0
    show_log "$VAULT_LOG" "$VL"
    die "$VL (pid $VAULT_PID) exited during the benchmark ($1)"
}

# run_program WHAT COMMAND...: runs a bench program; dies unless it ran (exit 0)
run_program()
{
    local what=$1 rc=0
    shift
    "$@" || rc=$?
    ((rc == 0)) && return 0
    check_vault "$what"
    ((rc == 2)) && exit 2 # bad usage: a BENCH_* value out of range, reported by the program
    die "$what could not run (exit $rc)"
}

COMMON=(--bus "$ADDR" --rounds "$ROUNDS" --seconds "$SECS" --warmup "$WARMUP"
    --durable-seconds "$DURABLE_SECS" --durable-warmup "$DURABLE_WARMUP" --noop-name "$NOOP_NAME"
    --vault-name "$VAULT_NAME" --summary "$SUMMARY")
STAND_IN=()
((ONLY_NOOP)) && STAND_IN=(--stand-in)

DBUS_VERSION=$(dbus-daemon --version | head -n 1)
echo "== Codex Vault bus benchmarks =="
echo "host: $(nproc) CPU(s), $(uname -sr); bus: private dbus-daemon ${DBUS_VERSION##* }, config ${BUS_CONFIG#"$ROOT"/}"
echo "this run's folder (the daemon's state, the fdatasync baseline): $TMP on $STATE_FS ($STATE_NOTE)"

# Sections 1-3. The vault has just answered its first Ping: bus_bench reads its idle RSS 1 s later.
PIN=()
if [[ ${BENCH_PIN:-1} == 1 ]]; then
    PIN=(--pin-pid "$BUS_PID" --pin-pid "$NOOP_PID" --pin-pid "$VAULT_PID")
fi
run_program "bus_bench --suite bus" "$BUS_BENCH" --suite bus "${COMMON[@]}" "${STAND_IN[@]}" \
    --vault-pid "$VAULT_PID" "${PIN[@]}"
check_vault "sections 1-3"

# Sections 4-7: durable calls. The vault gets a throw-away founder key (in this run's folder) and
# one runtime grant of GRANTED_CAP for this uid; Use of it is a durable call: its decision record
# is fdatasynced before it is acted on and its outcome record before the reply, one fdatasync per
# commit round for all calls in the round.
FOUNDER_KEY=$TMP/founder.key
# vaultctl_founder ARG...: vaultctl as the founder, the key's passphrase on fd 3
vaultctl_founder()
{
    "$VAULTCTL" --bus "$ADDR" --founder-key "$FOUNDER_KEY" --passphrase-fd 3 "$@" 3< <(printf '%s' codex-vault-bench)
}

DURABLE=(--state-dir "$TMP")
if ((!ONLY_NOOP)); then
    if ! vaultctl_founder init >"$TMP/setup.log" 2>&1; then
        show_log "$TMP/setup.log" "vaultctl init"
        show_log "$VAULT_LOG" "$VL"
        die "could not initialize the vault for the durable benchmarks"
    fi
    if ! GRANT_ID=$(vaultctl_founder grant issue --principal "uid=$(id -u)" --cap "$GRANTED_CAP" --ttl 1h \
        --description "make bench" 2>"$TMP/setup.log"); then
        show_log "$TMP/setup.log" "vaultctl grant issue"
        die "could not issue the benchmark's grant"
    fi
    "$VAULTCTL" --bus "$ADDR" audit pubkey -o "$TMP/audit.pub" >/dev/null 2>"$TMP/setup.log" || rm -f "$TMP/audit.pub"
    DURABLE+=(--capability "$GRANTED_CAP" --ungranted "$UNGRANTED_CAP" --grant-id "$GRANT_ID")
fi
run_program "bus_bench --suite durable" "$BUS_BENCH" --suite durable "${COMMON[@]}" "${STAND_IN[@]}" "${DURABLE[@]}"
check_vault "sections 4-7"

# The log the daemon wrote, verified offline after an orderly stop.
if ((!ONLY_NOOP)); then
    VAULT_STOPPED=1
    kill -TERM "$VAULT_PID" 2>/dev/null || true
    stop_status=0
    wait "$VAULT_PID" 2>/dev/null || stop_status=$?
    ((stop_status == 0)) || echo "note: $VL exited with status $stop_status on SIGTERM"
    VERIFY=(--dir "$TMP/state/audit" --vaultctl "$VAULTCTL" --summary "$SUMMARY")
    [[ -s $TMP/audit.pub ]] && VERIFY+=(--pubkey "$TMP/audit.pub")
    run_program "audit_verify_bench --dir" "$VERIFY_BENCH" "${VERIFY[@]}"
fi

# The pure redactor, and what the eBPF monitor costs the rest of the machine: after the vault has
# stopped, so no daemon's monitor is attached while monitor_bench compares attached with
# detached. Each prints its own figures; monitor_bench says why it skipped where BPF is refused.
for program in redact_bench monitor_bench; do
    if [[ ! -x $BUILD_DIR/bench/$program ]]; then
        echo "note: $BUILD_DIR/bench/$program not built; skipped" | tee -a "$SUMMARY"
        continue
    fi
    echo "== $program =="
    if ! {
        echo "-- $program"
        "$BUILD_DIR/bench/$program" 2>&1
    } | tee -a "$SUMMARY"; then
        die "$program could not run"
    fi
done

echo "== summary (medians over rounds; latencies in us; section 1 pinned unless BENCH_PIN=0) =="
cat "$SUMMARY"
echo "(targets are information only; timing never fails this script)"
exit 0
