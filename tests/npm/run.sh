#!/usr/bin/env bash
# Runs a script of tests/npm with the pinned npm clients of package-lock.json, installed with
# `npm ci` into a cache folder (never into the source tree, never shipped):
#
#   tests/npm/run.sh SCRIPT.mjs [ARGS...]
#
# Cache: $CODEX_VAULT_NPM_CACHE, else ~/.cache/codex-vault/npm. Reinstalled when the lockfile
# changes. Exits 77 with the reason on stderr when node or npm is missing or the registry cannot
# be reached, so the caller can skip rather than fail.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
script=${1:?usage: run.sh SCRIPT.mjs [ARGS...]}
shift

command -v node >/dev/null || { echo "run.sh: node is not installed" >&2; exit 77; }
command -v npm >/dev/null || { echo "run.sh: npm is not installed" >&2; exit 77; }

cache=${CODEX_VAULT_NPM_CACHE:-${HOME:-/root}/.cache/codex-vault/npm}
mkdir -p "$cache"
lock_hash=$(sha256sum "$here/package-lock.json" | cut -d' ' -f1)
if [[ ! -f "$cache/.installed" || $(cat "$cache/.installed") != "$lock_hash" ]]; then
    cp "$here/package.json" "$here/package-lock.json" "$cache/"
    rm -f "$cache/.installed"
    if ! (cd "$cache" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >"$cache/npm-ci.log" 2>&1); then
        echo "run.sh: npm ci failed (registry unreachable?): $(tail -n 3 "$cache/npm-ci.log" | tr '\n' ' ')" >&2
        exit 77
    fi
    echo "$lock_hash" >"$cache/.installed"
fi
cp "$here/$script" "$cache/$script"
exec node "$cache/$script" "$@"
