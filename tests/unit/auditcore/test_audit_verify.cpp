// The offline verifier (daemon/audit/verifier.*): a valid multi-segment log verifies, and each
// kind of tampering is reported as its own problem at the first bad position — a bit flip at
// every byte, deleted, swapped, replayed records, a removed tail (caught through the head file),
// a torn tail after a crash (and its recovery), forged checkpoints, missing segments.
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/record.hpp"
#include "lib/auditcore/verifier.hpp"
#include "tests/keys/audit_test_key.hpp"

using namespace codexvault::audit;
using codexvault::audit::test::TestKey;

namespace {

using Bytes = std::vector<std::uint8_t>;

void setup()
{
    cr_assert_geq(sodium_init(), 0);
}

struct FrameLoc {
    std::size_t offset = 0;
    std::size_t size = 0;
    std::uint64_t seq = 0;
    EventType type = EventType::Decision;
};

struct Segment {
    Bytes bytes;
    std::vector<FrameLoc> frames;
};

// Builds a log in memory the way the daemon's writer will, remembering where every frame went.
class Log {
public:
    explicit Log(const TestKey& key) : key_(key), signer_(key.signer()) {}

    void begin_segment()
    {
        Bytes out;
        const SegmentHeaderBytes header = writer_.begin_segment(now(), now(), out);
        Segment s;
        s.bytes.assign(header.begin(), header.end());
        if (!out.empty()) {  // the torn-tail-recovered record
            s.frames.push_back(
                FrameLoc{kSegmentHeaderBytes, out.size(), writer_.state().next_seq - 1, EventType::TornTailRecovered});
            s.bytes.insert(s.bytes.end(), out.begin(), out.end());
        }
        segments.push_back(std::move(s));
    }

    void records(int n)
    {
        for (int i = 0; i < n; ++i) {
            const std::string object = "secret-" + std::to_string(counter_ % 7);
            RecordView r;
            r.type = counter_ % 2 == 0 ? EventType::Decision : EventType::Outcome;
            r.decision = counter_ % 3 == 0 ? Decision::Deny : Decision::Allow;
            r.realtime_usec = now();
            r.monotonic_usec = now();
            r.subject_known = true;
            r.uid = 1000 + static_cast<std::uint32_t>(counter_ % 3);
            r.pid = 4000 + static_cast<std::int32_t>(counter_);
            r.sender = ":1.99";
            r.exe = "/usr/bin/python3.11";
            r.unit = "agent.service";
            r.action = "request";
            r.object = object;
            r.reason = "grant g-1 allows request";
            r.grant = "g-1";
            add(writer_.append(r, segments.back().bytes), r.type);
            ++counter_;
        }
    }

    void checkpoint(bool seal = false)
    {
        add(writer_.append_checkpoint(signer_, now(), now(), seal, segments.back().bytes), EventType::Checkpoint);
        head = writer_.head(signer_);
    }

    [[nodiscard]] std::vector<std::span<const std::uint8_t>> spans() const
    {
        std::vector<std::span<const std::uint8_t>> out;
        for (const auto& s : segments) {
            out.emplace_back(s.bytes);
        }
        return out;
    }

    [[nodiscard]] VerifyReport verify(bool with_head = true, VerifyOptions options = {}) const
    {
        const auto list = spans();
        std::optional<std::span<const std::uint8_t>> h;
        if (with_head && head) {
            h = std::span<const std::uint8_t>(*head);
        }
        return verify_log(list, key_.pub, h, options);
    }

    [[nodiscard]] const FrameLoc& frame_with_seq(std::uint64_t seq, std::size_t* segment_index = nullptr) const
    {
        for (std::size_t s = 0; s < segments.size(); ++s) {
            for (const auto& f : segments[s].frames) {
                if (f.seq == seq) {
                    if (segment_index != nullptr) {
                        *segment_index = s;
                    }
                    return f;
                }
            }
        }
        cr_assert_fail("no frame with seq %llu", static_cast<unsigned long long>(seq));
        static FrameLoc none;
        return none;
    }

    ChainWriter& writer() { return writer_; }
    const CheckpointSigner& signer() const { return signer_; }

