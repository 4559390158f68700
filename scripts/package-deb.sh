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
#
# Environment:
#   DEB_VERSION="V [V2 ...]"
#                   build the package as version V (and V2 ...) instead of the daemon's version
#                   (the default, and what `make deb` does). For test builds such as the
#                   "previous" package of the upgrade test in scripts/e2e.sh (0.1.0~prev1 sorts
#                   before 0.1.0). Only the scratch copy's debian/changelog changes: its newest
#                   entry takes the version and says it is a test build (unless the version is
#                   the daemon's). The tree is copied and compiled once; every further version
#                   repackages the same build, so all the packages of one run hold the same
#                   binaries. Each must be a valid Debian version without a Debian revision
#                   (no '-': the source format is native).
#   LINTIAN=0       skip lintian
#   PREBUILT=DIR    a build folder in which `make all` has just run on this same tree (what
#                   `make check` passes through scripts/e2e.sh). Its objects, libraries and
#                   binaries are copied into the scratch tree with their times, so the package
#                   holds the very binaries the test suites just exercised and make recompiles only
#                   what is out of date. Without it (`make deb`, `make e2e`) the package is
#                   compiled from clean with dpkg-buildflags.
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

# The versions to build: the daemon's by default, or the DEB_VERSION list.
read -r -a versions <<<"${DEB_VERSION:-$version}"
((${#versions[@]} > 0)) || versions=("$version")
for v in "${versions[@]}"; do
    dpkg --validate-version "$v" >/dev/null 2>&1 || die "DEB_VERSION: '$v' is not a valid Debian version"
    [[ $v != *-* ]] || die "DEB_VERSION: '$v' has a Debian revision; the source format is 3.0 (native)"
done

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
cp "$SRC/debian/changelog" "$WORK/changelog.orig"
if [[ -n ${PREBUILT:-} ]]; then
    [[ -x $PREBUILT/codex-vaultd && -x $PREBUILT/vaultctl ]] ||
        die "PREBUILT=$PREBUILT holds no built daemon and vaultctl (run make all first)"
    mkdir -p "$SRC/build/obj"
    # What `make all` needs, not the test and bench objects; cp -p keeps the times make compares.
    for part in lib bpf gen codex-vaultd vaultctl; do
        [[ ! -e $PREBUILT/$part ]] || cp -pR "$PREBUILT/$part" "$SRC/build/"
    done
    for layer in "$PREBUILT"/obj/*; do
        case ${layer##*/} in tests | bench) ;; *) cp -pR "$layer" "$SRC/build/obj/" ;; esac
    done
    # The include farm is symlinks to absolute paths: make it again, pointing into the copy.
    (cd "$SRC" && scripts/layers.sh farm build) || die "cannot make the include farm in $SRC"
    touch "$SRC/build/inc/.stamp"
fi
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)

# Builds version $1 into $WORK/out-$1. The first build compiles; each later one repackages the
# same compiled tree (-nc: no pre-clean; debhelper's build stamp skips the build steps), so the
# packages of one run hold identical binaries and differ only in their version.
build_version()
{
    local v=$1 out=$WORK/out-$1 nc=()
    cp "$WORK/changelog.orig" "$SRC/debian/changelog"
    if [[ $v != "$version" ]]; then
        # The newest changelog entry is what dpkg-buildpackage takes the version from.
        # Renumbering it (rather than adding an entry) keeps the changelog ordered whether V sorts
        # before or after the real version, and the added line says what this build is.
        sed -i -e "1s/^codex-vault ([^)]*)/codex-vault ($v)/" \
            -e "3i\\  * Test build of the $version tree as $v (DEB_VERSION)." \
            "$SRC/debian/changelog"
        [[ $(dpkg-parsechangelog -l "$SRC/debian/changelog" -S Version) == "$v" ]] ||
            die "could not set the version $v in the scratch changelog"
    fi
    # -nc: no pre-clean, which would delete a PREBUILT copy.
    [[ -f $SRC/debian/debhelper-build-stamp || -n ${PREBUILT:-} ]] && nc=(-nc)
    local how=
    [[ -f $SRC/debian/debhelper-build-stamp ]] && how=" (repackaging the same build)"
    [[ -z $how && -n ${PREBUILT:-} ]] && how=" (from the objects in $PREBUILT)"
    echo "package-deb: building codex-vault $v in $SRC$how"
    (cd "$SRC" && dpkg-buildpackage -us -uc -b "${nc[@]}") >"$WORK/build-$v.log" 2>&1 || {
        tail -n 60 "$WORK/build-$v.log" >&2
        die "dpkg-buildpackage failed (last lines above)"
    }
    # dpkg-buildpackage writes next to the source folder: move this version's files aside.
    mkdir -p "$out"
    find "$WORK" -maxdepth 1 -type f \( -name '*.deb' -o -name '*.changes' -o -name '*.buildinfo' \) \
        -exec mv -t "$out" {} +
}

for v in "${versions[@]}"; do
    build_version "$v"
done

shopt -s nullglob
for v in "${versions[@]}"; do
    debs=("$WORK/out-$v"/*.deb)
    ((${#debs[@]} > 0)) || die "dpkg-buildpackage produced no .deb for $v"
    cp "${debs[@]}" "$OUT/"
    # Debian file names leave out the epoch.
    main_deb=$OUT/codex-vault_${v#*:}_$ARCH.deb
    [[ -f $main_deb ]] || die "expected $main_deb"
    echo "package-deb: wrote ${debs[*]##*/} to $OUT"
done

if [[ ${LINTIAN:-1} != 0 ]]; then
    command -v lintian >/dev/null || die "lintian is missing (apt-get install lintian), or set LINTIAN=0"
    for v in "${versions[@]}"; do
        changes=("$WORK/out-$v"/*.changes)
        # The .changes covers the .deb(s) and the .buildinfo; --fail-on warning makes any
        # error or warning fatal. Info and pedantic tags are shown, not fatal.
        echo "package-deb: lintian ${changes[0]##*/}"
        lintian --display-info --fail-on error,warning "${changes[0]}"
    done
    echo "package-deb: lintian: no errors or warnings"
fi
