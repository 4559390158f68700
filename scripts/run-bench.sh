#!/usr/bin/env bash
# Bus benchmarks for Codex Vault, run by `make bench`.
#
#   scripts/run-bench.sh BUILD_DIR [--only-noop]
#
# Starts a private dbus-daemon (units/dev-bus.conf), the no-op baseline server
# (BUILD_DIR/bench/noop_server) and the vault daemon (BUILD_DIR/codex-vaultd) on it, then measures,
# all in this one run and on this one bus:
#   1. single client, sequential: Peer.Ping, WhoAmI and Status on the vault, Ping and Nop on the
#      baseline (every process pinned to one CPU, see below);
#   2. throughput with 1 and 4 clients: WhoAmI and Status on the vault vs Nop on the baseline;
#   3. the vault daemon's idle RSS (VmRSS) 1 s after start and again after the load.
# Figures are printed next to their targets; timing never fails the run. The exit status is 0 when
# the measurements ran, 1 when something could not be started (or the daemon died during the run),
# 2 on bad usage.
#
# --only-noop  stands a second no-op server in for the vault (WhoAmI and Status become Nop there),
#              to exercise the script and the tools without codex-vaultd.
# Environment: BENCH_SECONDS  measured seconds per measurement (default 3), split into rounds
#              BENCH_ROUNDS   interleaved rounds per measurement, median reported (default 5)
#              BENCH_WARMUP   unrecorded warm-up calls per client per round (default 200)
#              BENCH_PIN      1 (default): pin everything to one CPU for the single-client section
#              CODEX_VAULT_BENCH_BUS_CONFIG  dbus-daemon config (default units/dev-bus.conf)
set -euo pipefail
export LC_ALL=C

usage() { echo "usage: $0 BUILD_DIR [--only-noop]" >&2; exit 2; }

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
[[ -d $BUILD_DIR ]] || { echo "run-bench: no build directory: $BUILD_DIR" >&2; exit 1; }
BUILD_DIR=$(cd "$BUILD_DIR" && pwd)

