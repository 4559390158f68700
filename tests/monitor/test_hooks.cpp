// The per-syscall hooks are attached only while something is tracked or marked (every syscall on
// the machine pays for them while they are): detached at load, attached by the first
// track_inode/mark_process before it returns (so the first read after it is recorded), detached
// again when the last entry goes (untrack, unmark, or a marked process's exit). Attaching needs
// no capability; when the kernel refuses it, track_inode and mark_process fail and change nothing.
#include <linux/bpf.h>
#include <linux/capability.h>
#include <seccomp.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <cerrno>
#include <string>

#include "tests/monitor/support.hpp"

using codexvault::monitor::AccessEvent;
using codexvault::monitor::OnTouch;
using namespace cvtest;

namespace {

bool attached_in_kernel()
{
    const auto links = own_tracepoint_links();
    const bool enter = std::find(links.begin(), links.end(), "sys_enter") != links.end();
    const bool exit = std::find(links.begin(), links.end(), "sys_exit") != links.end();
    cr_expect_eq(enter, exit, "sys_enter and sys_exit are attached together");
    return enter;
}

bool alert_from(Monitor& monitor, pid_t reader)
{
    const auto events = drain_until(monitor, [&](const codexvault::monitor::Event& e) {
        const auto* a = std::get_if<AccessEvent>(&e);
        return a != nullptr && a->actor.tgid == static_cast<std::uint32_t>(reader) && a->alert;
    });
    for (const auto& a : only<AccessEvent>(events)) {
        if (a.actor.tgid == static_cast<std::uint32_t>(reader) && a.alert) {
            return true;
        }
    }
    return false;
}

pid_t read_once(const MemFd& secret)
{
    return spawn([&] {
        char byte = 0;
        return ::pread(secret.fd, &byte, 1, 0) == 1 ? 0 : 1;
    });
}

}  // namespace

Test(monitor_hooks, are_detached_while_nothing_is_tracked_and_attached_while_an_inode_is)
{
    auto monitor = load_or_skip();
    cr_expect(!monitor->syscall_hooks_attached());
    cr_expect(!attached_in_kernel(), "hooks in the kernel with nothing tracked");
    cr_expect_eq(monitor->syscall_hook_attaches(), 1U, "attached once at load, to prove it can be");

    const auto a = make_memfd("first");
    const auto b = make_memfd("second");
    cr_assert(!monitor->track_inode(a.dev, a.ino, 5, OnTouch::record));
    cr_expect(monitor->syscall_hooks_attached());
    cr_expect(attached_in_kernel(), "no hooks in the kernel while an inode is tracked");
    cr_assert(!monitor->track_inode(b.dev, b.ino, 6, OnTouch::record));
    cr_assert(!monitor->untrack_inode(a.dev, a.ino));
    cr_expect(attached_in_kernel(), "one inode is still tracked");
    cr_assert(!monitor->untrack_inode(b.dev, b.ino));
    cr_expect(!monitor->syscall_hooks_attached());
    cr_expect(!attached_in_kernel(), "hooks left attached after the last untrack");
    cr_expect_eq(monitor->syscall_hook_attaches(), 2U);
}

Test(monitor_hooks, a_marked_process_keeps_them_attached_until_its_exit_is_drained)
{
    auto monitor = load_or_skip();
    Latch go;
    const pid_t marked = spawn([&] {
        go.wait();
        return 0;
    });
    cr_assert(!monitor->mark_process(marked, 9, OnTouch::record));
    cr_expect(attached_in_kernel(), "no hooks while a process is marked");
    go.release();
    reap(marked);
    // The kernel removed the mark at exit; the drain that reads that record detaches.
    drain_until(*monitor, [&](const codexvault::monitor::Event& e) {
        const auto* m = std::get_if<codexvault::monitor::MarkEvent>(&e);
        return m != nullptr && m->change == codexvault::monitor::MarkEvent::Change::removed;
    });
    monitor->drain();
    cr_expect_eq(monitor->gate_count(), 0U);
    cr_expect(!attached_in_kernel(), "hooks left attached after the marked process exited");
}

