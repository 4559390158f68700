// The hash chain and the segment layout: the pure state machine the daemon's audit writer drives.
// It produces bytes (segment headers, frames, head files); the shell writes them (see
// docs/audit-log.md, "What the writer must do").
//
// Chain: every record's prev_hash is the hash of the record before it; the first record of a
// segment chains to that segment's header hash, and the header holds the hash of the last record
// of the previous segment. So one unbroken chain runs from segment 1's header to the last record,
// through every header, and each checkpoint's signature covers all of it up to the checkpoint.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/record.hpp"

namespace codexvault::audit {

// ---- segment header -----------------------------------------------------------------------------
//
//   0   8  magic "CVAUDSEG"
//   8   2  u16 LE format version (1)
//  10   2  u16 LE header size (96)
//  12   4  zero (flags)
//  16   8  u64 LE segment number (1, 2, 3 ...)
//  24   8  u64 LE sequence number of the segment's first record
//  32  32  hash of the last record of the previous segment (zeros for segment 1)
//  64  32  BLAKE2b-256 of bytes 0..63: the header's hash, the first record's prev_hash

inline constexpr std::size_t kSegmentHeaderBytes = 96;
using SegmentHeaderBytes = std::array<std::uint8_t, kSegmentHeaderBytes>;

struct SegmentHeader {
    std::uint64_t segment = 0;
    std::uint64_t first_seq = 0;
    Hash prev_hash{};
    Hash hash{};  // the header's own hash (computed by encode, checked by parse)
    bool operator==(const SegmentHeader&) const = default;
};

SegmentHeaderBytes encode_segment_header(std::uint64_t segment, std::uint64_t first_seq,
                                         const Hash& prev_hash) noexcept;
// nullopt when too short, wrong magic/version/size/flags, or the header hash does not match.
std::optional<SegmentHeader> parse_segment_header(std::span<const std::uint8_t> segment_bytes) noexcept;

// ---- chain state ---------------------------------------------------------------------------------

struct ChainState {
    std::uint64_t segment = 0;            // current segment number; 0 = no segment yet (new log)
    std::uint64_t segment_bytes = 0;      // bytes in the current segment (header + whole frames)
    std::uint64_t segment_first_seq = 0;  // seq the current segment starts with
    std::uint64_t next_seq = 1;
    Hash last_hash{};  // hash of the last record, or of the current segment's header
    std::uint64_t last_checkpoint_seq = 0;
    Hash last_checkpoint_hash{};
    std::uint64_t last_checkpoint_segment = 0;
    std::uint64_t last_checkpoint_realtime_usec = 0;
    std::uint64_t records_since_checkpoint = 0;  // records (not counting checkpoints) since the last one
    bool sealed = false;                         // the current segment ends with a sealing checkpoint: begin a new one
    // Set by the verifier when the last segment ends in a torn frame: the next segment must start
    // with a torn-tail-recovered record naming it (ChainWriter does that in begin_segment).
    std::optional<TornTail> pending_torn;
    bool operator==(const ChainState&) const = default;
};

// Appends records to a chain. Not thread-safe; the daemon's event loop owns one.
//
// The state advances when a call returns. When the shell fails to write the bytes it got, it must
// not keep appending: either restore a copy of state() taken before (nothing reached the file),
// or stop and let the start-up verification find the torn tail. Misuse (appending before
// begin_segment, to a sealed segment, a checkpoint through append) throws std::logic_error.
class ChainWriter {
public:
    ChainWriter() = default;  // a new log: call begin_segment first
    explicit ChainWriter(const ChainState& resume) : state_(resume) {}

    [[nodiscard]] const ChainState& state() const noexcept { return state_; }
    // True when the next record needs a new segment (no segment yet, sealed, or a torn tail).
    [[nodiscard]] bool needs_new_segment() const noexcept
    {
        return state_.segment == 0 || state_.sealed || state_.pending_torn.has_value();
    }

    // Starts segment state().segment + 1: `header` receives the bytes the new file must begin
    // with. When a torn tail is pending, the torn-tail-recovered record is appended to `out`
    // right away (it must be the segment's first record); write `out` after the header.
    SegmentHeaderBytes begin_segment(std::uint64_t realtime_usec, std::uint64_t monotonic_usec,
                                     std::vector<std::uint8_t>& out);

    // Appends `fields` as the next record (seq and prev_hash are set here; the type must not be
    // Checkpoint or TornTailRecovered, which have their own calls). Appends the frame to `out`.
    FrameInfo append(const RecordView& fields, std::vector<std::uint8_t>& out);

    // Appends a signed checkpoint covering everything so far. `seal` makes it the segment's last
    // record: the next record needs begin_segment.
    FrameInfo append_checkpoint(const CheckpointSigner& signer, std::uint64_t realtime_usec,
                                std::uint64_t monotonic_usec, bool seal, std::vector<std::uint8_t>& out);

    // The head file naming the last checkpoint; nullopt before the first checkpoint.
    [[nodiscard]] std::optional<HeadBytes> head(const CheckpointSigner& signer) const noexcept;

private:
    void require_open_segment() const;
    FrameInfo commit(const FrameInfo& frame);

    ChainState state_;
};

}  // namespace codexvault::audit
