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
#   3. the vault daemon's idle RSS (VmRSS) 1 s after start and again after the load;
# then initializes the vault (a throw-away founder key), issues one runtime grant to this uid and
# measures, again interleaved:
#   4. durable audited decisions: Use of the granted capability with 1, 4 and 16 clients (each
#      client a thread with its own connection, in a closed loop), beside "one fdatasync per
#      record" (bench/fdatasync_bench: append ~250 bytes + fdatasync) on the filesystem of the
#      daemon's state folder; a refused Use (no grant) is shown for information only: repeated
#      denials are folded and answered at once, so it measures no fdatasync;
#   5. informational calls with a policy evaluation: Check with 4 clients vs Nop on the baseline;
#   6. the latency a durable record adds: Use vs Check of the same capability, 1 client;
#   7. `vaultctl audit verify` of the log the daemon wrote during the run (after an orderly stop).
# The state folder (and this run's other files) go under $TMPDIR or /tmp unless that is a tmpfs,
# where fdatasync costs nothing; then /var/tmp is used. The filesystem is printed.
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
#              BENCH_DURABLE_SECONDS  measured seconds per durable measurement, section 4 (default 5)
#              BENCH_DURABLE_WARMUP   warm-up calls per client per round there (default 20)
#              BENCH_STATE_PARENT     folder for this run's files and the daemon's state (default
#                                     $TMPDIR or /tmp; /var/tmp if that is a tmpfs)
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
DURABLE_SECS=${BENCH_DURABLE_SECONDS:-5}
DURABLE_WARMUP=${BENCH_DURABLE_WARMUP:-20}
if ! [[ $DURABLE_SECS =~ ^[0-9]+([.][0-9]+)?$ ]] || ! awk -v s="$DURABLE_SECS" 'BEGIN { exit !(s > 0 && s <= 600) }'; then
    echo "run-bench: BENCH_DURABLE_SECONDS must be a number of seconds in (0, 600], got '$DURABLE_SECS'" >&2
    exit 2
fi
[[ $DURABLE_WARMUP =~ ^[0-9]+$ ]] || { echo "run-bench: BENCH_DURABLE_WARMUP must be a whole number, got '$DURABLE_WARMUP'" >&2; exit 2; }
DURABLE_ROUND_SECS=$(awk -v s="$DURABLE_SECS" -v r="$ROUNDS" 'BEGIN { printf "%.3f", s / r }')
[[ $DURABLE_ROUND_SECS != 0.000 ]] || { echo "run-bench: BENCH_DURABLE_SECONDS/BENCH_ROUNDS is too small" >&2; exit 2; }
BUS_CONFIG=${CODEX_VAULT_BENCH_BUS_CONFIG:-$ROOT/units/dev-bus.conf}

BUS_BENCH=$BUILD_DIR/bench/bus_bench
NOOP_SERVER=$BUILD_DIR/bench/noop_server
FSYNC_BENCH=$BUILD_DIR/bench/fdatasync_bench
VAULTD=$BUILD_DIR/codex-vaultd
VAULTCTL=$BUILD_DIR/vaultctl

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
TARGET_GROUP_COMMIT=5  # durable Use calls/s with 16 clients, over one-fdatasync-per-record records/s

# Section 4-6: the capability granted to this uid for the run, and one it has no grant for.
GRANTED_CAP=audit:read
UNGRANTED_CAP=ingest:scan
DENIED_ERROR=org.codexvault.Vault1.Error.PermissionDenied

die()
{
    echo "run-bench: $*" >&2
    exit 1
}

for tool in "$BUS_BENCH" "$NOOP_SERVER" "$FSYNC_BENCH"; do
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
STATE_NOTE=
STATE_FS=$(fs_type "$STATE_PARENT")
if [[ -z ${BENCH_STATE_PARENT:-} ]] && in_memory_fs "$STATE_FS" && [[ -d /var/tmp ]]; then
    if ! in_memory_fs "$(fs_type /var/tmp)"; then
        STATE_NOTE="$STATE_PARENT is $STATE_FS (fdatasync would cost nothing there), so /var/tmp is used"
        STATE_PARENT=/var/tmp
        STATE_FS=$(fs_type "$STATE_PARENT")
    fi
fi
in_memory_fs "$STATE_FS" && STATE_NOTE="WARNING: $STATE_PARENT is $STATE_FS: fdatasync costs nothing there, so the durable figures say nothing about a disk"

TMP=$(mktemp -d "$STATE_PARENT/codex-vault-bench.XXXXXX")
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
    install -d -m 0700 "$TMP/state" "$TMP/policy"
    # This uid is the founder (section 4 enrolls a throw-away founder key); no policy files.
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