// What Inject relies on: the descriptor is handed out after track_inode returns, and the very
// first read of it is recorded, however often the hooks came and went before.
Test(monitor_hooks, the_first_read_after_track_inode_returns_is_recorded_every_time)
{
    auto monitor = load_or_skip();
    for (int round = 0; round < 10; ++round) {
        const auto secret = make_memfd("round");
        cr_assert(
            !monitor->track_inode(secret.dev, secret.ino, 100 + static_cast<std::uint64_t>(round), OnTouch::record));
        const pid_t reader = read_once(secret);
        cr_assert_eq(reap(reader), 0);
        cr_expect(alert_from(*monitor, reader), "round %d: the first read was not recorded", round);
        cr_assert(!monitor->untrack_inode(secret.dev, secret.ino));
        cr_expect(!monitor->syscall_hooks_attached());
        ::close(secret.fd);
    }
    cr_expect_eq(monitor->lost_events(), 0U);
}

Test(monitor_hooks, a_process_without_uid_0_or_any_capability_attaches_them)
{
    auto monitor = load_or_skip();
    Monitor& m = *monitor;
    const pid_t unprivileged = spawn([&]() -> int {
        __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
        __user_cap_data_struct data[2] = {};
        if (::setresgid(65534, 65534, 65534) != 0 || ::setresuid(65534, 65534, 65534) != 0 ||
            ::syscall(SYS_capset, &header, data) != 0) {
            return 10;
        }
        const auto secret = make_memfd("unprivileged");
        if (m.track_inode(secret.dev, secret.ino, 11, OnTouch::record)) {
            return 11;
        }
        if (!m.syscall_hooks_attached()) {
            return 12;
        }
        const pid_t reader = read_once(secret);
        reap(reader);
        return alert_from(m, reader) ? 0 : 13;
    });
    const int status = reap(unprivileged);
    cr_assert(WIFEXITED(status), "the unprivileged child died (status %d)", status);
    cr_expect_eq(WEXITSTATUS(status), 0, "failed at step %d (10 drop, 11 track, 12 attached, 13 alert)",
                 WEXITSTATUS(status));
}

// Fail closed: a kernel (here a filter) that refuses the attach makes track_inode and
// mark_process fail, and nothing is left tracked, marked or counted.
Test(monitor_hooks, a_refused_attach_fails_track_and_mark_and_changes_nothing)
{
    auto monitor = load_or_skip();
    Monitor& m = *monitor;
    const pid_t child = spawn([&]() -> int {
        scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
        const bool ok = ctx != nullptr &&
                        seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EPERM), SCMP_SYS(bpf), 1,
                                         SCMP_A0(SCMP_CMP_EQ, BPF_RAW_TRACEPOINT_OPEN)) == 0 &&
                        seccomp_load(ctx) == 0;
        seccomp_release(ctx);
        if (!ok) {
            return 10;
        }
        const auto secret = make_memfd("refused");
        if (m.track_inode(secret.dev, secret.ino, 12, OnTouch::record) != std::errc::operation_not_permitted) {
            return 11;
        }
        if (m.mark_process(::getpid(), 12, OnTouch::record) != std::errc::operation_not_permitted) {
            return 12;
        }
        if (m.gate_count() != 0 || m.mark_of(::getpid()) || m.syscall_hooks_attached()) {
            return 13;
        }
        // Nothing tracked: untracking finds nothing.
        return m.untrack_inode(secret.dev, secret.ino) == std::errc::no_such_file_or_directory ? 0 : 14;
    });
    const int status = reap(child);
    cr_assert(WIFEXITED(status), "the child died (status %d)", status);
    cr_expect_eq(WEXITSTATUS(status), 0, "failed at step %d (10 filter, 11 track, 12 mark, 13 state, 14 untrack)",
                 WEXITSTATUS(status));
}

Test(monitor_hooks, attached_for_life_without_attach_on_demand)
{
    codexvault::monitor::Options options;
    options.attach_on_demand = false;
    auto monitor = load_or_skip(options);
    cr_expect(monitor->syscall_hooks_attached());
    cr_expect(attached_in_kernel());
}

Test(monitor_hooks, never_attached_without_syscall_hooks)
{
    codexvault::monitor::Options options;
    options.syscall_hooks = false;
    auto monitor = load_or_skip(options);
    const auto secret = make_memfd("unhooked");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, 13, OnTouch::record));
    cr_expect(!monitor->syscall_hooks_attached());
    cr_expect(!attached_in_kernel());
}
