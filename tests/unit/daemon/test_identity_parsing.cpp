// The /proc parsers, the cgroup -> unit mapping that feed the Subject, the pin bound, and the
// freshness of the /proc descriptors a pinned caller's entry keeps open.
#include <fcntl.h>
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "daemon/identity/identity_resolver.hpp"
#include "daemon/identity/proc_entry.hpp"
#include "daemon/identity/subject.hpp"

using namespace codexvault::identity;

namespace {
// Holds the value: Criterion's string macros would otherwise keep a dangling c_str().
void expect_text(const std::string& actual, const std::string& expected)
{
    cr_expect(actual == expected, "got \"%s\", expected \"%s\"", actual.c_str(), expected.c_str());
}
}  // namespace

Test(proc_parsing, status_uid_gid_groups)
{
    const std::string text = "Name:\tbash\nUid:\t1000\t0\t0\t0\nGid:\t100\t50\t50\t50\nGroups:\t4 24 27 \n";
    const auto status = parse_proc_status(text);
    cr_assert(status.has_value());
    cr_expect_eq(status->real_uid, 1000u);
    cr_expect_eq(status->effective_uid, 0u);
    cr_expect_eq(status->effective_gid, 50u);
    cr_assert_eq(status->groups.size(), 3u);
    cr_expect_eq(status->groups[2], 27u);
}

Test(proc_parsing, status_without_uid_or_with_garbage_is_refused)
{
    cr_expect(!parse_proc_status("Name:\tx\nGid:\t1\t1\t1\t1\n").has_value());
    cr_expect(!parse_proc_status("Uid:\tx\t0\t0\t0\nGid:\t1\t1\t1\t1\n").has_value());
    cr_expect(!parse_proc_status("Uid:\t0\t0\t0\t0\nGid:\t1\t1\t1\t1\nGroups:\t1 z\n").has_value());
}

// A read that stopped short must never yield fewer groups, or a gid cut to its first digits.
Test(proc_parsing, a_status_line_cut_short_is_refused)
{
    const std::string head = "Name:\tx\nUid:\t0\t0\t0\t0\nGid:\t1\t1\t1\t1\n";
    cr_expect(!parse_proc_status(head + "Groups:\t4 24 2").has_value());
    cr_expect(!parse_proc_status("Name:\tx\nUid:\t0\t0").has_value());
    cr_expect(!parse_proc_status("Uid:\t0\t0\t0\t0\nGid:\t1\t1").has_value());
    const auto whole = parse_proc_status(head + "Groups:\t4 24 27\nNStgid:\t1");
    cr_assert(whole.has_value());
    cr_expect_eq(whole->groups.size(), 3u);
    const auto none = parse_proc_status(head + "Groups:\t\n");
    cr_assert(none.has_value());
    cr_expect(none->groups.empty());
}

Test(proc_parsing, start_time_survives_hostile_command_names)
{
    std::string fields;
    for (int i = 3; i <= 21; ++i) {
        fields += " " + std::to_string(i);
    }
    const std::string stat = "42 (evil) 1 2 3 (x) y)" + fields + " 987654 23 24\n";
    // The comm "(evil) 1 2 3 (x) y" contains ") " sequences; only the last ')' counts.
    const auto start = parse_start_time(stat);
    cr_assert(start.has_value());
    cr_expect_eq(*start, 987654u);
    cr_expect(!parse_start_time("42 (x) S 1").has_value());
    cr_expect(!parse_start_time("no parenthesis").has_value());
}

Test(proc_parsing, unified_cgroup_line)
{
    expect_text(parse_unified_cgroup("12:cpu:/x\n0::/system.slice/a.service\n"), "/system.slice/a.service");
    expect_text(parse_unified_cgroup("1:name=systemd:/\n"), "");
    // Cut short: the path may be a prefix of the real one, so it is not a path at all.
    expect_text(parse_unified_cgroup("12:cpu:/x\n0::/system.slice/a.serv"), "");
}

Test(subject, unit_from_cgroup)
{
    expect_text(unit_from_cgroup("/system.slice/agent.service"), "agent.service");
    expect_text(unit_from_cgroup("/system.slice/system-getty.slice/getty@tty1.service"), "getty@tty1.service");
    expect_text(unit_from_cgroup("/user.slice/user-1000.slice/session-4.scope"), "session-4.scope");
    expect_text(unit_from_cgroup("/"), "");
    expect_text(unit_from_cgroup(""), "");
    expect_text(unit_from_cgroup("/init.scope"), "init.scope");
    expect_text(unit_from_cgroup("/system.slice/foo.socket"), "foo.socket");
    expect_text(unit_from_cgroup("/.service"), "");
    expect_text(unit_from_cgroup("/system.slice"), "");
}