declare -A SPEC  # SPEC[key] = "label|dest|path|iface|method|clients|capability|expected error|round s|warm-up"
# spec KEY LABEL DEST PATH IFACE METHOD CLIENTS [CAPABILITY [EXPECTED_ERROR [ROUND_SECONDS [WARMUP]]]]
spec() { SPEC[$1]="$2|$3|$4|$5|$6|$7|${8:-}|${9:-}|${10:-$ROUND_SECS}|${11:-$WARMUP}"; }
# fsync_spec KEY LABEL ROUND_SECONDS: one round of fdatasync_bench in this run's folder
fsync_spec() { SPEC[$1]="$2|@fdatasync||||1|||$3|20"; }

# run_round KEY ROUND
run_round()
{
    local key=$1 round=$2 label dest path iface method clients cap expect secs warmup out rc=0 f
    local -a extra=()
    IFS='|' read -r label dest path iface method clients cap expect secs warmup <<<"${SPEC[$key]}"
    if [[ $dest == @fdatasync ]]; then
        out=$("$FSYNC_BENCH" --dir "$TMP" --seconds "$secs" --warmup "$warmup" --json 2>"$TMP/run.err") || rc=$?
        R[$key.fs_type]=$(sed -n 's/.*"fs_type":"\([^"]*\)".*/\1/p' <<<"$out")
        R[$key.fs_magic]=$(sed -n 's/.*"fs_magic":"\([^"]*\)".*/\1/p' <<<"$out")
        R[$key.mount_point]=$(sed -n 's/.*"mount_point":"\([^"]*\)".*/\1/p' <<<"$out")
        R[$key.source]=$(sed -n 's/.*"source":"\([^"]*\)".*/\1/p' <<<"$out")
    else
        [[ -n $cap ]] && extra+=(--capability "$cap")
        [[ -n $expect ]] && extra+=(--expect-error "$expect")
        out=$("${RUN_PREFIX[@]}" "$BUS_BENCH" --bus "$ADDR" --dest "$dest" --path "$path" --iface "$iface" \
            --method "$method" "${extra[@]}" --clients "$clients" --seconds "$secs" --warmup "$warmup" \
            --label "$label" --json 2>"$TMP/run.err") || rc=$?
    fi
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
    IFS='|' read -r label dest path iface method clients _ <<<"${SPEC[$key]}"
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
# Sections 4-7: durable calls. The vault gets a throw-away founder key (in this run's folder) and
# one runtime grant of GRANTED_CAP for this uid; Use of it is a durable call: its decision record
# is fdatasynced before it is acted on (the grant's use is counted and the grant state saved) and
# its outcome record before the reply, one fdatasync per commit round for all calls in the round.

FOUNDER_KEY=$TMP/founder.key
# vaultctl_founder ARG...: vaultctl as the founder, the key's passphrase on fd 3
vaultctl_founder()
{
    "$VAULTCTL" --bus "$ADDR" --founder-key "$FOUNDER_KEY" --passphrase-fd 3 "$@" 3< <(printf '%s' codex-vault-bench)
}

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
fi

STATE_DIR_FS=$(fs_type "$TMP")
fsync_spec fsync "fdatasync 250 B" "$DURABLE_ROUND_SECS"
spec use1   "Use (durable)"    "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" Use   1  "$GRANTED_CAP" "" "$DURABLE_ROUND_SECS" "$DURABLE_WARMUP"
spec use4   "Use (durable)"    "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" Use   4  "$GRANTED_CAP" "" "$DURABLE_ROUND_SECS" "$DURABLE_WARMUP"
spec use16  "Use (durable)"    "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" Use   16 "$GRANTED_CAP" "" "$DURABLE_ROUND_SECS" "$DURABLE_WARMUP"
spec check1 "Check (info)"     "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" Check 1  "$GRANTED_CAP" "" "$DURABLE_ROUND_SECS" "$DURABLE_WARMUP"
spec deny4  "Use refused"      "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" Use   4  "$UNGRANTED_CAP" "$DENIED_ERROR"
spec check4 "Check $VL"        "$VAULT_NAME" "$VAULT_PATH" "$VAULT_IFACE" Check 4  "$GRANTED_CAP"
spec nop4b  "Nop noop"         "$NOOP_NAME"  "$NOOP_PATH"  "$NOOP_IFACE"  Nop   4

echo "-- 4. durable audited decisions vs one fdatasync per record (unpinned) --"
echo "  state folder $TMP/state: ${STATE_DIR_FS} ($([[ -n $STATE_NOTE ]] && echo "$STATE_NOTE" || echo "fdatasync is real here"))"
if ((ONLY_NOOP)); then
    echo "  --only-noop: no vault, so only the fdatasync baseline"
    measure fsync
else
    echo "  Use $GRANTED_CAP under runtime grant $GRANT_ID (uid $(id -u)), closed loop, one connection per client;"
    echo "  rounds of ${DURABLE_ROUND_SECS}s, $DURABLE_WARMUP warm-up calls per client per round; 'Use refused' is Use of"
    echo "  $UNGRANTED_CAP without a grant: repeated denials are folded and answered at once (no fdatasync waited for)"
    measure fsync use1 use4 use16 check1 deny4
fi
echo "  filesystem: ${R[fsync.source]:-?} ${R[fsync.fs_type]:-?} (statfs f_type ${R[fsync.fs_magic]:-?}), mounted on ${R[fsync.mount_point]:-?}"
# The ceiling of one fdatasync per record is what the measured loop achieved (records/s): it pays
# the same latency distribution, tail included, that the daemon's commit rounds pay. 1 s / the
# median latency is shown beside it; on a disk whose fdatasync latency has a long tail (a few fast,
# some a whole flush) it is far higher than what any loop achieves, so it is information only.
CEIL_LOOP=${R[fsync.calls_per_s]:-}
CEIL_P50=$(awk -v p="${R[fsync.p50_us]:-}" 'BEGIN { if (p + 0 > 0) printf "%.1f", 1e6 / p }')
CEIL=$CEIL_LOOP
printf '  one fdatasync per record allows %s records/s (measured loop) / %s records/s (1 s / p50 %s us)\n' \
    "${CEIL_LOOP:-n/a}" "${CEIL_P50:-n/a}" "${R[fsync.p50_us]:-n/a}"
R_U1=n/a R_U4=n/a R_U16=n/a R_U16_P50=n/a
if ((!ONLY_NOOP)); then
    R_U1=$(ratio "${R[use1.calls_per_s]}" "$CEIL")
    R_U4=$(ratio "${R[use4.calls_per_s]}" "$CEIL")
    R_U16=$(ratio "${R[use16.calls_per_s]}" "$CEIL")
    R_U16_P50=$(ratio "${R[use16.calls_per_s]}" "$CEIL_P50")
    printf '  %-30s 1 client %6s  4 clients %6s  16 clients %6s   target (16) >= %sx: %s\n' \
        "Use calls/s over the ceiling" "$(x "$R_U1")" "$(x "$R_U4")" "$(x "$R_U16")" "$TARGET_GROUP_COMMIT" \
        "$(verdict "$R_U16" ">=" "$TARGET_GROUP_COMMIT")"
    printf '  %-30s 16 clients: %s over 1 s/p50 of fdatasync (information only)\n' "" "$(x "$R_U16_P50")"
fi
echo

D_P50=n/a D_P99=n/a R_C4=n/a
if ((!ONLY_NOOP)); then
    echo "-- 5. informational calls with a policy evaluation, 4 clients, unpinned --"
    measure check4 nop4b
    R_C4=$(ratio "${R[check4.calls_per_s]}" "${R[nop4b.calls_per_s]}")
    printf '  %-30s %5s   target >= %s: %s\n' "Check $VL/Nop noop calls/s" "$R_C4" "$TARGET_THROUGHPUT_RATIO" \
        "$(verdict "$R_C4" ">=" "$TARGET_THROUGHPUT_RATIO")"
    echo

    echo "-- 6. latency a durable record adds: Use vs Check of $GRANTED_CAP, 1 client (section 4's rounds) --"
    diff_us() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b != "") printf "%.1f", a - b; else print "n/a" }'; }
    D_P50=$(diff_us "${R[use1.p50_us]}" "${R[check1.p50_us]}")
    D_P99=$(diff_us "${R[use1.p99_us]}" "${R[check1.p99_us]}")
    printf '  %-30s p50 %9s us  p99 %9s us\n' "Use (durable)" "${R[use1.p50_us]:-n/a}" "${R[use1.p99_us]:-n/a}"
    printf '  %-30s p50 %9s us  p99 %9s us\n' "Check (informational)" "${R[check1.p50_us]:-n/a}" "${R[check1.p99_us]:-n/a}"
    printf '  %-30s p50 %9s us  p99 %9s us   (a Use waits for one commit round: its decision and outcome share the fdatasync)\n' \
        "added by the durable record" "$D_P50" "$D_P99"
    printf '  %-30s p50 %9s us  p99 %9s us\n' "one fdatasync (section 4)" "${R[fsync.p50_us]:-n/a}" "${R[fsync.p99_us]:-n/a}"
    echo
