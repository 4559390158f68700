// The daemon's seccomp allowlist (daemon/harden/syscall_filter.cpp), applied for real: a call
// off the list kills the process with SIGSYS, the calls the daemon makes after start-up still
// work, and the argument checks (socket kind, PROT_EXEC, tgkill) hold. Criterion runs each test
// in its own process; the filter cannot be removed, so every test that installs it either dies
// by design (.signal = SIGSYS) or installs it in a forked child.
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <functional>
#include <set>
#include <string>
#include <thread>

#include "daemon/harden/syscall_filter.hpp"

using codexvault::harden::install_syscall_filter;
using codexvault::harden::syscall_allowlist;

namespace {

// Skips the test when this process may not install a seccomp filter at all (kernel without
// seccomp, or a sandbox that forbids it); probed in a child with an allow-all filter.
void require_seccomp()
{
    if (::prctl(PR_GET_SECCOMP, 0, 0, 0, 0) < 0 && errno == EINVAL) {
        cr_skip_test("the kernel has no seccomp support (PR_GET_SECCOMP: EINVAL)");
    }
    const pid_t child = ::fork();
    cr_assert(child >= 0, "fork: %s", std::strerror(errno));
    if (child == 0) {
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
            _exit(errno);
        }
        scmp_filter_ctx ctx = ::seccomp_init(SCMP_ACT_ALLOW);
        const int r = ctx == nullptr ? -ENOMEM : ::seccomp_load(ctx);
        _exit(r < 0 ? -r : 0);
    }
    int status = 0;
    ::waitpid(child, &status, 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        cr_skip_test("this process may not install a seccomp filter (%s)",
                     WIFEXITED(status) ? std::strerror(WEXITSTATUS(status)) : "probe crashed");
    }
}

// Installs the daemon's filter in this process, as the daemon does (no_new_privs first).
void apply_daemon_filter()
{
    cr_assert_eq(::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), 0, "PR_SET_NO_NEW_PRIVS: %s", std::strerror(errno));
    try {
        install_syscall_filter();
    } catch (const std::exception& e) {
        cr_assert_fail("install_syscall_filter: %s", e.what());
    }
}

struct ChildOutcome {
    int status = 0;
    std::string marks;  // what the child wrote to the pipe before it ended
};

// Runs `body` in a forked child under the daemon's filter. The child writes 'F' once the filter
// is in place and hands `body` the pipe for further marks; it ends with _exit(body()).
ChildOutcome run_filtered(const std::function<int(int mark_fd)>& body)
{
    int fds[2];
    cr_assert_eq(::pipe2(fds, O_CLOEXEC), 0);
    const pid_t child = ::fork();
    cr_assert(child >= 0, "fork: %s", std::strerror(errno));
    if (child == 0) {
        ::close(fds[0]);
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
            _exit(100);
        }
        try {
            install_syscall_filter();
        } catch (...) {
            _exit(101);
        }
        (void)!::write(fds[1], "F", 1);
        _exit(body(fds[1]));
    }
    ::close(fds[1]);
    ChildOutcome outcome;
    char buffer[64];
    ssize_t n = 0;
    while ((n = ::read(fds[0], buffer, sizeof buffer)) > 0) {
        outcome.marks.append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fds[0]);
    ::waitpid(child, &outcome.status, 0);
    return outcome;
}

// The child marks 'C' just before `call` and 'S' if it survives it: a SIGSYS must come from
// that very call, not from anything earlier.
void expect_killed_by(const char* what, const std::function<void()>& call)
{
    const ChildOutcome outcome = run_filtered([&](int mark_fd) {
        (void)!::write(mark_fd, "C", 1);
        call();
        (void)!::write(mark_fd, "S", 1);
        return 0;
    });
    cr_expect_eq(outcome.marks, "FC", "%s: the child got to '%s' (F = filter on, C = calling, S = survived)", what,
                 outcome.marks.c_str());
    cr_expect(WIFSIGNALED(outcome.status) && WTERMSIG(outcome.status) == SIGSYS,
              "%s: the child must be killed by SIGSYS (status 0x%x)", what, static_cast<unsigned>(outcome.status));
}

}  // namespace

// --- the calls of the brief, killing the test process itself ------------------------------------

Test(harden_filter, ptrace_is_killed, .signal = SIGSYS)
{
    require_seccomp();
    apply_daemon_filter();
    (void)::syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0);
    cr_assert_fail("ptrace returned under the filter");
}

Test(harden_filter, mount_is_killed, .signal = SIGSYS)
{
    require_seccomp();
    apply_daemon_filter();
    (void)::syscall(SYS_mount, "none", "/tmp", "tmpfs", 0UL, nullptr);
    cr_assert_fail("mount returned under the filter");
}

