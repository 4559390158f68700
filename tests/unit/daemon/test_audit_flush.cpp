// The audit log's flush off the event loop (daemon/audit/flush_job.*, segment_flusher.*, and the
// marks in audit_log.*): a flush covers exactly what was written before it began, records keep
// being written while it is in flight, a failed flush fails the log closed, the head file names a
// checkpoint only once a flush made it durable, nothing closes the segment under a flush in
// flight, and AuditTrail rotates, seals and checkpoints with its flusher thread running while the
// folder still verifies offline.
#include <fcntl.h>
#include <poll.h>
#include <sodium.h>
#include <sys/stat.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "daemon/audit/audit_log.hpp"
#include "daemon/audit/audit_trail.hpp"
#include "daemon/audit/flush_job.hpp"
#include "daemon/audit/segment_flusher.hpp"
#include "lib/auditcore/offline_verify.hpp"
#include "lib/auditcore/segment_dir.hpp"

namespace fs = std::filesystem;
using namespace codexvault::audit;

namespace {

using Seed = std::array<std::uint8_t, kAuditSeedBytes>;

struct Clock {
    std::uint64_t realtime = 1'700'000'000'000'000ULL;
    std::uint64_t monotonic = 5'000'000'000ULL;
    Timestamps tick(std::uint64_t usec = 1000)
    {
        realtime += usec;
        monotonic += usec;
        return Timestamps{realtime, monotonic};
    }
};

fs::path g_root;
fs::path g_state;

void setup()
{
    cr_assert_geq(sodium_init(), 0);
    char templ[] = "/tmp/cv-audit-flush-XXXXXX";
    cr_assert_not_null(::mkdtemp(templ), "mkdtemp: %s", std::strerror(errno));
    g_root = templ;
    g_state = g_root / "state";
    cr_assert_eq(::mkdir(g_state.c_str(), 0700), 0);
}

void teardown()
{
    std::error_code ec;
    fs::remove_all(g_root, ec);
}

fs::path audit_dir()
{
    return g_state / "audit";
}

AuditLogOptions test_options()
{
    AuditLogOptions o;
    o.mirror_to_journal = false;
    o.set_append_only_flag = false;
    return o;
}

std::unique_ptr<AuditLog> open_log(Clock& clock, const AuditLogOptions& options = test_options())
{
    Seed seed{};
    seed.fill(0x5a);
    return AuditLog::open(g_state, seed, options, clock.tick());
}

RecordView use_record(std::uint32_t uid)
{
    RecordView r;
    r.type = EventType::Decision;
    r.decision = Decision::Allow;
    r.subject_known = true;
    r.uid = uid;
    r.pid = 4242;
    r.sender = ":1.77";
    r.action = "grant.use";
    r.object = "audit:read";
    r.reason = "authorized";
    return r;
}

void append_n(AuditLog& log, Clock& clock, int n)
{
    for (int i = 0; i < n; ++i) {
        cr_assert(log.append(use_record(1000), clock.tick()) == Appended::Queued, "append failed: %s",
                  log.failure_reason().c_str());
    }
}

std::string read_text(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// The folder verifies offline with the key kept outside it, head included.
void expect_verifies()
{
    const fs::path pub = g_root / "audit.pub";
    fs::copy_file(audit_dir() / "audit.pub", pub, fs::copy_options::overwrite_existing);
    std::ostringstream out;
    const int rc = run_audit_verify(audit_dir().string(), pub.string(), false, out);
    cr_assert_eq(rc, 0, "the folder does not verify:\n%s", out.str().c_str());
}

bool a_thread_is_named(const std::string& name)
{
    for (const auto& task : fs::directory_iterator("/proc/self/task")) {
        std::string comm = read_text(task.path() / "comm");
        while (!comm.empty() && comm.back() == '\n') {
            comm.pop_back();
        }
        if (comm == name) {
            return true;
        }
    }
    return false;
}

// One allowed Use decision queued on the trail, as the pipeline writes it.
void queue_use_decision(AuditTrail& trail)
{
    const AuditRecord r{.type = EventType::Decision,
                        .action = "grant.use",
                        .object = "audit:read",
                        .subject = nullptr,
                        .sender = ":1.9",
                        .decision = Decision::Allow,
                        .reason = "authorized",
                        .grant = "g-1",
                        .informational = false};
    cr_assert(trail.record(r) == Appended::Queued, "%s", trail.failure_reason().c_str());
}

}  // namespace

TestSuite(audit_flush, .init = setup, .fini = teardown, .timeout = 60);

Test(audit_flush, a_flush_covers_what_was_written_before_it_began_and_nothing_after)
{
    Clock clock;
    auto log = open_log(clock);
    const std::uint64_t durable_at_start = log->durable_seq();
    cr_assert_eq(durable_at_start, log->last_seq(), "the start-up records are durable once open() returns");

    append_n(*log, clock, 3);
    const std::uint64_t first_three = log->last_seq();
    cr_assert_eq(log->durable_seq(), durable_at_start, "appended is not durable");
    std::optional<FlushJob> job = log->begin_flush();
    cr_assert(job.has_value());
    cr_assert_eq(job->mark, first_three, "the job covers every record written before it");
    cr_assert_eq(log->written_seq(), first_three);
    cr_assert(log->flush_in_flight());

    // In flight: the loop keeps appending and writing, but no second job goes out.
    append_n(*log, clock, 2);
    cr_assert(log->write_pending(), "%s", log->failure_reason().c_str());
    cr_assert_eq(log->written_seq(), first_three + 2);
    cr_assert_not(log->begin_flush().has_value(), "a second job while one is in flight");

    cr_assert(log->end_flush(run_flush_job(*job)), "%s", log->failure_reason().c_str());
    cr_assert_eq(log->durable_seq(), first_three, "records written after the flush began are not covered by it");
    cr_assert_not(log->flush_in_flight());

    std::optional<FlushJob> next = log->begin_flush();
    cr_assert(next.has_value(), "what was written meanwhile needs the next flush");
    cr_assert_eq(next->mark, first_three + 2);
    cr_assert(log->end_flush(run_flush_job(*next)));
    cr_assert_eq(log->durable_seq(), log->last_seq());
    cr_assert_not(log->begin_flush().has_value(), "nothing left to flush");
    cr_assert(log->close(clock.tick()));
    expect_verifies();
}

Test(audit_flush, the_flusher_thread_runs_the_job_and_reports_through_the_eventfd)
{
    Clock clock;
    auto log = open_log(clock);
    SegmentFlusher flusher;
    cr_assert_not(a_thread_is_named("audit-flush"));
    flusher.start();
    cr_assert(flusher.running());
    cr_assert(a_thread_is_named("audit-flush"), "the flusher thread is not visible under its name");

    append_n(*log, clock, 4);
    std::optional<FlushJob> job = log->begin_flush();
    cr_assert(job.has_value());
    const std::uint64_t mark = job->mark;
    flusher.submit(std::move(*job));
    cr_assert(flusher.busy());

    struct pollfd pfd {
        flusher.event_fd(), POLLIN, 0
    };
    cr_assert_eq(::poll(&pfd, 1, 30'000), 1, "the eventfd never became readable");
    flusher.read_event();
    std::optional<FlushResult> result = flusher.take_result();
    cr_assert(result.has_value());
    cr_assert_not(flusher.busy());
    cr_assert(result->ok(), "%s", result->failure.c_str());
    cr_assert_eq(result->mark, mark);
    cr_assert(log->end_flush(*result));
    cr_assert_eq(log->durable_seq(), mark);

    // wait() is the loop's blocking path (sealing, stop): the same result, no eventfd needed.
    append_n(*log, clock, 1);
    job = log->begin_flush();
    cr_assert(job.has_value());
    flusher.submit(std::move(*job));
    const FlushResult waited = flusher.wait();
    cr_assert(waited.ok());
    cr_assert(log->end_flush(waited));
    cr_assert_eq(log->durable_seq(), log->last_seq());

    flusher.stop();
    cr_assert_not(flusher.running());
    cr_assert_not(a_thread_is_named("audit-flush"), "the flusher thread outlived stop()");
    cr_assert(log->close(clock.tick()));
}

Test(audit_flush, a_failed_fdatasync_fails_the_log_closed_and_advances_nothing)
{
    Clock clock;
    auto log = open_log(clock);
    const std::uint64_t durable = log->durable_seq();
    append_n(*log, clock, 2);
    std::optional<FlushJob> job = log->begin_flush();
    cr_assert(job.has_value());
    FlushJob broken = *job;
    broken.segment_fd = -1;  // the fdatasync fails (EBADF), as a failing disk's would
    const FlushResult result = run_flush_job(broken);
    cr_assert_not(result.ok());
    cr_assert(result.failure.find("audit log fdatasync failed") != std::string::npos, "%s", result.failure.c_str());

    cr_assert_not(log->end_flush(result));
    cr_assert_not(log->healthy());
    cr_assert(log->failure_reason().find("fdatasync failed") != std::string::npos, "%s", log->failure_reason().c_str());
    cr_assert_eq(log->durable_seq(), durable, "a failed flush made nothing durable");
    cr_assert(log->append(use_record(1000), clock.tick()) == Appended::Failed, "a failed log accepted a record");
    cr_assert_not(log->begin_flush().has_value());
    cr_assert_not(log->sync());
}

Test(audit_flush, a_checkpoint_written_under_a_flush_in_flight_reaches_the_head_only_after_its_own_flush)
{
    Clock clock;
    auto log = open_log(clock);
    append_n(*log, clock, 3);
    std::optional<FlushJob> first = log->begin_flush();
    cr_assert(first.has_value());
    cr_assert_not(first->head.has_value(), "no checkpoint yet, no head");
    const std::string head_before = read_text(audit_dir() / kHeadFileName);

    cr_assert(log->checkpoint_deferred(clock.tick()), "%s", log->failure_reason().c_str());
    const std::uint64_t checkpoint_seq = log->last_seq();
    cr_assert_eq(log->chain_state().last_checkpoint_seq, checkpoint_seq);
    cr_assert_eq(log->written_seq(), checkpoint_seq, "the checkpoint record goes into the file at once");

    cr_assert(log->end_flush(run_flush_job(*first)));
    cr_assert_lt(log->durable_seq(), checkpoint_seq);
    cr_assert(read_text(audit_dir() / kHeadFileName) == head_before,
              "the head named a checkpoint that no flush has made durable");

    std::optional<FlushJob> second = log->begin_flush();
    cr_assert(second.has_value());
    cr_assert(second->head.has_value(), "the checkpoint's head rides on the flush that covers it");
    cr_assert_geq(second->mark, checkpoint_seq);
    cr_assert(log->end_flush(run_flush_job(*second)));
    cr_assert(read_text(audit_dir() / kHeadFileName) != head_before, "the head was not updated");

    cr_assert(log->close(clock.tick()));
    expect_verifies();
}

Test(audit_flush, nothing_closes_the_segment_under_a_flush_in_flight)
{
    Clock clock;
    auto log = open_log(clock);
    append_n(*log, clock, 2);
    std::optional<FlushJob> job = log->begin_flush();
    cr_assert(job.has_value());
    const std::uint64_t segment = log->chain_state().segment;

    // A caller that did not wait for the flush is a bug: refused, and the log fails closed rather
    // than closing the descriptor the job still uses.
    cr_assert_not(log->seal_segment(clock.tick()));
    cr_assert_not(log->healthy());
    cr_assert(log->failure_reason().find("while a flush is in flight") != std::string::npos, "%s",
              log->failure_reason().c_str());
    cr_assert_eq(log->chain_state().segment, segment, "a new segment was started");
    cr_assert(run_flush_job(*job).ok(), "the job's segment was closed under it");
    cr_assert_not(log->close(clock.tick()));
}

// With the thread running: records and flush requests in a loop, segments rotating at 4 KiB,
// checkpoints every 5 records (ridden on flushes), a seal requested while a flush is in flight.
Test(audit_flush, the_trail_rotates_seals_and_checkpoints_with_its_flusher_running)
{
    Clock clock;
    AuditLogOptions options = test_options();
    options.segment_max_bytes = 4096;
    options.checkpoint_every_records = 5;
    Seed seed{};
    seed.fill(0x5a);
    std::unique_ptr<AuditLog> owned = AuditLog::open(g_state, seed, options);
    AuditLog* log = owned.get();
    sd_event* event = nullptr;
    cr_assert_geq(sd_event_new(&event), 0);
    {
        AuditTrail trail(event, std::move(owned));
        int completions = 0;
        trail.set_on_durable([&completions] { ++completions; });
        trail.start_flusher();

        const auto record = [&trail] {
            queue_use_decision(trail);
        };
        bool sealed_in_flight = false;
        for (int i = 0; i < 150; ++i) {
            record();
            cr_assert(trail.request_flush(), "%s", trail.failure_reason().c_str());
            if (i == 75) {
                cr_assert(trail.flush_in_flight(), "a requested flush is in flight until its result is taken");
                const std::uint64_t before = log->chain_state().segment;
                cr_assert(trail.seal(), "%s", trail.failure_reason().c_str());
                sealed_in_flight = log->chain_state().segment == before + 1;
            }
            while (sd_event_run(event, 0) > 0) {
            }
        }
        cr_assert(sealed_in_flight, "the seal did not start a new segment");
        for (int i = 0; i < 1000 && (log->durable_seq() < log->last_seq() || trail.flush_in_flight()); ++i) {
            cr_assert(trail.request_flush());
            cr_assert_geq(sd_event_run(event, 1'000'000), 0);
        }
        cr_assert(trail.healthy(), "%s", trail.failure_reason().c_str());
        cr_assert_eq(log->durable_seq(), log->last_seq(), "every record became durable");
        cr_assert_gt(completions, 0, "on_durable never ran");
        cr_assert_geq(log->chain_state().segment, 3U, "the segments did not rotate");
        cr_assert(trail.close("test stop"), "%s", trail.failure_reason().c_str());
    }
    sd_event_unref(event);
    expect_verifies();
}

// A grant-state save handed to the trail is written by the flusher after the flush that covers
// every record appended before it was handed over (the state is never ahead of the log), its
// completion is reported on the loop, and one withdrawn before its flush is never written.
Test(audit_flush, a_state_file_rides_the_next_flush_and_lands_only_after_the_records_before_it_are_durable)
{
    Clock clock;
    Seed seed{};
    seed.fill(0x5a);
    std::unique_ptr<AuditLog> owned = AuditLog::open(g_state, seed, test_options());
    AuditLog* log = owned.get();
    const int state_fd = ::open(g_state.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    cr_assert_geq(state_fd, 0);
    sd_event* event = nullptr;
    cr_assert_geq(sd_event_new(&event), 0);
    {
        AuditTrail trail(event, std::move(owned));
        trail.start_flusher();
        const auto record = [&trail] {
            queue_use_decision(trail);
        };
        // A flush in flight when the state is handed over does not carry it: the next one does.
        record();
        cr_assert(trail.request_flush());
        record();
        record();
        const std::uint64_t covered = log->last_seq();
        std::optional<StateWriteOutcome> outcome;
        std::uint64_t durable_when_done = 0;
        bool file_when_done = false;
        trail.write_state_after_flush(StateFileWrite{.dir_fd = state_fd, .name = "state-test", .bytes = "sealed"},
                                      [&](StateWriteOutcome o, const std::string& /*failure*/) {
                                          outcome = o;
                                          durable_when_done = log->durable_seq();
                                          file_when_done = fs::exists(g_state / "state-test");
                                      });
        cr_assert(trail.state_write_out());
        for (int i = 0; i < 1000 && !outcome; ++i) {
            cr_assert_geq(sd_event_run(event, 1'000'000), 0);
        }
        cr_assert(outcome.has_value(), "the state write never completed");
        cr_assert(*outcome == StateWriteOutcome::Written);
        cr_assert_geq(durable_when_done, covered, "the state file was reported before its records were durable");
        cr_assert(file_when_done);
        cr_assert_eq(read_text(g_state / "state-test"), "sealed");
        cr_assert(!trail.state_write_out());

        // Withdrawn before its flush (a synchronous write of newer state comes first): never written.
        trail.settle();
        record();
        cr_assert(trail.request_flush());
        std::optional<StateWriteOutcome> withdrawn;
        trail.write_state_after_flush(StateFileWrite{.dir_fd = state_fd, .name = "state-old", .bytes = "older"},
                                      [&](StateWriteOutcome o, const std::string& /*failure*/) { withdrawn = o; });
        trail.settle_state_write();
        cr_assert(withdrawn.has_value() && *withdrawn == StateWriteOutcome::Skipped);
        for (int i = 0; i < 10; ++i) {
            (void)sd_event_run(event, 10'000);
        }
        cr_assert(!fs::exists(g_state / "state-old"), "a withdrawn state file was written");
        cr_assert(trail.close("test stop"), "%s", trail.failure_reason().c_str());
    }
    ::close(state_fd);
    sd_event_unref(event);
    expect_verifies();
}
