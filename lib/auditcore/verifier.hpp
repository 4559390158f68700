// Offline verification of the audit log (`vaultctl audit verify`, and the daemon at start-up):
// pure, over the segments' bytes in order, the audit public key and optionally the head file.
//
// Verification stops at the FIRST bad position and says what is wrong there; nothing after it is
// trusted. What each problem means and what verification cannot prove (the window after the last
// checkpoint) is in docs/audit-log.md.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/record.hpp"

namespace codexvault::audit {

enum class Problem : std::uint8_t {
    None = 0,
    NoSegments,              // nothing to verify
    BadSegmentHeader,        // header too short, wrong magic/version, or its hash mismatches (bit flip)
    SegmentMissing,          // segment numbers jump: whole segments deleted
    SegmentOutOfOrder,       // segment number repeats or goes back: segments reordered or duplicated
    SegmentChainBroken,      // header's first seq or prev hash does not continue the previous segment
    UnsealedSegment,         // a segment other than the last ends without a sealing checkpoint: its tail removed
    CorruptRecord,           // frame length check or frame hash mismatch: a bit flip or an edit
    MalformedRecord,         // frame hash fine but the payload is not a valid record (hash recomputed by an editor)
    SequenceGap,             // sequence numbers jump: records deleted
    OutOfOrder,              // a sequence number from later (swapped/moved) or earlier (replayed/duplicated)
    ChainBroken,             // prev_hash is not the previous record's hash: records removed or altered and rehashed
    RecordAfterSeal,         // a record follows a segment's sealing checkpoint
    BadCheckpointSignature,  // forged checkpoint: signed by another key, or the signature does not verify
    CheckpointMismatch,      // validly signed checkpoint whose claims do not match the chain
    TornTail,                // the log ends inside a frame (crash during a write): not a valid record
    RemovedTail,             // the log ends before the checkpoint the head file names
    HeadMismatch,            // the record at the head's sequence number is not the checkpoint the head names
    BadHead,                 // the head file is malformed or not signed by the audit key
};
// Stable kebab-case names ("corrupt-record") for JSON and scripts.
std::string_view problem_name(Problem problem) noexcept;

struct Position {
    std::size_t segment_index = 0;  // 0-based position in the list of segments given to the verifier
    std::uint64_t segment = 0;      // segment number from its header (0 when the header is unreadable)
    std::uint64_t offset = 0;       // byte offset within that segment
    std::uint64_t seq = 0;          // sequence number expected at that position
    bool operator==(const Position&) const = default;
};

struct Finding {
    Problem problem = Problem::None;
    Position at;
    std::string detail;  // one sentence for people; never contains record strings
};

struct VerifyOptions {
    // The first segment given must be segment 1 (first seq 1, zero prev hash). Turn off only to
    // verify a log whose oldest segments were removed by retention; the first segment's header
    // is then trusted as the anchor and a note says so.
    bool require_genesis = true;
};

struct VerifyReport {
    bool ok = false;
    Finding problem;             // the first problem; Problem::None when ok
    std::vector<Finding> notes;  // not failures: recovered torn tails (TornTail), a non-genesis start (None, "note")
    std::uint64_t segments = 0;  // segments read (up to and including the one with the problem)
    std::uint64_t records = 0;   // valid records, checkpoints included
    std::uint64_t checkpoints = 0;
    std::uint64_t last_seq = 0;             // of the last valid record
    std::uint64_t last_checkpoint_seq = 0;  // 0 = none
    // Valid records after the last checkpoint: chain-consistent, but no signature covers them yet
    // (see "What verification cannot prove" in docs/audit-log.md).
    std::uint64_t unsigned_tail_records = 0;
    bool head_checked = false;  // a valid head was given and its checkpoint was found in the log
    std::uint64_t head_seq = 0;
    std::optional<TornTail> torn_tail;  // set with Problem::TornTail: what to record on recovery
    // State after the last valid record, for ChainWriter(resume) when `resumable`: the log is
    // valid, or its only problem is a torn tail (resume.pending_torn is then set).
    bool resumable = false;
    ChainState resume;
};

// Incremental: feed the segments in order (one mapping at a time is enough), then finish().
class Verifier {
public:
    // `head`: the head file's bytes, if there is one. Its validity is checked here; a bad head
    // is reported by finish() when the log itself has no earlier problem.
    explicit Verifier(const PublicKey& key, std::optional<std::span<const std::uint8_t>> head = std::nullopt,
                      VerifyOptions options = {});

    // Verifies one segment. Returns false once a problem was found (later segments are ignored).
    bool add_segment(std::span<const std::uint8_t> bytes);
    // Ends the verification (end-of-log checks: torn tail, removed tail, head) and returns the report.
    VerifyReport finish();

private:
    enum class SegmentEnd { Sealed, Open, Torn };

    void fail(Problem problem, const Position& at, std::string detail);
    bool start_segment(std::span<const std::uint8_t> bytes, std::size_t index);
    bool check_checkpoint(const RecordView& r, std::span<const std::uint8_t> payload, const Position& at);
    [[nodiscard]] Position position(std::size_t offset) const noexcept;

    PublicKey key_;
    KeyId key_id_{};
    VerifyOptions options_;
    std::optional<Head> head_;
    std::optional<HeadStatus> head_error_;
    bool head_seen_ = false;

    VerifyReport report_;
    bool failed_ = false;
    bool finished_ = false;
    std::size_t segment_count_ = 0;

    // Chain state after the last valid record (report_.resume is filled from it).
    ChainState chain_;
    bool know_prev_checkpoint_ = true;  // false until the first checkpoint when not from genesis

    // The segment being read, and how the previous one ended.
    std::size_t index_ = 0;
    SegmentEnd end_ = SegmentEnd::Open;
    std::uint64_t end_offset_ = 0;
    TornTail torn_{};
    std::size_t torn_index_ = 0;
    struct Recovery {
        Position at;
        TornTail torn;
    };
    std::optional<Recovery> recovery_expected_;  // the torn frame this segment must account for first
    std::uint64_t first_seq_ = 1;                // first seq of the first segment
};

// Convenience: verifies a whole log held in memory.
VerifyReport verify_log(std::span<const std::span<const std::uint8_t>> segments, const PublicKey& key,
                        std::optional<std::span<const std::uint8_t>> head = std::nullopt, VerifyOptions options = {});

// "segment 3 (#2) offset 4096 seq 1234: corrupt-record: ..." for people.
std::string describe(const Finding& finding);
// {"ok":..., "problem":{"kind":..., "segment":..., "offset":..., "seq":..., "detail":...}, ...}
nlohmann::json report_to_json(const VerifyReport& report);

}  // namespace codexvault::audit
