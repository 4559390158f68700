#!/usr/bin/env bash
# Injection benchmark (the injection part of `make bench`): a private dbus-daemon, the real
# codex-vaultd with its eBPF monitor (root), a throw-away founder key, a secret `demo` and a
# `secret:demo:inject` grant; then build/bench/inject_bench measures Inject beside Check, `vaultctl
# exec -- true` beside `true` and `env X=Y true`, and masking throughput through vaultctl exec.
#
#   scripts/inject-bench.sh BUILD_DIR      (BENCH_RUNS, BENCH_CALLS, BENCH_MIB override the sizes)
#
# The state folder is in $BENCH_STATE_PARENT (default: $TMPDIR or /tmp); each Inject waits for
# one fdatasync of its decision record, free on tmpfs. The script says which.
set -euo pipefail
export LC_ALL=C

BUILD_DIR=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAULTD=$BUILD_DIR/codex-vaultd
VAULTCTL=$BUILD_DIR/vaultctl
BENCH=$BUILD_DIR/bench/inject_bench
# shellcheck source=scripts/bench-scratch.sh
. "$ROOT/scripts/bench-scratch.sh"
bench_scratch inject-bench "the eBPF monitor needs CAP_BPF and CAP_PERFMON" "$VAULTD" "$VAULTCTL" "$BENCH"

echo "founder_uid = $(id -u)" >"$TMP/codex-vaultd.toml"
mkdir -m 0755 "$TMP/policy"
dbus-daemon --config-file="$ROOT/units/dev-bus.conf" --address="unix:path=$TMP/bus" --print-address --nofork \
    >"$TMP/bus.addr" 2>"$TMP/bus.log" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s $TMP/bus.addr ]] && break; sleep 0.1; done
ADDR=$(head -n 1 "$TMP/bus.addr")
"$VAULTD" --bus "$ADDR" --state-dir "$TMP/state" --config "$TMP/codex-vaultd.toml" --policy-dir "$TMP/policy" \
    2>"$TMP/vaultd.log" &
PIDS+=($!)
for _ in $(seq 100); do "$VAULTCTL" --bus "$ADDR" status >/dev/null 2>&1 && break; sleep 0.1; done
if ! "$VAULTCTL" --bus "$ADDR" status --json | grep -q recording; then
    echo "inject-bench: skipped: the eBPF monitor is not recording here"
    exit 0
fi
founder() { "$VAULTCTL" --bus "$ADDR" --founder-key "$TMP/founder.key" --passphrase-fd 3 "$@" 3< <(printf bench-pass); }
founder init >/dev/null
printf 'sk-bench-%s' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" | founder secret put demo >/dev/null
founder grant issue --principal "uid=$(id -u)" --cap secret:demo:inject --ttl 1h >/dev/null

fs=$(stat -f -c %T "$STATE_PARENT")
echo "state folder on $fs$([[ $fs == tmpfs ]] && echo ': the decision record fdatasync costs nothing here'); load: $(cut -d' ' -f1-3 /proc/loadavg)"
"$BENCH" --bus "$ADDR" --vaultctl "$VAULTCTL" --secret demo --calls "${BENCH_CALLS:-200}" --runs "${BENCH_RUNS:-20}" \
    --mib "${BENCH_MIB:-1024}"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
