# Sourced by the scripts that run pinned npm clients (tests/npm/run.sh, bench/secretlint/run.sh):
# installs a package-lock.json with `npm ci` into a cache folder, never into the source tree.
#
#   npm_cache_install WHO LOCK_DIR SUBDIR     sets NPM_CACHE_DIR
#
# The cache is $CODEX_VAULT_NPM_CACHE/SUBDIR, else ~/.cache/codex-vault/npm/SUBDIR (SUBDIR may be
# empty), reinstalled when the lockfile changes. Exits 77 with the reason on stderr (prefixed
# with WHO) when node or npm is missing or the registry cannot be reached, so the caller skips or
# leaves a figure out rather than failing or inventing one.

# shellcheck shell=bash
npm_cache_install()
{
    local who=$1 lock_dir=$2 subdir=$3 lock_hash
    command -v node >/dev/null || {
        echo "$who: node is not installed" >&2
        exit 77
    }
    command -v npm >/dev/null || {
        echo "$who: npm is not installed" >&2
        exit 77
    }
    NPM_CACHE_DIR=${CODEX_VAULT_NPM_CACHE:-${HOME:-/root}/.cache/codex-vault/npm}${subdir:+/$subdir}
    mkdir -p "$NPM_CACHE_DIR"
    lock_hash=$(sha256sum "$lock_dir/package-lock.json" | cut -d' ' -f1)
    if [[ ! -f "$NPM_CACHE_DIR/.installed" || $(cat "$NPM_CACHE_DIR/.installed") != "$lock_hash" ]]; then
        cp "$lock_dir/package.json" "$lock_dir/package-lock.json" "$NPM_CACHE_DIR/"
        rm -f "$NPM_CACHE_DIR/.installed"
        if ! (cd "$NPM_CACHE_DIR" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error \
            >"$NPM_CACHE_DIR/npm-ci.log" 2>&1); then
            echo "$who: npm ci failed (registry unreachable?): $(tail -n 3 "$NPM_CACHE_DIR/npm-ci.log" | tr '\n' ' ')" >&2
            exit 77
        fi
        echo "$lock_hash" >"$NPM_CACHE_DIR/.installed"
    fi
}