fi

VERIFY_RECORDS='' VERIFY_SECS='' VERIFY_RATE='' VERIFY_RESULT=n/a
alive "$RSS_PID" || VAULT_DIED=1
if ((!ONLY_NOOP)); then
    echo "-- 7. offline verify of the log this run wrote (vaultctl audit verify, after an orderly stop) --"
    if ((!VAULT_DIED)); then
        kill -TERM "$VAULT_PID" 2>/dev/null || true
        stop_status=0
        wait "$VAULT_PID" 2>/dev/null || stop_status=$?
        ((stop_status == 0)) || echo "  note: $VL exited with status $stop_status on SIGTERM"
        verify_args=(--json audit verify --dir "$TMP/state/audit")
        [[ -s $TMP/audit.pub ]] && verify_args+=(--pubkey "$TMP/audit.pub")
        t0=$(date +%s%N)
        verify_rc=0
        verify_out=$("$VAULTCTL" "${verify_args[@]}" 2>&1) || verify_rc=$?
        t1=$(date +%s%N)
        VERIFY_RECORDS=$(sed -n 's/.*"records":\([0-9]*\).*/\1/p' <<<"$verify_out")
        VERIFY_SECS=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
        VERIFY_RATE=$(awk -v n="$VERIFY_RECORDS" -v s="$VERIFY_SECS" 'BEGIN { if (n + 0 > 0 && s + 0 > 0) printf "%.0f", n / s }')
        VERIFY_RESULT=$( ((verify_rc == 0)) && echo ok || echo "FAILED (exit $verify_rc)")
        du_bytes=$(du -sb "$TMP/state/audit" 2>/dev/null | awk '{ print $1 }')
        printf '  %s: %s records (%s MiB) in %s s, process start included = %s records/s (%s)\n' \
            "${TMP}/state/audit" "${VERIFY_RECORDS:-?}" "$(mib "$((${du_bytes:-0} / 1024))")" "$VERIFY_SECS" \
            "${VERIFY_RATE:-n/a}" "$VERIFY_RESULT"
        ((verify_rc == 0)) || sed 's/^/    /' <<<"$verify_out" | head -n 5
        echo "  (the in-memory verify throughput is audit_verify_bench's, printed after this script)"
    else
        echo "  skipped: $VL is not running"
    fi
    echo
