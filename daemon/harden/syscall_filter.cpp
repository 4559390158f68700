#include "daemon/harden/syscall_filter.hpp"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

namespace codexvault::harden {
namespace {

using namespace std::string_view_literals;

constexpr std::uint64_t kAllBits = ~std::uint64_t{0};
// A 32-bit int argument (domain, type, level, flags) compared on its low 32 bits only.
constexpr std::uint64_t kInt = 0xffffffffU;

// Argument checks. "own pid" in tgkill is filled in at install time (see install_syscall_filter).
constexpr std::array kNoExec{ArgCheck{2, PROT_EXEC, 0}};
constexpr std::array kNotifySocket{ArgCheck{0, kInt, AF_UNIX}, ArgCheck{1, kInt, SOCK_DGRAM | SOCK_CLOEXEC},
                                   ArgCheck{2, kInt, 0}};
constexpr std::array kSocketLevel{ArgCheck{1, kInt, SOL_SOCKET}};
constexpr std::array kNoFlags{ArgCheck{1, kInt, 0}};
// Provider mediation (daemon/egress): TCP to providers, the response stream's socketpair, the
// request body's memfd, and the threads libcurl's resolver starts for a name lookup.
constexpr std::uint64_t kSocketType = 0xf;  // SOCK_TYPE_MASK: the type without NONBLOCK/CLOEXEC
constexpr std::array kTcp4{ArgCheck{0, kInt, AF_INET}, ArgCheck{1, kSocketType, SOCK_STREAM}};
constexpr std::array kTcp6{ArgCheck{0, kInt, AF_INET6}, ArgCheck{1, kSocketType, SOCK_STREAM}};
constexpr std::array kUdp4{ArgCheck{0, kInt, AF_INET}, ArgCheck{1, kSocketType, SOCK_DGRAM}};
constexpr std::array kUdp6{ArgCheck{0, kInt, AF_INET6}, ArgCheck{1, kSocketType, SOCK_DGRAM}};
constexpr std::array kNscdProbe{ArgCheck{0, kInt, AF_UNIX},
                                ArgCheck{1, kInt, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK}, ArgCheck{2, kInt, 0}};
constexpr std::array kUnixStream{ArgCheck{0, kInt, AF_UNIX}, ArgCheck{1, kSocketType, SOCK_STREAM}};
constexpr std::array kTcpLevel{ArgCheck{1, kInt, IPPROTO_TCP}};
constexpr std::array kIpv6Level{ArgCheck{1, kInt, IPPROTO_IPV6}};
constexpr std::array kBodyMemfd{ArgCheck{1, kInt, MFD_CLOEXEC | MFD_ALLOW_SEALING}};
constexpr std::array kThreadClone{ArgCheck{0, CLONE_THREAD, CLONE_THREAD}};
constexpr std::array kSigpipe{ArgCheck{0, kInt, SIGPIPE}};
constexpr std::uint64_t kOwnPid = kAllBits;  // placeholder value, replaced by getpid()
constexpr std::array kAbortSelf{ArgCheck{0, kInt, kOwnPid}, ArgCheck{2, kInt, SIGABRT}};
constexpr std::array kCloexecOnly{ArgCheck{0, kInt, O_CLOEXEC}};
constexpr std::array kTermOrKill{ArgCheck{1, kInt, SIGTERM}};
constexpr std::array kKillOnly{ArgCheck{1, kInt, SIGKILL}};
// PIDFD_GET_INFO = _IOWR(0xFF, 11, struct pidfd_info) in its first, 64-byte version
// (daemon/identity/pidfd_info.hpp; Debian 12's headers lack it).
constexpr std::uint64_t kPidfdGetInfoRequest = 0xc040ff0bU;
constexpr std::array kPidfdGetInfo{ArgCheck{1, kInt, kPidfdGetInfoRequest}};
constexpr std::array kNotPidfdGetInfo{ArgCheck{1, kAllBits, kPidfdGetInfoRequest, true}};

// ---------------------------------------------------------------------------------------------
// The allowlist. Derived by running the real daemon under strace through the whole integration
// suite and a manual session (init, put, rotate, rm, ls, whoami, status, SIGHUP, SIGTERM) with
// NOTIFY_SOCKET and WATCHDOG_USEC set, keeping only calls made after start-up is over. Calls
// made only during start-up (execve, socket(AF_UNIX, SOCK_STREAM),
// connect, epoll_create1, eventfd2, mkdir, prlimit64, prctl, capget/capset, seccomp, rt_sigaction,
// and clone3, rseq, set_robust_list for the audit flusher thread, started before the filter) are
// not here. Everything not listed kills the process.
// ---------------------------------------------------------------------------------------------
constexpr std::array kEventLoop{"epoll_wait"sv,     "epoll_ctl"sv,       "poll"sv,     "ppoll"sv,
                                "timerfd_create"sv, "timerfd_settime"sv, "signalfd4"sv};
constexpr std::array kBus{"recvmsg"sv, "sendmsg"sv};
constexpr std::array kNotifySocketCalls{"socket"sv};
constexpr std::array kNotifySockopt{"getsockopt"sv, "setsockopt"sv};
constexpr std::array kFiles{"openat"sv,     "read"sv,       "pread64"sv,    "write"sv, "writev"sv, "close"sv,
                            "newfstatat"sv, "readlinkat"sv, "getdents64"sv, "fcntl"sv, "fstatfs"sv};
constexpr std::array kStateWrites{"fchmod"sv, "fsync"sv, "renameat"sv, "renameat2"sv, "linkat"sv, "unlinkat"sv};
constexpr std::array kAuditSync{"fdatasync"sv};
constexpr std::array kPidfd{"pidfd_open"sv};
constexpr std::array kIds{"getpid"sv, "gettid"sv, "getuid"sv, "geteuid"sv, "getgid"sv, "getegid"sv};
constexpr std::array kMemory{"brk"sv, "munmap"sv, "mremap"sv, "madvise"sv, "mlock"sv, "munlock"sv};
constexpr std::array kMemoryProt{"mmap"sv, "mprotect"sv};
constexpr std::array kTimeEntropy{"getrandom"sv, "clock_gettime"sv, "gettimeofday"sv};
constexpr std::array kRuntime{"futex"sv, "rt_sigprocmask"sv, "rt_sigreturn"sv, "restart_syscall"sv};
constexpr std::array kExit{"exit_group"sv, "exit"sv};
constexpr std::array kAbort{"tgkill"sv};
constexpr std::array kTerminalProbe{"ioctl"sv};
constexpr std::array kEgressSocket{"socket"sv};
constexpr std::array kEgressSocketpair{"socketpair"sv};
constexpr std::array kEgressIo{"connect"sv,  "getsockname"sv, "getpeername"sv, "sendto"sv,
                               "recvfrom"sv, "sendmmsg"sv,    "shutdown"sv};
constexpr std::array kEgressMemfd{"memfd_create"sv};
constexpr std::array kThreadStart{"clone"sv};
constexpr std::array kThreadStart3{"clone3"sv};
constexpr std::array kThreadSetup{"set_robust_list"sv, "rseq"sv};
constexpr std::array kSignalAction{"rt_sigaction"sv};
constexpr std::array kResolverUname{"uname"sv};
constexpr std::array kStdioSeek{"lseek"sv};
// Injections (daemon/inject): the descriptor handed over, its size, the monitor's map updates,
// and on_expiry = "terminate".
constexpr std::array kInjectSecretMemory{"memfd_secret"sv};
constexpr std::array kInjectSize{"ftruncate"sv};
constexpr std::array kInjectSignal{"pidfd_send_signal"sv};

constexpr std::array<ArgCheck, 0> kAlways{};

// The eBPF monitor's map commands on maps it created before the filter (track, untrack, mark,
// unmark, look up a mark); one command per row, since a row's checks must all hold. Map and
// program creation, loading, attaching and every other command stay killed. The ring buffer and
// the gate are mmapped: draining them is no system call.
constexpr std::array kBpf{"bpf"sv};
constexpr std::array kBpfLookup{ArgCheck{0, kInt, BPF_MAP_LOOKUP_ELEM}};
constexpr std::array kBpfUpdate{ArgCheck{0, kInt, BPF_MAP_UPDATE_ELEM}};
constexpr std::array kBpfDelete{ArgCheck{0, kInt, BPF_MAP_DELETE_ELEM}};
// Attaching the monitor's already-loaded per-syscall programs while something is tracked or
// marked (closing the link detaches). Needs no capability; the daemon can load no program, so it
// can attach only its own.
constexpr std::array kBpfAttach{ArgCheck{0, kInt, BPF_RAW_TRACEPOINT_OPEN}};
// The connect-time credential check: an iterator from the link made before the drop (iter/task_file
// on the bus daemon, or iter/unix)
// (BPF_LINK_CREATE stays killed); the daemon can load no program, so only its own walk runs.
constexpr std::array kBpfIter{ArgCheck{0, kInt, BPF_ITER_CREATE}};

constexpr std::array kAllowlist{
    SyscallGroup{"event loop", kEventLoop, kAlways, FilterAction::Allow, 0,
                 "sd-event waits, re-arms timers (watchdog, bus timeouts, audit folding; a clock's timerfd is "
                 "created lazily), updates its signalfd as sources go away; sd-bus polls its socket"},
    SyscallGroup{"bus traffic", kBus, kAlways, FilterAction::Allow, 0,
                 "D-Bus messages on the connected socket, with descriptors (secret values arrive as a pipe, "
                 "the caller's pidfd from the bus)"},
    SyscallGroup{"sd_notify socket", kNotifySocketCalls, kNotifySocket, FilterAction::Allow, 0,
                 "sd_notify() opens a fresh AF_UNIX datagram socket per message (READY, STATUS, WATCHDOG=1 every "
                 "WatchdogSec/2, STOPPING); no other kind of socket, and no connect/bind/listen"},
    SyscallGroup{"sd_notify send buffer", kNotifySockopt, kSocketLevel, FilterAction::Allow, 0,
                 "sd_notify() enlarges that socket's send buffer (SOL_SOCKET options only)"},
    SyscallGroup{"files", kFiles, kAlways, FilterAction::Allow, 0,
                 "the state folder (secrets, founder key, grant state), the policy folder, "
                 "/proc/PID/{status,stat,cgroup,exe} of each caller and its executable's bytes for exe_sha256 "
                 "(pread64), log lines on stderr (writev: glibc's fatal-error messages); the audit flusher's "
                 "eventfd (the flusher thread writes it when a flush is done, the loop reads it); fstatfs and "
                 "fcntl(O_NONBLOCK) on a secret's value descriptor, so its read never waits "
                 "(daemon/pipeline/value_input.hpp)"},
    SyscallGroup{"state writes", kStateWrites, kAlways, FilterAction::Allow, 0,
                 "temp file -> fchmod 0600 -> fsync -> rename (RENAME_NOREPLACE; linkat is its fallback) -> fsync of "
                 "the folder; unlinkat for rm and failed writes; the audit head file after a checkpoint, written "
                 "the same way by the flusher thread"},
    SyscallGroup{"audit group commit", kAuditSync, kAlways, FilterAction::Allow, 0,
                 "the audit flusher thread's one fdatasync per flush makes every record written before it durable "
                 "before the replies (and the actions) waiting for them; the loop itself only for start-up, "
                 "SIGHUP, a sealing checkpoint and the orderly stop"},
    SyscallGroup{"caller pidfd", kPidfd, kNoFlags, FilterAction::Allow, 0,
                 "pins a caller whose bus did not hand over a pidfd (flags 0 only)"},
    SyscallGroup{"own ids", kIds, kAlways, FilterAction::Allow, 0,
                 "sd-bus and sd_notify compare pids and uids/gids (read-only, no effect)"},
    SyscallGroup{"memory", kMemory, kAlways, FilterAction::Allow, 0,
                 "malloc and sodium_malloc/sodium_free (mlock + MADV_DONTDUMP around guarded key buffers)"},
    SyscallGroup{"memory protection", kMemoryProt, kNoExec, FilterAction::Allow, 0,
                 "allocations and sodium's guard pages (PROT_NONE/PROT_READ); never PROT_EXEC"},
    SyscallGroup{"time and entropy", kTimeEntropy, kAlways, FilterAction::Allow, 0,
                 "nonces and sealing (getrandom); clocks are read through the vDSO, the syscalls are its fallback "
                 "on clock sources without one"},
    SyscallGroup{"runtime", kRuntime, kAlways, FilterAction::Allow, 0,
                 "glibc locks (futex; also the hand-off between the loop and the audit flusher thread), "
                 "signal-mask bookkeeping, return from signal handlers, restarted calls"},
    SyscallGroup{"exit", kExit, kAlways, FilterAction::Allow, 0,
                 "a clean stop (SIGTERM) ends the audit flusher thread (exit) and the process (exit_group(0))"},
    SyscallGroup{"abort", kAbort, kAbortSelf, FilterAction::Allow, 0,
                 "abort() (std::terminate, a failed check in a library) still ends in SIGABRT to this process, "
                 "not in a misleading seccomp kill; no other signal and no other process"},
    SyscallGroup{"monitor map lookup", kBpf, kBpfLookup, FilterAction::Allow, 0,
                 "the eBPF monitor reads a process's mark (Monitor::mark_of)"},
    SyscallGroup{"monitor map update", kBpf, kBpfUpdate, FilterAction::Allow, 0,
                 "the eBPF monitor tracks an injected secret's inode or marks a process"},
    SyscallGroup{"monitor map delete", kBpf, kBpfDelete, FilterAction::Allow, 0,
                 "the eBPF monitor stops tracking an inode or unmarks a process"},
    SyscallGroup{"monitor syscall hooks", kBpf, kBpfAttach, FilterAction::Allow, 0,
                 "the eBPF monitor attaches its sys_enter/sys_exit programs (loaded before the drop) when the "
                 "first secret is tracked or process marked; closing the links detaches them"},
    SyscallGroup{"monitor connection check", kBpf, kBpfIter, FilterAction::Allow, 0,
                 "a caller's first pin asks the kernel whether it still holds the credentials it connected to the "
                 "bus with: an iterator from the link made at load (iter/task_file on the bus daemon, or iter/unix), "
                 "read like a file"},
    SyscallGroup{"injection descriptor", kInjectSecretMemory, kCloexecOnly, FilterAction::Allow, 0,
                 "Inject: a memfd_secret holds the value handed to the approved process (O_CLOEXEC only)"},
    SyscallGroup{"injection size", kInjectSize, kAlways, FilterAction::Allow, 0,
                 "Inject: sizes the memfd_secret to the value before it is mapped and filled"},
    SyscallGroup{"injection terminate", kInjectSignal, kTermOrKill, FilterAction::Allow, 0,
                 "on_expiry = \"terminate\": SIGTERM to each process still under the mark (by pidfd)"},
    SyscallGroup{"injection kill", kInjectSignal, kKillOnly, FilterAction::Allow, 0,
                 "on_expiry = \"terminate\": SIGKILL after the grace period to what is left"},
    SyscallGroup{"ioctl probes", kTerminalProbe, kNotPidfdGetInfo, FilterAction::Errno, ENOTTY,
                 "isatty()/window-size probes by stdio, and the audit log's FS_IOC_SETFLAGS (append-only flag) on "
                 "a segment created after start-up, get \"not supported\" without reaching any driver: the "
                 "daemon holds no capability that flag needs by then. Every request but PIDFD_GET_INFO (next row)"},
    SyscallGroup{"egress TCP (IPv4)", kEgressSocket, kTcp4, FilterAction::Allow, 0,
                 "provider mediation: libcurl's connection to a provider (docs/egress.md)"},
    SyscallGroup{"egress TCP (IPv6)", kEgressSocket, kTcp6, FilterAction::Allow, 0,
                 "provider mediation: libcurl's connection to a provider over IPv6"},
    SyscallGroup{"name resolution (IPv4)", kEgressSocket, kUdp4, FilterAction::Allow, 0,
                 "the resolver thread's DNS queries, and libcurl's probe for a working IPv6 stack"},
    SyscallGroup{"name resolution (IPv6)", kEgressSocket, kUdp6, FilterAction::Allow, 0,
                 "the resolver thread's DNS queries over IPv6"},
    SyscallGroup{"resolver host name", kResolverUname, kAlways, FilterAction::Allow, 0,
                 "glibc's resolver reads the host's own name (uname) while it sets up a lookup; read-only"},
    SyscallGroup{"nscd probe", kEgressSocket, kNscdProbe, FilterAction::Errno, EACCES,
                 "glibc's getaddrinfo first tries nscd over an AF_UNIX stream socket; refused (EACCES), it "
                 "resolves through /etc/hosts and DNS itself. The daemon never gets a stream socket to reach "
                 "another local service"},
    SyscallGroup{
        "egress connection", kEgressIo, kAlways, FilterAction::Allow, 0,
        "connect (the address guard has checked the address first), the peer address the guard checks "
        "again, TLS records sent and received, DNS queries (sendmmsg); shutdown of the response stream's write "
        "side (EOF for the caller)"},
    SyscallGroup{"egress socket options (TCP)", kNotifySockopt, kTcpLevel, FilterAction::Allow, 0,
                 "TCP_NODELAY and keep-alive timing on a provider connection"},
    SyscallGroup{"egress socket options (IPv6)", kNotifySockopt, kIpv6Level, FilterAction::Allow, 0,
                 "IPv6-level options (IPV6_V6ONLY) on a provider connection"},
    SyscallGroup{"response stream", kEgressSocketpair, kUnixStream, FilterAction::Allow, 0,
                 "the socketpair a provider response streams through to the caller (AF_UNIX stream only)"},
    SyscallGroup{"request body copy", kEgressMemfd, kBodyMemfd, FilterAction::Allow, 0,
                 "the daemon's own copy of a request body, hashed for the approval binding and sealed; and Inject "
                 "on a kernel without secretmem: a sealed memfd instead (recorded as the weaker kind)"},
    SyscallGroup{"resolver threads", kThreadStart, kThreadClone, FilterAction::Allow, 0,
                 "libcurl's threaded resolver starts one thread per name lookup: clone with CLONE_THREAD only "
                 "(never a new process)"},
    SyscallGroup{"resolver threads (clone3)", kThreadStart3, kAlways, FilterAction::Errno, ENOSYS,
                 "clone3's flags sit in memory seccomp cannot read: \"not implemented\" makes glibc fall back to "
                 "clone, whose flags the row above checks"},
    SyscallGroup{"resolver thread set-up", kThreadSetup, kAlways, FilterAction::Allow, 0,
                 "what glibc does in every new thread (robust futex list, restartable sequences)"},
    SyscallGroup{"system CA store", kStdioSeek, kAlways, FilterAction::Allow, 0,
                 "OpenSSL reads the system CA bundle with stdio for a provider without ca_file, and fclose "
                 "repositions a read stream (lseek on the daemon's own descriptor)"},
    SyscallGroup{"SIGPIPE disposition", kSignalAction, kSigpipe, FilterAction::Allow, 0,
                 "libcurl sets SIGPIPE to ignored around work on its connection cache (the cache's own handle "
                 "does not carry CURLOPT_NOSIGNAL), and puts it back; the daemon ignores SIGPIPE already. "
                 "SIGPIPE only: no other signal's handler can change"},
    SyscallGroup{"caller cgroup id", kTerminalProbe, kPidfdGetInfo, FilterAction::Allow, 0,
                 "PIDFD_GET_INFO on a caller's pidfd (this request number only): its cgroup id, so a re-read "
                 "skips /proc/PID/cgroup while the caller stays in the cgroup whose path it holds; read-only"},
};

[[noreturn]] void fail(int negative_errno, const std::string& what)
{
    throw std::system_error(-negative_errno, std::generic_category(), "hardening: install seccomp filter: " + what);
}

struct ReleaseFilter {
    void operator()(void* ctx) const noexcept { ::seccomp_release(ctx); }
};

}  // namespace

std::span<const SyscallGroup> syscall_allowlist()
{
    return kAllowlist;
}

void install_syscall_filter()
{
    // Native architecture only: seccomp_init() adds no other, and the filter's first check
    // compares the architecture (plus, on x86_64, the x32 bit) against it.
    std::unique_ptr<void, ReleaseFilter> ctx(::seccomp_init(SCMP_ACT_KILL_PROCESS));
    if (!ctx) {
        fail(-ENOMEM, "seccomp_init");
    }
    int r = ::seccomp_attr_set(ctx.get(), SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    if (r < 0) {
        fail(r, "set the bad-architecture action");
    }
    // Every thread gets the filter: the audit flusher thread, started just before (hardening.hpp),
    // and any thread a library might have started; none may escape it.
    r = ::seccomp_attr_set(ctx.get(), SCMP_FLTATR_CTL_TSYNC, 1);
    if (r < 0) {
        fail(r, "enable thread synchronisation");
    }

    const auto own_pid = static_cast<std::uint64_t>(::getpid());
    for (const SyscallGroup& group : kAllowlist) {
        const std::uint32_t action = group.action == FilterAction::Allow
                                         ? SCMP_ACT_ALLOW
                                         : SCMP_ACT_ERRNO(static_cast<std::uint32_t>(group.error));
        std::vector<scmp_arg_cmp> checks;
        for (const ArgCheck& check : group.only_if) {
            const std::uint64_t value = check.value == kOwnPid ? own_pid : check.value;
            checks.push_back(check.differs ? scmp_arg_cmp{check.index, SCMP_CMP_NE, value, 0}
                                           : scmp_arg_cmp{check.index, SCMP_CMP_MASKED_EQ, check.mask, value});
        }
        for (const std::string_view name : group.syscalls) {
            const std::string syscall_name(name);
            const int nr = ::seccomp_syscall_resolve_name(syscall_name.c_str());
            if (nr == __NR_SCMP_ERROR) {
                fail(-EINVAL, "unknown system call " + syscall_name + " (group " + std::string(group.group) + ")");
            }
            r = ::seccomp_rule_add_exact_array(ctx.get(), action, nr, static_cast<unsigned>(checks.size()),
                                               checks.empty() ? nullptr : checks.data());
            if (r < 0) {
                fail(r, "rule for " + syscall_name);
            }
        }
    }

    r = ::seccomp_load(ctx.get());
    if (r < 0) {
        fail(r, "seccomp_load");
    }
}

}  // namespace codexvault::harden
