#!/usr/bin/env bash
# End-to-end test on a real systemd with a real system bus (the body of `make e2e`; also the last
# step of `make check`).
#
#   scripts/e2e.sh
#
# 1. Builds two .debs from the working tree with scripts/package-deb.sh, in one run (one compile):
#    the package at the daemon's version (into build/packages, as `make deb` would) and the same
#    build numbered VERSION~prev1 (sorts before VERSION) as the "previous" package for the upgrade
#    test. E2E_DEB and E2E_PREV_DEB name existing ones instead.
# 2. Boots a Debian 12 root file system with systemd-nspawn --ephemeral -b (changes vanish with
#    the container). The root is made once with debootstrap --variant=minbase from the mirror apt
#    already uses, and cached under E2E_CACHE keyed by a hash of its package list (systemd, dbus,
#    and the .deb's runtime Depends, since apt cannot fetch anything inside).
# 3. Inside, as root: installs the .deb, then exercises the unit, the bus policy, activation, the
#    founder flow, a denied caller, reload/restart, the journal's audit lines, the sandbox as the
#    kernel reports it, the credential, stop, remove and purge (each must keep the state: the
#    package reinstalled afterwards still lists the secret).
# 4. Boots a second, fresh container for the upgrade: installs the previous package, creates the
#    founder and a secret (rotated once, so version 2), records the secret listing, the sealed
#    state's checksums and the audit files, then installs the new package with dpkg -i over it.
#    The maintainer scripts must restart the daemon on the new binary (Debian's convention:
#    dh_installsystemd's restart-after-upgrade); the secret must be listed exactly as before, the
#    sealed files unchanged, the audit segments only appended to, and finally
#    `vaultctl audit verify` must verify the whole chain.
#
#    What the upgrade test proves, and what it does not: with the default packages both builds come
#    from the same tree (same binaries, different version numbers), so it proves that the
#    maintainer scripts, the unit's handling across an upgrade and the on-disk state survive a
#    package upgrade. It does not prove that a newer daemon reads an older daemon's on-disk
#    format; for that, point E2E_PREV_DEB at a package built from an older commit or release.
#
# Each step prints PASS or FAIL; the first FAIL ends the run (later steps depend on earlier ones)
# and the script exits 1. Each container is powered off (killed if it hangs) on every exit path.
#
# Needs root, systemd-nspawn (systemd-container), debootstrap, nsenter (util-linux) and dpkg-dev.
# Without systemd-nspawn or debootstrap it says so and exits 1, or 0 when E2E_OPTIONAL=1.
#
# Environment:
#   E2E_OPTIONAL=1       missing tools (or not root) skip the test instead of failing it
#   E2E_DEB=PATH         test this .deb instead of building one
#   E2E_PREBUILT=DIR     package the binaries already built in DIR (PREBUILT in
#                        scripts/package-deb.sh; `make check` passes its build folder, so the
#                        tree is compiled once and the e2e runs the binaries the suites tested)
#   E2E_PREV_DEB=PATH    upgrade from this .deb (default: the tree built as VERSION~prev1); its
#                        version must sort before the tested package's
#   E2E_CACHE=DIR        root file system cache (default /var/cache/codex-vault-e2e)
#   E2E_MIRROR=URL       Debian mirror for debootstrap (default: the one in apt's sources)
#   E2E_KEEP=1           keep the work folder (logs, console output) even when everything passes
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SUITE=bookworm
CACHE=${E2E_CACHE:-/var/cache/codex-vault-e2e}
# The packages the brief asks for, then whatever the .deb depends on (added below).
BASE_PACKAGES=(systemd systemd-sysv dbus libsodium23 libseccomp2 libcap2)
START=$SECONDS

say()
{
    printf 'e2e: %s\n' "$*"
}

skip_or_fail()
{
    if [[ ${E2E_OPTIONAL:-0} == 1 ]]; then
        say "SKIP: $* (E2E_OPTIONAL=1)"
        exit 0
    fi
    say "FAIL: $* (set E2E_OPTIONAL=1 to skip instead)"
    exit 1
}

# --- preconditions -------------------------------------------------------------------------------
((EUID == 0)) || skip_or_fail "needs root (systemd-nspawn, debootstrap)"
command -v systemd-nspawn >/dev/null || skip_or_fail "systemd-nspawn is missing (apt-get install systemd-container)"
command -v debootstrap >/dev/null || skip_or_fail "debootstrap is missing (apt-get install debootstrap)"
command -v nsenter >/dev/null || skip_or_fail "nsenter is missing (apt-get install util-linux)"
command -v dpkg-deb >/dev/null || skip_or_fail "dpkg-deb is missing"

WORK=$(mktemp -d "${TMPDIR:-/tmp}/codex-vault-e2e.XXXXXX")
NSPAWN_PID=
MACHINE=
CPID=
failed=0

