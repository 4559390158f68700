// The audit log's writer (daemon/audit/audit_log.*) on real files: a log continues across
// restarts, checkpoints come by count and by time, segments rotate and the folder verifies
// offline (lib/auditcore/offline_verify.*), a torn tail is recovered in a new segment, a tampered log is
// quarantined and a fresh one started, a full file system turns the log FAILED with nothing
// written after the failure; plus the journal mirror's formatting and the tail
// reader. Suites: audit_log, audit_log_mirror, audit_log_tail (the Folder: tests/unit/auditcore).
#include <fcntl.h>
#include <linux/fs.h>
#include <nlohmann/json.hpp>
#include <sodium.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <systemd/sd-event.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <array>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "daemon/audit/audit_log.hpp"
#include "daemon/audit/audit_trail.hpp"
#include "daemon/audit/journal_mirror.hpp"
#include "lib/auditcore/fold.hpp"
#include "lib/auditcore/log_reader.hpp"
#include "lib/auditcore/offline_verify.hpp"
#include "lib/auditcore/segment_dir.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "tests/keys/audit_test_key.hpp"

namespace fs = std::filesystem;
using namespace codexvault::audit;
using codexvault::UniqueFd;
using codexvault::audit::test::TestKey;

namespace {

constexpr std::uint8_t kSeedByte = 0x5a;
using Seed = std::array<std::uint8_t, kAuditSeedBytes>;

Seed test_seed()
{
    Seed seed{};
    seed.fill(kSeedByte);
    return seed;
}

// Fixed, injected time: every call advances both clocks.
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

AuditLogOptions test_options()
{
    AuditLogOptions o;
    o.mirror_to_journal = false;
    o.set_append_only_flag = false;  // tests edit segment files; one test covers the flag
    return o;
}

// Clears the append-only flag everywhere below `root`, so that the folder can be removed.
void clear_append_only(const fs::path& root)
{
    std::error_code ec;
    for (auto it = fs::recursive_directory_iterator(root, ec); !ec && it != fs::recursive_directory_iterator();
         it.increment(ec)) {
        if (!it->is_regular_file(ec)) {
            continue;
        }
        UniqueFd fd(::open(it->path().c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
        int flags = 0;
        if (fd && ::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) == 0 && (flags & FS_APPEND_FL) != 0) {
            flags &= ~FS_APPEND_FL;
            (void)::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags);
        }
    }
}

fs::path g_root;   // mkdtemp folder of this test
fs::path g_state;  // the state folder inside it
fs::path g_mount;  // tmpfs mount point, when a test mounted one

void setup()
{
    cr_assert_geq(sodium_init(), 0);
    char templ[] = "/tmp/cv-audit-log-XXXXXX";
    cr_assert_not_null(::mkdtemp(templ), "mkdtemp: %s", std::strerror(errno));
    g_root = templ;
    g_state = g_root / "state";
    cr_assert_eq(::mkdir(g_state.c_str(), 0700), 0);
}

void teardown()
{
    if (!g_mount.empty()) {
        (void)::umount2(g_mount.c_str(), MNT_DETACH);
    }
    if (!g_root.empty()) {
        clear_append_only(g_root);
        std::error_code ec;
        fs::remove_all(g_root, ec);
    }
}

std::vector<std::uint8_t> read_file(const fs::path& path)
{
    std::ifstream in(path, std::ios::binary);
    return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const fs::path& path, const std::vector<std::uint8_t>& bytes)
{
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
    cr_assert(out.good(), "cannot write %s", path.c_str());
}

fs::path audit_dir()
{
    return g_state / "audit";
}

// A typical decision record, as the daemon's pipeline will fill it (names only, never values).
RecordView decision(std::uint32_t uid, std::string_view action, Decision d, std::string_view reason,
                    std::string_view object = "openai-key")
{
    RecordView r;
    r.type = EventType::Decision;
    r.decision = d;
    r.subject_known = true;
    r.uid = uid;
    r.pid = 4242;
    r.sender = ":1.77";
    r.exe = "/usr/bin/python3.11";
    r.unit = "agent.service";
    r.action = action;
    r.object = object;
    r.reason = reason;
    r.grant = "g-1";
    return r;
}

std::unique_ptr<AuditLog> open_log(Clock& clock, const AuditLogOptions& options = test_options(),
                                   const fs::path& state = g_state)
{
    const Seed seed = test_seed();
    return AuditLog::open(state, seed, options, clock.tick());
}

void append_n(AuditLog& log, Clock& clock, int n, std::uint32_t uid = 1000)
{
    for (int i = 0; i < n; ++i) {
        cr_assert(log.append(decision(uid, "request", Decision::Allow, "grant g-1 allows request"), clock.tick()) ==
                      Appended::Queued,
                  "append failed: %s", log.failure_reason().c_str());
    }
}

std::vector<TailEntry> all_records(const fs::path& dir)
{
    TailQuery q;
    q.limit = 0;
    return read_tail(dir, q).entries;
}

int verify_text(const fs::path& dir, std::string& text, const std::string& pubkey = "")
{
    std::ostringstream out;
    const int rc = codexvault::audit::run_audit_verify(dir.string(), pubkey, false, out);
    text = out.str();
    return rc;
}

nlohmann::json verify_json(const fs::path& dir, int& rc, const std::string& pubkey = "")
{
    std::ostringstream out;
    rc = codexvault::audit::run_audit_verify(dir.string(), pubkey, true, out);
    return nlohmann::json::parse(out.str());
}

struct FrameAt {
    std::size_t offset;
    std::size_t size;
    std::uint64_t seq;
};

std::vector<FrameAt> frames_of(const std::vector<std::uint8_t>& bytes)
{
    std::vector<FrameAt> frames;
    std::size_t off = kSegmentHeaderBytes;
    for (;;) {
        const FrameRead fr = read_frame(bytes, off);
        if (fr.status != FrameStatus::Ok) {
            break;
        }
        frames.push_back(FrameAt{off, fr.size, decode_payload(fr.payload)->seq});
        off += fr.size;
    }
    return frames;
}

}  // namespace

