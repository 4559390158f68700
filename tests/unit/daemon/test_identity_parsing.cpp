// The /proc parsers and the cgroup -> unit mapping that feed the Subject.
#include <unistd.h>

#include <criterion/criterion.h>

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
    expect_text(unit_from_cgroup("/user.slice/user-1000.slice/user@1000.service/app.slice/tool.service"),
                "tool.service");
    expect_text(unit_from_cgroup("/user.slice/user-1000.slice/session-4.scope"), "session-4.scope");
    expect_text(unit_from_cgroup("/"), "");
    expect_text(unit_from_cgroup("/init.scope"), "init.scope");
    expect_text(unit_from_cgroup("/.service"), "");
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
