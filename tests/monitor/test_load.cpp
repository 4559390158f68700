// What the loader finds out before it calls bpf(2): a process without the capabilities, or under
// a system-call filter that kills on bpf(2) (a systemd unit's SystemCallFilter=~@privileged),
// gets `unavailable` with the reason instead of a refused or fatal call. Each case runs in a
// child that installs such a filter first, so a loader that called bpf(2) anyway dies of SIGSYS
// and the test fails.
#include <linux/capability.h>
#include <seccomp.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <chrono>
#include <string>

#include "tests/monitor/support.hpp"

using codexvault::monitor::AccessEvent;
using codexvault::monitor::OnTouch;
using codexvault::monitor::Options;
using codexvault::monitor::Status;
using codexvault::monitor::Unavailable;
using namespace cvtest;

namespace {

// Exit codes of the probing child.
enum Outcome : int {
    as_expected = 0,
    setup_failed = 10,
    loaded_anyway,
    wrong_reason,
};

bool kill_on_bpf()
{
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        return false;
    }
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (ctx == nullptr) {
        return false;
    }
    const bool ok = seccomp_rule_add(ctx, SCMP_ACT_KILL_PROCESS, SCMP_SYS(bpf), 0) == 0 && seccomp_load(ctx) == 0;
    seccomp_release(ctx);
    return ok;
}

bool drop_all_capabilities()
{
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    return ::syscall(SYS_capset, &header, data) == 0;
}

// Runs a load in a child under `prepare`; the child's exit status says what the loader reported.
int load_in_child(bool drop_capabilities, const char* expected_reason)
{
    const pid_t pid = spawn([&] {
        if ((drop_capabilities && !drop_all_capabilities()) || !kill_on_bpf()) {
            return static_cast<int>(setup_failed);
        }
        const auto loaded = codexvault::monitor::Monitor::open_and_load();
        if (loaded.monitor || loaded.status.state != Status::State::unavailable) {
            return static_cast<int>(loaded_anyway);
        }
        const std::string described = loaded.status.describe();
        if (loaded.status.why != Unavailable::not_permitted || described.find(expected_reason) == std::string::npos ||
            described.rfind("unavailable: ", 0) != 0) {
            return static_cast<int>(wrong_reason);
        }
        return static_cast<int>(as_expected);
    });
    return reap(pid);
}

}  // namespace

Test(monitor_load, without_cap_bpf_the_monitor_is_unavailable_and_bpf_is_never_called)
{
    const int status = load_in_child(true, "no CAP_BPF and CAP_PERFMON");
    cr_assert(!WIFSIGNALED(status), "the loader called bpf(2) without the capabilities (child died of signal %d)",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), as_expected, "child outcome %d", WEXITSTATUS(status));
}

Test(monitor_load, a_filter_that_kills_on_bpf_is_detected_not_died_of)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root: with the capabilities the loader gets past its capability check to the filter");
    }
    const int status = load_in_child(false, "seccomp filter");
    cr_assert(!WIFSIGNALED(status), "the loader died under a filter that kills bpf(2) (signal %d)",
              WIFSIGNALED(status) ? WTERMSIG(status) : 0);
    cr_assert_eq(WEXITSTATUS(status), as_expected, "child outcome %d", WEXITSTATUS(status));
}

Test(monitor_load, without_syscall_hooks_a_touch_is_not_recorded)
{
    Options options;
    options.syscall_hooks = false;
    auto monitor = load_or_skip(options);
    for (const auto& program : monitor->status().programs) {
        cr_expect(program.hook != "sys_enter" && program.hook != "sys_exit", "%s is attached", program.hook.c_str());
    }
    const MemFd secret = make_memfd("not-a-real-secret-but-tracked");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, 7, OnTouch::record));
    const pid_t reader = spawn([&] {
        char byte = 0;
        return ::pread(secret.fd, &byte, 1, 0) == 1 ? 0 : 1;
    });
    cr_assert_eq(reap(reader), 0);
    const auto events = drain_for(*monitor, std::chrono::milliseconds(300));
    cr_expect(only<AccessEvent>(events).empty(), "a touch was recorded without the syscall hooks");
    ::close(secret.fd);
}