TestSuite(audit_log, .init = setup, .fini = teardown, .timeout = 60);

Test(audit_log, new_log_is_created_and_reopening_continues_the_sequence)
{
    Clock clock;
    std::uint64_t last_seq = 0;
    {
        auto log = open_log(clock);
        cr_assert(log->healthy(), "%s", log->failure_reason().c_str());
        cr_assert(log->open_report().state == OpenState::New);
        cr_assert_not(log->open_report().tampered());
        append_n(*log, clock, 5);
        cr_assert(log->sync());
        last_seq = log->chain_state().next_seq - 1;
        cr_assert_eq(last_seq, 7U, "start, checkpoint, 5 records");
    }
    struct stat st {};
    cr_assert_eq(::stat(audit_dir().c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0700U);
    cr_assert_eq(::stat((audit_dir() / "audit.pub").c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0644U);
    cr_assert_eq(::stat((audit_dir() / "000000000001.seg").c_str(), &st), 0);
    cr_assert_eq(st.st_mode & 07777, 0600U);
    const TestKey key(kSeedByte);
    const std::vector<std::uint8_t> pub = read_file(audit_dir() / "audit.pub");
    cr_assert_eq(std::string(pub.begin(), pub.end()), format_public_key(key.pub));
    cr_assert(fs::exists(audit_dir() / "head"));

    auto log = open_log(clock);
    cr_assert(log->open_report().state == OpenState::Ok, "%s", log->open_report().finding.c_str());
    cr_assert(log->open_report().previous.ok);
    cr_assert_eq(log->open_report().previous.last_seq, last_seq);
    cr_assert_eq(log->open_report().key_id, key_id_of(key.pub));
    // The reopened log appended start + checkpoint in the same segment, continuing the numbers.
    cr_assert_eq(log->chain_state().segment, 1U);
    cr_assert_eq(log->chain_state().next_seq, last_seq + 3);
    append_n(*log, clock, 1);
    cr_assert(log->close(clock.tick()));
    cr_assert(log->append(decision(1000, "request", Decision::Allow, "x"), clock.tick()) == Appended::Failed,
              "a closed log accepts nothing");

    const auto records = all_records(audit_dir());
    for (std::size_t i = 0; i < records.size(); ++i) {
        cr_assert_eq(records[i].record.seq, i + 1);
    }
    cr_assert(records[last_seq].record.type == EventType::Start);
    cr_assert(records[records.size() - 2].record.type == EventType::Stop);
    cr_assert(records.back().record.type == EventType::Checkpoint);
    std::string text;
    cr_assert_eq(verify_text(audit_dir(), text), 0, "%s", text.c_str());
    cr_assert(text.find(": OK") != std::string::npos, "%s", text.c_str());
    cr_assert(text.find("warning: the public key was read from the log folder") != std::string::npos);
}

Test(audit_log, checkpoint_after_n_records)
{
    Clock clock;
    AuditLogOptions options = test_options();
    options.checkpoint_every_records = 10;
    auto log = open_log(clock, options);
    const std::uint64_t first_checkpoint = log->chain_state().last_checkpoint_seq;
    cr_assert_eq(first_checkpoint, 2U, "open writes start then a checkpoint");
    append_n(*log, clock, 9);
    cr_assert(log->sync());
    cr_assert_not(log->checkpoint_due(clock.tick()));
    cr_assert(log->maybe_checkpoint(clock.tick()));
    cr_assert_eq(log->chain_state().last_checkpoint_seq, first_checkpoint);
    append_n(*log, clock, 1);
    cr_assert(log->checkpoint_due(clock.tick()));
    cr_assert(log->maybe_checkpoint(clock.tick()));
    cr_assert_eq(log->chain_state().last_checkpoint_seq, first_checkpoint + 11);
    cr_assert_eq(log->chain_state().records_since_checkpoint, 0U);

    const std::vector<std::uint8_t> head = read_file(audit_dir() / "head");
    const HeadParse parsed = parse_head(head, TestKey(kSeedByte).pub);
    cr_assert(parsed.status == HeadStatus::Ok);
    cr_assert_eq(parsed.head.seq, first_checkpoint + 11, "the head names the newest checkpoint");
}

Test(audit_log, checkpoint_after_interval_only_with_records_since)
{
    Clock clock;
    AuditLogOptions options = test_options();
    options.checkpoint_every_usec = 10'000'000;
    auto log = open_log(clock, options);
    const std::uint64_t opened = clock.monotonic;  // the opening checkpoint's time
    const auto at = [&](std::uint64_t since_open) {
        return Timestamps{clock.realtime, opened + since_open};
    };
    // Nothing since the opening checkpoint: never due, however long it has been.
    cr_assert_not(log->checkpoint_due(at(100'000'000)));
    cr_assert_not(log->next_checkpoint_deadline().has_value());
    cr_assert(log->append(decision(1000, "request", Decision::Allow, "r"), at(1000)) == Appended::Queued);
    cr_assert(log->sync());
    cr_assert_eq(*log->next_checkpoint_deadline(), opened + 10'000'000);
    const std::uint64_t cp = log->chain_state().last_checkpoint_seq;
    cr_assert(log->maybe_checkpoint(at(5'000'000)));
    cr_assert_eq(log->chain_state().last_checkpoint_seq, cp, "5 s: not yet");
    cr_assert(log->maybe_checkpoint(at(10'000'000)));
    cr_assert_eq(log->chain_state().last_checkpoint_seq, cp + 2, "10 s with a record since: checkpoint");
    cr_assert_not(log->next_checkpoint_deadline().has_value());
}

Test(audit_log, rotation_by_size_seals_and_the_folder_verifies_offline)
{
    Clock clock;
    AuditLogOptions options = test_options();
    options.segment_max_bytes = 4096;
    options.checkpoint_every_records = 5;
    auto log = open_log(clock, options);
    for (int i = 0; i < 60; ++i) {
        append_n(*log, clock, 1, 1000 + static_cast<std::uint32_t>(i % 3));
        cr_assert(log->sync());
        cr_assert(log->maybe_checkpoint(clock.tick()), "%s", log->failure_reason().c_str());
    }
    cr_assert_geq(log->chain_state().segment, 3U, "several segments");
    const auto segments = [] {
        const UniqueFd fd(::open(audit_dir().c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
        return list_segments(fd.get());
    }();
    cr_assert_eq(segments.size(), log->chain_state().segment);
    // Every segment but the last ends with a sealing checkpoint.
    for (std::size_t i = 0; i + 1 < segments.size(); ++i) {
        const auto bytes = read_file(audit_dir() / segments[i].name);
        const auto frames = frames_of(bytes);
        cr_assert_eq(frames.back().offset + frames.back().size, bytes.size());
        const auto r = decode_payload(read_frame(bytes, frames.back().offset).payload);
        cr_assert(r->type == EventType::Checkpoint && r->checkpoint.sealed, "segment %zu is sealed", i + 1);
    }
    cr_assert(log->close(clock.tick()));

    // A copy of the key kept elsewhere, as an operator should.
    const fs::path pub = g_root / "audit.pub";
    fs::copy_file(audit_dir() / "audit.pub", pub);
    int rc = -1;
    const nlohmann::json j = verify_json(audit_dir(), rc, pub.string());
    cr_assert_eq(rc, 0, "%s", j.dump().c_str());
    cr_assert(j["ok"].get<bool>());
    cr_assert_eq(j["segments"].get<std::uint64_t>(), segments.size());
    cr_assert(j["head_checked"].get<bool>());
    cr_assert_not(j["pubkey_from_log_dir"].get<bool>());
    cr_assert_eq(j["unsigned_tail_records"].get<std::uint64_t>(), 0U);

    // A segment file renamed out of place is caught by name, not only by content.
    const std::string last = segments.back().name;
    fs::rename(audit_dir() / last, audit_dir() / segment_file_name(segments.back().number + 1));
    const nlohmann::json renamed = verify_json(audit_dir(), rc, pub.string());
    cr_assert_eq(rc, 9);
    cr_assert_eq(renamed["problem"]["kind"].get<std::string>(), "segment-out-of-order", "%s", renamed.dump().c_str());
}

Test(audit_log, seal_segment_starts_the_next_one)
{
    Clock clock;
    auto log = open_log(clock);
    append_n(*log, clock, 3);
    cr_assert(log->seal_segment(clock.tick()));
    cr_assert_eq(log->chain_state().segment, 2U);
    cr_assert_not(log->chain_state().sealed);
    append_n(*log, clock, 2);
    cr_assert(log->close(clock.tick()));
    std::string text;
    cr_assert_eq(verify_text(audit_dir(), text), 0, "%s", text.c_str());
    cr_assert(text.find("segments: 2") != std::string::npos, "%s", text.c_str());
}

static void torn_tail_case(bool truncate)
{
    Clock clock;
    std::uint64_t last_whole = 0;
    {
        auto log = open_log(clock);
        append_n(*log, clock, 4);
        cr_assert(log->sync());
        last_whole = log->chain_state().next_seq - 1;
    }
    const fs::path seg = audit_dir() / "000000000001.seg";
    std::vector<std::uint8_t> bytes = read_file(seg);
    std::size_t torn_bytes = 0;
    if (truncate) {
        bytes.resize(bytes.size() - 5);  // the last record loses its hash's tail
        --last_whole;
        torn_bytes = frames_of(read_file(seg)).back().size - 5;
    } else {
        // Half a frame: a valid length and complement, then too few bytes.
        const std::uint32_t len = 200;
        const std::uint32_t inv = ~len;
        const std::array<std::uint8_t, 8> header{static_cast<std::uint8_t>(len),
                                                 0,
                                                 0,
                                                 0,
                                                 static_cast<std::uint8_t>(inv & 0xff),
                                                 static_cast<std::uint8_t>((inv >> 8) & 0xff),
                                                 static_cast<std::uint8_t>((inv >> 16) & 0xff),
                                                 static_cast<std::uint8_t>(inv >> 24)};
        bytes.insert(bytes.end(), header.begin(), header.end());
        bytes.insert(bytes.end(), 30, 0xab);
        torn_bytes = 38;
    }
    write_file(seg, bytes);

    {
        auto log = open_log(clock);
        const OpenReport& report = log->open_report();
        cr_assert(report.state == OpenState::TornTailRecovered, "state %s: %s",
                  std::string(open_state_name(report.state)).c_str(), report.finding.c_str());
        cr_assert_not(report.tampered());
        cr_assert(log->healthy(), "%s", log->failure_reason().c_str());
        cr_assert_eq(log->chain_state().segment, 2U, "continued in a new segment");
        append_n(*log, clock, 2);
        cr_assert(log->sync());
    }
    const auto seg2 = read_file(audit_dir() / "000000000002.seg");
    const auto first = decode_payload(read_frame(seg2, kSegmentHeaderBytes).payload);
    cr_assert(first->type == EventType::TornTailRecovered, "the new segment starts with the recovery record");
    cr_assert_eq(first->seq, last_whole + 1);
    cr_assert_eq(first->torn.segment, 1U);
    cr_assert_eq(first->torn.bytes, torn_bytes);

    std::string text;
    cr_assert_eq(verify_text(audit_dir(), text), 0, "%s", text.c_str());
    cr_assert(text.find("note: ") != std::string::npos && text.find("torn-tail") != std::string::npos, "%s",
              text.c_str());
    // And again on the next start: the recovered log is a normal log now.
    auto log = open_log(clock);
    cr_assert(log->open_report().state == OpenState::Ok, "%s", log->open_report().finding.c_str());
}

Test(audit_log, torn_tail_by_truncation_is_recovered)
{
    torn_tail_case(true);
}

Test(audit_log, torn_tail_by_half_frame_is_recovered)
{
    torn_tail_case(false);
}

Test(audit_log, tampered_log_is_quarantined_and_a_fresh_log_started)
{
    Clock clock;
    {
        auto log = open_log(clock);
        append_n(*log, clock, 8);
        cr_assert(log->checkpoint(clock.tick(), false));
        append_n(*log, clock, 3);
        cr_assert(log->close(clock.tick()));
    }
    const fs::path seg = audit_dir() / "000000000001.seg";
    std::vector<std::uint8_t> bytes = read_file(seg);
    const auto frames = frames_of(bytes);
    const FrameAt victim = frames[5];  // a record in the middle
    bytes[victim.offset + kFrameHeaderBytes + 80] ^= 0x01;
    write_file(seg, bytes);

    std::string quarantine;
    {
        auto log = open_log(clock);
        const OpenReport& report = log->open_report();
        cr_assert(report.tampered(), "state %s", std::string(open_state_name(report.state)).c_str());
        cr_assert(report.previous.problem.problem == Problem::CorruptRecord, "%s", report.finding.c_str());
        cr_assert(report.finding.find("corrupt-record") != std::string::npos);
        quarantine = report.quarantine;
        cr_assert(quarantine.starts_with("audit.tampered-"), "%s", quarantine.c_str());
        cr_assert(fs::is_directory(g_state / quarantine));
        cr_assert_eq(report.quarantined_logs.size(), 1U);
        cr_assert(log->healthy(), "%s", log->failure_reason().c_str());
        cr_assert_eq(log->chain_state().segment, 1U, "a fresh log");
    }
    // The evidence is untouched.
    cr_assert(read_file(g_state / quarantine / "000000000001.seg") == bytes);

    const auto fresh = all_records(audit_dir());
    cr_assert_geq(fresh.size(), 3U);
    cr_assert(fresh[0].record.type == EventType::Start);
    cr_assert(fresh[1].record.type == EventType::Integrity);
    cr_assert_eq(fresh[1].record.object, quarantine);
    cr_assert(fresh[1].record.reason.find("corrupt-record") != std::string::npos, "%s", fresh[1].record.reason.c_str());
    std::string text;
    cr_assert_eq(verify_text(audit_dir(), text), 0, "the fresh log verifies: %s", text.c_str());

    int rc = -1;
    const nlohmann::json j = verify_json(g_state / quarantine, rc);
    cr_assert_eq(rc, 9, "%s", j.dump().c_str());
    cr_assert_eq(j["problem"]["kind"].get<std::string>(), "corrupt-record");
    cr_assert_eq(j["problem"]["offset"].get<std::uint64_t>(), victim.offset);
    cr_assert_eq(j["problem"]["seq"].get<std::uint64_t>(), victim.seq);
    cr_assert_eq(j["problem"]["segment"].get<std::uint64_t>(), 1U);
    cr_assert_eq(verify_text(g_state / quarantine, text), 9);
    cr_assert(text.find("INTEGRITY FAILURE") != std::string::npos, "%s", text.c_str());
    cr_assert(text.find("offset " + std::to_string(victim.offset)) != std::string::npos, "%s", text.c_str());

    // Next start: the fresh log verifies, so the log itself no longer says "tampered" — the
    // daemon keeps its lock separately; the quarantine folder is still reported.
    auto log = open_log(clock);
    cr_assert(log->open_report().state == OpenState::Ok, "%s", log->open_report().finding.c_str());
    cr_assert_eq(log->open_report().quarantined_logs.size(), 1U);
    cr_assert_eq(log->open_report().quarantined_logs[0], quarantine);
}

Test(audit_log, a_head_without_segments_is_tampering)
{
    Clock clock;
    {
        auto log = open_log(clock);
        append_n(*log, clock, 2);
        cr_assert(log->close(clock.tick()));
    }
    fs::remove(audit_dir() / "000000000001.seg");
    auto log = open_log(clock);
    cr_assert(log->open_report().tampered());
    cr_assert(log->open_report().previous.problem.problem == Problem::NoSegments);
}

Test(audit_log, full_file_system_fails_cleanly_and_writes_nothing_after)
{
    g_mount = g_root / "mnt";
    cr_assert_eq(::mkdir(g_mount.c_str(), 0700), 0);
    if (::mount("tmpfs", g_mount.c_str(), "tmpfs", 0, "size=64k,mode=0700") != 0) {
        const std::string why = std::strerror(errno);
        g_mount.clear();
        cr_skip("cannot mount a size-limited tmpfs (needs root/CAP_SYS_ADMIN): %s", why.c_str());
    }
    const fs::path state = g_mount / "state";
    cr_assert_eq(::mkdir(state.c_str(), 0700), 0);
    // Most of the space goes to a filler file, freed later to restart the daemon.
    write_file(g_mount / "filler", std::vector<std::uint8_t>(36 * 1024, 0x11));

    Clock clock;
    std::uint64_t last_synced = 0;
    const std::string long_reason(3000, 'r');
    {
        auto log = open_log(clock, test_options(), state);
        cr_assert(log->healthy(), "%s", log->failure_reason().c_str());
        bool failed = false;
        for (int i = 0; i < 100 && !failed; ++i) {
            const Appended a = log->append(decision(1000, "request", Decision::Deny, long_reason), clock.tick());
            failed = a == Appended::Failed || !log->sync();
            if (!failed) {
                last_synced = log->chain_state().next_seq - 1;
            }
        }
        cr_assert(failed, "the file system never filled up");
        cr_assert_not(log->healthy());
        cr_assert(log->failure_reason().find("audit log write failed: No space left on device") != std::string::npos,
                  "%s", log->failure_reason().c_str());
        cr_assert_not(log->status().healthy);

        const auto seg_before = read_file(state / "audit" / "000000000001.seg");
        const auto head_before = read_file(state / "audit" / "head");
        // Nothing is written after the failure, whatever is asked.
        cr_assert(log->append(decision(1000, "request", Decision::Allow, "x"), clock.tick()) == Appended::Failed);
        cr_assert(log->append_foldable(decision(1000, "status", Decision::Allow, "x"), true, clock.tick()) ==
                  Appended::Failed);
        cr_assert_not(log->sync());
        cr_assert_not(log->write_pending());
        cr_assert_not(log->maybe_checkpoint(clock.tick(60'000'000)));
        cr_assert_not(log->seal_segment(clock.tick()));
        fs::remove(g_mount / "filler");  // space again: still nothing may be written
        cr_assert_not(log->close(clock.tick()));
        cr_assert(read_file(state / "audit" / "000000000001.seg") == seg_before);
        cr_assert(read_file(state / "audit" / "head") == head_before);
    }
    // A restart (with space) finds the log intact up to the last successful sync, or a torn tail.
    auto log = open_log(clock, test_options(), state);
    const OpenReport& report = log->open_report();
    cr_assert(report.state == OpenState::Ok || report.state == OpenState::TornTailRecovered, "%s: %s",
              std::string(open_state_name(report.state)).c_str(), report.finding.c_str());
    cr_assert_eq(report.previous.last_seq, last_synced);
    cr_assert(log->healthy(), "%s", log->failure_reason().c_str());
}

Test(audit_log, append_only_flag_is_tried_and_reported)
{
    Clock clock;
    AuditLogOptions options = test_options();
    options.set_append_only_flag = true;
    auto log = open_log(clock, options);
    cr_assert(log->healthy());
    const AppendOnlyStatus flag = log->append_only_flag();
    cr_assert(flag.flag != AppendOnlyFlag::Disabled && flag.flag != AppendOnlyFlag::Failed, "%s errno %d",
              std::string(append_only_flag_name(flag.flag)).c_str(), flag.error);
    const fs::path seg = audit_dir() / "000000000001.seg";
    if (flag.flag == AppendOnlyFlag::Set) {
        // The flag is real: the file cannot be opened for overwriting, only for appending.
        errno = 0;
        cr_assert_lt(::open(seg.c_str(), O_WRONLY | O_CLOEXEC), 0);
        cr_assert_eq(errno, EPERM);
        append_n(*log, clock, 2);
        cr_assert(log->sync(), "appending still works: %s", log->failure_reason().c_str());
    } else {
        cr_log_info("append-only flag not set here: %s (errno %d)",
                    std::string(append_only_flag_name(flag.flag)).c_str(), flag.error);
    }
}

Test(audit_log, folded_repeats_are_written_at_window_end)
{
    Clock clock;
    auto log = open_log(clock);
    const RecordView denied = decision(1001, "put", Decision::Deny, "no grant for put");
    cr_assert(log->append_foldable(denied, false, clock.tick()) == Appended::Queued);
    for (int i = 0; i < 6; ++i) {
        cr_assert(log->append_foldable(denied, false, clock.tick()) == Appended::Folded);
    }
    // An allowed state-changing call is never folded.
    const RecordView allowed = decision(1001, "put", Decision::Allow, "founder");
    cr_assert(log->append_foldable(allowed, false, clock.tick()) == Appended::Queued);
    cr_assert(log->append_foldable(allowed, false, clock.tick()) == Appended::Queued);
    cr_assert(log->fold_deadline().has_value());
    cr_assert(log->flush_folds(clock.tick(2'000'000)));
    cr_assert_not(log->fold_deadline().has_value());
    cr_assert(log->sync());

    TailQuery q;
    q.filter.type = EventType::FoldedRepeats;
    const TailResult folded = read_tail(audit_dir(), q);
    cr_assert_eq(folded.entries.size(), 1U);
    const Record& f = folded.entries[0].record;
    cr_assert_eq(f.repeat_count, 6U);
    cr_assert_eq(f.uid, 1001U);
    cr_assert_eq(f.action, "put");
    cr_assert(f.decision == Decision::Deny);
    cr_assert_eq(f.reason, "no grant for put");
}

Test(audit_log, no_secret_bytes_reach_the_files_or_the_journal)
{
    // The writer receives names only; a value the caller never passes cannot appear anywhere.
    static std::vector<std::string> entries;
    entries.clear();
    const auto capture = [](const struct iovec* iov, int n) -> int {
        for (int i = 0; i < n; ++i) {
            entries.emplace_back(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
        }
        return 0;
    };
    const std::string canary = "sk-CANARY-0123456789abcdef-never-passed";
    Clock clock;
    AuditLogOptions options = test_options();
    options.mirror_to_journal = true;
    options.journal_send = capture;
    auto log = open_log(clock, options);
    append_n(*log, clock, 3);
    cr_assert(log->close(clock.tick()));
    for (const auto& entry : fs::directory_iterator(audit_dir())) {
        const auto bytes = read_file(entry.path());
        const std::string text(bytes.begin(), bytes.end());
        cr_assert_eq(text.find(canary), std::string::npos, "%s", entry.path().c_str());
    }
    cr_assert_gt(entries.size(), 0U);
    for (const auto& field : entries) {
        cr_assert_eq(field.find(canary), std::string::npos);
        // Only the documented fields exist: nothing else could carry data.
        const std::string name = field.substr(0, field.find('='));
        const bool known = name == "MESSAGE_ID" || name == "PRIORITY" || name == "MESSAGE" ||
                           name == "SYSLOG_IDENTIFIER" || name.starts_with("CODEX_VAULT_");
        cr_assert(known, "unexpected journal field %s", name.c_str());
    }
    cr_assert_eq(log->status().journal_failures, 0U);
}

// ---- journal mirror -------------------------------------------------------------------------

Test(audit_log_mirror, caller_strings_are_escaped)
{
    cr_assert_eq(journal_quote("a\nb\"c\\d\x01\x7f"), "\"a\\x0ab\\\"c\\\\d\\x01\\x7f\"");
    cr_assert_eq(journal_escape("name\nMESSAGE=forged"), "name\\x0aMESSAGE=forged");
    // Long values are cut (the log keeps them whole), never in the middle of an escape or a character.
    cr_assert_eq(journal_escape(std::string(5000, 'a')).size(), kJournalValueMaxBytes + 8);
    cr_assert_eq(journal_escape("ab\ncd", 4), "ab...[cut]");
    cr_assert_eq(journal_escape("a\xc3\xa9\xc3\xa9", 4), "a\xc3\xa9...[cut]");
    RecordView r = decision(1000, "put", Decision::Deny, "denied\nCODEX_VAULT_DECISION=allow");
    r.object = "evil\n\rname";
    r.seq = 12;
    const std::string message = journal_message(r);
    cr_assert_eq(message.find('\n'), std::string::npos, "%s", message.c_str());
    cr_assert_eq(message.find('\r'), std::string::npos);
    cr_assert(message.starts_with("codex-vault audit seq=12 event=decision action=\"put\""), "%s", message.c_str());
    cr_assert(message.find("decision=deny") != std::string::npos);

    std::vector<std::string> fields;
    journal_fields(r, Hash{}, fields);
    for (const auto& field : fields) {
        for (const char c : field) {
            cr_assert(static_cast<unsigned char>(c) >= 0x20 && c != 0x7f, "control byte in %s", field.c_str());
        }
    }
    cr_assert_eq(fields[0], "MESSAGE_ID=" + std::string(event_message_id(EventType::Decision)));
    bool saw_seq = false;
    for (const auto& field : fields) {
        saw_seq = saw_seq || field == "CODEX_VAULT_SEQ=12";
        cr_assert_neq(field, "CODEX_VAULT_DECISION=allow");
    }
    cr_assert(saw_seq);
}

namespace {
int g_sends = 0;
int count_send(const struct iovec* /*iov*/, int /*n*/)
{
    ++g_sends;
    return 0;
}
int failing_send(const struct iovec* /*iov*/, int /*n*/)
{
    ++g_sends;
    return -ECONNREFUSED;
}
}  // namespace

TestSuite(audit_log_mirror_files, .init = setup, .fini = teardown, .timeout = 60);

Test(audit_log_mirror, can_be_disabled_and_failures_are_counted)
{
    g_sends = 0;
    JournalMirror off(false, &count_send);
    off.mirror(decision(1, "a", Decision::Allow, "r"), Hash{});
    cr_assert_eq(g_sends, 0);
    cr_assert_eq(off.sent(), 0U);

    JournalMirror failing(true, &failing_send);
    failing.mirror(decision(1, "a", Decision::Allow, "r"), Hash{});
    cr_assert_eq(g_sends, 1);
    cr_assert_eq(failing.failures(), 1U);
    cr_assert_eq(failing.last_error(), ECONNREFUSED);
}

Test(audit_log_mirror_files, one_entry_per_record_and_failures_never_fail_the_log)
{
    Clock clock;
    AuditLogOptions options = test_options();
    options.mirror_to_journal = true;
    options.journal_send = &failing_send;
    g_sends = 0;
    auto log = open_log(clock, options);
    append_n(*log, clock, 4);
    cr_assert(log->sync(), "journald being away does not fail the log");
    cr_assert(log->healthy());
    // start, checkpoint, 4 records
    cr_assert_eq(g_sends, 6);
    cr_assert_eq(log->status().journal_failures, 6U);
    log.reset();

    options.journal_send = &count_send;
    options.mirror_to_journal = false;
    g_sends = 0;
    auto quiet = open_log(clock, options);
    append_n(*quiet, clock, 4);
    cr_assert(quiet->sync());
    cr_assert_eq(g_sends, 0, "mirror off");
}

// ---- tail reader ----------------------------------------------------------------------------

TestSuite(audit_log_tail, .init = setup, .fini = teardown, .timeout = 60);

Test(audit_log_tail, last_n_with_filters_and_follow)
{
    Clock clock;
    AuditLogOptions options = test_options();
    options.segment_max_bytes = 2048;
    options.checkpoint_every_records = 4;
    auto log = open_log(clock, options);
    for (int i = 0; i < 40; ++i) {
        const std::uint32_t uid = i % 2 == 0 ? 1000 : 1001;
        const Decision d = i % 5 == 0 ? Decision::Deny : Decision::Allow;
        cr_assert(log->append(decision(uid, i % 3 == 0 ? "put" : "request", d, "r"), clock.tick()) == Appended::Queued);
        cr_assert(log->sync());
        cr_assert(log->maybe_checkpoint(clock.tick()));
    }
    cr_assert_gt(log->chain_state().segment, 2U);
    const std::uint64_t last = log->chain_state().next_seq - 1;

    TailQuery q;
    q.limit = 5;
    TailResult r = read_tail(audit_dir(), q);
    cr_assert_eq(r.entries.size(), 5U);
    cr_assert_eq(r.entries.back().record.seq, last, "newest last");
    cr_assert_not(r.verified);
    cr_assert(!r.notes.empty());

    q.filter.uid = 1001;
    q.filter.type = EventType::Decision;
    q.limit = 100;
    r = read_tail(audit_dir(), q);
    cr_assert_eq(r.entries.size(), 20U);
    for (const auto& e : r.entries) {
        cr_assert_eq(e.record.uid, 1001U);
    }
    q.filter = {};
    q.filter.decision = Decision::Deny;
    q.filter.action = "put";
    r = read_tail(audit_dir(), q);
    cr_assert_eq(r.entries.size(), 3U, "i = 0, 15, 30");
    const auto lines = tail_json_lines(r);
    cr_assert_eq(lines.size(), 3U);
    const auto j = nlohmann::json::parse(lines[0]);
    cr_assert_eq(j["action"].get<std::string>(), "put");
    cr_assert_eq(j["decision"].get<std::string>(), "deny");

    // Follow: page through everything after a sequence number.
    TailQuery follow;
    follow.after_seq = 10;
    follow.limit = 7;
    std::uint64_t expected = 11;
    for (int page = 0; page < 100; ++page) {
        const TailResult p = read_tail(audit_dir(), follow);
        if (p.entries.empty()) {
            break;
        }
        for (const auto& e : p.entries) {
            cr_assert_eq(e.record.seq, expected++);
        }
        follow.after_seq = p.last_seq;
    }
    cr_assert_eq(expected, last + 1, "every record after seq 10 was seen once");
}

// An exception in the upkeep a C callback drives (the audit timer) must neither cross the callback
// nor vanish: the log turns FAILED with the reason, so the pipeline refuses every later request.
Test(audit_log, an_exception_in_the_timer_work_fails_the_log_closed)
{
    Clock clock;
    std::unique_ptr<AuditLog> log = open_log(clock);
    AuditLog* raw_log = log.get();
    sd_event* raw_event = nullptr;
    cr_assert_geq(sd_event_new(&raw_event), 0);
    {
        codexvault::audit::AuditTrail trail(raw_event, std::move(log));
        cr_assert(trail.healthy());
        trail.run_fail_closed("audit timer", [] { throw std::runtime_error("checkpoint encoder exploded"); });
        cr_assert_not(trail.healthy(), "an exception in the timer work left the log accepting records");
        cr_assert(raw_log->failure_reason() == "audit timer: checkpoint encoder exploded", "reason: %s",
                  raw_log->failure_reason().c_str());
        cr_assert(raw_log->append(decision(1000, "request", Decision::Allow, "after the failure"), clock.tick()) ==
                      Appended::Failed,
                  "a failed log accepted a record");
        trail.run_fail_closed("audit timer", [] { throw 42; });
        cr_assert(raw_log->failure_reason() == "audit timer: checkpoint encoder exploded",
                  "the first reason was replaced");
    }
    sd_event_unref(raw_event);
}

namespace {
int g_batch_ends = 0;
int g_batch_result = 0;
int count_batch_end()
{
    ++g_batch_ends;
    return g_batch_result;
}
}  // namespace

Test(audit_log_mirror_files, a_collecting_sender_gets_one_end_of_batch_per_write_and_counts_its_failure_per_entry)
{
    Clock clock;
    AuditLogOptions options = test_options();
    options.mirror_to_journal = true;
    options.journal_send = &count_send;
    options.journal_flush = &count_batch_end;
    g_sends = 0;
    g_batch_ends = 0;
    g_batch_result = 0;
    auto log = open_log(clock, options);
    const int ends_after_open = g_batch_ends;
    const std::uint64_t sent_after_open = log->status().journal_sent;
    append_n(*log, clock, 4);
    cr_assert_eq(log->status().journal_sent, sent_after_open, "collected entries are not sent before the batch ends");
    cr_assert(log->write_pending());
    cr_assert_eq(g_batch_ends, ends_after_open + 1, "four records, one write: one end of batch");
    cr_assert_eq(log->status().journal_sent, sent_after_open + 4);

    g_batch_result = -EPIPE;
    append_n(*log, clock, 3);
    cr_assert(log->write_pending(), "a lost copy never fails the log");
    cr_assert_eq(log->status().journal_failures, 3U, "each entry of the failed batch is counted");
    cr_assert_eq(log->status().journal_sent, sent_after_open + 4);
    g_batch_result = 0;
}
