// The pure parts of the loader, on hand-made records: decoding, path assembly, the exe cache.
// No BPF needed, so these never skip.
#include <criterion/criterion.h>

#include <cstring>
#include <vector>

#include "bpf/monitor_events.h"
#include "daemon/monitor/events.hpp"
#include "daemon/monitor/exec_cache.hpp"

using namespace codexvault::monitor;

namespace {

std::vector<std::byte> exec_record(std::uint32_t tgid, std::uint64_t boot_ns, const char* leaf_first, std::size_t len,
                                   std::uint64_t time_ns)
{
    mon_exec_event ev{};
    ev.hdr.kind = MON_EV_EXEC;
    ev.hdr.time_ns = time_ns;
    ev.task.tgid = tgid;
    ev.task.pid = tgid;
    ev.task.start_boottime_ns = boot_ns;
    ev.task.exe_ino = 99;
    std::memcpy(ev.task.comm, "prog", 5);
    ev.path_len = static_cast<std::uint32_t>(len);
    std::memcpy(ev.path, leaf_first, len);
    const std::size_t size = offsetof(mon_exec_event, path) + len;
    ev.hdr.size = static_cast<std::uint32_t>(size);
    std::vector<std::byte> out(size);
    std::memcpy(out.data(), &ev, size);
    return out;
}

ExecEvent exec_event(std::uint32_t tgid, std::uint64_t boot_ns, const char* path, std::uint64_t time_ns)
{
    ExecEvent e;
    e.task.tgid = tgid;
    e.task.start_boottime_ns = boot_ns;
    e.task.has_exe = true;
    e.exe_path = path;
    e.time_ns = time_ns;
    return e;
}

constexpr std::uint64_t second = 1'000'000'000ULL;

}  // namespace

Test(monitor_decode, paths_are_assembled_root_first)
{
    cr_expect_str_eq(assemble_path(std::string_view("true\0bin\0usr\0", 13)).c_str(), "/usr/bin/true");
    cr_expect_str_eq(assemble_path(std::string_view("x\0", 2)).c_str(), "/x");
    cr_expect_str_eq(assemble_path("").c_str(), "/");
}

Test(monitor_decode, an_exec_record_cut_after_its_path_decodes)
{
    const auto bytes = exec_record(1234, 5 * second, "sleep\0bin\0usr\0", 14, 6 * second);
    const auto event = decode_event(bytes);
    cr_assert(event.has_value());
    const auto& e = std::get<ExecEvent>(*event);
    cr_expect_eq(e.task.tgid, 1234U);
    cr_expect_str_eq(e.exe_path.c_str(), "/usr/bin/sleep");
    cr_expect_str_eq(e.task.comm.c_str(), "prog");
    cr_expect_eq(e.time_ns, 6 * second);
    cr_expect(!e.existing);
}

Test(monitor_decode, malformed_records_are_refused)
{
    auto bytes = exec_record(1, second, "a\0", 2, second);
    cr_expect(!decode_event(std::span(bytes).first(10)).has_value(), "shorter than a header");
    auto lying = bytes;
    reinterpret_cast<mon_exec_event*>(lying.data())->path_len = 500;  // beyond the record
    cr_expect(!decode_event(lying).has_value());
    auto unknown = bytes;
    reinterpret_cast<mon_event_header*>(unknown.data())->kind = 99;
    cr_expect(!decode_event(unknown).has_value());
    mon_access_event acc{};
    acc.hdr.kind = MON_EV_ACCESS;
    acc.hdr.size = sizeof(acc);
    acc.access = 0;  // no such access kind
    std::vector<std::byte> raw(sizeof(acc));
    std::memcpy(raw.data(), &acc, sizeof(acc));
    cr_expect(!decode_event(raw).has_value());
}

Test(monitor_decode, the_cache_keys_on_pid_and_start_time)
{
    ExecCache cache(16);
    cache.record(exec_event(100, 10 * second, "/usr/bin/old", 11 * second));
    // Same pid, later start: a different process.
    cache.record(exec_event(100, 50 * second, "/usr/bin/new", 51 * second));
    const auto old_ticks = boottime_ns_to_ticks(10 * second);
    const auto new_ticks = boottime_ns_to_ticks(50 * second);
    cr_assert_neq(old_ticks, new_ticks);
    cr_expect_str_eq(cache.exe_of(100, old_ticks)->path.c_str(), "/usr/bin/old");
    cr_expect_str_eq(cache.exe_of(100, new_ticks)->path.c_str(), "/usr/bin/new");
    cr_expect(!cache.exe_of(100, new_ticks + 1).has_value());
}

