#!/usr/bin/env bash
# Provider mediation benchmark (the mediation part of `make bench`): a private dbus-daemon, the
# real codex-vaultd with a throw-away founder key, a secret and a provider "bench" pointing at an
# HTTPS server on 127.0.0.1 that build/bench/mediation_bench runs itself with a per-run CA; then
# mediation_bench measures mediated against direct in the same run, and proxy_bench the same through
# `vaultctl proxy`.
#
#   scripts/mediation-bench.sh BUILD_DIR
#
# The state folder is in $BENCH_STATE_PARENT (default: $TMPDIR or /tmp): on tmpfs the durable
# decision record's fdatasync costs nothing, and the figures are the mediation's own cost; on a
# disk each Request also waits for one fdatasync (the decision record is durable before any
# connection is made). The script says which.
#
# For profiling: BENCH_ONLY=latency|throughput|rss runs that figure alone (no proxy_bench),
# BENCH_ONLY=proxy only proxy_bench; BENCH_PID_FILE names a file the daemon's pid is written to.
set -euo pipefail
export LC_ALL=C

BUILD_DIR=$(cd "${1:?usage: $0 BUILD_DIR}" && pwd)
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VAULTD=${BENCH_VAULTD:-$BUILD_DIR/codex-vaultd}
VAULTCTL=$BUILD_DIR/vaultctl
BENCH=$BUILD_DIR/bench/mediation_bench
# shellcheck source=scripts/bench-scratch.sh
. "$ROOT/scripts/bench-scratch.sh"
bench_scratch mediation-bench "policy and CA files must be root-owned" "$VAULTD" "$VAULTCTL" "$BENCH"

# The per-run CA and the server's certificate.
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$TMP/server.ext"
# shellcheck disable=SC2086
{
    openssl req -x509 $ec -keyout "$TMP/ca.key" -out "$TMP/ca.pem" -days 1 -subj /CN=cv-bench-ca &&
        openssl req $ec -keyout "$TMP/server.key" -out "$TMP/server.csr" -subj /CN=127.0.0.1 &&
        openssl x509 -req -in "$TMP/server.csr" -CA "$TMP/ca.pem" -CAkey "$TMP/ca.key" -CAcreateserial \
            -out "$TMP/server.pem" -days 1 -extfile "$TMP/server.ext"
} >/dev/null 2>&1 || { echo "mediation-bench: openssl could not make the test CA" >&2; exit 1; }
chmod 0644 "$TMP/ca.pem"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

mkdir -m 0755 "$TMP/policy"
cat >"$TMP/policy/50-bench.toml" <<TOML
version = 1
[providers.bench]
origin = "https://127.0.0.1:$PORT"
allow = ["GET /v1/*"]
secret = "bench-key"
inject = { header = "Authorization", template = "Bearer {secret}" }
ca_file = "$TMP/ca.pem"
allow_private_address = true
[principals.me]
uid = $(id -u)
[grants.me-bench]
principal = "me"
capability = "provider:bench:request"
requests = ["GET /v1/*"]
TOML
chmod 0644 "$TMP/policy/50-bench.toml"
echo "founder_uid = $(id -u)" >"$TMP/codex-vaultd.toml"

dbus-daemon --config-file="$ROOT/units/dev-bus.conf" --address="unix:path=$TMP/bus" --print-address --nofork \
    >"$TMP/bus.addr" 2>"$TMP/bus.log" &
PIDS+=($!)
for _ in $(seq 50); do [[ -s $TMP/bus.addr ]] && break; sleep 0.1; done
ADDR=$(head -n 1 "$TMP/bus.addr")
"$VAULTD" --bus "$ADDR" --state-dir "$TMP/state" --config "$TMP/codex-vaultd.toml" --policy-dir "$TMP/policy" \
    2>"$TMP/vaultd.log" &
VAULT_PID=$!
PIDS+=("$VAULT_PID")
for _ in $(seq 100); do "$VAULTCTL" --bus "$ADDR" status >/dev/null 2>&1 && break; sleep 0.1; done
founder() { "$VAULTCTL" --bus "$ADDR" --founder-key "$TMP/founder.key" --passphrase-fd 3 "$@" 3< <(printf bench-pass); }
founder init >/dev/null
printf 'sk-bench-%s' "$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')" | founder secret put bench-key >/dev/null

[[ -n ${BENCH_PID_FILE:-} ]] && echo "$VAULT_PID" >"$BENCH_PID_FILE"
ONLY=${BENCH_ONLY:-}
fs=$(stat -f -c %T "$STATE_PARENT")
echo "state folder on $fs$([[ $fs == tmpfs ]] && echo ': the decision record fdatasync costs nothing here')"
if [[ $ONLY != proxy ]]; then
    "$BENCH" --bus "$ADDR" --port "$PORT" --cert "$TMP/server.pem" --key "$TMP/server.key" --ca "$TMP/ca.pem" \
        --daemon-pid "$VAULT_PID" --seconds "${BENCH_SECONDS:-3}" ${ONLY:+--only "$ONLY"}
fi
# What the disk takes of the added latency: one Request waits for one fdatasync of its decision
# record (shared by group commit), measured here beside the figures above, in a folder on the
# same file system as the daemon's state.
if [[ -z $ONLY || $ONLY == latency ]] && [[ -x $BUILD_DIR/bench/fdatasync_bench ]]; then
    mkdir -p "$TMP/fdatasync"
    echo "the decision record's fdatasync on this file system (part of the added latency, not avoidable):"
    "$BUILD_DIR/bench/fdatasync_bench" --dir "$TMP/fdatasync" --seconds 1 | sed -n 's/^  */  /;2,$p'
fi
[[ -z $ONLY || $ONLY == proxy ]] || exit 0
# The same provider through `vaultctl proxy` (what `vaultctl run` starts) against direct.
echo
"$BUILD_DIR/bench/proxy_bench" --bus "$ADDR" --port "$PORT" --cert "$TMP/server.pem" --key "$TMP/server.key" \
    --ca "$TMP/ca.pem" --seconds "${BENCH_SECONDS:-3}"