SECS=${BENCH_SECONDS:-3}
ROUNDS=${BENCH_ROUNDS:-5}
WARMUP=${BENCH_WARMUP:-200}
if ! [[ $SECS =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v s="$SECS" 'BEGIN { exit !(s > 0 && s <= 600) }'; then
    echo "run-bench: BENCH_SECONDS must be a number of seconds in (0, 600], got '$SECS'" >&2
    exit 2
fi
[[ $ROUNDS =~ ^[1-9][0-9]?$ ]] || { echo "run-bench: BENCH_ROUNDS must be 1..99, got '$ROUNDS'" >&2; exit 2; }
[[ $WARMUP =~ ^[0-9]+$ ]] || { echo "run-bench: BENCH_WARMUP must be a whole number, got '$WARMUP'" >&2; exit 2; }
ROUND_SECS=$(awk -v s="$SECS" -v r="$ROUNDS" 'BEGIN { printf "%.3f", s / r }')
[[ $ROUND_SECS != 0.000 ]] || { echo "run-bench: BENCH_SECONDS/BENCH_ROUNDS is too small" >&2; exit 2; }
BUS_CONFIG=${CODEX_VAULT_BENCH_BUS_CONFIG:-$ROOT/units/dev-bus.conf}

BUS_BENCH=$BUILD_DIR/bench/bus_bench
NOOP_SERVER=$BUILD_DIR/bench/noop_server
VAULTD=$BUILD_DIR/codex-vaultd

# Bus names and objects.
NOOP_NAME=org.codexvault.BenchNoop
NOOP_PATH=/org/codexvault/BenchNoop
NOOP_IFACE=org.codexvault.BenchNoop
PEER_IFACE=org.freedesktop.DBus.Peer
if ((ONLY_NOOP)); then
    VAULT_NAME=org.codexvault.BenchNoop2
    VAULT_PATH=$NOOP_PATH
    VAULT_IFACE=$NOOP_IFACE
    WHOAMI_METHOD=Nop
    STATUS_METHOD=Nop
else
    VAULT_NAME=org.codexvault.Vault1
    VAULT_PATH=/org/codexvault/Vault1
    VAULT_IFACE=org.codexvault.Vault1
    WHOAMI_METHOD=WhoAmI
    STATUS_METHOD=Status
fi

# Targets (printed, never enforced).
TARGET_WHOAMI_PING_P50=1.5
TARGET_THROUGHPUT_RATIO=0.70
TARGET_RSS_MIB=12

die()
{
    echo "run-bench: $*" >&2
    exit 1
}

for tool in "$BUS_BENCH" "$NOOP_SERVER"; do
    [[ -x $tool ]] || die "missing $tool (build it with 'make bench')"
done
((ONLY_NOOP)) || [[ -x $VAULTD ]] || die "missing $VAULTD (build it with 'make all', or pass --only-noop)"
command -v dbus-daemon >/dev/null || die "dbus-daemon not found (install the dbus-daemon package)"
[[ -r $BUS_CONFIG ]] || die "bus config not readable: $BUS_CONFIG"

TMP=$(mktemp -d "${TMPDIR:-/tmp}/codex-vault-bench.XXXXXX")
chmod 0755 "$TMP"  # the bus socket lives here; units/dev-bus.conf wants its folder traversable
PIDS=()  # started processes, torn down in reverse order

stop_pid()
{
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 30; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null || true
}

cleanup()
{
    local status=$? i
    trap - EXIT INT TERM
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        stop_pid "${PIDS[i]}"
    done
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
    "$BUS_BENCH" --bus "$ADDR" --dest "$1" --path "$2" --iface "$PEER_IFACE" --method Ping \
        --calls 1 --warmup 0 --timeout 1 >/dev/null 2>&1
}

start_noop "$NOOP_NAME" noop
NOOP_PID=$REPLY

if ((ONLY_NOOP)); then
    start_noop "$VAULT_NAME" noop2
    VAULT_PID=$REPLY
    VAULT_LOG=$TMP/noop2.log
else
    install -d -m 0700 "$TMP/state"
    VAULT_LOG=$TMP/vaultd.log
    "$VAULTD" --bus "$ADDR" --state-dir "$TMP/state" >"$VAULT_LOG" 2>&1 &
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
START_NS=$(date +%s%N)

# The process that owns the name is the one to measure; it should be the one started here.
RSS_PID=$VAULT_PID
if command -v busctl >/dev/null; then
    owner=$(busctl --address="$ADDR" call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus \
        GetConnectionUnixProcessID s "$VAULT_NAME" 2>/dev/null | awk '$1 == "u" { print $2 }') || owner=
    if [[ -n $owner && $owner != "$VAULT_PID" ]]; then
        echo "note: $VAULT_NAME is owned by pid $owner, not the started pid $VAULT_PID; measuring $owner" >&2
        RSS_PID=$owner
    fi
fi

# rss_kib FIELD -> KiB, or empty
rss_kib()
{
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$RSS_PID/status" 2>/dev/null || true
}
mib() { awk -v k="$1" 'BEGIN { if (k == "") print "n/a"; else printf "%.1f", k / 1024 }'; }

# ---------------------------------------------------------------------------------------------
# Running and summarising measurements.
#
# Every measurement is split into BENCH_ROUNDS rounds of BENCH_SECONDS/BENCH_ROUNDS seconds, and the
# rounds of the measurements that are compared with each other are interleaved (A B C A B C ...), so
# drift in the machine's speed during the run hits all of them alike. Each figure printed is the
# median over the rounds; calls/s also shows the lowest and highest round.

declare -A R  # R[key.field] (aggregated) and R[key.round.field] (one round)
FAILED_RUNS=()
RUN_PREFIX=()

# json_field JSON FIELD -> a numeric field of bus_bench's flat JSON object
json_field()
{
    sed -n "s/.*\"$2\":\([-0-9.]*\).*/\1/p" <<<"$1"
}

# median VALUE... (empty values ignored) -> median, or empty
median()
{
    printf '%s\n' "$@" | awk 'NF' | sort -g | awk '{ v[NR] = $1 } END {
        if (NR == 0) exit
        if (NR % 2) printf "%.1f", v[(NR + 1) / 2]; else printf "%.1f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}

declare -A SPEC  # SPEC[key] = "label|dest|path|iface|method|clients"
spec() { SPEC[$1]="$2|$3|$4|$5|$6|$7"; }

# run_round KEY ROUND
run_round()
{
    local key=$1 round=$2 label dest path iface method clients out rc=0 f
    IFS='|' read -r label dest path iface method clients <<<"${SPEC[$key]}"
    out=$("${RUN_PREFIX[@]}" "$BUS_BENCH" --bus "$ADDR" --dest "$dest" --path "$path" --iface "$iface" \
        --method "$method" --clients "$clients" --seconds "$ROUND_SECS" --warmup "$WARMUP" --label "$label" \
        --json 2>"$TMP/run.err") || rc=$?
    for f in calls errors calls_per_s p50_us p90_us p99_us; do
        R[$key.$round.$f]=$(json_field "$out" "$f")
    done
    if ((rc != 0)); then
        # No call succeeded, or a client could not connect: the round's figures mean nothing.
        for f in calls_per_s p50_us p90_us p99_us; do R[$key.$round.$f]=; done
    fi
    if ((rc != 0)) || [[ ${R[$key.$round.errors]:-1} != 0 ]]; then
        # Shown once per measurement; the summary counts the failed calls of all rounds.
        if [[ -z ${R[$key.failed]:-} ]]; then
            FAILED_RUNS+=("$label, $clients client(s): $(head -n 2 "$TMP/run.err" | tr '\n' ' ')")
            sed 's/^/      /' "$TMP/run.err"
        fi
        R[$key.failed]=1
    fi
}

# summarise KEY: aggregates the rounds and prints one line
summarise()
{
    local key=$1 label dest path iface method clients f r errors=0 vals
    IFS='|' read -r label dest path iface method clients <<<"${SPEC[$key]}"
    for f in calls_per_s p50_us p90_us p99_us; do
        vals=()
        for ((r = 1; r <= ROUNDS; r++)); do vals+=("${R[$key.$r.$f]:-}"); done
        R[$key.$f]=$(median "${vals[@]}")
    done
    vals=()
    for ((r = 1; r <= ROUNDS; r++)); do
        errors=$((errors + ${R[$key.$r.errors]:-0}))
        [[ -n ${R[$key.$r.calls_per_s]:-} ]] && vals+=("${R[$key.$r.calls_per_s]}")
    done
    R[$key.errors]=$errors
    R[$key.range]=n/a
    ((${#vals[@]})) && R[$key.range]=$(printf '%s\n' "${vals[@]}" | sort -g | awk 'NR == 1 { lo = $1 } { hi = $1 } END { printf "%.0f-%.0f", lo, hi }')
    R[$key.label]=$label
    R[$key.clients]=$clients
    printf '  %-18s %2s client(s) %9s calls/s (rounds %13s)  p50 %7s  p90 %7s  p99 %7s us  errors %s\n' \
        "$label" "$clients" "${R[$key.calls_per_s]:-n/a}" "${R[$key.range]}" "${R[$key.p50_us]:-n/a}" \
        "${R[$key.p90_us]:-n/a}" "${R[$key.p99_us]:-n/a}" "$errors"
}

# measure KEY...: interleaved rounds, then one line per key
measure()
{
    local r key
    for ((r = 1; r <= ROUNDS; r++)); do
        for key in "$@"; do run_round "$key" "$r"; done
    done
    for key in "$@"; do summarise "$key"; done
}

# ratio A B -> A/B with 2 decimals, or n/a
# x VALUE -> "VALUEx", or n/a
x()
{
    if [[ $1 == n/a ]]; then echo n/a; else echo "${1}x"; fi
}

ratio()
{
    awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "" && a + 0 > 0 && b + 0 > 0) printf "%.2f", a / b; else print "n/a" }'
}
# verdict VALUE OP TARGET -> "met" / "NOT met" / "" (information only)
verdict()
{
    awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN {
        if (v == "n/a" || v == "") exit
        ok = (op == "<=") ? (v + 0 <= t + 0) : (v + 0 >= t + 0)
        print ok ? "met" : "NOT met" }'
}

# Single-client latency depends heavily on whether the client, dbus-daemon and the server share a
# CPU: a cross-CPU wake-up costs far more than the call itself on many (virtual) machines, and the
# scheduler's choice flips from run to run. Section 1 therefore runs with every process pinned to
# one CPU (BENCH_PIN=0 turns this off); section 2 runs unpinned, across all CPUs.
PIN=${BENCH_PIN:-1}
PIN_NOTE="unpinned"
ALL_CPUS=
PIN_CPU=
PIN_PIDS=("$BUS_PID" "$NOOP_PID" "$RSS_PID")
if [[ $PIN == 1 ]] && command -v taskset >/dev/null; then
    ALL_CPUS=$(taskset -cp $$ | sed 's/.*: //')
    PIN_CPU=${ALL_CPUS%%[,-]*}
fi

pin()
{
    local pid
    [[ -n $PIN_CPU ]] || return 0
    for pid in "${PIN_PIDS[@]}"; do
        if ! taskset -a -cp "$PIN_CPU" "$pid" >/dev/null 2>&1; then
            echo "note: cannot pin pid $pid to CPU $PIN_CPU; running unpinned" >&2
            unpin
            PIN_CPU=
            return 0
        fi
    done
    RUN_PREFIX=(taskset -c "$PIN_CPU")
    PIN_NOTE="all processes pinned to CPU $PIN_CPU"
}
unpin()
{
    local pid
    RUN_PREFIX=()
    [[ -n $ALL_CPUS ]] || return 0
    for pid in "${PIN_PIDS[@]}"; do
        taskset -a -cp "$ALL_CPUS" "$pid" >/dev/null 2>&1 || true
    done
}

# ---------------------------------------------------------------------------------------------
# Measure.

if ((ONLY_NOOP)); then
    VL="noop2"  # the stand-in; its "WhoAmI" and "Status" call Nop
    WL="WhoAmI*"
    SL="Status*"
else
    VL="vault"
    WL="WhoAmI"
    SL="Status"
fi

spec ping1   "Ping $VL"  "$VAULT_NAME" "$VAULT_PATH" "$PEER_IFACE"  Ping             1
spec whoami1 "$WL $VL"   "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" "$WHOAMI_METHOD" 1
spec status1 "$SL $VL"   "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" "$STATUS_METHOD" 1
spec nping1  "Ping noop" "$NOOP_NAME"  "$NOOP_PATH"  "$PEER_IFACE"  Ping             1
spec nop1    "Nop noop"  "$NOOP_NAME"  "$NOOP_PATH"  "$NOOP_IFACE"  Nop              1
spec whoami4 "$WL $VL"   "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" "$WHOAMI_METHOD" 4
spec status4 "$SL $VL"   "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" "$STATUS_METHOD" 4
spec nop4    "Nop noop"  "$NOOP_NAME"  "$NOOP_PATH"  "$NOOP_IFACE"  Nop              4

echo "== Codex Vault bus benchmarks =="
echo "host: $(nproc) CPU(s), $(uname -sr); bus: private dbus-daemon $(dbus-daemon --version | head -n 1 | awk '{ print $NF }'), config ${BUS_CONFIG#"$ROOT"/}"
echo "each measurement: $ROUNDS interleaved rounds of ${ROUND_SECS}s (median shown), $WARMUP unrecorded warm-up calls per client per round"
if ((ONLY_NOOP)); then
    echo "--only-noop: a second noop_server ($VAULT_NAME) stands in for the vault; its WhoAmI*/Status* rows call Nop"
fi
echo

# Idle RSS: the daemon has answered one Ping; leave it alone for 1 s since then.
sleep "$(awk -v s="$START_NS" -v n="$(date +%s%N)" 'BEGIN { d = 1 - (n - s) / 1e9; printf "%.3f", (d > 0 ? d : 0) }')"
RSS_IDLE=$(rss_kib VmRSS)

pin
echo "-- 1. single client, sequential ($PIN_NOTE) --"
measure ping1 whoami1 status1 nping1 nop1
unpin
R_WP50=$(ratio "${R[whoami1.p50_us]}" "${R[ping1.p50_us]}")
R_WP99=$(ratio "${R[whoami1.p99_us]}" "${R[ping1.p99_us]}")
R_SP50=$(ratio "${R[status1.p50_us]}" "${R[ping1.p50_us]}")
R_SP99=$(ratio "${R[status1.p99_us]}" "${R[ping1.p99_us]}")
R_NP50=$(ratio "${R[nop1.p50_us]}" "${R[nping1.p50_us]}")
R_NP99=$(ratio "${R[nop1.p99_us]}" "${R[nping1.p99_us]}")
printf '  %-18s p50 %6s  p99 %6s   target p50 <= %sx: %s\n' "$WL/Ping $VL" "$(x "$R_WP50")" "$(x "$R_WP99")" \
    "$TARGET_WHOAMI_PING_P50" "$(verdict "$R_WP50" "<=" "$TARGET_WHOAMI_PING_P50")"
printf '  %-18s p50 %6s  p99 %6s\n' "$SL/Ping $VL" "$(x "$R_SP50")" "$(x "$R_SP99")"
printf '  %-18s p50 %6s  p99 %6s   (baseline: a vtable method vs Ping in the same server)\n' "Nop/Ping noop" \
    "$(x "$R_NP50")" "$(x "$R_NP99")"
echo

echo "-- 2. throughput, unpinned (the 1-client figures are section 1's) --"
measure whoami4 status4 nop4
R_W1=$(ratio "${R[whoami1.calls_per_s]}" "${R[nop1.calls_per_s]}")
R_S1=$(ratio "${R[status1.calls_per_s]}" "${R[nop1.calls_per_s]}")
R_W4=$(ratio "${R[whoami4.calls_per_s]}" "${R[nop4.calls_per_s]}")
R_S4=$(ratio "${R[status4.calls_per_s]}" "${R[nop4.calls_per_s]}")
printf '  %-18s 1 client %5s  4 clients %5s   target (4 clients) >= %s: %s\n' "$WL/Nop calls/s" "$R_W1" "$R_W4" \
    "$TARGET_THROUGHPUT_RATIO" "$(verdict "$R_W4" ">=" "$TARGET_THROUGHPUT_RATIO")"
printf '  %-18s 1 client %5s  4 clients %5s   target (4 clients) >= %s: %s\n' "$SL/Nop calls/s" "$R_S1" "$R_S4" \
    "$TARGET_THROUGHPUT_RATIO" "$(verdict "$R_S4" ">=" "$TARGET_THROUGHPUT_RATIO")"
echo

echo "-- 3. idle RSS of $VL (pid $RSS_PID) --"
VAULT_DIED=0
RSS_AFTER=
RSS_PEAK=
if alive "$RSS_PID"; then
    sleep 1
    RSS_AFTER=$(rss_kib VmRSS)
    RSS_PEAK=$(rss_kib VmHWM)
fi
alive "$RSS_PID" || VAULT_DIED=1
RSS_IDLE_MIB=$(mib "$RSS_IDLE")
RSS_AFTER_MIB=$(mib "$RSS_AFTER")
printf '  %-18s %6s MiB   target <= %s MiB: %s\n' "1 s after start" "$RSS_IDLE_MIB" "$TARGET_RSS_MIB" \
    "$(verdict "$RSS_IDLE_MIB" "<=" "$TARGET_RSS_MIB")"
printf '  %-18s %6s MiB   target <= %s MiB: %s\n' "1 s after the load" "$RSS_AFTER_MIB" "$TARGET_RSS_MIB" \
    "$(verdict "$RSS_AFTER_MIB" "<=" "$TARGET_RSS_MIB")"
printf '  %-18s %6s MiB\n' "peak (VmHWM)" "$(mib "$RSS_PEAK")"
echo

# ---------------------------------------------------------------------------------------------
# Summary.

echo "== summary (medians; latencies in us; section 1 $PIN_NOTE) =="
printf '%-18s %7s %10s %10s %10s %10s %7s\n' run clients calls/s p50 p90 p99 errors
for key in ping1 whoami1 status1 nping1 nop1 whoami4 status4 nop4; do
    printf '%-18s %7s %10s %10s %10s %10s %7s\n' "${R[$key.label]}" "${R[$key.clients]}" \
        "${R[$key.calls_per_s]:-n/a}" "${R[$key.p50_us]:-n/a}" "${R[$key.p90_us]:-n/a}" "${R[$key.p99_us]:-n/a}" \
        "${R[$key.errors]}"
done
echo
row() { printf '%-38s %9s   %-9s %s\n' "$@"; }
row figure measured target ""
row "$WL/Ping p50, 1 client" "$(x "$R_WP50")" "<= ${TARGET_WHOAMI_PING_P50}x" "$(verdict "$R_WP50" "<=" "$TARGET_WHOAMI_PING_P50")"
row "$WL/Ping p99, 1 client" "$(x "$R_WP99")" "-"
row "$SL/Ping p50, 1 client" "$(x "$R_SP50")" "-"
row "$SL/Ping p99, 1 client" "$(x "$R_SP99")" "-"
row "$WL $VL/noop calls/s, 4 clients" "$R_W4" ">= $TARGET_THROUGHPUT_RATIO" "$(verdict "$R_W4" ">=" "$TARGET_THROUGHPUT_RATIO")"
row "$SL $VL/noop calls/s, 4 clients" "$R_S4" ">= $TARGET_THROUGHPUT_RATIO" "$(verdict "$R_S4" ">=" "$TARGET_THROUGHPUT_RATIO")"
row "idle RSS 1 s after start (MiB)" "$RSS_IDLE_MIB" "<= $TARGET_RSS_MIB" "$(verdict "$RSS_IDLE_MIB" "<=" "$TARGET_RSS_MIB")"
row "idle RSS after the load (MiB)" "$RSS_AFTER_MIB" "<= $TARGET_RSS_MIB" "$(verdict "$RSS_AFTER_MIB" "<=" "$TARGET_RSS_MIB")"
echo "(targets are information only; timing never fails this script)"

if ((${#FAILED_RUNS[@]})); then
    echo
    echo "WARNING: ${#FAILED_RUNS[@]} measurement(s) had failed calls; figures cover successful calls only:"
    printf '  %s\n' "${FAILED_RUNS[@]}"
fi
if ((VAULT_DIED)); then
    echo
    show_log "$VAULT_LOG" "$VL"
    die "$VL (pid $RSS_PID) exited during the benchmark"
fi
exit 0