Test(monitor_decode, the_cache_answers_what_exe_a_process_had_at_a_time)
{
    ExecCache cache(16);
    const auto ticks = boottime_ns_to_ticks(10 * second);
    cache.record(exec_event(7, 10 * second, "/usr/bin/b", 20 * second));
    cache.record(exec_event(7, 10 * second, "/usr/bin/a", 0));  // seen by the walk at start
    cache.record(exec_event(7, 10 * second, "/usr/bin/c", 30 * second));
    cr_expect_str_eq(cache.exe_at(7, ticks, 15 * second)->path.c_str(), "/usr/bin/a");
    cr_expect_str_eq(cache.exe_at(7, ticks, 20 * second)->path.c_str(), "/usr/bin/b");
    cr_expect_str_eq(cache.exe_at(7, ticks, 99 * second)->path.c_str(), "/usr/bin/c");
    cr_expect_str_eq(cache.exe_of(7, ticks)->path.c_str(), "/usr/bin/c");
}

Test(monitor_decode, the_cache_forgets_the_least_recently_used)
{
    ExecCache cache(3);
    for (std::uint32_t pid = 1; pid <= 3; ++pid) {
        cache.record(exec_event(pid, second, "/x", second));
    }
    const auto t = boottime_ns_to_ticks(second);
    cr_assert(cache.exe_of(1, t).has_value());  // 1 is now the most recently used
    cache.record(exec_event(4, second, "/y", second));
    cr_expect_eq(cache.size(), 3U);
    cr_expect(cache.exe_of(1, t).has_value());
    cr_expect(!cache.exe_of(2, t).has_value(), "the least recently used entry goes first");
    cr_expect(cache.exe_of(4, t).has_value());
}

Test(monitor_decode, a_pid_reused_by_a_process_that_never_execd_finds_no_exe)
{
    ExecCache cache(16);
    cache.record(exec_event(300, 10 * second, "/usr/bin/trusted", 11 * second));
    // Same pid, started later, forked without exec: no record of its own.
    const auto history = cache.history(300, boottime_ns_to_ticks(12 * second), 13 * second);
    cr_expect(!history.at.has_value());
    cr_expect(!history.now.has_value());
    cr_expect(!history.exec_since);
}

Test(monitor_decode, an_exec_after_a_moment_is_reported_whatever_the_exe_before_it)
{
    ExecCache cache(16);
    const auto ticks = boottime_ns_to_ticks(10 * second);
    // Forked without exec (no record), connected at 15 s, exec'd at 20 s.
    cache.record(exec_event(8, 10 * second, "/usr/bin/trusted", 20 * second));
    const auto at_connection = cache.history(8, ticks, 15 * second);
    cr_expect(at_connection.exec_since, "an exec after the connection appeared must show");
    cr_expect(!at_connection.at.has_value());
    cr_expect_str_eq(at_connection.now->path.c_str(), "/usr/bin/trusted");
    cr_expect(!cache.history(8, ticks, 25 * second).exec_since);
}

Test(monitor_decode, after_lost_records_no_older_exe_is_vouched_for)
{
    ExecCache cache(16);
    const auto ticks = boottime_ns_to_ticks(10 * second);
    cache.record(exec_event(9, 10 * second, "/usr/bin/a", 11 * second));
    cache.note_loss(40 * second);
    const auto lost = cache.history(9, ticks, 50 * second);
    cr_expect(lost.uncertain, "an exec of this process may be among the lost records");
    cr_expect(!lost.at.has_value() && !lost.now.has_value());
    cr_expect(!cache.exe_of(9, ticks).has_value());
    // Its next exec is recorded after the loss: known again from then on.
    cache.record(exec_event(9, 10 * second, "/usr/bin/b", 45 * second));
    const auto again = cache.history(9, ticks, 50 * second);
    cr_expect(!again.uncertain);
    cr_expect_str_eq(again.at->path.c_str(), "/usr/bin/b");
    cr_expect(!cache.history(9, ticks, 30 * second).at.has_value(), "before the loss it stays unknown");
    // A process started after the loss and never seen is simply unknown, not uncertain.
    cr_expect(!cache.history(10, boottime_ns_to_ticks(60 * second), 70 * second).uncertain);
}
