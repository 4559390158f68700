// Attempts on a marked process in the real kernel: ptrace, process_vm_readv and opening its
// /proc entries by another process are alerts naming both sides.
#include <fcntl.h>
#include <sys/ptrace.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <functional>
#include <string>

#include "tests/monitor/support.hpp"

using codexvault::monitor::AccessEvent;
using codexvault::monitor::OnTouch;
using namespace cvtest;

namespace {

constexpr std::uint64_t victim_id = 5;
volatile char victim_data[32] = "victim's secret";

// Runs `attack(victim_pid)` in an unmarked child against a marked, waiting victim; returns the
// attacker's pid and every record seen until one of `kind` from the attacker arrived.
struct Attack {
    pid_t victim;
    pid_t attacker;
    int attacker_status;
    std::vector<AccessEvent> records;
};

Attack attack_marked(Monitor& monitor, AccessEvent::Kind kind, const std::function<int(pid_t)>& attack)
{
    Latch done;
    const pid_t victim = spawn([&] {
        done.wait();
        return 0;
    });
    cr_assert(!monitor.mark_process(victim, victim_id, OnTouch::record));
    const pid_t attacker = spawn([&] { return attack(victim); });
    const int status = reap(attacker);
    const auto events = drain_until(monitor, [&](const codexvault::monitor::Event& e) {
        const auto* a = std::get_if<AccessEvent>(&e);
        return a != nullptr && a->actor.tgid == static_cast<std::uint32_t>(attacker) && a->kind == kind;
    });
    done.release();
    reap(victim);
    return {victim, attacker, status, only<AccessEvent>(events)};
}

const AccessEvent* find(const Attack& at, AccessEvent::Kind kind)
{
    const auto it = std::find_if(at.records.begin(), at.records.end(), [&](const AccessEvent& a) {
        return a.actor.tgid == static_cast<std::uint32_t>(at.attacker) && a.kind == kind;
    });
    return it == at.records.end() ? nullptr : &*it;
}

void expect_attempt(const Attack& at, AccessEvent::Kind kind)
{
    cr_assert(WIFEXITED(at.attacker_status) && WEXITSTATUS(at.attacker_status) == 0,
              "the attack itself failed (status %d)", at.attacker_status);
    const AccessEvent* a = find(at, kind);
    cr_assert(a != nullptr, "no %s attempt recorded", std::string(to_string(kind)).c_str());
    cr_expect(a->alert);
    cr_expect(a->is_attempt());
    cr_expect_eq(a->target_tgid, static_cast<std::uint32_t>(at.victim));
    cr_expect_eq(a->id, victim_id);
    cr_expect_eq(a->actor_mark, 0U);
    cr_expect_eq(a->dev, 0U);
}

int read_all(const std::string& path)
{
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        return 1;
    }
    char buf[256];
    const bool ok = ::read(fd, buf, sizeof(buf)) >= 0;
    ::close(fd);
    return ok ? 0 : 1;
}

}  // namespace

Test(monitor_attempts, ptrace_on_a_marked_process_is_an_alert)
{
    auto monitor = load_or_skip();
    const auto at = attack_marked(*monitor, AccessEvent::Kind::ptrace, [](pid_t victim) {
        return ::ptrace(PTRACE_SEIZE, victim, nullptr, nullptr) == 0 ? 0 : 1;
    });
    expect_attempt(at, AccessEvent::Kind::ptrace);
    cr_expect_eq(find(at, AccessEvent::Kind::ptrace)->detail, static_cast<std::uint32_t>(PTRACE_SEIZE));
}

Test(monitor_attempts, ptrace_attach_is_an_alert_too)
{
    auto monitor = load_or_skip();
    const auto at = attack_marked(*monitor, AccessEvent::Kind::ptrace, [](pid_t victim) {
        if (::ptrace(PTRACE_ATTACH, victim, nullptr, nullptr) != 0) {
            return 1;
        }
        ::waitpid(victim, nullptr, __WALL);
        return ::ptrace(PTRACE_DETACH, victim, nullptr, nullptr) == 0 ? 0 : 1;
    });
    expect_attempt(at, AccessEvent::Kind::ptrace);
    cr_expect_eq(find(at, AccessEvent::Kind::ptrace)->detail, static_cast<std::uint32_t>(PTRACE_ATTACH));
}

Test(monitor_attempts, process_vm_readv_on_a_marked_process_is_an_alert)
{
    auto monitor = load_or_skip();
    const auto at = attack_marked(*monitor, AccessEvent::Kind::vm_read, [](pid_t victim) {
        char buf[sizeof(victim_data)];
        iovec local{buf, sizeof(buf)};
        // Forked from the same image: the victim's copy lives at the same address.
        iovec remote{const_cast<char*>(victim_data), sizeof(victim_data)};
        return ::process_vm_readv(victim, &local, 1, &remote, 1, 0) == sizeof(buf) ? 0 : 1;
    });
    expect_attempt(at, AccessEvent::Kind::vm_read);
}

Test(monitor_attempts, opening_proc_environ_of_a_marked_process_is_an_alert)
{
    auto monitor = load_or_skip();
    const auto at = attack_marked(*monitor, AccessEvent::Kind::proc_open, [](pid_t victim) {
        return read_all("/proc/" + std::to_string(victim) + "/environ");
    });
    expect_attempt(at, AccessEvent::Kind::proc_open);
}

Test(monitor_attempts, opening_proc_mem_through_a_thread_dir_is_an_alert)
{
    // /proc/PID/task/TID/mem names the process by its thread: the struct pid in the proc inode
    // resolves it, no path text is parsed.
    auto monitor = load_or_skip();
    const auto at = attack_marked(*monitor, AccessEvent::Kind::proc_open, [](pid_t victim) {
        const auto dir = "/proc/" + std::to_string(victim) + "/task/" + std::to_string(victim);
        return read_all(dir + "/mem") == 0 || ::open((dir + "/mem").c_str(), O_RDONLY) >= 0 ? 0 : 1;
    });
    expect_attempt(at, AccessEvent::Kind::proc_open);
}

Test(monitor_attempts, opening_proc_fd_of_a_marked_process_is_an_alert)
{
    // /proc/PID/fd/N opens the target file itself, so this one is recognised at entry by its text.
    auto monitor = load_or_skip();
    const auto at = attack_marked(*monitor, AccessEvent::Kind::proc_open, [](pid_t victim) {
        const int fd = ::open(("/proc/" + std::to_string(victim) + "/fd/0").c_str(), O_RDONLY | O_CLOEXEC);
        return fd >= 0 ? 0 : 1;
    });
    expect_attempt(at, AccessEvent::Kind::proc_open);
}

Test(monitor_attempts, its_own_proc_entries_and_unmarked_targets_are_not_recorded)
{
    auto monitor = load_or_skip();
    Latch done;
    const pid_t bystander = spawn([&] {
        done.wait();
        return 0;
    });
    // Something must be marked for the hooks to run at all.
    Latch marked_done;
    const pid_t marked = spawn([&] {
        marked_done.wait();
        return 0;
    });
    cr_assert(!monitor->mark_process(marked, victim_id, OnTouch::record));
    const pid_t actor = spawn(
        [&] { return read_all("/proc/" + std::to_string(bystander) + "/environ") + read_all("/proc/self/environ"); });
    const pid_t self_reader = spawn([&] { return 0; });
    reap(actor);
    reap(self_reader);
    done.release();
    marked_done.release();
    reap(bystander);
    reap(marked);
    const auto records = only<AccessEvent>(drain_for(*monitor, std::chrono::milliseconds(200)));
    cr_expect(records.empty(), "%zu records", records.size());
}