    std::vector<Segment> segments;
    std::optional<HeadBytes> head;

private:
    std::uint64_t now() { return 1'700'000'000'000'000ULL + 1000 * ++clock_; }
    void add(const FrameInfo& info, EventType type)
    {
        segments.back().frames.push_back(FrameLoc{info.offset, info.size, info.seq, type});
    }

    const TestKey& key_;
    CheckpointSigner signer_;
    ChainWriter writer_;
    std::uint64_t clock_ = 0;
    std::uint64_t counter_ = 0;
};

// Three segments: 1 = records 1..5 + sealing checkpoint 6; 2 = 7..10 + checkpoint 11 + 12..14 +
// sealing checkpoint 15; 3 = 16..19 + checkpoint 20 + 21..22 (unsigned tail). Head names seq 20.
void build_standard(Log& log)
{
    log.begin_segment();
    log.records(5);
    log.checkpoint(true);
    log.begin_segment();
    log.records(4);
    log.checkpoint();
    log.records(3);
    log.checkpoint(true);
    log.begin_segment();
    log.records(4);
    log.checkpoint();
    log.records(2);
}

void expect_ok(const VerifyReport& report)
{
    cr_assert(report.ok, "expected a valid log, got: %s", describe(report.problem).c_str());
    cr_assert(report.problem.problem == Problem::None);
}

void expect_problem(const VerifyReport& report, Problem problem, std::size_t segment_index, std::uint64_t offset,
                    std::uint64_t seq, const char* context = "")
{
    cr_assert_not(report.ok, "%s: expected %s, but the log verified", context,
                  std::string(problem_name(problem)).c_str());
    cr_assert(report.problem.problem == problem, "%s: expected %s, got %s", context,
              std::string(problem_name(problem)).c_str(), describe(report.problem).c_str());
    cr_assert_eq(report.problem.at.segment_index, segment_index, "%s: segment index: %s", context,
                 describe(report.problem).c_str());
    cr_assert_eq(report.problem.at.offset, offset, "%s: offset: %s", context, describe(report.problem).c_str());
    cr_assert_eq(report.problem.at.seq, seq, "%s: seq: %s", context, describe(report.problem).c_str());
}

// Rewrites the frame hash after an edit of the frame's payload (what an editor without the key can do).
void rehash_frame(Bytes& bytes, const FrameLoc& f)
{
    crypto_generichash(bytes.data() + f.offset + f.size - 32, 32, bytes.data() + f.offset, f.size - 32, nullptr, 0);
}

std::span<std::uint8_t> payload_of(Bytes& bytes, const FrameLoc& f)
{
    return {bytes.data() + f.offset + kFrameHeaderBytes, f.size - kFrameOverheadBytes};
}

void erase_frame(Segment& s, std::size_t index)
{
    const FrameLoc f = s.frames[index];
    s.bytes.erase(s.bytes.begin() + static_cast<std::ptrdiff_t>(f.offset),
                  s.bytes.begin() + static_cast<std::ptrdiff_t>(f.offset + f.size));
    s.frames.erase(s.frames.begin() + static_cast<std::ptrdiff_t>(index));
    for (std::size_t i = index; i < s.frames.size(); ++i) {
        s.frames[i].offset -= f.size;
    }
}

}  // namespace

TestSuite(audit_verify, .init = setup);

Test(audit_verify, valid_multi_segment_log_verifies)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    const VerifyReport report = log.verify();
    expect_ok(report);
    cr_assert_eq(report.segments, 3U);
    cr_assert_eq(report.records, 22U);
    cr_assert_eq(report.checkpoints, 4U);
    cr_assert_eq(report.last_seq, 22U);
    cr_assert_eq(report.last_checkpoint_seq, 20U);
    cr_assert_eq(report.unsigned_tail_records, 2U);
    cr_assert(report.head_checked);
    cr_assert_eq(report.head_seq, 20U);
    cr_assert(report.notes.empty());
    cr_assert(report.resumable);
    cr_assert(report.resume == log.writer().state(), "the verifier's resume state is the writer's state");
    const auto j = report_to_json(report);
    cr_assert_eq(j["ok"], true);
    cr_assert(j["problem"].is_null());
    cr_assert_eq(j["records"], 22);
}

Test(audit_verify, incremental_feeding_matches_the_whole_log)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Verifier v(key.pub, std::span<const std::uint8_t>(*log.head));
    for (const auto& s : log.segments) {
        cr_assert(v.add_segment(s.bytes));
    }
    const VerifyReport report = v.finish();
    expect_ok(report);
    cr_assert_eq(report.records, 22U);
}

