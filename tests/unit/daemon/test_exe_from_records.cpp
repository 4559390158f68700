// The rule that judges a caller by the exe its process had when its connection appeared, and what
// the resolver believes of an exec record, against scripted records (no kernel, no bus).
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <climits>
#include <optional>
#include <string>

#include "daemon/identity/exe_digest.hpp"
#include "daemon/identity/exe_from_records.hpp"

using namespace codexvault;
using identity::ExeSource;
using identity::Subject;
using monitor::ExeHistory;
using monitor::ExeRecord;

namespace {

class ScriptedRecords final : public identity::ExecRecords {
public:
    ExeHistory history;
    std::uint64_t asked_at = 0;
    ExeHistory exe_history(pid_t /*pid*/, std::uint64_t /*start_ticks*/, std::uint64_t at_ns) override
    {
        asked_at = at_ns;
        return history;
    }
    monitor::PeerCheck connection_credentials(pid_t /*pid*/, std::uint64_t /*dev*/, std::uint64_t /*ino*/) override
    {
        return {};  // not what these tests are about (test_connect_check.cpp is)
    }
};

// This test binary: a real file whose (device, inode) the record can name.
ExeRecord this_binary()
{
    char path[PATH_MAX] = {};
    cr_assert(::readlink("/proc/self/exe", path, sizeof path - 1) > 0);
    struct stat st {};
    cr_assert_eq(::stat(path, &st), 0);
    ExeRecord rec;
    rec.path = path;
    rec.dev = st.st_dev;
    rec.ino = st.st_ino;
    rec.exec_time_ns = 1;
    return rec;
}

Subject unreadable_caller()
{
    Subject s;
    s.pid = 4242;
    s.bus_name = ":1.7";
    s.start_time_ticks = 100;
    return s;
}

}  // namespace

Test(exe_from_records, a_caller_whose_proc_exe_is_closed_gets_the_recorded_exe_and_its_digest)
{
    ScriptedRecords records;
    records.history.at = this_binary();
    records.history.now = this_binary();
    identity::ExeDigestCache digests;
    Subject s = unreadable_caller();
    cr_assert(!identity::exe_at_connection(records, digests, 5000, s).has_value());
    cr_expect_eq(records.asked_at, 5000U, "asked at the moment the connection appeared");
    cr_expect(s.exe_known);
    cr_expect_eq(s.exe_source, ExeSource::monitor);
    cr_expect_eq(s.exe, this_binary().path);
    cr_expect_eq(s.exe_sha256.size(), 64U, "the recorded inode is hashed");
}

Test(exe_from_records, a_record_whose_path_now_names_another_inode_leaves_the_exe_and_digest_unknown)
{
    ScriptedRecords records;
    ExeRecord rec = this_binary();
    rec.ino += 1;  // the path was replaced since the exec
    records.history.at = rec;
    records.history.now = rec;
    identity::ExeDigestCache digests;
    Subject s = unreadable_caller();
    cr_assert(!identity::exe_at_connection(records, digests, 5000, s).has_value());
    cr_expect(!s.exe_known);
    cr_expect(s.exe.empty() && s.exe_sha256.empty());
    cr_expect_eq(s.exe_source, ExeSource::none);
}

Test(exe_from_records, a_path_cut_short_is_never_matched)
{
    ScriptedRecords records;
    ExeRecord rec = this_binary();
    rec.path_truncated = true;
    records.history.at = rec;
    records.history.now = rec;
    identity::ExeDigestCache digests;
    Subject s = unreadable_caller();
    cr_assert(!identity::exe_at_connection(records, digests, 5000, s).has_value());
    cr_expect(!s.exe_known);
}

Test(exe_from_records, an_exec_after_the_connection_appeared_refuses_even_a_proc_readable_caller)
{
    ScriptedRecords records;
    records.history.exec_since = true;
    records.history.now = this_binary();
    identity::ExeDigestCache digests;
    Subject s = unreadable_caller();
    s.exe = this_binary().path;  // what /proc says now: the trusted binary
    s.exe_known = true;
    s.exe_source = ExeSource::proc;
    const auto refusal = identity::exe_at_connection(records, digests, 5000, s);
    cr_assert(refusal.has_value());
    cr_expect(refusal->find("after its connection appeared") != std::string::npos, "%s", refusal->c_str());
}

Test(exe_from_records, lost_records_make_even_a_proc_exe_unknown)
{
    ScriptedRecords records;
    records.history.uncertain = true;
    identity::ExeDigestCache digests;
    Subject s = unreadable_caller();
    s.exe = "/usr/bin/x";
    s.exe_known = true;
    s.exe_source = ExeSource::proc;
    cr_assert(!identity::exe_at_connection(records, digests, 5000, s).has_value());
    cr_expect(!s.exe_known);
}

Test(exe_from_records, a_recorded_exe_that_changed_since_the_pin_refuses_the_call)
{
    ScriptedRecords records;
    identity::ExeDigestCache digests;
    Subject pinned = unreadable_caller();
    cr_assert(!identity::exe_at_connection(records, digests, 5000, pinned).has_value());
    pinned.exe = "/usr/bin/old";
    pinned.exe_known = true;
    pinned.exe_device = 1;
    pinned.exe_inode = 2;
    pinned.exe_source = ExeSource::monitor;
    records.history.now = this_binary();
    Subject fresh = pinned;
    const auto refusal = identity::recheck_recorded_exe(records, digests, pinned, fresh);
    cr_assert(refusal.has_value());
    cr_expect(refusal->find("runs another executable") != std::string::npos, "%s", refusal->c_str());
    // Evicted or no longer vouched for: unknown, not refused.
    records.history = {};
    fresh = pinned;
    cr_expect(!identity::recheck_recorded_exe(records, digests, pinned, fresh).has_value());
    cr_expect(!fresh.exe_known);
}