// systemd's rule: the unit is the first component below the leading slices. What lies below a
// unit is named by whoever the unit delegates its subtree to, so it is never the system unit.
Test(subject, a_name_chosen_inside_a_delegated_subtree_is_never_the_unit)
{
    // A service with Delegate=yes (or its User=) may create any cgroup below its own.
    expect_text(unit_from_cgroup("/system.slice/runner.service/victim.service"), "runner.service");
    expect_text(unit_from_cgroup("/system.slice/runner.service/x.slice/victim.service"), "runner.service");
    // Anything that is not a unit where the unit should be: no unit, and no search further down.
    expect_text(unit_from_cgroup("/system.slice/payload/victim.service"), "");
    expect_text(unit_from_cgroup("/payload/victim.service"), "");
    expect_text(unit_from_cgroup("/system.slice/bad name.service/victim.service"), "");
    // A container's own units are not the host's.
    expect_text(unit_from_cgroup("/machine.slice/machine-c1.scope/payload/system.slice/sshd.service"),
                "machine-c1.scope");
}

Test(subject, a_process_under_a_user_manager_has_a_user_unit_never_a_system_unit)
{
    const auto attack = units_from_cgroup("/user.slice/user-65534.slice/user@65534.service/victim.service");
    expect_text(attack.unit, "user@65534.service");
    cr_assert(attack.user_manager_uid.has_value());
    cr_expect_eq(*attack.user_manager_uid, 65534u);
    expect_text(attack.user_unit, "victim.service");

    const auto app =
        units_from_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/app-gnome-tool-42.scope/x");
    expect_text(app.unit, "user@1000.service");
    cr_expect_eq(app.user_manager_uid.value_or(0), 1000u);
    expect_text(app.user_unit, "app-gnome-tool-42.scope");

    // The owner comes from the system unit only: a "user@0.service" the user creates in its own
    // subtree is a user unit of uid 1000.
    const auto nested = units_from_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/user@0.service/y");
    expect_text(nested.unit, "user@1000.service");
    cr_expect_eq(nested.user_manager_uid.value_or(0), 1000u);
    expect_text(nested.user_unit, "user@0.service");

    // The manager itself, and system units that only look alike.
    const auto manager = units_from_cgroup("/user.slice/user-1000.slice/user@1000.service");
    cr_expect_eq(manager.user_manager_uid.value_or(0), 1000u);
    expect_text(manager.user_unit, "");
    cr_expect(!units_from_cgroup("/system.slice/agent.service").user_manager_uid.has_value());
    cr_expect(!units_from_cgroup("/user.slice/user@x.service/a.service").user_manager_uid.has_value());
    cr_expect(!units_from_cgroup("/user.slice/user@01.service/a.service").user_manager_uid.has_value());
    cr_expect(!units_from_cgroup("/user.slice/user@.service/a.service").user_manager_uid.has_value());
    cr_expect(!units_from_cgroup("/user.slice/user@99999999999.service/a.service").user_manager_uid.has_value());
}

// Each pinned caller holds four descriptors (pidfd, /proc/PID, status, cgroup); a reserve is
// kept for everything else the daemon opens, so callers can never exhaust the limit.
Test(identity_resolver, pin_capacity_stays_below_the_descriptor_limit)
{
    const auto systemd_default = pin_capacity(1024);
    cr_expect_eq(systemd_default.reserved_fds, 256u);
    cr_expect_eq(PinCapacity::kFdsPerPeer, 4u);
    cr_expect_eq(systemd_default.max_pinned, 192u);
    const auto unit = pin_capacity(8192);  // LimitNOFILE= in codex-vaultd.service
    cr_expect_eq(unit.reserved_fds, 2048u);
    cr_expect_eq(unit.max_pinned, 1536u);
    cr_expect_eq(pin_capacity(192).max_pinned, 16u);
    cr_expect_eq(pin_capacity(128).max_pinned, 0u);
    cr_expect_eq(pin_capacity(0).max_pinned, 0u);
    cr_expect_eq(pin_capacity(RLIM_INFINITY).max_pinned, PinCapacity::kMaxPinnedPeers);
    for (const rlim_t limit : {rlim_t{130}, rlim_t{1000}, rlim_t{1024}, rlim_t{4096}, rlim_t{65536}, rlim_t{1 << 20}}) {
        const auto c = pin_capacity(limit);
        cr_expect_leq(c.max_pinned * PinCapacity::kFdsPerPeer + c.reserved_fds, limit, "limit %llu",
                      static_cast<unsigned long long>(limit));
        cr_expect_geq(c.reserved_fds, PinCapacity::kMinReservedFds);
    }
}

Test(proc_entry, reads_this_process)
{
    ProcEntry self(::getpid());
    const auto status = self.status();
    cr_expect_eq(status.effective_uid, ::geteuid());
    cr_expect_gt(self.start_time(), 0u);
    const auto exe = self.exe();
    cr_assert(exe.has_value());
    cr_expect_gt(exe->inode, 0u);
}