# Powers the running container off (kills it if it hangs) and removes what a killed nspawn
# leaves behind. Does nothing when no container runs.
stop_container()
{
    if [[ -n $NSPAWN_PID ]] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
        # SIGTERM makes nspawn ask the container's systemd to power off.
        kill -TERM "$NSPAWN_PID" 2>/dev/null
        for _ in $(seq 1 100); do
            kill -0 "$NSPAWN_PID" 2>/dev/null || break
            sleep 0.2
        done
        if kill -0 "$NSPAWN_PID" 2>/dev/null; then
            say "container did not power off within 20 s; killing it"
            kill -KILL "$NSPAWN_PID" 2>/dev/null
            wait "$NSPAWN_PID" 2>/dev/null
        fi
        wait "$NSPAWN_PID" 2>/dev/null
    fi
    # A killed nspawn leaves its ephemeral copy and its propagation folder behind.
    if [[ -n $MACHINE ]]; then
        rm -rf "/run/systemd/nspawn/propagate/$MACHINE" 2>/dev/null
    fi
    if [[ -n ${ROOTFS:-} ]]; then
        find "$(dirname "$ROOTFS")" -maxdepth 1 -name ".#machine.$(basename "$ROOTFS")*" \
            -exec rm -rf {} + 2>/dev/null
    fi
    NSPAWN_PID=
    MACHINE=
    CPID=
    return 0
}

teardown()
{
    local rc=$?
    set +e
    stop_container
    if ((rc != 0 || failed)) || [[ ${E2E_KEEP:-0} == 1 ]]; then
        say "logs kept in $WORK"
    else
        rm -rf "$WORK"
    fi
    exit "$rc"
}
trap teardown EXIT
trap 'exit 130' INT TERM

