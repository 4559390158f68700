// The tail reader's cost is bounded: a filter that matches nothing reads the scan budget, not the
// whole log; follow mode finds its place in a large segment by bisection and still pages through
// every record; and a frame boundary found from any offset is the real one.
#include <fcntl.h>
#include <sodium.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <system_error>
#include <vector>

#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/log_reader.hpp"
#include "lib/auditcore/record.hpp"
#include "lib/auditcore/segment_dir.hpp"

using namespace codexvault::audit;
namespace fs = std::filesystem;

namespace {

using Bytes = std::vector<std::uint8_t>;

fs::path g_dir;

void setup()
{
    cr_assert_geq(sodium_init(), 0);
    char templ[] = "/tmp/cv-log-reader-XXXXXX";
    cr_assert_not_null(::mkdtemp(templ), "mkdtemp: %s", std::strerror(errno));
    g_dir = templ;
}

void teardown()
{
    std::error_code ignored;
    fs::remove_all(g_dir, ignored);
}

// Writes `segments` segment files of `records_each` records into g_dir, as the daemon's writer
// lays them out (records only; the reader does not need checkpoints). Records whose seq is a
// multiple of `marked_every` have uid 4242, all others uid 1000. Returns the last seq.
std::uint64_t write_log(int segments, int records_each, std::uint64_t marked_every = 0)
{
    ChainWriter writer;
    std::uint64_t clock = 1'700'000'000'000'000ULL;
    for (int s = 0; s < segments; ++s) {
        Bytes bytes;
        Bytes first;
        ++clock;
        const SegmentHeaderBytes header = writer.begin_segment(clock, clock, first);
        bytes.assign(header.begin(), header.end());
        bytes.insert(bytes.end(), first.begin(), first.end());
        for (int i = 0; i < records_each; ++i) {
            const std::uint64_t seq = writer.state().next_seq;
            RecordView r;
            r.type = EventType::Decision;
            r.decision = Decision::Allow;
            r.realtime_usec = ++clock;
            r.monotonic_usec = clock;
            r.subject_known = true;
            r.uid = marked_every != 0 && seq % marked_every == 0 ? 4242 : 1000;
            r.pid = 77;
            r.sender = ":1.99";
            r.exe = "/usr/bin/python3.11";
            r.unit = "agent.service";
            r.action = "request";
            r.object = "secret-" + std::to_string(seq % 13);
            r.reason = "grant g-1 allows request, padded to a realistic record size of a few hundred bytes";
            r.grant = "g-1";
            (void)writer.append(r, bytes);
        }
        // In a real log a segment ends with a sealing checkpoint; to the reader that is one more
        // record, so these segments simply end.
        std::ofstream out(g_dir / segment_file_name(writer.state().segment), std::ios::binary);
        out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
        cr_assert(out.good());
    }
    return writer.state().next_seq - 1;
}

std::uint64_t log_bytes()
{
    std::uint64_t total = 0;
    for (const auto& entry : fs::directory_iterator(g_dir)) {
        total += entry.file_size();
    }
    return total;
}

}  // namespace

TestSuite(log_reader, .init = setup, .fini = teardown, .timeout = 60);

Test(log_reader, a_frame_boundary_is_found_from_every_offset_and_is_the_real_one)
{
    ChainWriter writer;
    Bytes first;
    const SegmentHeaderBytes header = writer.begin_segment(1, 1, first);
    Bytes bytes(header.begin(), header.end());
    std::vector<std::size_t> starts;
    for (int i = 0; i < 12; ++i) {
        starts.push_back(bytes.size());
        RecordView r;
        r.type = EventType::Outcome;
        r.realtime_usec = 10 + static_cast<std::uint64_t>(i);
        r.monotonic_usec = r.realtime_usec;
        r.action = "request";
        r.object = std::string(static_cast<std::size_t>(i * 7), 'x');  // frames of different sizes
        r.reason = "done";
        (void)writer.append(r, bytes);
    }
    const std::span<const std::uint8_t> body(bytes.data() + kSegmentHeaderBytes, bytes.size() - kSegmentHeaderBytes);
    for (std::size_t off = 0; off < body.size(); ++off) {
        const std::optional<std::size_t> found = find_frame_start(body, off);
        std::optional<std::size_t> expected;
        for (const std::size_t start : starts) {
            if (start - kSegmentHeaderBytes >= off) {
                expected = start - kSegmentHeaderBytes;
                break;
            }
        }
        cr_assert(found == expected, "from offset %zu: found %zd, expected %zd", off, found ? ssize_t(*found) : -1,
                  expected ? ssize_t(*expected) : -1);
    }
}

