#!/usr/bin/env bash
# Runs the pinned secretlint of package-lock.json (with its recommended rule preset) for the
# side-by-side figures of bench/scan_bench, installed with `npm ci` into a cache folder (never
# into the source tree, never shipped):
#
#   bench/secretlint/run.sh [--format unix] GLOB... > REPORT
#
# It prints secretlint's report on stdout (findings are masked by secretlint; the bench
# reads only their positions). Cache: $CODEX_VAULT_NPM_CACHE/secretlint, else
# ~/.cache/codex-vault/npm/secretlint; reinstalled when the lockfile changes. Exits 77 with the
# reason on stderr when node or npm is missing or the registry cannot be reached, so the bench
# says so and leaves the figure out instead of inventing one. Otherwise secretlint's own status:
# 0 (nothing found) or 1 (findings), anything else an error.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[[ $# -ge 1 ]] || { echo "usage: run.sh GLOB..." >&2; exit 2; }

# shellcheck source=scripts/npm-cache.sh
. "$here/../../scripts/npm-cache.sh"
npm_cache_install secretlint/run.sh "$here" secretlint
cache=$NPM_CACHE_DIR
cp "$here/secretlintrc.json" "$cache/.secretlintrc.json"
cd "$cache"
# --maskSecrets: a message never holds a value (the caller picks the format, e.g. --format unix).
exec node "$cache/node_modules/secretlint/bin/secretlint.js" --secretlintrc "$cache/.secretlintrc.json" \
    --maskSecrets "$@"