Test(harden_filter, execve_is_killed, .signal = SIGSYS)
{
    require_seccomp();
    apply_daemon_filter();
    const char* argv[] = {"/bin/true", nullptr};
    const char* envp[] = {nullptr};
    (void)::syscall(SYS_execve, "/bin/true", argv, envp);
    cr_assert_fail("execve returned under the filter");
}

// --- the same and more, each proven to be the call that kills ------------------------------------

Test(harden_filter, the_forbidden_call_itself_is_what_kills)
{
    require_seccomp();
    expect_killed_by("ptrace", [] { (void)::syscall(SYS_ptrace, PTRACE_TRACEME, 0, 0, 0); });
    expect_killed_by("mount", [] { (void)::syscall(SYS_mount, "none", "/tmp", "tmpfs", 0UL, nullptr); });
    expect_killed_by("execve", [] {
        const char* argv[] = {"/bin/true", nullptr};
        const char* envp[] = {nullptr};
        (void)::syscall(SYS_execve, "/bin/true", argv, envp);
    });
    expect_killed_by("clone (fork)", [] { (void)::syscall(SYS_clone, SIGCHLD, 0, 0, 0, 0); });
    // Injections may create a memfd_secret (O_CLOEXEC) and update the monitor's maps; nothing else
    // of either call.
    expect_killed_by("memfd_secret without O_CLOEXEC", [] { (void)::syscall(SYS_memfd_secret, 0); });
    expect_killed_by("bpf(BPF_PROG_LOAD)", [] { (void)::syscall(SYS_bpf, 5, nullptr, 0); });
    expect_killed_by("bpf(BPF_MAP_CREATE)", [] { (void)::syscall(SYS_bpf, 0, nullptr, 0); });
    expect_killed_by("bpf(BPF_LINK_CREATE)", [] { (void)::syscall(SYS_bpf, 28, nullptr, 0); });
    expect_killed_by("bpf(BPF_PROG_ATTACH)", [] { (void)::syscall(SYS_bpf, 8, nullptr, 0); });
    expect_killed_by("pidfd_send_signal(SIGSTOP)",
                     [] { (void)::syscall(SYS_pidfd_send_signal, -1, SIGSTOP, nullptr, 0); });
    expect_killed_by("bind", [] { (void)::syscall(SYS_bind, -1, nullptr, 0); });
    expect_killed_by("listen", [] { (void)::syscall(SYS_listen, -1, 0); });
    expect_killed_by("accept4", [] { (void)::syscall(SYS_accept4, -1, nullptr, nullptr, 0); });
    expect_killed_by("personality", [] { (void)::syscall(SYS_personality, 0xffffffffUL); });
    expect_killed_by("capset", [] { (void)::syscall(SYS_capset, nullptr, nullptr); });
}

Test(harden_filter, argument_checks_kill_the_rest)
{
    require_seccomp();
    // Egress may open TCP (and UDP for DNS) sockets; nothing else of AF_INET, no raw or packet socket.
    expect_killed_by("socket(AF_INET, SOCK_RAW)", [] { (void)::syscall(SYS_socket, AF_INET, SOCK_RAW, 1); });
    expect_killed_by("socket(AF_PACKET)", [] { (void)::syscall(SYS_socket, 17 /* AF_PACKET */, SOCK_RAW, 0); });
    expect_killed_by("socket(AF_NETLINK)", [] { (void)::syscall(SYS_socket, AF_NETLINK, SOCK_RAW, 0); });
    expect_killed_by("socketpair(AF_UNIX, SOCK_DGRAM)", [] {
        int sv[2];
        (void)::syscall(SYS_socketpair, AF_UNIX, SOCK_DGRAM, 0, sv);
    });
    expect_killed_by("memfd_create without sealing", [] { (void)::syscall(SYS_memfd_create, "x", 0U); });
    expect_killed_by("socket(AF_UNIX, SOCK_STREAM)",
                     [] { (void)::syscall(SYS_socket, AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0); });
    expect_killed_by("socket(AF_UNIX, SOCK_DGRAM) without CLOEXEC",
                     [] { (void)::syscall(SYS_socket, AF_UNIX, SOCK_DGRAM, 0); });
    expect_killed_by("setsockopt(SOL_IP)", [] { (void)::syscall(SYS_setsockopt, -1, 0 /* SOL_IP */, 1, nullptr, 0); });
    expect_killed_by("mmap(PROT_EXEC)", [] {
        (void)::syscall(SYS_mmap, nullptr, 4096UL, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0L);
    });
    expect_killed_by("mprotect(PROT_EXEC)", [] {
        void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        (void)::syscall(SYS_mprotect, page, 4096UL, PROT_READ | PROT_EXEC);
    });
    expect_killed_by("pidfd_open with flags", [] { (void)::syscall(SYS_pidfd_open, ::getpid(), 1U); });
    expect_killed_by("tgkill(SIGUSR1)", [] { (void)::syscall(SYS_tgkill, ::getpid(), ::gettid(), SIGUSR1); });
    expect_killed_by("tgkill(parent, SIGABRT)", [] { (void)::syscall(SYS_tgkill, ::getppid(), ::getppid(), SIGABRT); });
    // bpf: only the monitor's map commands; creating a map or loading a program kills.
    expect_killed_by("bpf(BPF_MAP_CREATE)", [] {
        union bpf_attr attr {
        };
        (void)::syscall(SYS_bpf, BPF_MAP_CREATE, &attr, sizeof attr);
    });
    expect_killed_by("bpf(BPF_PROG_LOAD)", [] {
        union bpf_attr attr {
        };
        (void)::syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    });
    expect_killed_by("bpf(BPF_MAP_GET_NEXT_KEY)", [] {
        union bpf_attr attr {
        };
        (void)::syscall(SYS_bpf, BPF_MAP_GET_NEXT_KEY, &attr, sizeof attr);
    });
}

