#!/usr/bin/env bash
# Installs the Debian 12 packages needed to build, test, run, lint, package and run the e2e
# tests of Codex Vault. Only apt is used; nothing is downloaded from anywhere else.
#
#   packaging/install-deps.sh               install whatever is missing (apt-get update first)
#   packaging/install-deps.sh --if-missing  same, but exit 0 at once (quietly) when nothing is missing
#
# Without root, it only reports what is missing (exit 1). Safe to run repeatedly, without a terminal.
set -euo pipefail

PACKAGES=(
    # build
    build-essential g++ make pkg-config
    libsystemd-dev libsodium-dev libseccomp-dev libcap-dev
    libtomlplusplus-dev nlohmann-json3-dev libcli11-dev libcurl4-openssl-dev libvectorscan-dev
    libssl-dev # the egress engine calls OpenSSL beside libcurl (daemon/egress/tls_read_ahead.*)
    libpcre2-dev # the ingest scanner's second stage (lib/scan)
    # eBPF programs (bpf/)
    libbpf-dev bpftool clang llvm
    # libFuzzer for `make fuzz` (clang only recommends it)
    libclang-rt-14-dev
    # tests, `make run`, benchmarks
    libcriterion-dev dbus-daemon dbus util-linux openssl
    # the egress tests' local HTTPS server (tests/unit/egress/)
    libmicrohttpd-dev
    # the HTTP/2 egress tests' server, nghttpd (tests/unit/egress/test_egress_http2.cpp)
    nghttp2-server
    # the audit ordering test traces the daemon (tests/integration/test_audit_ordering.cpp)
    strace
    # lint
    clang-format clang-tidy cppcheck
    # packaging and e2e
    debhelper rpm rpmlint lintian systemd-container debootstrap git
    # rpmbuild's -debuginfo split, which strips the RPM's binaries (find-debuginfo, eu-strip)
    debugedit elfutils
)

usage()
{
    echo "usage: $0 [--if-missing]" >&2
    exit 2
}

if_missing=0
case "$#:${1-}" in
0:) ;;
1:--if-missing) if_missing=1 ;;
1:-h | 1:--help)
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
*) usage ;;
esac

missing=()
for pkg in "${PACKAGES[@]}"; do
    # "install ok installed" (or "hold ok installed"); anything else, including "unknown", is missing.
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    if [[ "$status" != *" ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if ((${#missing[@]} == 0)); then
    if ((if_missing == 0)); then
        echo "install-deps: all ${#PACKAGES[@]} packages are installed"
    fi
    exit 0
fi

if ((EUID != 0)); then
    echo "install-deps: missing Debian packages: ${missing[*]}" >&2
    echo "install-deps: not root, so nothing was installed; run as root:  sudo $0" >&2
    echo "install-deps: (or: sudo apt-get install --no-install-recommends ${missing[*]})" >&2
    exit 1
fi

echo "install-deps: installing ${#missing[@]} missing package(s): ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update
apt-get install -y --no-install-recommends "${missing[@]}" </dev/null
echo "install-deps: done"