Test(audit_verify, verifies_without_head_and_with_an_empty_log_refused)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    expect_ok(log.verify(false));
    const VerifyReport empty = verify_log({}, key.pub);
    cr_assert_not(empty.ok);
    cr_assert(empty.problem.problem == Problem::NoSegments);
    // A fresh segment with only its header is a valid (empty) log that a writer can resume.
    Log fresh(key);
    fresh.begin_segment();
    const VerifyReport r = fresh.verify();
    expect_ok(r);
    cr_assert_eq(r.records, 0U);
    cr_assert(r.resumable);
    cr_assert(r.resume == fresh.writer().state());
}

Test(audit_verify, bit_flip_at_every_byte_is_found_at_its_record)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    for (std::size_t s = 0; s < log.segments.size(); ++s) {
        const Segment& seg = log.segments[s];
        for (std::size_t pos = 0; pos < seg.bytes.size(); ++pos) {
            Log copy = log;
            copy.segments[s].bytes[pos] ^= static_cast<std::uint8_t>(1U << (pos % 8));
            const VerifyReport report = copy.verify();
            const std::string context = "segment #" + std::to_string(s) + " byte " + std::to_string(pos);
            if (pos < kSegmentHeaderBytes) {
                const std::uint64_t first_seq = seg.frames.front().seq;
                expect_problem(report, Problem::BadSegmentHeader, s, 0, first_seq, context.c_str());
                continue;
            }
            const auto f = std::find_if(seg.frames.begin(), seg.frames.end(), [&](const FrameLoc& fl) {
                return pos >= fl.offset && pos < fl.offset + fl.size;
            });
            cr_assert(f != seg.frames.end(), "%s is in no frame", context.c_str());
            expect_problem(report, Problem::CorruptRecord, s, f->offset, f->seq, context.c_str());
        }
    }
}

Test(audit_verify, bit_flip_in_the_head_is_a_bad_head)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    for (std::size_t pos = 0; pos < kHeadBytes; ++pos) {
        Log copy = log;
        (*copy.head)[pos] ^= static_cast<std::uint8_t>(1U << (pos % 8));
        const VerifyReport report = copy.verify();
        cr_assert(report.problem.problem == Problem::BadHead, "head byte %zu: %s", pos,
                  describe(report.problem).c_str());
    }
}

Test(audit_verify, deleted_record_is_a_sequence_gap_where_it_was)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    std::size_t s = 0;
    const FrameLoc victim = log.frame_with_seq(8, &s);
    erase_frame(log.segments[s], 1);  // seq 8 is the second frame of segment 2
    expect_problem(log.verify(), Problem::SequenceGap, s, victim.offset, 8);
}

Test(audit_verify, deleted_first_record_of_a_segment_is_a_sequence_gap)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    erase_frame(log.segments[2], 0);  // seq 16
    expect_problem(log.verify(), Problem::SequenceGap, 2, kSegmentHeaderBytes, 16);
}

Test(audit_verify, deleted_record_with_renumbered_successors_breaks_the_chain)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[1];
    const FrameLoc victim = seg.frames[1];  // seq 8
    erase_frame(seg, 1);
    for (std::size_t i = 1; i < seg.frames.size(); ++i) {
        auto payload = payload_of(seg.bytes, seg.frames[i]);
        const std::uint64_t seq = seg.frames[i].seq - 1;
        codexvault::bytes::put_le<std::uint64_t>(payload.data() + 4, seq);  // common/bytes.hpp, via record.hpp
        rehash_frame(seg.bytes, seg.frames[i]);
    }
    expect_problem(log.verify(), Problem::ChainBroken, 1, victim.offset, 8);
}

Test(audit_verify, swapped_records_are_out_of_order)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[0];
    const FrameLoc a = seg.frames[1];  // seq 2
    const FrameLoc b = seg.frames[2];  // seq 3
    Bytes swapped(seg.bytes.begin(), seg.bytes.begin() + static_cast<std::ptrdiff_t>(a.offset));
    swapped.insert(swapped.end(), seg.bytes.begin() + static_cast<std::ptrdiff_t>(b.offset),
                   seg.bytes.begin() + static_cast<std::ptrdiff_t>(b.offset + b.size));
    swapped.insert(swapped.end(), seg.bytes.begin() + static_cast<std::ptrdiff_t>(a.offset),
                   seg.bytes.begin() + static_cast<std::ptrdiff_t>(a.offset + a.size));
    swapped.insert(swapped.end(), seg.bytes.begin() + static_cast<std::ptrdiff_t>(b.offset + b.size), seg.bytes.end());
    seg.bytes = swapped;
    const VerifyReport report = log.verify();
    expect_problem(report, Problem::OutOfOrder, 0, a.offset, 2);
}

