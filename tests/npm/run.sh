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

# shellcheck source=scripts/npm-cache.sh
. "$here/../../scripts/npm-cache.sh"
npm_cache_install run.sh "$here" ""
cache=$NPM_CACHE_DIR
cp "$here/$script" "$cache/$script"
exec node "$cache/$script" "$@"