namespace {

// A child that waits for a byte on a pipe, runs `step` for it, and exits when the pipe closes.
struct Child {
    pid_t pid = -1;
    int command = -1;  // write end
    int done = -1;     // read end: a byte after each step
};

Child fork_child(void (*step)(char))
{
    int command[2], done[2];
    cr_assert(::pipe2(command, O_CLOEXEC) == 0 && ::pipe2(done, O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    cr_assert(pid >= 0);
    if (pid == 0) {
        ::close(command[1]);
        ::close(done[0]);
        char byte = 0;
        while (::read(command[0], &byte, 1) == 1) {
            step(byte);
            if (::write(done[1], &byte, 1) != 1) {
                _exit(2);
            }
        }
        _exit(0);
    }
    ::close(command[0]);
    ::close(done[1]);
    return Child{pid, command[1], done[0]};
}

void run_step(const Child& child, char byte)
{
    cr_assert_eq(::write(child.command, &byte, 1), 1);
    cr_assert_eq(::read(child.done, &byte, 1), 1);
}

void drop_to_nobody(char /*byte*/)
{
    if (::setgroups(0, nullptr) != 0 || ::setresgid(65534, 65534, 65534) != 0 ||
        ::setresuid(65534, 65534, 65534) != 0) {
        _exit(3);
    }
}

void do_nothing(char /*byte*/)
{
}

// The cgroup2 hierarchy's mount point, or empty.
std::string cgroup2_mount()
{
    std::ifstream mountinfo("/proc/self/mountinfo");
    std::string line;
    while (std::getline(mountinfo, line)) {
        const auto separator = line.find(" - ");
        if (separator == std::string::npos || line.compare(separator + 3, 8, "cgroup2 ") != 0) {
            continue;
        }
        std::istringstream fields(line.substr(0, separator));
        std::string id, parent, device, root, mount_point;
        fields >> id >> parent >> device >> root >> mount_point;
        if (root == "/") {
            return mount_point;
        }
    }
    return {};
}

}  // namespace

// The entry keeps `status` open and reads it again from offset 0: that must be the process's
// credentials now, not when the file was opened.
Test(proc_entry, a_kept_entry_sees_a_uid_changed_after_it_was_opened)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root to start a process as root and switch it to uid 65534");
    }
    const Child child = fork_child(drop_to_nobody);
    const ProcEntry entry(child.pid);
    cr_expect_eq(entry.status().effective_uid, 0u);
    run_step(child, 'd');
    const auto after = entry.status();
    cr_expect_eq(after.effective_uid, 65534u);
    cr_expect_eq(after.effective_gid, 65534u);
    cr_expect(after.groups.empty());
    ::close(child.command);
    ::close(child.done);
    ::waitpid(child.pid, nullptr, 0);
}

// Once the process is gone (reaped), a kept entry cannot be read: the caller is refused, never
// answered from what the entry saw before.
Test(proc_entry, a_kept_entry_of_a_reaped_process_cannot_be_read)
{
    const Child child = fork_child(do_nothing);
    const ProcEntry entry(child.pid);
    (void)entry.status();
    ::close(child.command);
    ::close(child.done);
    cr_assert_eq(::waitpid(child.pid, nullptr, 0), child.pid);
    cr_expect_any_throw((void)entry.status());
    cr_expect(entry.cgroup().empty());
}

// The kept `cgroup` descriptor follows the process into another cgroup.
Test(proc_entry, a_kept_entry_sees_a_cgroup_the_process_moved_to)
{
    if (::geteuid() != 0) {
        cr_skip_test("needs root to create a cgroup and move a process");
    }
    const std::string mount = cgroup2_mount();
    if (mount.empty()) {
        cr_skip_test("no cgroup2 hierarchy is mounted");
    }
    const std::string name = "cv-unit-" + std::to_string(::getpid());
    const std::string dir = mount + "/" + name;
    if (::mkdir(dir.c_str(), 0755) != 0) {
        cr_skip_test("cgroup2 at %s is not writable: %s", mount.c_str(), std::strerror(errno));
    }
    const Child child = fork_child(do_nothing);
    const ProcEntry entry(child.pid);
    const std::string before = entry.cgroup();
    {
        std::ofstream move(dir + "/cgroup.procs");
        move << child.pid << std::flush;
        cr_expect(static_cast<bool>(move), "could not move the child into %s", dir.c_str());
    }
    const std::string after = entry.cgroup();
    ::close(child.command);
    ::close(child.done);
    ::waitpid(child.pid, nullptr, 0);
    ::rmdir(dir.c_str());
    cr_expect(before != after, "still %s", before.c_str());
    cr_expect(after.size() >= name.size() && after.compare(after.size() - name.size(), name.size(), name) == 0,
              "after the move: \"%s\"", after.c_str());
}