Test(audit_verify, replayed_record_is_out_of_order)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[2];
    const FrameLoc dup = seg.frames[0];  // seq 16, copied again after seq 17
    const FrameLoc after = seg.frames[1];
    const Bytes frame(seg.bytes.begin() + static_cast<std::ptrdiff_t>(dup.offset),
                      seg.bytes.begin() + static_cast<std::ptrdiff_t>(dup.offset + dup.size));
    seg.bytes.insert(seg.bytes.begin() + static_cast<std::ptrdiff_t>(after.offset + after.size), frame.begin(),
                     frame.end());
    expect_problem(log.verify(), Problem::OutOfOrder, 2, after.offset + after.size, 18);
}

Test(audit_verify, edited_and_rehashed_record_breaks_the_chain_at_the_next_link)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[1];
    const FrameLoc edited = seg.frames[0];  // seq 7
    auto payload = payload_of(seg.bytes, edited);
    payload[1] = static_cast<std::uint8_t>(Decision::Allow) == payload[1] ? static_cast<std::uint8_t>(Decision::Deny)
                                                                          : static_cast<std::uint8_t>(Decision::Allow);
    rehash_frame(seg.bytes, edited);
    expect_problem(log.verify(), Problem::ChainBroken, 1, seg.frames[1].offset, 8);
}

Test(audit_verify, rewriting_the_chain_forward_is_caught_by_the_next_checkpoint)
{
    // An editor without the key recomputes every hash after the edit: the chain is consistent
    // again, but the next checkpoint's signature covers the old chain.
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[1];
    auto payload = payload_of(seg.bytes, seg.frames[0]);  // seq 7
    payload[1] ^= 0x03;                                   // allow <-> deny
    Hash prev;
    for (std::size_t i = 0; i < seg.frames.size(); ++i) {
        const FrameLoc& f = seg.frames[i];
        if (i > 0) {
            std::memcpy(payload_of(seg.bytes, f).data() + 28, prev.data(), 32);
        }
        rehash_frame(seg.bytes, f);
        std::memcpy(prev.data(), seg.bytes.data() + f.offset + f.size - 32, 32);
    }
    const FrameLoc cp = log.frame_with_seq(11);
    expect_problem(log.verify(), Problem::BadCheckpointSignature, 1, cp.offset, 11);
}

Test(audit_verify, removed_tail_at_a_record_boundary_is_caught_by_the_head)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[2];
    const FrameLoc cp = log.frame_with_seq(20);
    seg.bytes.resize(cp.offset);  // cut before the checkpoint the head names
    seg.frames.resize(4);
    expect_problem(log.verify(), Problem::RemovedTail, 2, cp.offset, 20);
    // Without the head the cut is invisible: that is why the head exists.
    expect_ok(log.verify(false));
}

Test(audit_verify, removed_last_segment_is_caught_by_the_head)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    log.segments.pop_back();
    expect_problem(log.verify(), Problem::RemovedTail, 1, log.segments[1].bytes.size(), 16);
}

Test(audit_verify, removal_after_the_last_checkpoint_is_the_documented_window)
{
    // Records after the last checkpoint (and head update) are not covered by any signature: cutting
    // them at a record boundary cannot be detected. The report says how many such records exist.
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    cr_assert_eq(log.verify().unsigned_tail_records, 2U);
    Segment& seg = log.segments[2];
    seg.bytes.resize(seg.frames[5].offset);  // drop seq 21 and 22
    const VerifyReport report = log.verify();
    expect_ok(report);
    cr_assert_eq(report.last_seq, 20U);
    cr_assert_eq(report.unsigned_tail_records, 0U);
}

