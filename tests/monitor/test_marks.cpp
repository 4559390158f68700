// Marks in the real kernel: a mark goes down to children, grandchildren and their children, each
// inheritance and each removal at exit is recorded, and the gate count follows.
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "tests/monitor/support.hpp"

using codexvault::monitor::MarkEvent;
using codexvault::monitor::OnTouch;
using namespace cvtest;

namespace {

// Reads one pid_t from a pipe.
pid_t read_pid(int fd)
{
    pid_t pid = -1;
    const auto n = ::read(fd, &pid, sizeof(pid));
    cr_assert_eq(n, static_cast<ssize_t>(sizeof(pid)), "read pid: %s", std::strerror(errno));
    return pid;
}

bool has_change(const std::vector<MarkEvent>& marks, MarkEvent::Change change, pid_t tgid, std::uint64_t id)
{
    return std::any_of(marks.begin(), marks.end(), [&](const MarkEvent& m) {
        return m.change == change && m.task.tgid == static_cast<std::uint32_t>(tgid) && m.mark_id == id;
    });
}

}  // namespace

Test(monitor_marks, a_mark_goes_down_three_levels_and_ends_at_exit)
{
    auto monitor = load_or_skip();
    int pids[2];
    cr_assert_eq(::pipe(pids), 0);
    Latch marked;
    Latch release;

    // level 1 forks level 2, which forks level 3; each reports its pid and waits.
    const pid_t level1 = spawn([&] {
        marked.wait();
        const pid_t level2 = ::fork();
        if (level2 == 0) {
            const pid_t level3 = ::fork();
            if (level3 == 0) {
                const pid_t self = ::getpid();
                (void)!::write(pids[1], &self, sizeof(self));
                release.wait();
                ::_exit(0);
            }
            const pid_t self = ::getpid();
            (void)!::write(pids[1], &self, sizeof(self));
            ::waitpid(level3, nullptr, 0);
            ::_exit(0);
        }
        ::waitpid(level2, nullptr, 0);
        return 0;
    });
    cr_assert(!monitor->mark_process(level1, 7, OnTouch::record));
    cr_expect_eq(monitor->gate_count(), 1U);
    marked.release();

    const pid_t first = read_pid(pids[0]);
    const pid_t second = read_pid(pids[0]);
    for (const pid_t p : {first, second}) {
        const auto mark = monitor->mark_of(p);
        cr_assert(mark.has_value(), "pid %d did not inherit the mark", p);
        cr_expect_eq(mark->id, 7U);
    }
    cr_expect_eq(monitor->gate_count(), 3U);

    release.release();
    cr_assert(WIFEXITED(reap(level1)));
    const auto events = drain_until(*monitor, [&](const codexvault::monitor::Event& e) {
        const auto* m = std::get_if<MarkEvent>(&e);
        return m != nullptr && m->change == MarkEvent::Change::removed &&
               m->task.tgid == static_cast<std::uint32_t>(level1);
    });
    const auto marks = only<MarkEvent>(events);
    for (const pid_t p : {first, second}) {
        cr_expect(has_change(marks, MarkEvent::Change::inherited, p, 7), "no inheritance recorded for %d", p);
    }
    for (const pid_t p : {level1, first, second}) {
        cr_expect(has_change(marks, MarkEvent::Change::removed, p, 7), "no removal recorded for %d", p);
        cr_expect(!monitor->mark_of(p).has_value(), "pid %d still marked after exit", p);
    }
    // Each inheritance names its parent: level 2's is level 1, level 3's is level 2.
    const auto parent_of = [&](pid_t p) {
        for (const auto& m : marks) {
            if (m.change == MarkEvent::Change::inherited && m.task.tgid == static_cast<std::uint32_t>(p)) {
                return static_cast<pid_t>(m.parent_tgid);
            }
        }
        return pid_t{-1};
    };
    const pid_t level2 = parent_of(first) == level1 ? first : second;
    const pid_t level3 = level2 == first ? second : first;
    cr_expect_eq(parent_of(level2), level1);
    cr_expect_eq(parent_of(level3), level2);
    cr_expect_eq(monitor->gate_count(), 0U);
    cr_expect_eq(monitor->lost_events(), 0U);
}

Test(monitor_marks, remarking_updates_and_unmark_counts)
{
    auto monitor = load_or_skip();
    Latch go;
    const pid_t child = spawn([&] {
        go.wait();
        return 0;
    });
    cr_assert(!monitor->mark_process(child, 9, OnTouch::record));
    cr_assert(!monitor->mark_process(child, 10, OnTouch::kill), "re-marking updates the mark");
    cr_expect_eq(monitor->gate_count(), 1U, "an update is not a second mark");
    cr_expect_eq(monitor->mark_of(child)->id, 10U);
    cr_assert(!monitor->unmark(child));
    cr_expect_eq(monitor->gate_count(), 0U);
    cr_expect(monitor->unmark(child), "a second unmark reports ENOENT");
    go.release();
    reap(child);
    cr_expect(monitor->mark_process(child, 0, OnTouch::record), "id 0 is refused");
}
