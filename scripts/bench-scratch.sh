# Sourced by the bench scripts that start their own dbus-daemon and codex-vaultd
# (scripts/inject-bench.sh, scripts/mediation-bench.sh): the checks and the scratch folder they share.
#
#   bench_scratch NAME WHY_ROOT TOOL...
#
# Exits 1 naming a TOOL that is not executable; prints "NAME: skipped: needs root (WHY_ROOT)" and
# exits 0 when not root. Otherwise sets TMP (a fresh folder in $BENCH_STATE_PARENT, default $TMPDIR
# or /tmp) and PIDS (empty), and traps EXIT to stop every pid in PIDS, newest first, and remove TMP.

# shellcheck shell=bash
bench_scratch()
{
    local name=$1 why_root=$2 tool
    shift 2
    for tool in "$@"; do
        [[ -x $tool ]] || {
            echo "$name: missing $tool" >&2
            exit 1
        }
    done
    if [[ $(id -u) -ne 0 ]]; then
        echo "$name: skipped: needs root ($why_root)"
        exit 0
    fi
    STATE_PARENT=${BENCH_STATE_PARENT:-${TMPDIR:-/tmp}}
    TMP=$(mktemp -d "$STATE_PARENT/codex-vault-$name.XXXXXX")
    chmod 0755 "$TMP"
    PIDS=()
    trap bench_scratch_cleanup EXIT
}

bench_scratch_cleanup()
{
    local status=$? i
    trap - EXIT
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
        kill -TERM "${PIDS[i]}" 2>/dev/null || true
        wait "${PIDS[i]}" 2>/dev/null || true
    done
    # The audit folder's append-only flag (where the file system has it) would stop rm.
    command -v chattr >/dev/null && chattr -R -a "$TMP" 2>/dev/null
    rm -rf "$TMP"
    exit "$status"
}
