#!/usr/bin/env bash
# Builds the Debian package (the body of `make deb`).
#
#   scripts/package-deb.sh [OUT_DIR]     OUT_DIR defaults to build/packages
#
# The working tree stays untouched: the source (tracked and untracked files that git does not
# ignore; without git, everything but build/ and .dev/) is copied to a scratch folder,
# packaging/debian becomes debian/ there, and dpkg-buildpackage -us -uc -b builds it from clean.
# The .deb files land in OUT_DIR; then lintian runs on the result and any error or warning
# fails the script (LINTIAN=0 skips it).
#
# Needs: dpkg-dev, debhelper and the Build-Depends of packaging/debian/control
# (packaging/install-deps.sh installs all of them), and lintian.
set -euo pipefail

die()
{
    echo "package-deb: $*" >&2
    exit 1
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/build/packages}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

command -v dpkg-buildpackage >/dev/null || die "dpkg-buildpackage is missing (apt-get install dpkg-dev debhelper)"

# The package version must be the daemon's version.
version=$(sed -n 's/.*kVersion = "\([^"]*\)".*/\1/p' "$ROOT/daemon/version.hpp")
changelog_version=$(dpkg-parsechangelog -l "$ROOT/packaging/debian/changelog" -S Version)
[[ -n $version ]] || die "cannot read the version from daemon/version.hpp"
[[ $version == "$changelog_version" ]] ||
    die "packaging/debian/changelog is at $changelog_version but daemon/version.hpp says $version: add a changelog entry (dch -v $version)"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/codex-vault-deb.XXXXXX")
cleanup()
{
    rm -rf "$WORK"
}
trap cleanup EXIT

SRC=$WORK/codex-vault-$version
mkdir -p "$SRC"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    # Tracked files plus untracked ones that are not ignored: what a fresh checkout of this
    # working tree would hold, without build output. Deleted-but-tracked files are skipped.
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -xf - -C "$SRC"
else
    (cd "$ROOT" && tar --exclude=./build --exclude=./.dev --exclude=./.git -cf - .) | tar -xf - -C "$SRC"
fi
rm -rf "$SRC/debian"
cp -a "$ROOT/packaging/debian" "$SRC/debian"

echo "package-deb: building codex-vault $version in $SRC"
(cd "$SRC" && dpkg-buildpackage -us -uc -b) >"$WORK/build.log" 2>&1 || {
    tail -n 60 "$WORK/build.log" >&2
    die "dpkg-buildpackage failed (last lines above)"
}

shopt -s nullglob
debs=("$WORK"/*.deb)
((${#debs[@]} > 0)) || die "dpkg-buildpackage produced no .deb"
for deb in "${debs[@]}"; do
    cp "$deb" "$OUT/"
done
changes=("$WORK"/*.changes)
main_deb=$OUT/codex-vault_${version}_$(dpkg-architecture -qDEB_HOST_ARCH).deb
[[ -f $main_deb ]] || die "expected $main_deb"
echo "package-deb: wrote ${debs[*]##*/} to $OUT"

if [[ ${LINTIAN:-1} != 0 ]]; then
    command -v lintian >/dev/null || die "lintian is missing (apt-get install lintian), or set LINTIAN=0"
    # The .changes covers the .deb(s) and the .buildinfo; --fail-on warning makes any
    # error or warning fatal. Info and pedantic tags are shown, not fatal.
    echo "package-deb: lintian ${changes[0]##*/}"
    lintian --display-info --fail-on error,warning "${changes[0]}"
    echo "package-deb: lintian: no errors or warnings"
fi