Test(log_reader, a_filter_matching_nothing_reads_the_budget_not_the_log)
{
    (void)write_log(1, 30000);
    const std::uint64_t total = log_bytes();
    cr_assert_gt(total, 4u << 20, "the test log is too small (%llu bytes)", static_cast<unsigned long long>(total));

    TailQuery query;
    query.filter.uid = 999999;
    query.limit = 20;
    query.max_scan_bytes = 1 << 20;
    const TailResult bounded = read_tail(g_dir, query);
    cr_assert(bounded.entries.empty());
    cr_assert_not(bounded.complete, "a search cut by its budget says it is complete");
    cr_assert_leq(bounded.scanned_bytes, query.max_scan_bytes + kSegmentHeaderBytes, "read %zu bytes",
                  bounded.scanned_bytes);
    bool noted = false;
    for (const auto& note : bounded.notes) {
        noted = noted || note.find("size limit") != std::string::npos;
    }
    cr_assert(noted, "no note says the search was cut short");

    query.max_scan_bytes = 0;  // offline: everything
    const TailResult full = read_tail(g_dir, query);
    cr_assert(full.complete);
    cr_assert_eq(full.scanned_bytes, total);
}

Test(log_reader, the_newest_matches_are_found_within_the_budget)
{
    const std::uint64_t last = write_log(2, 12000, 500);
    TailQuery query;
    query.filter.uid = 4242;
    query.limit = 3;
    query.max_scan_bytes = 1 << 20;
    const TailResult result = read_tail(g_dir, query);
    cr_assert_eq(result.entries.size(), 3u);
    const std::uint64_t newest_marked = last - last % 500;
    cr_assert_eq(result.entries[2].record.seq, newest_marked);
    cr_assert_eq(result.entries[1].record.seq, newest_marked - 500);
    cr_assert_eq(result.entries[0].record.seq, newest_marked - 1000);
    cr_assert(result.complete, "enough matches were found; nothing was cut short");
}

Test(log_reader, follow_mode_pages_through_every_record_within_its_budget)
{
    const std::uint64_t last = write_log(3, 6000);
    std::set<std::uint64_t> seen;
    TailQuery query;
    query.limit = 700;
    query.max_scan_bytes = 256 << 10;
    query.after_seq = 0;
    int calls = 0;
    while (calls < 10000) {
        ++calls;
        const TailResult page = read_tail(g_dir, query);
        // A page reads its budget plus the few bisection windows that find its place.
        cr_assert_leq(page.scanned_bytes, query.max_scan_bytes + 64 * 70000, "a page read %zu bytes",
                      page.scanned_bytes);
        for (const auto& entry : page.entries) {
            cr_assert(seen.insert(entry.record.seq).second, "seq %llu returned twice",
                      static_cast<unsigned long long>(entry.record.seq));
        }
        if (page.last_seq == *query.after_seq && page.entries.empty()) {
            break;
        }
        query.after_seq = page.last_seq;
    }
    cr_assert_eq(seen.size(), last, "paging returned %zu of %llu records", seen.size(),
                 static_cast<unsigned long long>(last));
    cr_assert_eq(*seen.begin(), 1u);
    cr_assert_eq(*seen.rbegin(), last);
}

Test(log_reader, follow_mode_from_deep_inside_a_large_segment_bisects_instead_of_reading_it)
{
    const std::uint64_t last = write_log(1, 30000);
    TailQuery query;
    query.limit = 100;
    query.max_scan_bytes = 1 << 20;
    query.after_seq = last - 10;
    const TailResult result = read_tail(g_dir, query);
    cr_assert_eq(result.entries.size(), 10u);
    cr_assert_eq(result.entries.front().record.seq, last - 9);
    cr_assert_eq(result.entries.back().record.seq, last);
    cr_assert(result.complete);
    cr_assert_lt(result.scanned_bytes, log_bytes() / 4, "read %zu of %llu bytes", result.scanned_bytes,
                 static_cast<unsigned long long>(log_bytes()));
}