fi

# ---------------------------------------------------------------------------------------------
# Summary.

echo "== summary (medians; latencies in us; section 1 $PIN_NOTE) =="
printf '%-18s %7s %10s %10s %10s %10s %7s\n' run clients calls/s p50 p90 p99 errors
for key in ping1 whoami1 status1 nping1 nop1 whoami4 status4 nop4 fsync use1 use4 use16 check1 deny4 check4 nop4b; do
    [[ -n ${R[$key.label]:-} ]] || continue
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
row "fdatasync per record p50 / p99 (us)" "${R[fsync.p50_us]:-n/a}" "-" "/ ${R[fsync.p99_us]:-n/a} on ${R[fsync.fs_type]:-?} (${R[fsync.mount_point]:-?})"
row "  ceiling: records/s (loop; 1 s/p50)" "${CEIL_LOOP:-n/a}" "-" "(1 s/p50: ${CEIL_P50:-n/a})"
if ((!ONLY_NOOP)); then
    row "durable Use calls/s, 1 / 4 / 16 clients" "${R[use1.calls_per_s]:-n/a}" "-" "/ ${R[use4.calls_per_s]:-n/a} / ${R[use16.calls_per_s]:-n/a}"
    row "durable Use p50, 1 / 4 / 16 clients (us)" "${R[use1.p50_us]:-n/a}" "-" "/ ${R[use4.p50_us]:-n/a} / ${R[use16.p50_us]:-n/a}"
    row "durable Use p99, 1 / 4 / 16 clients (us)" "${R[use1.p99_us]:-n/a}" "-" "/ ${R[use4.p99_us]:-n/a} / ${R[use16.p99_us]:-n/a}"
    row "Use calls/s, 16 clients / ceiling" "$(x "$R_U16")" ">= ${TARGET_GROUP_COMMIT}x" "$(verdict "$R_U16" ">=" "$TARGET_GROUP_COMMIT")"
    row "Use calls/s, 1 / 4 clients / ceiling" "$(x "$R_U1")" "-" "/ $(x "$R_U4")"
    row "Check $VL/noop calls/s, 4 clients" "$R_C4" ">= $TARGET_THROUGHPUT_RATIO" "$(verdict "$R_C4" ">=" "$TARGET_THROUGHPUT_RATIO")"
    row "durable record adds p50 / p99 (us)" "$D_P50" "-" "/ $D_P99 (Use - Check, 1 client)"
    row "verify of this run's log (records/s)" "${VERIFY_RATE:-n/a}" "-" "${VERIFY_RECORDS:-?} records, $VERIFY_RESULT"
fi
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