Test(audit_verify, torn_last_record_is_reported_never_counted_and_recoverable)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[2];
    const FrameLoc last = seg.frames.back();  // seq 22
    for (const std::size_t keep : {std::size_t{1}, std::size_t{7}, std::size_t{8}, last.size / 2, last.size - 1}) {
        Log copy = log;
        copy.segments[2].bytes.resize(last.offset + keep);
        const VerifyReport report = copy.verify();
        expect_problem(report, Problem::TornTail, 2, last.offset, 22, ("keep " + std::to_string(keep)).c_str());
        cr_assert_eq(report.records, 21U, "the torn record is not counted");
        cr_assert_eq(report.last_seq, 21U);
        cr_assert(report.torn_tail.has_value());
        cr_assert(*report.torn_tail == (TornTail{3, last.offset, keep}));
        cr_assert(report.resumable);
        cr_assert(report.resume.pending_torn == report.torn_tail);
    }

    // Recovery: the writer resumes from the report, starts segment 4 with a torn-tail-recovered
    // record, and the whole log verifies again, with a note about the torn frame.
    seg.bytes.resize(last.offset + 50);
    seg.frames.pop_back();
    const VerifyReport torn = log.verify();
    cr_assert(torn.problem.problem == Problem::TornTail);
    Log resumed = log;
    resumed.writer() = ChainWriter(torn.resume);
    resumed.begin_segment();
    cr_assert(resumed.segments.back().frames.size() == 1, "the recovery record comes first");
    resumed.records(3);
    resumed.checkpoint();
    const VerifyReport after = resumed.verify();
    expect_ok(after);
    cr_assert_eq(after.notes.size(), 1U);
    cr_assert(after.notes[0].problem == Problem::TornTail);
    cr_assert_eq(after.notes[0].at.segment_index, 2U);
    cr_assert_eq(after.notes[0].at.offset, last.offset);
    cr_assert_eq(after.records, 21U + 1 + 3 + 1);
}

Test(audit_verify, zero_filled_tail_after_a_crash_is_a_torn_tail)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[2];
    const std::size_t end = seg.bytes.size();
    seg.bytes.resize(end + 4096, 0);
    const VerifyReport report = log.verify();
    expect_problem(report, Problem::TornTail, 2, end, 23);
    cr_assert_eq(report.torn_tail->bytes, 4096U);
}

Test(audit_verify, torn_frame_before_the_head_is_a_removed_tail)
{
    // A crash cannot tear a record the head already covers: the head is written after the
    // checkpoint is on disk.
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    const FrameLoc cp = log.frame_with_seq(20);
    log.segments[2].bytes.resize(cp.offset + 30);
    expect_problem(log.verify(), Problem::RemovedTail, 2, cp.offset, 20);
}

Test(audit_verify, torn_middle_segment_without_recovery_record_is_reported)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    // Segment 2 loses its sealing checkpoint's last bytes; segment 3 does not account for it.
    const FrameLoc cp = log.frame_with_seq(15);
    log.segments[1].bytes.resize(cp.offset + 10);
    expect_problem(log.verify(false), Problem::TornTail, 1, cp.offset, 15);
}

Test(audit_verify, middle_segment_without_its_seal_has_a_removed_tail)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    const FrameLoc cp = log.frame_with_seq(15);
    log.segments[1].bytes.resize(cp.offset);  // its sealing checkpoint removed cleanly
    expect_problem(log.verify(), Problem::UnsealedSegment, 1, cp.offset, 15);
}

Test(audit_verify, deleted_middle_segment_is_detected)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    log.segments.erase(log.segments.begin() + 1);
    expect_problem(log.verify(), Problem::SegmentMissing, 1, 0, 7);
    // Renaming segment 3's header to segment 2 (and rehashing it) breaks the chain instead.
    Log renamed(key);
    build_standard(renamed);
    const auto h3 = parse_segment_header(renamed.segments[2].bytes);
    const SegmentHeaderBytes forged = encode_segment_header(2, h3->first_seq, h3->prev_hash);
    std::copy(forged.begin(), forged.end(), renamed.segments[2].bytes.begin());
    renamed.segments.erase(renamed.segments.begin() + 1);
    expect_problem(renamed.verify(), Problem::SegmentChainBroken, 1, 0, 7);
}

Test(audit_verify, duplicated_segment_is_out_of_order)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    log.segments.insert(log.segments.begin() + 2, log.segments[1]);
    expect_problem(log.verify(), Problem::SegmentOutOfOrder, 2, 0, 16);
}

