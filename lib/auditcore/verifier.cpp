#include "lib/auditcore/verifier.hpp"

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <algorithm>
#include <cstring>

#include "common/bytes.hpp"

namespace codexvault::audit {
namespace {

bool hash_equal(const Hash& a, const Hash& b) noexcept
{
    return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool is_zero(const Hash& h) noexcept
{
    return std::all_of(h.begin(), h.end(), [](std::uint8_t b) { return b == 0; });
}

// The record's seq: bytes 4..11 of a payload peek_frame() accepted (at least kMinPayloadBytes).
std::uint64_t payload_seq(std::span<const std::uint8_t> payload) noexcept
{
    return bytes::get_le<std::uint64_t>(payload.data() + 4);
}

// Where, after `from`, a structurally sound frame carries `seq` (0 = nowhere in this segment).
// Only runs on the failure path, to tell a reordering from a deletion.
std::size_t find_seq_after(std::span<const std::uint8_t> bytes, std::size_t from, std::uint64_t seq) noexcept
{
    std::size_t off = from;
    for (;;) {
        const FrameRead fr = peek_frame(bytes, off);
        if (fr.status != FrameStatus::Ok) {
            return 0;
        }
        if (payload_seq(fr.payload) == seq) {
            return off;
        }
        off += fr.size;
    }
}

std::string header_problem(std::span<const std::uint8_t> bytes)
{
    static constexpr std::array<std::uint8_t, 8> kMagic{'C', 'V', 'A', 'U', 'D', 'S', 'E', 'G'};
    if (bytes.size() < kSegmentHeaderBytes) {
        return "the segment is shorter than its " + std::to_string(kSegmentHeaderBytes) + "-byte header (" +
               std::to_string(bytes.size()) + " bytes)";
    }
    if (std::memcmp(bytes.data(), kMagic.data(), kMagic.size()) != 0) {
        return "not an audit segment (bad magic), or its first bytes were changed";
    }
    return "segment header damaged: unsupported version/size/flags or header hash mismatch (bit flip or edit)";
}

std::string seq_text(std::uint64_t seq)
{
    return "seq " + std::to_string(seq);
}

}  // namespace

std::string_view problem_name(Problem problem) noexcept
{
    switch (problem) {
    case Problem::None:
        return "none";
    case Problem::NoSegments:
        return "no-segments";
    case Problem::BadSegmentHeader:
        return "bad-segment-header";
    case Problem::SegmentMissing:
        return "segment-missing";
    case Problem::SegmentOutOfOrder:
        return "segment-out-of-order";
    case Problem::SegmentChainBroken:
        return "segment-chain-broken";
    case Problem::UnsealedSegment:
        return "unsealed-segment";
    case Problem::CorruptRecord:
        return "corrupt-record";
    case Problem::MalformedRecord:
        return "malformed-record";
    case Problem::SequenceGap:
        return "sequence-gap";
    case Problem::OutOfOrder:
        return "out-of-order";
    case Problem::ChainBroken:
        return "chain-broken";
    case Problem::RecordAfterSeal:
        return "record-after-seal";
    case Problem::BadCheckpointSignature:
        return "bad-checkpoint-signature";
    case Problem::CheckpointMismatch:
        return "checkpoint-mismatch";
    case Problem::TornTail:
        return "torn-tail";
    case Problem::RemovedTail:
        return "removed-tail";
    case Problem::HeadMismatch:
        return "head-mismatch";
    case Problem::BadHead:
        return "bad-head";
    }
    return "unknown";
}

Verifier::Verifier(const PublicKey& key, std::optional<std::span<const std::uint8_t>> head, VerifyOptions options)
    : key_(key), key_id_(key_id_of(key)), options_(options)
{
    if (head) {
        const HeadParse parsed = parse_head(*head, key_);
        if (parsed.status == HeadStatus::Ok) {
            head_ = parsed.head;
        } else {
            head_error_ = parsed.status;
        }
    }
}

Position Verifier::position(std::size_t offset) const noexcept
{
    return Position{index_, chain_.segment, offset, chain_.next_seq};
}

void Verifier::fail(Problem problem, const Position& at, std::string detail)
{
    if (failed_) {
        return;
    }
    failed_ = true;
    report_.problem = Finding{problem, at, std::move(detail)};
}

bool Verifier::start_segment(std::span<const std::uint8_t> bytes, std::size_t index)
{
    if (segment_count_ > 0) {
        if (end_ == SegmentEnd::Open) {
            fail(Problem::UnsealedSegment, Position{index_, chain_.segment, end_offset_, chain_.next_seq},
                 "segment " + std::to_string(chain_.segment) +
                     " is followed by another segment but does not end with a sealing checkpoint: its tail was "
                     "removed");
            return false;
        }
        if (end_ == SegmentEnd::Torn) {
            recovery_expected_ = Recovery{Position{torn_index_, torn_.segment, torn_.offset, chain_.next_seq}, torn_};
        }
    }
    index_ = index;
    const std::optional<SegmentHeader> header = parse_segment_header(bytes);
    if (!header) {
        fail(Problem::BadSegmentHeader, Position{index, 0, 0, chain_.next_seq}, header_problem(bytes));
        return false;
    }
    const SegmentHeader& h = *header;
    const Position at{index, h.segment, 0, chain_.next_seq};
    if (segment_count_ == 0 && !options_.require_genesis) {
        chain_.next_seq = h.first_seq;
        chain_.last_hash = h.prev_hash;
        chain_.segment = h.segment - 1;
        if (h.segment != 1 || h.first_seq != 1 || !is_zero(h.prev_hash)) {
            know_prev_checkpoint_ = false;
            report_.notes.push_back(Finding{Problem::None, Position{index, h.segment, 0, h.first_seq},
                                            "verification starts at segment " + std::to_string(h.segment) + ", " +
                                                seq_text(h.first_seq) +
                                                ": earlier segments were not given; this header is trusted"});
        }
    }
    if (h.segment > chain_.segment + 1) {
        fail(Problem::SegmentMissing, at,
             "segment " + std::to_string(h.segment) + " follows segment " + std::to_string(chain_.segment) +
                 ": segment(s) " + std::to_string(chain_.segment + 1) + ".." + std::to_string(h.segment - 1) +
                 " are missing");
        return false;
    }
    if (h.segment <= chain_.segment) {
        fail(Problem::SegmentOutOfOrder, at,
             "segment " + std::to_string(h.segment) + " comes after segment " + std::to_string(chain_.segment) +
                 ": segments reordered or duplicated");
        return false;
    }
    if (recovery_expected_ && (h.first_seq != chain_.next_seq || !hash_equal(h.prev_hash, chain_.last_hash))) {
        // A crash tears only the last frame, and recovery continues from the last whole record:
        // a next segment that continues from somewhere else means the torn bytes are damage.
        fail(Problem::TornTail, recovery_expected_->at,
             "segment " + std::to_string(recovery_expected_->torn.segment) +
                 " ends in a torn frame, and the next segment does not continue from the last whole record: "
                 "the segment's tail was damaged or removed");
        return false;
    }
    if (h.first_seq != chain_.next_seq) {
        fail(Problem::SegmentChainBroken, at,
             "segment header says its first record is " + seq_text(h.first_seq) + ", but the log so far continues at " +
                 seq_text(chain_.next_seq));
        return false;
    }
    if (!hash_equal(h.prev_hash, chain_.last_hash)) {
        fail(Problem::SegmentChainBroken, at,
             segment_count_ == 0 ? std::string("segment 1's header must hold a zero previous hash")
                                 : "segment header's previous hash is not the hash of the last record of segment " +
                                       std::to_string(chain_.segment));
        return false;
    }
    if (segment_count_ == 0) {
        first_seq_ = h.first_seq;
    }
    chain_.segment = h.segment;
    chain_.segment_bytes = kSegmentHeaderBytes;
    chain_.segment_first_seq = h.first_seq;
    chain_.last_hash = h.hash;
    chain_.sealed = false;
    return true;
}

bool Verifier::check_checkpoint(const RecordView& r, std::span<const std::uint8_t> payload, const Position& at)
{
    const CheckpointBody& c = r.checkpoint;
    if (c.key_id != key_id_) {
        fail(Problem::BadCheckpointSignature, at,
             "checkpoint is signed by another key (key id " + to_hex(c.key_id) + ", expected " + to_hex(key_id_) + ")");
        return false;
    }
    if (!verify_checkpoint_payload(payload, key_)) {
        fail(Problem::BadCheckpointSignature, at,
             "checkpoint signature does not verify with the audit public key: forged or altered checkpoint");
        return false;
    }
    if (!hash_equal(c.chain_hash, r.prev_hash)) {
        fail(Problem::CheckpointMismatch, at,
             "checkpoint claims chain hash " + to_hex(c.chain_hash) + " but the chain before it hashes to " +
                 to_hex(r.prev_hash));
        return false;
    }
    if (c.segment != chain_.segment || c.segment_first_seq != chain_.segment_first_seq) {
        fail(Problem::CheckpointMismatch, at,
             "checkpoint claims segment " + std::to_string(c.segment) + " starting at " +
                 seq_text(c.segment_first_seq) + ", but it is in segment " + std::to_string(chain_.segment) +
                 " starting at " + seq_text(chain_.segment_first_seq));
        return false;
    }
    if (know_prev_checkpoint_ && (c.prev_checkpoint_seq != chain_.last_checkpoint_seq ||
                                  !hash_equal(c.prev_checkpoint_hash, chain_.last_checkpoint_hash))) {
        fail(Problem::CheckpointMismatch, at,
             "checkpoint claims its predecessor is checkpoint " + seq_text(c.prev_checkpoint_seq) +
                 ", but the previous checkpoint in the log is " +
                 (chain_.last_checkpoint_seq == 0 ? std::string("none") : seq_text(chain_.last_checkpoint_seq)) +
                 " (or its hash differs)");
        return false;
    }
    return true;
}

bool Verifier::add_segment(std::span<const std::uint8_t> bytes)
{
    if (failed_ || finished_) {
        return false;
    }
    const std::size_t index = segment_count_;
    const bool started = start_segment(bytes, index);
    ++segment_count_;
    if (!started) {
        return false;
    }
    end_ = SegmentEnd::Open;
    std::size_t off = kSegmentHeaderBytes;
    for (;;) {
        const FrameRead fr = read_frame(bytes, off);
        if (fr.status == FrameStatus::End) {
            break;
        }
        if (fr.status == FrameStatus::Truncated || fr.status == FrameStatus::ZeroFill) {
            end_ = SegmentEnd::Torn;
            torn_ = TornTail{chain_.segment, off, bytes.size() - off};
            torn_index_ = index;
            break;
        }
        if (fr.status == FrameStatus::BadHeader) {
            fail(Problem::CorruptRecord, position(off),
                 "frame header damaged: its length and the length's check disagree, or the length is out of bounds "
                 "(bit flip or edit)");
            return false;
        }
        if (fr.status == FrameStatus::BadHash) {
            fail(Problem::CorruptRecord, position(off),
                 "frame hash mismatch: the record's bytes were changed (bit flip or edit)");
            return false;
        }
        const std::optional<RecordView> decoded = decode_payload(fr.payload);
        if (!decoded) {
            fail(Problem::MalformedRecord, position(off),
                 "the frame's hash matches but its payload is not a valid record: written by something else, or "
                 "edited and rehashed");
            return false;
        }
        const RecordView& r = *decoded;
        if (chain_.sealed) {
            fail(Problem::RecordAfterSeal, position(off),
                 "a record follows the checkpoint that sealed segment " + std::to_string(chain_.segment));
            return false;
        }
        if (recovery_expected_) {
            const Position torn_at = recovery_expected_->at;
            const TornTail expected = recovery_expected_->torn;
            if (r.type != EventType::TornTailRecovered || r.torn != expected) {
                fail(Problem::TornTail, torn_at,
                     "segment " + std::to_string(torn_at.segment) + " ends in a torn frame (" +
                         std::to_string(expected.bytes) + " bytes) that the next segment does not record as recovered");
                return false;
            }
            report_.notes.push_back(Finding{Problem::TornTail, torn_at,
                                            "torn frame of " + std::to_string(expected.bytes) +
                                                " bytes after a crash, recovered by " + seq_text(r.seq) +
                                                "; it is not counted as a record"});
            recovery_expected_.reset();
        } else if (r.type == EventType::TornTailRecovered &&
                   !(index == 0 && !know_prev_checkpoint_ && off == kSegmentHeaderBytes)) {
            // (Accepted only as the very first record of a log verified from a later segment,
            // whose torn predecessor was not given.)
            fail(Problem::MalformedRecord, position(off),
                 "torn-tail-recovered record, but the previous segment does not end in a torn frame");
            return false;
        }
        if (r.seq != chain_.next_seq) {
            if (r.seq > chain_.next_seq) {
                const std::size_t later = find_seq_after(bytes, off + fr.size, chain_.next_seq);
                if (later != 0) {
                    fail(Problem::OutOfOrder, position(off),
                         "found " + seq_text(r.seq) + " where " + seq_text(chain_.next_seq) + " belongs; " +
                             seq_text(chain_.next_seq) + " comes later, at offset " + std::to_string(later) +
                             ": records were swapped or moved");
                } else {
                    fail(Problem::SequenceGap, position(off),
                         "found " + seq_text(r.seq) + " where " + seq_text(chain_.next_seq) +
                             " belongs: " + std::to_string(r.seq - chain_.next_seq) + " record(s) deleted");
                }
            } else {
                fail(Problem::OutOfOrder, position(off),
                     "found " + seq_text(r.seq) + " after " + seq_text(chain_.next_seq - 1) +
                         ": a record was moved back, replayed or duplicated");
            }
            return false;
        }
        if (!hash_equal(r.prev_hash, chain_.last_hash)) {
            fail(Problem::ChainBroken, position(off),
                 "the record's previous hash is not the hash of the record before it: a record was removed or "
                 "altered and the sequence numbers or hashes rewritten");
            return false;
        }
        if (r.type == EventType::Checkpoint) {
            if (!check_checkpoint(r, fr.payload, position(off))) {
                return false;
            }
        }
        if (head_ && r.seq == head_->seq) {
            if (r.type != EventType::Checkpoint || !hash_equal(fr.hash, head_->checkpoint_hash) ||
                chain_.segment != head_->segment) {
                fail(Problem::HeadMismatch, position(off),
                     "the head file names a checkpoint at " + seq_text(head_->seq) + " in segment " +
                         std::to_string(head_->segment) +
                         ", but the log's record there is different: the log was "
                         "rewritten");
                return false;
            }
            head_seen_ = true;
        }
        if (r.type == EventType::Checkpoint) {
            chain_.last_checkpoint_seq = r.seq;
            chain_.last_checkpoint_hash = fr.hash;
            chain_.last_checkpoint_segment = chain_.segment;
            chain_.last_checkpoint_realtime_usec = r.realtime_usec;
            chain_.records_since_checkpoint = 0;
            chain_.sealed = r.checkpoint.sealed;
            know_prev_checkpoint_ = true;
            ++report_.checkpoints;
        } else {
            ++chain_.records_since_checkpoint;
        }
        chain_.last_hash = fr.hash;
        ++chain_.next_seq;
        chain_.segment_bytes += fr.size;
        ++report_.records;
        off += fr.size;
    }
    if (end_ != SegmentEnd::Torn) {
        end_ = chain_.sealed ? SegmentEnd::Sealed : SegmentEnd::Open;
    }
    end_offset_ = off;
    return true;
}

VerifyReport Verifier::finish()
{
    if (finished_) {
        return report_;
    }
    finished_ = true;
    if (!failed_) {
        if (segment_count_ == 0) {
            fail(Problem::NoSegments, Position{}, "no segments were given");
        } else if (recovery_expected_) {
            fail(Problem::TornTail, recovery_expected_->at,
                 "segment " + std::to_string(recovery_expected_->torn.segment) +
                     " ends in a torn frame and the next (last) segment has no record of its recovery");
        } else if (head_ && head_->seq >= chain_.next_seq) {
            const Position at = end_ == SegmentEnd::Torn
                                    ? Position{torn_index_, torn_.segment, torn_.offset, chain_.next_seq}
                                    : Position{index_, chain_.segment, end_offset_, chain_.next_seq};
            fail(Problem::RemovedTail, at,
                 "the log ends at " + seq_text(chain_.next_seq - 1) +
                     (end_ == SegmentEnd::Torn ? " (then a torn frame)" : "") +
                     ", but the head file names checkpoint " + seq_text(head_->seq) + " in segment " +
                     std::to_string(head_->segment) + ": the tail of the log was removed");
        } else if (end_ == SegmentEnd::Torn) {
            fail(Problem::TornTail, Position{torn_index_, torn_.segment, torn_.offset, chain_.next_seq},
                 "the log ends inside a frame (" + std::to_string(torn_.bytes) +
                     " bytes): a write was torn by a crash; the partial record is not counted");
            report_.torn_tail = torn_;
        }
    }
    if (!failed_ && head_error_) {
        fail(Problem::BadHead, Position{index_, chain_.segment, end_offset_, chain_.next_seq},
             "the head file is not valid: " + std::string(head_status_name(*head_error_)));
    }
    report_.ok = !failed_;
    report_.segments = segment_count_;
    report_.last_seq = chain_.next_seq - 1;
    report_.last_checkpoint_seq = chain_.last_checkpoint_seq;
    // Records after the last checkpoint (or after the start, when no checkpoint was seen).
    report_.unsigned_tail_records = report_.last_seq - std::max(chain_.last_checkpoint_seq, first_seq_ - 1);
    report_.head_checked = head_seen_;
    report_.head_seq = head_ ? head_->seq : 0;
    report_.resumable = report_.ok || (report_.problem.problem == Problem::TornTail && report_.torn_tail.has_value());
    report_.resume = chain_;
    if (report_.torn_tail) {
        report_.resume.pending_torn = report_.torn_tail;
    }
    return report_;
}

VerifyReport verify_log(std::span<const std::span<const std::uint8_t>> segments, const PublicKey& key,
                        std::optional<std::span<const std::uint8_t>> head, VerifyOptions options)
{
    Verifier verifier(key, head, options);
    for (const auto& segment : segments) {
        if (!verifier.add_segment(segment)) {
            break;
        }
    }
    return verifier.finish();
}

std::string describe(const Finding& finding)
{
    std::string out;
    if (finding.problem != Problem::NoSegments && finding.problem != Problem::None) {
        out = "segment " + std::to_string(finding.at.segment) + " (#" + std::to_string(finding.at.segment_index) +
              ") offset " + std::to_string(finding.at.offset) + " " + seq_text(finding.at.seq) + ": ";
    }
    out += problem_name(finding.problem);
    out += ": ";
    out += finding.detail;
    return out;
}

nlohmann::json report_to_json(const VerifyReport& report)
{
    const auto finding_json = [](const Finding& f) {
        return nlohmann::json{{"kind", f.problem == Problem::None ? std::string_view("note") : problem_name(f.problem)},
                              {"segment_index", f.at.segment_index},
                              {"segment", f.at.segment},
                              {"offset", f.at.offset},
                              {"seq", f.at.seq},
                              {"detail", f.detail}};
    };
    nlohmann::json j;
    j["ok"] = report.ok;
    j["problem"] = report.ok ? nlohmann::json(nullptr) : finding_json(report.problem);
    nlohmann::json notes = nlohmann::json::array();
    for (const Finding& note : report.notes) {
        notes.push_back(finding_json(note));
    }
    j["notes"] = std::move(notes);
    j["segments"] = report.segments;
    j["records"] = report.records;
    j["checkpoints"] = report.checkpoints;
    j["last_seq"] = report.last_seq;
    j["last_checkpoint_seq"] = report.last_checkpoint_seq;
    j["unsigned_tail_records"] = report.unsigned_tail_records;
    j["head_checked"] = report.head_checked;
    j["head_seq"] = report.head_seq;
    return j;
}

}  // namespace codexvault::audit
