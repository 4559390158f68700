#!/usr/bin/env bash
# Builds the RPM package (the body of `make rpm`).
#
#   scripts/package-rpm.sh [OUT_DIR]     OUT_DIR defaults to build/packages
#
# Makes codex-vault-VERSION.tar.gz from the working tree (tracked and untracked files that git
# does not ignore; without git, everything but build/ and .dev/), then runs
# rpmbuild -bb packaging/rpm/codex-vault.spec in a scratch _topdir and copies the binary RPMs
# (codex-vault, and its -debuginfo and -debugsource, as on Fedora) to OUT_DIR. Then rpmlint runs
# on the spec and the codex-vault RPM when it is installed (RPMLINT=0 skips it); an rpmlint error
# fails the script, warnings are shown.
#
# BuildRequires use Fedora's package names, which a Debian host's (empty) rpm database cannot
# satisfy, so rpmbuild runs with --nodeps there (RPM_NODEPS=0 turns that off on Fedora/RHEL,
# where the build dependencies are installed with dnf builddep).
set -euo pipefail

die()
{
    echo "package-rpm: $*" >&2
    exit 1
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT=${1:-$ROOT/build/packages}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
SPEC=$ROOT/packaging/rpm/codex-vault.spec

command -v rpmbuild >/dev/null || die "rpmbuild is missing (apt-get install rpm)"

version=$(sed -n 's/.*kVersion = "\([^"]*\)".*/\1/p' "$ROOT/daemon/version.hpp")
spec_version=$(sed -n 's/^Version:[[:space:]]*//p' "$SPEC")
[[ -n $version ]] || die "cannot read the version from daemon/version.hpp"
[[ $version == "$spec_version" ]] ||
    die "packaging/rpm/codex-vault.spec is at $spec_version but daemon/version.hpp says $version: update Version: and %changelog"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/codex-vault-rpm.XXXXXX")
cleanup()
{
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$WORK"/{SOURCES,SPECS,BUILD,RPMS,SRPMS,stage}

# Source tarball with a codex-vault-VERSION/ prefix, as %autosetup expects.
STAGE=$WORK/stage/codex-vault-$version
mkdir -p "$STAGE"
if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    (cd "$ROOT" && git ls-files -z --cached --others --exclude-standard |
        while IFS= read -r -d '' f; do [[ -e $f || -L $f ]] && printf '%s\0' "$f"; done |
        tar --null -T - -cf -) | tar -xf - -C "$STAGE"
else
    (cd "$ROOT" && tar --exclude=./build --exclude=./.dev --exclude=./.git -cf - .) | tar -xf - -C "$STAGE"
fi
tar -C "$WORK/stage" --owner=0 --group=0 --numeric-owner -czf "$WORK/SOURCES/codex-vault-$version.tar.gz" \
    "codex-vault-$version"
cp "$ROOT/units/codex-vault.sysusers.conf" "$WORK/SOURCES/"
cp "$SPEC" "$WORK/SPECS/"

nodeps=()
if [[ ${RPM_NODEPS:-auto} == 1 ]] || { [[ ${RPM_NODEPS:-auto} == auto ]] && ! rpm -q rpm >/dev/null 2>&1; }; then
    nodeps=(--nodeps)
fi

echo "package-rpm: building codex-vault $version in $WORK"
# Debian's rpm runs brp-compress (a #!/bin/sh script that uses bash's read -d) under dash, where
# it fails quietly and leaves the man pages uncompressed; run it with bash there. Elsewhere the
# distribution's %__os_install_post is left alone.
defines=(--define "_topdir $WORK")
brp=/usr/lib/rpm/brp-compress
if [[ -f $brp ]] && head -n 1 "$brp" | grep -qx '#!/bin/sh' && grep -q 'read -r -d' "$brp" &&
    [[ $(readlink -f /bin/sh) != */bash ]]; then
    post=$(rpm --eval '%{__os_install_post}' | sed -e '/^[[:space:]]*$/d' -e "s|^[[:space:]]*$brp|bash $brp|" | paste -sd ';')
    defines+=(--define "__os_install_post $post")
fi
# Fedora's redhat-rpm-config splits the debug information into -debuginfo and -debugsource
# packages (find-debuginfo, which strips the binaries with eu-strip); Debian's rpm has no such
# default and would ship the binaries unstripped. Where the host's rpm does not enable debug
# packages, the same three macros as Fedora's are loaded.
loads=()
if [[ -z $(rpm --eval '%{?_enable_debug_packages}') ]]; then
    command -v find-debuginfo >/dev/null && command -v eu-strip >/dev/null ||
        die "find-debuginfo or eu-strip is missing (apt-get install debugedit elfutils)"
    cat >"$WORK/debuginfo.macros" <<'EOF'
%_enable_debug_packages 1
%_debugsource_packages 1
%install %{?_enable_debug_packages:%{?buildsubdir:%{debug_package}}}\
%%install\
%{nil}
EOF
    loads=(--load "$WORK/debuginfo.macros")
fi
rpmbuild -bb "${nodeps[@]}" "${loads[@]}" "${defines[@]}" "$WORK/SPECS/codex-vault.spec" >"$WORK/build.log" 2>&1 || {
    tail -n 60 "$WORK/build.log" >&2
    die "rpmbuild failed (last lines above)"
}

shopt -s nullglob
rpms=("$WORK"/RPMS/*/*.rpm)
((${#rpms[@]} > 0)) || die "rpmbuild produced no .rpm"
cp "${rpms[@]}" "$OUT/"
echo "package-rpm: wrote ${rpms[*]##*/} to $OUT"

if [[ ${RPMLINT:-1} != 0 ]]; then
    if ! command -v rpmlint >/dev/null; then
        echo "package-rpm: rpmlint is not installed (apt-get install rpmlint); not linted"
        exit 0
    fi
    echo "package-rpm: rpmlint"
    # rpmlint exits non-zero for errors only (warnings are printed). packaging/rpm/rpmlint.toml
    # sets Fedora's conventions and filters, with a reason each, what cannot apply here. The
    # spec is linted beside Source1, which it reads at parse time.
    cp "$SPEC" "$WORK/SOURCES/"
    # The generated -debuginfo and -debugsource packages are left out (see rpmlint.toml).
    lint_rpms=()
    for rpm in "${rpms[@]}"; do
        [[ $rpm == *-debuginfo-* || $rpm == *-debugsource-* ]] || lint_rpms+=("$rpm")
    done
    rpmlint -c "$ROOT/packaging/rpm/rpmlint.toml" "$WORK/SOURCES/codex-vault.spec" "${lint_rpms[@]}"
fi