# --- the packages ----------------------------------------------------------------------------------
version=$(sed -n 's/.*kVersion = "\([^"]*\)".*/\1/p' "$ROOT/daemon/version.hpp")
ARCH=$(dpkg-architecture -qDEB_HOST_ARCH)
abs_deb()
{
    [[ -f $1 ]] || {
        say "FAIL: $2=$1 does not exist"
        exit 1
    }
    echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
}
DEB=
PREV_DEB=
[[ -z ${E2E_DEB:-} ]] || DEB=$(abs_deb "$E2E_DEB" E2E_DEB)
[[ -z ${E2E_PREV_DEB:-} ]] || PREV_DEB=$(abs_deb "$E2E_PREV_DEB" E2E_PREV_DEB)
build_versions=()
[[ -n $PREV_DEB ]] || build_versions+=("$version~prev1")
[[ -n $DEB ]] || build_versions+=("$version")
if ((${#build_versions[@]} > 0)); then
    say "building ${build_versions[*]} (scripts/package-deb.sh; lintian is left to 'make deb')"
    # noautodbgsym: the test installs no debug symbols, and compressing them was most of the
    # package step's time (`make deb` still builds them).
    DEB_VERSION="${build_versions[*]}" LINTIAN=0 PREBUILT=${E2E_PREBUILT:-} \
        DEB_BUILD_OPTIONS="${DEB_BUILD_OPTIONS:+$DEB_BUILD_OPTIONS }noautodbgsym" \
        "$ROOT/scripts/package-deb.sh" "$WORK/packages" \
        >"$WORK/package-deb.log" 2>&1 || {
        tail -n 40 "$WORK/package-deb.log" >&2
        say "FAIL: package build (log: $WORK/package-deb.log)"
        exit 1
    }
    [[ -n $PREV_DEB ]] || PREV_DEB=$WORK/packages/codex-vault_${version}~prev1_$ARCH.deb
    if [[ -z $DEB ]]; then
        # The tested package where `make deb` puts it (an older build's dbgsym beside it would
        # no longer match, so it goes); the ~prev1 test build stays in the work folder.
        mkdir -p "$ROOT/build/packages"
        rm -f "$ROOT/build/packages/codex-vault-dbgsym_${version}_$ARCH.deb"
        cp "$WORK/packages/codex-vault_${version}_$ARCH.deb" "$ROOT/build/packages/"
        DEB=$ROOT/build/packages/codex-vault_${version}_$ARCH.deb
    fi
fi
NEW_VERSION=$(dpkg-deb -f "$DEB" Version)
PREV_VERSION=$(dpkg-deb -f "$PREV_DEB" Version)
dpkg --compare-versions "$PREV_VERSION" lt "$NEW_VERSION" || {
    say "FAIL: the previous package ($PREV_VERSION, $PREV_DEB) does not sort before $NEW_VERSION ($DEB)"
    exit 1
}
say "package: $DEB ($NEW_VERSION; $((SECONDS - START)) s)"
say "previous package for the upgrade: $PREV_DEB ($PREV_VERSION)"

# Runtime dependencies of both .debs: the first alternative of each, without versions.
mapfile -t DEB_DEPENDS < <({
    dpkg-deb -f "$DEB" Depends
    echo ,
    dpkg-deb -f "$PREV_DEB" Depends
} | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' -e 's/:any//' -e 's/[[:space:]]//g' | grep -v '^$')
mapfile -t PACKAGES < <(printf '%s\n' "${BASE_PACKAGES[@]}" "${DEB_DEPENDS[@]}" | sort -u)

# --- the cached root file system -------------------------------------------------------------------
apt_mirror()
{
    # deb822 sources first (Debian 12's default), then one-line sources.list entries.
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [[ -f $f ]] || continue
        uri=$(awk -v suite="$SUITE" '
            BEGIN { RS = ""; FS = "\n" }
            {
                uris = ""; ok = 0; enabled = 1
                for (i = 1; i <= NF; i++) {
                    if ($i ~ /^URIs:/) { uris = $i; sub(/^URIs:[ \t]*/, "", uris) }
                    if ($i ~ /^Suites:/) { s = " " $i " "; if (s ~ (" " suite " ")) ok = 1 }
                    if ($i ~ /^Enabled:[ \t]*no/) enabled = 0
                }
                if (ok && enabled && uris != "") { split(uris, u, /[ \t]+/); print u[1]; exit }
            }' "$f")
        [[ -n $uri ]] && {
            echo "$uri"
            return
        }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [[ -f $f ]] || continue
        uri=$(awk -v suite="$SUITE" '$1 == "deb" {
                i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                if ($(i + 1) == suite) { print $i; exit }
            }' "$f")
        [[ -n $uri ]] && {
            echo "$uri"
            return
        }
    done
    echo "http://deb.debian.org/debian"
}

MIRROR=${E2E_MIRROR:-$(apt_mirror)}
KEY=$(printf '%s\n' "format 1" "$SUITE" minbase "${PACKAGES[@]}" | sha256sum | cut -c1-16)
ROOTFS=$CACHE/rootfs-$SUITE-$KEY
mkdir -p "$CACHE"
chmod 0700 "$CACHE"
# One e2e run at a time: they share the cache, and the cleanup of a killed container's leftovers
# must not remove another run's live copy.
exec {LOCK_FD}>"$CACHE/lock"
flock -w 900 "$LOCK_FD" || {
    say "FAIL: another e2e run holds $CACHE/lock"
    exit 1
}

if [[ ! -f $ROOTFS/.codex-vault-e2e-complete ]]; then
    say "debootstrap $SUITE (minbase + ${PACKAGES[*]}) from $MIRROR into $ROOTFS"
    rm -rf "$ROOTFS" "$ROOTFS.tmp"
    include=$(
        IFS=,
        echo "${PACKAGES[*]}"
    )
    if ! debootstrap --variant=minbase --include="$include" "$SUITE" "$ROOTFS.tmp" "$MIRROR" \
        >"$WORK/debootstrap.log" 2>&1; then
        tail -n 30 "$WORK/debootstrap.log" >&2
        rm -rf "$ROOTFS.tmp"
        say "FAIL: debootstrap (log: $WORK/debootstrap.log)"
        exit 1
    fi
    rm -f "$ROOTFS.tmp"/var/cache/apt/archives/*.deb
    # No machine-id: each ephemeral boot makes its own. No first-boot questions.
    : >"$ROOTFS.tmp/etc/machine-id"
    printf '%s\n' "${PACKAGES[@]}" >"$ROOTFS.tmp/.codex-vault-e2e-packages"
    touch "$ROOTFS.tmp/.codex-vault-e2e-complete"
    mv "$ROOTFS.tmp" "$ROOTFS"
    say "root file system cached ($((SECONDS - START)) s)"
else
    say "cached root file system $ROOTFS"
fi
# Leftovers of a container that was killed (the lock says no other run is using them).
find "$CACHE" -maxdepth 1 -name '.#machine.*' -exec rm -rf {} + 2>/dev/null || true

# --- boot ------------------------------------------------------------------------------------------
# Runs a command inside the container, as root, with a clean environment (nothing of ours, such
# as CODEX_VAULT_BUS, leaks in), and gives up on it after 90 s.
in_ct()
{
    timeout 90 nsenter -t "$CPID" -a -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 "$@"
}
sh_ct()
{
    in_ct /bin/sh -c "$1"
}

# boot_container TAG LABEL: boots a fresh ephemeral container from the cached root and waits for
# its systemd to finish booting; its console goes to $WORK/console-TAG.log. Sets NSPAWN_PID,
# MACHINE and CPID; stop_container (also run by the EXIT trap) powers it off. Exits the script on
# failure.
boot_container()
{
    local label=$2 console=$WORK/console-$1.log child state
    MACHINE=cv-e2e-$$-$RANDOM
    CPID=
    local nspawn_args=(-D "$ROOTFS" --ephemeral -b --register=no --machine="$MACHINE" --console=read-only
        # nspawn's own seccomp filter refuses memfd_secret(2) (systemd 252); let the daemon use it
        # where the host kernel has it. bpf(2) and the capabilities the unit grants for the eBPF
        # monitor's load are outside nspawn's default set too.
        --system-call-filter='bpf memfd_secret' --capability=CAP_BPF,CAP_PERFMON)
    # Without systemd as the host's init there is no manager to create a scope: stay in our cgroup.
    [[ -d /run/systemd/system ]] || nspawn_args+=(--keep-unit)
    say "booting $MACHINE ($label)"
    systemd-nspawn "${nspawn_args[@]}" -- systemd.firstboot=off </dev/null >"$console" 2>&1 &
    NSPAWN_PID=$!

    # The container's PID 1 is the nspawn process' child once it runs systemd.
    for _ in $(seq 1 300); do
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        for child in $(pgrep -P "$NSPAWN_PID" || true); do
            if [[ $(cat "/proc/$child/comm" 2>/dev/null) == systemd ]]; then
                CPID=$child
            fi
        done
        [[ -n $CPID ]] && break
        sleep 0.1
    done
    if [[ -z $CPID ]]; then
        tail -n 30 "$console" >&2
        say "FAIL: the container's systemd did not start (console: $console)"
        exit 1
    fi

    # Right after PID 1 starts, systemctl cannot reach it yet and fails at once: retry until it
    # answers, then --wait for the boot to finish.
    state=
    for _ in $(seq 1 240); do
        state=$(timeout 120 nsenter -t "$CPID" -a -- systemctl is-system-running --wait 2>/dev/null || true)
        [[ $state == running || $state == degraded ]] && break
        kill -0 "$NSPAWN_PID" 2>/dev/null || break
        sleep 0.5
    done
    case $state in
    running) say "container systemd: running ($((SECONDS - START)) s)" ;;
    degraded)
        say "container systemd: degraded (failed units below; not ours, carrying on)"
        in_ct systemctl --failed --no-legend --plain || true
        ;;
    *)
        tail -n 30 "$console" >&2
        say "FAIL: the container's systemd is '$state' (console: $console)"
        exit 1
        ;;
    esac
}

# --- steps -----------------------------------------------------------------------------------------
step_no=0
# step NAME FUNCTION: runs the function with its output in the log; PASS or FAIL with the time.
# The function runs as a background job and is waited for: in a `fn || rc=$?` list bash would
# ignore set -e inside it, and every command in a step is meant to be fatal when it fails.
step()
{
    local name=$1 fn=$2 t0=$SECONDS out rc=0 job
    step_no=$((step_no + 1))
    out=$WORK/step-$step_no.log
    "$fn" >"$out" 2>&1 </dev/null &
    job=$!
    wait "$job" || rc=$?
    if ((rc == 0)); then
        printf 'e2e: PASS %2d %-58s %3ds\n' "$step_no" "$name" $((SECONDS - t0))
    else
        printf 'e2e: FAIL %2d %-58s %3ds\n' "$step_no" "$name" $((SECONDS - t0))
        sed 's/^/    | /' "$out" | tail -n 40
        failed=1
        say "journal of codex-vaultd (last 20 lines):"
        in_ct journalctl -u codex-vaultd --no-pager -n 20 -o short-monotonic 2>&1 | sed 's/^/    | /' || true
        say "FAILED after $((SECONDS - START)) s (logs: $WORK)"
        say "$((step_no - 1)) passed, 1 failed"
        exit 1
    fi
}

# ct_output_has REGEX COMMAND...: runs the command inside, shows its output, and succeeds when
# a whole line matches REGEX. (Not `in_ct ... | grep -q`: with pipefail, grep -q exiting at the
# first match can fail the pipeline through SIGPIPE.)
ct_output_has()
{
    local regex=$1 out
    shift
    out=$(in_ct "$@")
    printf '%s\n' "$out"
    grep -qxE -- "$regex" <<<"$out"
}

# Fails the step with a message.
fail()
{
    echo "FAIL: $*"
    return 1
}

# Waits up to $2 seconds (default 20) for the unit to be active.
wait_active()
{
    local _
    for _ in $(seq 1 $((${2:-20} * 5))); do
        [[ $(in_ct systemctl is-active "$1" 2>/dev/null) == active ]] && return 0
        sleep 0.2
    done
    in_ct systemctl status "$1" --no-pager || true
    return 1
}

# The steps start and stop the unit more often than systemd's default start limit (5 in 10 s)
# allows; clear the counter first, as an administrator would never need to.
restart_ct()
{
    in_ct systemctl reset-failed codex-vaultd 2>/dev/null || true
    in_ct systemctl restart codex-vaultd
}

FOUNDER_ARGS='--founder-key /root/founder.key --passphrase-fd 3 3</root/passphrase'
CANARY=e2e-canary-$RANDOM$RANDOM-value

t_install()
{
    cp "$DEB" "/proc/$CPID/root/root/codex-vault.deb"
    in_ct dpkg -i /root/codex-vault.deb
    in_ct getent passwd codex-vault
    [[ $(in_ct stat -c '%a %U %G' /var/lib/codex-vault) == "700 codex-vault codex-vault" ]] ||
        fail "/var/lib/codex-vault is $(in_ct stat -c '%a %U %G' /var/lib/codex-vault)"
    in_ct test -d /etc/codex-vault/policy.d || fail "/etc/codex-vault/policy.d is missing"
    [[ $(in_ct systemctl is-enabled codex-vaultd) == enabled ]] || fail "codex-vaultd.service is not enabled"
    # postinst starts it, and at the first attempt: no restart after a refused bus name.
    wait_active codex-vaultd.service 20 || fail "the package did not start codex-vaultd.service"
    local restarts
    restarts=$(in_ct systemctl show codex-vaultd -p NRestarts --value)
    [[ $restarts == 0 ]] || {
        in_ct journalctl -u codex-vaultd --no-pager -o short-monotonic
        fail "codex-vaultd needed $restarts restart(s) after installation"
    }
}

t_start()
{
    in_ct systemctl start codex-vaultd
    wait_active codex-vaultd.service 20 || fail "codex-vaultd.service is not active"
    in_ct systemctl show codex-vaultd -p ActiveState -p SubState -p StatusText -p MainPID -p NRestarts
    in_ct journalctl -u codex-vaultd --no-pager -o short-monotonic
}

t_status()
{
    local out
    out=$(in_ct vaultctl status)
    echo "$out"
    grep -qx 'state: uninitialized' <<<"$out" || fail "state is not uninitialized"
    # memfd_secret when the host kernel has it (probed from the host: nsenter'd processes are
    # outside nspawn's seccomp filter).
    if perl -e 'exit(syscall(447, 0x80000) >= 0 ? 0 : 1)' 2>/dev/null; then
        grep -qx 'key_storage: memfd_secret' <<<"$out" || fail "the kernel has memfd_secret but the daemon does not use it"
    fi
}

t_sandbox()
{
    local pid status
    in_ct systemctl show codex-vaultd -p User -p NoNewPrivileges -p CapabilityBoundingSet \
        -p AmbientCapabilities -p ProtectSystem -p ProtectHome -p PrivateTmp -p PrivateDevices \
        -p PrivateNetwork -p RestrictAddressFamilies -p SystemCallArchitectures -p UMask \
        -p LimitCORE -p LimitMEMLOCK -p ProcSubset -p ProtectProc
    pid=$(in_ct systemctl show codex-vaultd -p MainPID --value)
    [[ $pid =~ ^[0-9]+$ && $pid != 0 ]] || fail "no MainPID"
    status=$(in_ct cat "/proc/$pid/status")
    grep -E '^(Uid|Gid|Groups|NoNewPrivs|Seccomp|Cap(Inh|Prm|Eff|Bnd|Amb)):' <<<"$status"
    local uid
    uid=$(in_ct id -u codex-vault)
    grep -qE "^Uid:[[:space:]]+${uid}[[:space:]]+${uid}[[:space:]]+${uid}[[:space:]]+${uid}\$" <<<"$status" ||
        fail "the daemon does not run as codex-vault ($uid)"
    grep -qE '^NoNewPrivs:[[:space:]]+1$' <<<"$status" || fail "NoNewPrivs is not 1"
    grep -qE '^Seccomp:[[:space:]]+2$' <<<"$status" || fail "no seccomp filter (Seccomp is not 2)"
    local cap
    for cap in CapInh CapPrm CapEff CapBnd CapAmb; do
        grep -qE "^$cap:[[:space:]]+0+\$" <<<"$status" || fail "$cap is not 0"
    done
    # The unit grants CAP_BPF, CAP_PERFMON and CAP_SETPCAP for the monitor's load only: the sets
    # above are empty afterwards, and the monitor records (where the host kernel has BTF).
    local monitor
    monitor=$(in_ct vaultctl status | sed -n 's/^monitor: //p')
    echo "monitor: $monitor"
    if [[ -r /sys/kernel/btf/vmlinux ]]; then
        [[ $monitor == recording* ]] || fail "the eBPF monitor is not recording: $monitor"
    else
        echo "SKIP monitor check: the host kernel has no BTF (/sys/kernel/btf/vmlinux)"
    fi
    [[ $(in_ct cat "/proc/$pid/limits" | awk '/^Max core file size/ { print $5 }') == 0 ]] ||
        fail "core dumps are not disabled"
}

t_bus_policy()
{
    local rc=0 out
    # Only codex-vault may own the name: root and nobody are refused by the bus itself.
    out=$(in_ct busctl call org.freedesktop.DBus /org/freedesktop/DBus org.freedesktop.DBus RequestName \
        su org.codexvault.Vault1 4 2>&1) && rc=0 || rc=$?
    echo "root: $out"
    if ((rc == 0)) || ! grep -q 'Access denied' <<<"$out"; then
        fail "root could ask for org.codexvault.Vault1"
    fi
    out=$(in_ct setpriv --reuid=65534 --regid=65534 --clear-groups busctl call org.freedesktop.DBus \
        /org/freedesktop/DBus org.freedesktop.DBus RequestName su org.codexvault.Vault1 4 2>&1) && rc=0 || rc=$?
    echo "nobody: $out"
    if ((rc == 0)) || ! grep -q 'Access denied' <<<"$out"; then
        fail "nobody could ask for org.codexvault.Vault1"
    fi
    # ... and anyone may call it (the daemon decides).
    ct_output_has 'uid: 65534' setpriv --reuid=65534 --regid=65534 --clear-groups vaultctl whoami ||
        fail "nobody could not call WhoAmI"
}

t_init()
{
    sh_ct 'umask 077 && printf "%s\n" "e2e passphrase $$" > /root/passphrase'
    sh_ct "vaultctl init $FOUNDER_ARGS"
    ct_output_has 'state: ready' vaultctl status || fail "state is not ready after init"
}

t_put()
{
    sh_ct "printf %s '$CANARY' | vaultctl secret put e2e $FOUNDER_ARGS"
}

t_ls()
{
    ls_has e2e 1
}

t_denied()
{
    local rc=0
    # Even holding the founder key and its passphrase, uid 65534 is not the founder uid.
    sh_ct 'install -m 0644 /root/founder.key /tmp/nobody-founder.key && install -m 0644 /root/passphrase /tmp/nobody-passphrase'
    sh_ct 'setpriv --reuid=65534 --regid=65534 --clear-groups vaultctl secret ls --founder-key /tmp/nobody-founder.key --passphrase-fd 3 3</tmp/nobody-passphrase' || rc=$?
    sh_ct 'rm -f /tmp/nobody-founder.key /tmp/nobody-passphrase'
    echo "exit status: $rc"
    ((rc == 3)) || fail "expected exit status 3 (permission denied), got $rc"
}

t_inject()
{
    # The monitor's per-syscall hooks are attached by the first injection, long after the daemon
    # dropped every capability, under the unit's and the daemon's own syscall filters: inject e2e
    # into a command, which sees its length (never its value) and the hooks attached.
    if [[ ! -r /sys/kernel/btf/vmlinux ]]; then
        echo "SKIP injection: the host kernel has no BTF (/sys/kernel/btf/vmlinux), the monitor cannot record"
        return 0
    fi
    sh_ct "vaultctl grant issue --principal uid=0 --cap secret:e2e:inject --ttl 5m $FOUNDER_ARGS"
    local out
    # shellcheck disable=SC2016  # expanded by the shell in the container, inside the injection
    out=$(in_ct vaultctl exec --secret e2e=TOKEN -- sh -c \
        'echo "length=${#TOKEN}"; vaultctl status | sed -n "s/^monitor: //p"')
    echo "$out"
    [[ $out == *"length=${#CANARY}"* ]] || fail "the command did not receive the secret"
    [[ $out == *"syscall hooks attached"* ]] || fail "the syscall hooks were not attached during the injection"
}

t_reload()
{
    local before after
    before=$(in_ct systemctl show codex-vaultd -p MainPID --value)
    in_ct systemctl reload codex-vaultd
    sleep 0.5
    after=$(in_ct systemctl show codex-vaultd -p MainPID --value)
    [[ $before == "$after" ]] || fail "reload replaced the process ($before -> $after)"
    wait_active codex-vaultd.service 5 || fail "not active after reload"
    ct_output_has '.*event=reload action="policy.reload".*' journalctl -u codex-vaultd --no-pager -o cat >/dev/null ||
        fail "the daemon did not log the reload"
}

t_restart()
{
    local before after
    before=$(in_ct systemctl show codex-vaultd -p MainPID --value)
    restart_ct
    wait_active codex-vaultd.service 20 || fail "not active after restart"
    after=$(in_ct systemctl show codex-vaultd -p MainPID --value)
    [[ $before != "$after" ]] || fail "restart kept the same process"
    t_ls
}

t_audit()
{
    local journal
    journal=$(in_ct journalctl -u codex-vaultd --no-pager -o cat)
    grep -E '(^| )audit ' <<<"$journal" | tail -n 12
    # The journal mirror's fields in either order: "audit ... action=... decision=... uid=...".
    grep -qE '(^| )audit .*action="secret\.put".* decision=allow( |$)' <<<"$journal" ||
        fail "no audit line allowing secret.put"
    grep -qE '(^| )audit .*( uid=65534 .*decision=deny|decision=deny( .*)? uid=65534)( |$)' <<<"$journal" ||
        fail "no audit line denying uid 65534"
    # The value never reaches the journal or the state folder in clear.
    ! grep -q "$CANARY" <<<"$journal" || fail "the secret value is in the journal"
    ! in_ct grep -rqF "$CANARY" /var/lib/codex-vault || fail "the secret value is in /var/lib/codex-vault in clear"
}

t_activation()
{
    in_ct systemctl reset-failed codex-vaultd 2>/dev/null || true
    in_ct systemctl stop codex-vaultd
    [[ $(in_ct systemctl is-active codex-vaultd) != active ]] || fail "still active after stop"
    # A call to the name makes dbus-daemon start the unit (org.codexvault.Vault1.service).
    ct_output_has 'state: ready' vaultctl status || fail "status after activation"
    wait_active codex-vaultd.service 10 || fail "not active after D-Bus activation"
}

t_credential()
{
    # The migration in codex-vaultd(8): the existing master key, as an encrypted credential.
    sh_ct 'install -d -m 0700 /etc/credstore.encrypted &&
        systemd-creds encrypt --name=codex-vault.key /var/lib/codex-vault/keys/master.key /etc/credstore.encrypted/codex-vault.key &&
        mv /var/lib/codex-vault/keys/master.key /root/master.key.backup'
    restart_ct
    wait_active codex-vaultd.service 20 || fail "not active with the credential"
    ct_output_has 'key_source: credential' vaultctl status || fail "key_source is not credential"
    t_ls
    # The mandatory drop-in: a missing credential must fail the start, not fall back.
    sh_ct 'mv /etc/credstore.encrypted/codex-vault.key /etc/codex-vault/codex-vault.key.cred &&
        install -D -m 0644 /usr/share/doc/codex-vault/examples/credential.conf /etc/systemd/system/codex-vaultd.service.d/credential.conf &&
        systemctl daemon-reload'
    restart_ct
    wait_active codex-vaultd.service 20 || fail "not active with the pinned credential"
    ct_output_has 'key_source: credential' vaultctl status || fail "key_source is not credential (drop-in)"
    sh_ct 'mv /etc/codex-vault/codex-vault.key.cred /root/cred.away'
    if restart_ct; then
        fail "started although the pinned credential is missing"
    fi
    echo "without the credential: $(in_ct systemctl show codex-vaultd -p Result --value)" \
        "(status $(in_ct systemctl show codex-vaultd -p ExecMainStatus --value))"
    [[ $(in_ct systemctl show codex-vaultd -p ExecMainStatus --value) == 243 ]] ||
        fail "expected exit status 243/CREDENTIALS"
    # Back to the key file.
    sh_ct 'rm -f /etc/systemd/system/codex-vaultd.service.d/credential.conf && systemctl daemon-reload &&
        install -m 0600 -o codex-vault -g codex-vault /root/master.key.backup /var/lib/codex-vault/keys/master.key &&
        systemctl reset-failed codex-vaultd'
    restart_ct
    wait_active codex-vaultd.service 20 || fail "not active back on the key file"
    ct_output_has 'key_source: key-file' vaultctl status || fail "key_source is not key-file"
    t_ls
}

t_stop()
{
    in_ct systemctl stop codex-vaultd
    local st
    st=$(in_ct systemctl is-active codex-vaultd || true)
    [[ $st == inactive ]] || fail "state after stop: $st"
    ct_output_has 'codex-vaultd: stopped' journalctl -u codex-vaultd --no-pager -o cat >/dev/null ||
        fail "no clean stop in the journal"
}

# --- remove, purge, reinstall: the state folder outlives the package ------------------------------

# The sealed state that no package operation may change, one "sha256  path" line per file: the
# secrets, the master key, the founder's public key and the audit public key. (Files the daemon
# rewrites as it runs, such as policy-state.json and the audit head, are left out; the audit
# segments are checked separately, append-only.)
state_digest()
{
    sh_ct 'cd /var/lib/codex-vault && find secrets keys founder.pub audit/audit.pub -type f 2>/dev/null |
        LC_ALL=C sort | xargs -r sha256sum'
}

# Records state_digest in $WORK/$1 and checks that it covers at least one sealed secret.
record_state()
{
    state_digest >"$WORK/$1"
    cat "$WORK/$1"
    grep -qE '  secrets/.+' "$WORK/$1" || fail "no sealed secret under /var/lib/codex-vault/secrets"
}

# Fails unless state_digest matches what record_state saved in $WORK/$1.
state_unchanged()
{
    local now
    now=$(state_digest)
    diff -u "$WORK/$1" - <<<"$now" || fail "the sealed state in /var/lib/codex-vault changed"
    echo "sealed state unchanged ($(wc -l <"$WORK/$1") files)"
}

# ls_has NAME VERSION: secret ls lists NAME at VERSION with its integrity ok. The columns are
# found by their headings (NAME, VERSION, INTEGRITY), so added columns do not matter.
ls_has()
{
    local out
    out=$(sh_ct "vaultctl secret ls $FOUNDER_ARGS")
    echo "$out"
    awk -v name="$1" -v version="$2" '
        NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        col["VERSION"] && col["INTEGRITY"] && $col["NAME"] == name &&
            $col["VERSION"] == version && $col["INTEGRITY"] == "ok" { found = 1 }
        END { exit !found }' <<<"$out" ||
        fail "$1 (version $2, integrity ok) is not listed"
}

# The state folder as the package left it: there, 0700, owned by codex-vault, user kept.
state_folder_kept()
{
    in_ct ls -la /var/lib/codex-vault
    [[ $(in_ct stat -c '%a %U %G' /var/lib/codex-vault) == "700 codex-vault codex-vault" ]] ||
        fail "/var/lib/codex-vault is now $(in_ct stat -c '%a %U %G' /var/lib/codex-vault)"
    in_ct getent passwd codex-vault || fail "the codex-vault user is gone"
}

t_remove()
{
    # Removed while running: prerm must stop the daemon.
    restart_ct
    wait_active codex-vaultd.service 20 || fail "not active before remove"
    record_state state.remove
    in_ct dpkg --remove codex-vault
    in_ct test ! -e /usr/sbin/codex-vaultd || fail "the binary is still there"
    ! in_ct pgrep -x codex-vaultd || fail "codex-vaultd still runs after dpkg --remove"
    state_folder_kept
    state_unchanged state.remove
}

# After remove or purge, the same .deb again: the daemon starts on the kept state and lists e2e.
t_reinstall()
{
    in_ct dpkg -i /root/codex-vault.deb
    [[ $(in_ct systemctl is-enabled codex-vaultd) == enabled ]] || fail "codex-vaultd.service is not enabled"
    wait_active codex-vaultd.service 20 || fail "the package did not start codex-vaultd.service"
    ct_output_has 'state: ready' vaultctl status || fail "state is not ready on the kept state folder"
    ls_has e2e 1
}

t_purge()
{
    record_state state.purge
    in_ct dpkg --purge codex-vault
    in_ct test ! -e /usr/sbin/codex-vaultd || fail "the binary is still there"
    ! in_ct pgrep -x codex-vaultd || fail "codex-vaultd still runs after dpkg --purge"
    in_ct test -d /var/lib/codex-vault/secrets || fail "purge removed /var/lib/codex-vault"
    state_folder_kept
    state_unchanged state.purge
}

# --- upgrade: previous package -> this one, on the same state ------------------------------------

t_prev_install()
{
    cp "$PREV_DEB" "/proc/$CPID/root/root/codex-vault-prev.deb"
    in_ct dpkg -i /root/codex-vault-prev.deb
    [[ $(in_ct dpkg-query -W -f '${Version}' codex-vault) == "$PREV_VERSION" ]] ||
        fail "installed: $(in_ct dpkg-query -W -f '${Version}' codex-vault), expected $PREV_VERSION"
    wait_active codex-vaultd.service 20 || fail "the previous package did not start codex-vaultd.service"
}

t_prev_state()
{
    t_init
    t_put
    # Rotated once, so the version to keep is 2, not the default 1.
    sh_ct "printf %s '$CANARY-rotated' | vaultctl secret rotate e2e $FOUNDER_ARGS"
    ls_has e2e 2
}

# Audit segments, one "name size sha256" line each (none before the tamper-evident log lands).
audit_segments()
{
    sh_ct 'cd /var/lib/codex-vault/audit 2>/dev/null || exit 0
        for f in $(find . -maxdepth 1 -type f -name "*.seg" | LC_ALL=C sort); do
            printf "%s %s %s\n" "${f#./}" "$(stat -c %s "$f")" "$(sha256sum <"$f" | cut -d" " -f1)"
        done'
}

t_upgrade_record()
{
    sh_ct "vaultctl secret ls $FOUNDER_ARGS" >"$WORK/upgrade.ls"
    cat "$WORK/upgrade.ls"
    record_state upgrade.state
    audit_segments >"$WORK/upgrade.audit"
    echo "audit segments:"
    cat "$WORK/upgrade.audit"
    in_ct systemctl show codex-vaultd -p MainPID --value >"$WORK/upgrade.pid"
}

t_upgrade()
{
    local pid_before pid exe
    pid_before=$(cat "$WORK/upgrade.pid")
    cp "$DEB" "/proc/$CPID/root/root/codex-vault.deb"
    in_ct dpkg -i /root/codex-vault.deb
    [[ $(in_ct dpkg-query -W -f '${Version}' codex-vault) == "$NEW_VERSION" ]] ||
        fail "installed: $(in_ct dpkg-query -W -f '${Version}' codex-vault), expected $NEW_VERSION"
    [[ $(in_ct systemctl is-enabled codex-vaultd) == enabled ]] || fail "no longer enabled after the upgrade"
    wait_active codex-vaultd.service 20 || fail "codex-vaultd.service is not active after the upgrade"
    # Debian's convention (dh_installsystemd, restart after upgrade): the maintainer scripts
    # restart a running daemon once the new files are in place, cleanly, and on the new binary.
    pid=$(in_ct systemctl show codex-vaultd -p MainPID --value)
    echo "MainPID: $pid_before -> $pid"
    [[ $pid =~ ^[0-9]+$ && $pid != 0 ]] || fail "no MainPID after the upgrade"
    [[ $pid != "$pid_before" ]] || fail "the upgrade did not restart the daemon (still pid $pid)"
    exe=$(in_ct readlink "/proc/$pid/exe")
    echo "exe: $exe"
    [[ $exe == /usr/sbin/codex-vaultd ]] || fail "the daemon does not run the installed binary ($exe)"
    [[ $(in_ct systemctl show codex-vaultd -p NRestarts --value) == 0 ]] ||
        fail "the daemon needed a restart after failing during the upgrade"
    ct_output_has 'codex-vaultd: stopped' journalctl -u codex-vaultd --no-pager -o cat >/dev/null ||
        fail "the old daemon did not stop cleanly"
}

t_upgrade_kept()
{
    local now name size sha
    ct_output_has 'state: ready' vaultctl status || fail "state is not ready after the upgrade"
    now=$(sh_ct "vaultctl secret ls $FOUNDER_ARGS")
    diff -u "$WORK/upgrade.ls" - <<<"$now" || fail "secret ls differs from before the upgrade"
    ls_has e2e 2
    state_unchanged upgrade.state
    # Append-only: every segment that existed is still there, and what it held is its prefix.
    while read -r name size sha; do
        [[ -n $name ]] || continue
        in_ct test -f "/var/lib/codex-vault/audit/$name" || fail "audit segment $name is gone after the upgrade"
        now=$(sh_ct "head -c $size '/var/lib/codex-vault/audit/$name' | sha256sum | cut -d' ' -f1")
        [[ $now == "$sha" ]] || fail "audit segment $name: its first $size bytes changed in the upgrade"
        echo "audit segment $name: first $size bytes unchanged, now $(in_ct stat -c %s "/var/lib/codex-vault/audit/$name") bytes"
    done <"$WORK/upgrade.audit"
}

t_audit_verify()
{
    local rc=0
    in_ct ls -la /var/lib/codex-vault/audit || true
    in_ct vaultctl audit verify --dir /var/lib/codex-vault/audit \
        --pubkey /var/lib/codex-vault/audit/audit.pub || rc=$?
    echo "exit status: $rc"
    ((rc == 0)) || fail "vaultctl audit verify: exit status $rc (9: the chain does not verify)"
}

boot_container install "fresh install"
step "install the .deb (user, folders, enabled, started)" t_install
step "systemctl start codex-vaultd" t_start
step "vaultctl status over the system bus" t_status
step "sandbox: uid, NoNewPrivs 1, Seccomp 2, no capabilities" t_sandbox
step "bus policy: only codex-vault owns the name" t_bus_policy
step "vaultctl init (founder key, passphrase on fd 3)" t_init
step "vaultctl secret put e2e" t_put
step "vaultctl secret ls shows e2e" t_ls
step "uid 65534 is refused (exit 3)" t_denied
step "vaultctl exec --secret: injected, hooks attached unprivileged" t_inject
step "systemctl reload (SIGHUP, same process)" t_reload
step "systemctl restart: e2e still listed" t_restart
step "journal: audit lines, no secret value anywhere" t_audit
step "D-Bus activation after stop" t_activation
step "master key as an encrypted credential" t_credential
step "systemctl stop" t_stop
step "dpkg --remove (running): stopped, state kept unchanged" t_remove
step "reinstall after remove: e2e still listed" t_reinstall
step "dpkg --purge keeps /var/lib/codex-vault unchanged" t_purge
step "reinstall after purge: e2e still listed" t_reinstall
stop_container

boot_container upgrade "upgrade $PREV_VERSION -> $NEW_VERSION"
step "install the previous package ($PREV_VERSION)" t_prev_install
step "previous: init, put e2e, rotate e2e (version 2)" t_prev_state
step "previous: record secret ls, sealed state, audit segments" t_upgrade_record
step "dpkg -i $NEW_VERSION: restarted on the new binary" t_upgrade
step "after upgrade: same listing, sealed state, audit appended" t_upgrade_kept
# Last, so that everything before it is checked even while it cannot pass yet.
step "after upgrade: vaultctl audit verify" t_audit_verify
stop_container

say "PASS: all $step_no steps in $((SECONDS - START)) s"
# The closing line CI reads, in the plain form every runner's summary can be told from.
say "$step_no passed, 0 failed"