// abort() is allowed to end the way it always does: SIGABRT, not a seccomp kill.
Test(harden_filter, abort_still_ends_in_sigabrt)
{
    require_seccomp();
    const ChildOutcome outcome = run_filtered([](int) -> int { std::abort(); });
    cr_expect(WIFSIGNALED(outcome.status) && WTERMSIG(outcome.status) == SIGABRT, "status 0x%x",
              static_cast<unsigned>(outcome.status));
}

// The calls the daemon makes after start-up, exercised for real under the filter. The child
// exits with the number of the first check that failed (0: all passed).
Test(harden_filter, listed_calls_survive)
{
    require_seccomp();
    const ChildOutcome outcome = run_filtered([](int) -> int {
        char buffer[4096];
        const int status = ::openat(AT_FDCWD, "/proc/self/status", O_RDONLY | O_CLOEXEC);
        if (status < 0 || ::read(status, buffer, sizeof buffer) <= 0 || ::close(status) != 0) {
            return 1;
        }
        const int dir = ::openat(AT_FDCWD, "/proc/self", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir < 0 || ::readlinkat(dir, "exe", buffer, sizeof buffer) <= 0) {
            return 2;
        }
        struct stat st {};
        if (::fstatat(dir, "stat", &st, 0) != 0 || ::syscall(SYS_getdents64, dir, buffer, sizeof buffer) <= 0) {
            return 3;
        }
        ::close(dir);
        struct timespec ts {};
        if (::clock_gettime(CLOCK_BOOTTIME, &ts) != 0 || ::syscall(SYS_clock_gettime, CLOCK_MONOTONIC, &ts) != 0) {
            return 4;
        }
        if (::getrandom(buffer, 32, 0) != 32) {
            return 5;
        }
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, ::getpid(), 0));
        if (pidfd < 0) {
            return 6;
        }
        struct pollfd pfd {
            pidfd, POLLIN, 0
        };
        if (::poll(&pfd, 1, 0) != 0 || ::close(pidfd) != 0) {
            return 7;  // our own process has not exited: not readable
        }
        // The monitor's map commands, its attach and its connection check's iterator pass the
        // filter (the kernel then refuses a bad descriptor).
        for (const int cmd : {BPF_MAP_LOOKUP_ELEM, BPF_MAP_UPDATE_ELEM, BPF_MAP_DELETE_ELEM, BPF_RAW_TRACEPOINT_OPEN,
                              BPF_ITER_CREATE}) {
            union bpf_attr attr {
            };
            if (cmd == BPF_ITER_CREATE) {
                attr.iter_create.link_fd = static_cast<std::uint32_t>(-1);  // and nothing after its flags
            } else {
                attr.map_fd = static_cast<std::uint32_t>(-1);
                attr.raw_tracepoint.prog_fd = static_cast<std::uint32_t>(-1);  // a map command reads no further
            }
            if (::syscall(SYS_bpf, cmd, &attr, sizeof attr) != -1 || (errno != EBADF && errno != EPERM)) {
                return 11;
            }
        }
        // sd_notify's socket, exactly as libsystemd opens it.
        const int notify = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        int size = 0;
        socklen_t len = sizeof size;
        if (notify < 0 || ::getsockopt(notify, SOL_SOCKET, SO_SNDBUF, &size, &len) != 0 || ::close(notify) != 0) {
            return 8;
        }
        void* page = ::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == MAP_FAILED || ::mprotect(page, 4096, PROT_NONE) != 0 || ::munmap(page, 4096) != 0) {
            return 9;
        }
        void* heap = std::malloc(1 << 20);  // large: mmap'ed by malloc
        std::free(heap);
        // A terminal probe answers "not a terminal" instead of reaching a driver.
        struct winsize ws {};
        if (::ioctl(0, TIOCGWINSZ, &ws) != -1 || errno != ENOTTY) {
            return 10;
        }
        // PIDFD_GET_INFO (the caller's cgroup id) reaches the kernel, which refuses a bad descriptor.
        if (::ioctl(-1, 0xc040ff0bUL, nullptr) != -1 || errno != EBADF) {
            return 15;
        }
        // Egress: a TCP socket, the response stream's socketpair, a sealed memfd, a thread.
        const int tcp = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, IPPROTO_TCP);
        int one = 1;
        if (tcp < 0 || ::setsockopt(tcp, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0 || ::close(tcp) != 0) {
            return 11;
        }
        int pair[2];
        if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 || ::close(pair[0]) != 0 ||
            ::close(pair[1]) != 0) {
            return 12;
        }
        const int body = ::memfd_create("body", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (body < 0 || ::close(body) != 0) {
            return 13;
        }
        std::thread resolver([] {});
        resolver.join();
        // glibc's nscd probe is refused, not killed, so getaddrinfo falls back to /etc/hosts and DNS.
        if (::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0) != -1 || errno != EACCES) {
            return 14;
        }
        return 0;
    });
    cr_expect_eq(outcome.marks, "F", "the filter was not installed in the child (marks '%s')", outcome.marks.c_str());
    cr_expect(WIFEXITED(outcome.status), "the child was killed (signal %d) by a call the daemon needs",
              WIFSIGNALED(outcome.status) ? WTERMSIG(outcome.status) : 0);
    cr_expect_eq(WEXITSTATUS(outcome.status), 0, "check %d failed under the filter", WEXITSTATUS(outcome.status));
}

