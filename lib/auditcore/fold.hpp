// Folding of repeated audit records, so that a local caller cannot fill the disk (and the journal)
// by repeating a cheap call. Pure: no clocks, no I/O; the caller passes monotonic time.
//
// Rules (docs/audit-log.md, "Folding"):
//   - Only informational calls (Status, WhoAmI ...) and denials are foldable. An allowed
//     state-changing call is always written.
//   - Key: the subject (uid when known, else the bus sender), event type, action and decision —
//     never the reason or the object, which can carry text the caller chose (a capability string,
//     a secret name): varying them must not defeat folding. In each window (1 s, starting at the
//     first foldable record after the previous window ended), the first record per key is
//     written; later ones are only counted, and the folded record keeps the first one's reason.
//   - Per subject (uid when known; every unidentified caller shares one), at most
//     max_written_per_subject foldable records are written per window; beyond that they are
//     counted under the subject's overflow key, so no caller can write more than a fixed number
//     of records per window however it varies its calls.
//   - When the window ends, every key with a count yields one folded-repeats record carrying
//     repeat_count; then the table starts empty.
//   - Memory is bounded: at most max_keys keys per window. When the table is full, a new key is
//     counted (not written) under an overflow key per subject (at most max_overflow_keys of
//     them), and beyond that under one catch-all key. Key strings are cut to max_key_field_bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "lib/auditcore/record.hpp"

namespace codexvault::audit {

struct FoldLimits {
    std::uint64_t window_usec = 1'000'000;
    std::size_t max_keys = 4096;
    std::size_t max_overflow_keys = 64;
    std::size_t max_key_field_bytes = 256;
    std::size_t max_written_per_subject = 16;
};

enum class FoldVerdict {
    Write,   // write the record now
    Folded,  // counted; it will be part of a folded-repeats record
};

// One folded-repeats record to write (owning).
struct FoldedRepeat {
    EventType folded_type = EventType::Decision;  // the type of the records that were folded
    Decision decision = Decision::None;
    bool subject_known = false;
    std::uint32_t uid = 0;
    std::string sender;  // set when the subject is unknown (the key is then the sender)
    std::string action;  // "*" for an overflow key
    std::string reason;
    std::uint64_t count = 0;
    bool overflow = false;  // counted under an overflow key: the table was full

    // The record to append (type FoldedRepeats, repeat_count = count); views into this object.
    [[nodiscard]] RecordView view() const noexcept;
};

class Folder {
public:
    explicit Folder(const FoldLimits& limits = {}) : limits_(limits) {}

    [[nodiscard]] static bool foldable(const RecordView& r, bool informational) noexcept
    {
        return informational || r.decision == Decision::Deny;
    }

    // Decides for one record at monotonic time `now_usec`. A record arriving after the window
    // ended first closes that window (its repeats become due, see take_due).
    FoldVerdict offer(const RecordView& r, bool informational, std::uint64_t now_usec);

    // Folded-repeats records of every window that has ended by `now_usec`, in key order.
    std::vector<FoldedRepeat> take_due(std::uint64_t now_usec);
    // Everything counted so far, ended or not (orderly stop).
    std::vector<FoldedRepeat> take_all();

    // When take_due next has something to return: nullopt when nothing is counted.
    [[nodiscard]] std::optional<std::uint64_t> deadline() const noexcept;
    [[nodiscard]] std::size_t key_count() const noexcept { return keys_.size() + overflow_.size(); }
    [[nodiscard]] const FoldLimits& limits() const noexcept { return limits_; }

private:
    // (subject known, uid, sender, type, action, decision)
    using Key = std::tuple<bool, std::uint32_t, std::string, std::uint8_t, std::string, std::uint8_t>;
    struct Counted {
        std::uint64_t count = 0;
        std::string first_reason;  // cut to max_key_field_bytes
    };
    // (subject known, uid, decision); the catch-all key is (false, 0, kNone).
    using OverflowKey = std::tuple<bool, std::uint32_t, std::uint8_t>;
    // (subject known, uid): whom the per-subject cap counts; unidentified callers share (false, 0).
    using SubjectKey = std::tuple<bool, std::uint32_t>;

    FoldVerdict count_overflow(OverflowKey key);
    void close_window();
    [[nodiscard]] std::string cut(std::string_view text) const;

    FoldLimits limits_;
    std::optional<std::uint64_t> window_end_;
    std::map<Key, Counted> keys_;                    // repeats counted per key in this window
    std::map<SubjectKey, std::size_t> written_;      // foldable records written per subject
    std::map<OverflowKey, std::uint64_t> overflow_;  // counted when keys_ was full
    std::vector<FoldedRepeat> due_;                  // from windows that have ended
    std::uint64_t counted_ = 0;                      // records counted in this window
};

}  // namespace codexvault::audit
