// After the daemon drops every capability: what was created at load keeps working (map updates,
// the gate, records through the ring), and nothing new can be created. Also how the ring's fd
// wakes: at once for alerts, never for routine records.
#include <bpf/bpf.h>
#include <linux/capability.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <chrono>

#include "tests/monitor/support.hpp"

using codexvault::monitor::AccessEvent;
using codexvault::monitor::MarkEvent;
using codexvault::monitor::OnTouch;
using namespace cvtest;

namespace {

bool drop_all_capabilities()
{
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    __user_cap_data_struct data[2] = {};
    return ::syscall(SYS_capset, &header, data) == 0;
}

// Exit codes of the capability-less child, one per step that can fail.
enum Step : int {
    ok = 0,
    capset_failed = 10,
    map_create_allowed,
    track_failed,
    mark_failed,
    no_alert,
    no_inheritance,
    untrack_failed,
};

bool epoll_readable(int fd, int timeout_ms)
{
    const int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    epoll_event out{};
    const int n = ::epoll_wait(ep, &out, 1, timeout_ms);
    ::close(ep);
    return n == 1;
}

}  // namespace

Test(monitor_caps, after_dropping_every_capability_records_and_map_updates_go_on)
{
    auto monitor = load_or_skip();
    Monitor& m = *monitor;
    const pid_t unprivileged = spawn([&]() -> int {
        if (!drop_all_capabilities()) {
            return capset_failed;
        }
        // New maps are refused now: the ones from load are all there is.
        if (bpf_map_create(BPF_MAP_TYPE_ARRAY, nullptr, 4, 8, 1, nullptr) >= 0) {
            return map_create_allowed;
        }
        const auto secret = make_memfd("s3cret");
        if (m.track_inode(secret.dev, secret.ino, 3, OnTouch::record)) {
            return track_failed;
        }
        Latch marked;
        const pid_t parent = ::fork();
        if (parent == 0) {
            marked.wait();
            const pid_t child = ::fork();  // inherits the mark
            if (child == 0) {
                ::_exit(0);
            }
            ::waitpid(child, nullptr, 0);
            ::_exit(0);
        }
        if (m.mark_process(parent, 4, OnTouch::record)) {
            return mark_failed;
        }
        marked.release();
        ::waitpid(parent, nullptr, 0);
        const pid_t reader = ::fork();
        if (reader == 0) {
            char buf[8];
            ::_exit(::pread(secret.fd, buf, sizeof(buf), 0) > 0 ? 0 : 1);
        }
        ::waitpid(reader, nullptr, 0);
        const auto events = drain_for(m, std::chrono::milliseconds(300));
        bool alert = false;
        for (const auto& a : only<AccessEvent>(events)) {
            alert = alert || (a.actor.tgid == static_cast<std::uint32_t>(reader) && a.alert);
        }
        bool inherited = false;
        for (const auto& mark : only<MarkEvent>(events)) {
            inherited = inherited || (mark.change == MarkEvent::Change::inherited &&
                                      mark.parent_tgid == static_cast<std::uint32_t>(parent));
        }
        if (!alert) {
            return no_alert;
        }
        if (!inherited) {
            return no_inheritance;
        }
        return m.untrack_inode(secret.dev, secret.ino) ? untrack_failed : ok;
    });
    const int status = reap(unprivileged);
    cr_assert(WIFEXITED(status), "the capability-less child died (status %d)", status);
    cr_expect_eq(WEXITSTATUS(status), ok, "failed at step %d (see enum Step)", WEXITSTATUS(status));
}

Test(monitor_caps, an_alert_wakes_the_ring_fd_and_routine_records_do_not)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, 8, OnTouch::record));
    monitor->drain();

    // Routine: the marked owner reads; a sleeping epoll_wait is not woken.
    Latch go_owner;
    const pid_t owner = spawn([&] {
        go_owner.wait();
        char buf[8];
        return ::pread(secret.fd, buf, sizeof(buf), 0) > 0 ? 0 : 1;
    });
    cr_assert(!monitor->mark_process(owner, 8, OnTouch::record));
    go_owner.release();
    cr_expect(!epoll_readable(monitor->ring_fd(), 300), "a routine record woke the ring fd");
    reap(owner);
    cr_expect_gt(monitor->drain(), 0U, "the routine record was there all along");

    // Alert: an unmarked reader; the sleeper wakes at once.
    Latch go_thief;
    const pid_t thief = spawn([&] {
        go_thief.wait();
        char buf[8];
        return ::pread(secret.fd, buf, sizeof(buf), 0) > 0 ? 0 : 1;
    });
    go_thief.release();
    const auto start = std::chrono::steady_clock::now();
    cr_expect(epoll_readable(monitor->ring_fd(), 2000), "an alert did not wake the ring fd");
    cr_expect_lt(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(1000));
    reap(thief);
}