// The table itself: every row has a reason, every name is known here and appears only once,
// except in rows that each allow it only for other argument values (bpf: three map commands;
// pidfd_send_signal: SIGTERM, SIGKILL).
Test(harden_filter, the_table_is_well_formed)
{
    std::set<std::string> seen;
    std::set<std::string> unchecked;  // in a group without argument checks
    for (const auto& group : syscall_allowlist()) {
        cr_expect(!group.reason.empty(), "group %.*s has no reason", static_cast<int>(group.group.size()),
                  group.group.data());
        for (const auto name : group.syscalls) {
            const std::string text(name);
            cr_expect(::seccomp_syscall_resolve_name(text.c_str()) != __NR_SCMP_ERROR, "%s is unknown", text.c_str());
            // A call may sit in several groups only as alternatives, each checking its arguments.
            const bool again = !seen.insert(text).second;
            if (group.only_if.empty()) {
                cr_expect(!again && unchecked.insert(text).second, "%s is listed twice", text.c_str());
            } else {
                cr_expect(unchecked.count(text) == 0, "%s is listed twice, once without checks", text.c_str());
            }
            // bpf: each row allows exactly one map command, or the monitor's attach.
            if (text == "bpf") {
                cr_expect(group.only_if.size() == 1 && group.only_if[0].index == 0 &&
                              group.only_if[0].mask == 0xffffffffU &&
                              (group.only_if[0].value == BPF_MAP_LOOKUP_ELEM ||
                               group.only_if[0].value == BPF_MAP_UPDATE_ELEM ||
                               group.only_if[0].value == BPF_MAP_DELETE_ELEM ||
                               group.only_if[0].value == BPF_RAW_TRACEPOINT_OPEN ||
                               group.only_if[0].value == BPF_ITER_CREATE),
                          "bpf only for one map command (or the raw tracepoint attach, or an iterator) per row");
            }
        }
    }
    for (const char* never : {"execve", "execveat", "fork", "vfork", "ptrace", "mount", "capset", "setuid", "bind",
                              "listen", "accept4", "seccomp", "prctl", "kill"}) {
        cr_expect(seen.count(never) == 0, "%s must not be on the allowlist", never);
    }
    // clone only with CLONE_THREAD (a resolver thread, never a process); clone3 only refused.
    for (const auto& group : syscall_allowlist()) {
        for (const auto name : group.syscalls) {
            if (name == "clone") {
                cr_expect(group.only_if.size() == 1 && group.only_if[0].index == 0 &&
                              group.only_if[0].mask == CLONE_THREAD && group.only_if[0].value == CLONE_THREAD,
                          "clone must require CLONE_THREAD");
            }
            if (name == "clone3") {
                cr_expect(group.action == codexvault::harden::FilterAction::Errno, "clone3 must be refused (ENOSYS)");
            }
        }
    }
}