Test(audit_verify, log_must_start_at_segment_one_unless_told_otherwise)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    log.segments.erase(log.segments.begin());
    expect_problem(log.verify(), Problem::SegmentMissing, 0, 0, 1);
    const VerifyReport pruned = log.verify(true, VerifyOptions{.require_genesis = false});
    expect_ok(pruned);
    cr_assert_eq(pruned.notes.size(), 1U);
    cr_assert_eq(pruned.records, 16U);
}

Test(audit_verify, checkpoint_re_signed_with_another_key_is_forged)
{
    const TestKey key(1);
    const TestKey attacker(2);
    for (const bool claim_right_key_id : {false, true}) {
        Log log(key);
        build_standard(log);
        std::size_t s = 0;
        const FrameLoc cp = log.frame_with_seq(11, &s);
        auto payload = payload_of(log.segments[s].bytes, cp);
        const std::size_t tail = payload.size() - kCheckpointTailBytes;
        if (!claim_right_key_id) {
            const KeyId id = attacker.signer().key_id();
            std::memcpy(payload.data() + tail + 89, id.data(), id.size());
        }
        sign_checkpoint_payload(payload, attacker.signer());
        rehash_frame(log.segments[s].bytes, cp);
        const VerifyReport report = log.verify();
        expect_problem(report, Problem::BadCheckpointSignature, s, cp.offset, 11,
                       claim_right_key_id ? "right key id" : "attacker's key id");
    }
}

Test(audit_verify, checkpoint_with_altered_claimed_hash_is_forged_or_mismatched)
{
    const TestKey key(1);
    for (const bool re_sign_with_the_real_key : {false, true}) {
        Log log(key);
        build_standard(log);
        std::size_t s = 0;
        const FrameLoc cp = log.frame_with_seq(11, &s);
        auto payload = payload_of(log.segments[s].bytes, cp);
        const std::size_t tail = payload.size() - kCheckpointTailBytes;
        payload[tail + 56] ^= 0x01;  // chain_hash claim
        if (re_sign_with_the_real_key) {
            sign_checkpoint_payload(payload, log.signer());
        }
        rehash_frame(log.segments[s].bytes, cp);
        const VerifyReport report = log.verify(false);
        if (re_sign_with_the_real_key) {
            // Only the key holder can produce this (a writer bug, or a moved checkpoint).
            expect_problem(report, Problem::CheckpointMismatch, s, cp.offset, 11, "re-signed");
        } else {
            expect_problem(report, Problem::BadCheckpointSignature, s, cp.offset, 11, "not re-signed");
        }
    }
}

Test(audit_verify, checkpoint_claiming_the_wrong_segment_or_predecessor_is_mismatched)
{
    const TestKey key(1);
    for (const std::size_t field : {std::size_t{0}, std::size_t{8}, std::size_t{16}, std::size_t{24}}) {
        Log log(key);
        build_standard(log);
        std::size_t s = 0;
        const FrameLoc cp = log.frame_with_seq(15, &s);
        auto payload = payload_of(log.segments[s].bytes, cp);
        payload[payload.size() - kCheckpointTailBytes + field] ^= 0x01;
        sign_checkpoint_payload(payload, log.signer());
        rehash_frame(log.segments[s].bytes, cp);
        expect_problem(log.verify(false), Problem::CheckpointMismatch, s, cp.offset, 15,
                       ("claim at tail offset " + std::to_string(field)).c_str());
    }
}

Test(audit_verify, record_after_a_sealing_checkpoint_is_refused)
{
    const TestKey key(1);
    Log log(key);
    log.begin_segment();
    log.records(2);
    log.checkpoint(true);
    ChainState state = log.writer().state();
    state.sealed = false;  // a writer that ignores the seal
    log.writer() = ChainWriter(state);
    const std::size_t end = log.segments[0].bytes.size();
    log.records(1);
    expect_problem(log.verify(), Problem::RecordAfterSeal, 0, end, 4);
}

Test(audit_verify, head_from_another_log_is_a_head_mismatch)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Log other(key);
    other.begin_segment();
    other.records(19);
    other.checkpoint();  // seq 20 too, same key, different chain
    log.head = other.head;
    std::size_t s = 0;
    const FrameLoc cp = log.frame_with_seq(20, &s);
    expect_problem(log.verify(), Problem::HeadMismatch, s, cp.offset, 20);
}

