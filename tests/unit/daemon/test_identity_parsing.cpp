// The /proc parsers, the cgroup -> unit mapping that feed the Subject, and the pin bound.
#include <unistd.h>

#include <criterion/criterion.h>

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

// Each pinned caller holds two descriptors; a reserve is kept for everything else the daemon
// opens, so callers can never exhaust the limit.
Test(identity_resolver, pin_capacity_stays_below_the_descriptor_limit)
{
    const auto systemd_default = pin_capacity(1024);
    cr_expect_eq(systemd_default.reserved_fds, 256u);
    cr_expect_eq(systemd_default.max_pinned, 384u);
    const auto unit = pin_capacity(8192);  // LimitNOFILE= in codex-vaultd.service
    cr_expect_eq(unit.reserved_fds, 2048u);
    cr_expect_eq(unit.max_pinned, 3072u);
    cr_expect_eq(pin_capacity(192).max_pinned, 32u);
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