Test(audit_verify, head_signed_by_another_key_is_a_bad_head)
{
    const TestKey key(1);
    const TestKey attacker(2);
    Log log(key);
    build_standard(log);
    const HeadParse real = parse_head(*log.head, key.pub);
    log.head = encode_head(real.head, attacker.signer());
    const VerifyReport report = log.verify();
    cr_assert(report.problem.problem == Problem::BadHead, "%s", describe(report.problem).c_str());
    cr_assert_not(report.head_checked);
}

Test(audit_verify, verification_with_the_wrong_public_key_fails_at_the_first_checkpoint)
{
    const TestKey key(1);
    const TestKey other(2);
    Log log(key);
    build_standard(log);
    const auto list = log.spans();
    const VerifyReport report = verify_log(list, other.pub);
    const FrameLoc cp = log.frame_with_seq(6);
    expect_problem(report, Problem::BadCheckpointSignature, 0, cp.offset, 6);
}

Test(audit_verify, resumed_writer_continues_a_valid_chain)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    const VerifyReport report = log.verify();
    cr_assert(report.resumable);
    Log resumed = log;
    resumed.writer() = ChainWriter(report.resume);
    resumed.records(5);
    resumed.checkpoint(true);
    resumed.begin_segment();
    resumed.records(1);
    const VerifyReport after = resumed.verify();
    expect_ok(after);
    cr_assert_eq(after.last_seq, 29U);
    cr_assert_eq(after.segments, 4U);
}

Test(audit_verify, report_json_names_the_problem_and_position)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    log.segments[1].bytes[200] ^= 0x01;
    const VerifyReport report = log.verify();
    const auto j = report_to_json(report);
    cr_assert_eq(j["ok"], false);
    cr_assert_eq(j["problem"]["kind"], "corrupt-record");
    cr_assert_eq(j["problem"]["segment"], 2);
    cr_assert_eq(j["problem"]["segment_index"], 1);
    cr_assert(j["problem"]["detail"].is_string());
    cr_assert_neq(describe(report.problem).find("corrupt-record"), std::string::npos);
}

Test(audit_verify, hostile_segments_never_crash)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    std::uint64_t x = 88172645463325252ULL;
    const auto next = [&x] {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        return x;
    };
    for (int round = 0; round < 300; ++round) {
        Log copy = log;
        const std::size_t s = next() % copy.segments.size();
        Bytes& bytes = copy.segments[s].bytes;
        const int edits = 1 + static_cast<int>(next() % 8);
        for (int e = 0; e < edits; ++e) {
            switch (next() % 3) {
            case 0:
                bytes[next() % bytes.size()] = static_cast<std::uint8_t>(next());
                break;
            case 1:
                bytes.resize(next() % (bytes.size() + 1));
                break;
            default:
                bytes.insert(bytes.begin() + static_cast<std::ptrdiff_t>(next() % (bytes.size() + 1)),
                             static_cast<std::uint8_t>(next()));
                break;
            }
            if (bytes.empty()) {
                break;
            }
        }
        (void)copy.verify();
    }
}

Test(audit_verify, stray_torn_tail_record_is_refused_but_a_pruned_start_may_begin_with_one)
{
    const TestKey key(1);
    Log log(key);
    build_standard(log);
    Segment& seg = log.segments[2];
    const FrameLoc last = seg.frames.back();
    seg.bytes.resize(last.offset + 20);
    seg.frames.pop_back();
    const VerifyReport torn = log.verify();
    Log resumed = log;
    resumed.writer() = ChainWriter(torn.resume);
    resumed.begin_segment();
    resumed.records(2);
    resumed.checkpoint();
    // Verified from segment 4 alone (older segments pruned), the recovery record opens the log.
    Log pruned = resumed;
    pruned.segments.erase(pruned.segments.begin(), pruned.segments.begin() + 3);
    expect_ok(pruned.verify(true, VerifyOptions{.require_genesis = false}));
    // In a full log, a recovery record with no torn frame before it is refused.
    Log stray(key);
    build_standard(stray);
    stray.checkpoint(true);  // segment 3 ends sealed, not torn
    ChainState state = stray.writer().state();
    state.pending_torn = TornTail{3, 1000, 10};
    stray.writer() = ChainWriter(state);
    stray.begin_segment();
    const VerifyReport report = stray.verify();
    expect_problem(report, Problem::MalformedRecord, 3, kSegmentHeaderBytes, 24);
}
