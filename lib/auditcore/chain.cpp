#include "lib/auditcore/chain.hpp"

#include <sodium.h>

#include <cstring>
#include <stdexcept>

#include "common/bytes.hpp"

namespace codexvault::audit {
namespace {

constexpr std::array<std::uint8_t, 8> kSegmentMagic{'C', 'V', 'A', 'U', 'D', 'S', 'E', 'G'};
constexpr std::size_t kHeaderHashedBytes = 64;
static_assert(kSegmentHeaderBytes <= UINT16_MAX, "the header records its own size as a u16");

}  // namespace

SegmentHeaderBytes encode_segment_header(std::uint64_t segment, std::uint64_t first_seq, const Hash& prev_hash) noexcept
{
    SegmentHeaderBytes out{};
    std::memcpy(out.data(), kSegmentMagic.data(), kSegmentMagic.size());
    bytes::put_le<std::uint16_t>(out.data() + 8, kFormatVersion);
    bytes::put_le<std::uint16_t>(out.data() + 10, kSegmentHeaderBytes);
    bytes::put_le<std::uint64_t>(out.data() + 16, segment);
    bytes::put_le<std::uint64_t>(out.data() + 24, first_seq);
    std::memcpy(out.data() + 32, prev_hash.data(), prev_hash.size());
    crypto_generichash(out.data() + kHeaderHashedBytes, 32, out.data(), kHeaderHashedBytes, nullptr, 0);
    return out;
}

std::optional<SegmentHeader> parse_segment_header(std::span<const std::uint8_t> segment_bytes) noexcept
{
    if (segment_bytes.size() < kSegmentHeaderBytes) {
        return std::nullopt;
    }
    const std::uint8_t* p = segment_bytes.data();
    if (std::memcmp(p, kSegmentMagic.data(), kSegmentMagic.size()) != 0) {
        return std::nullopt;
    }
    const auto version = bytes::get_le<std::uint16_t>(p + 8);
    const auto size = bytes::get_le<std::uint16_t>(p + 10);
    if (version != kFormatVersion || size != kSegmentHeaderBytes || p[12] != 0 || p[13] != 0 || p[14] != 0 ||
        p[15] != 0) {
        return std::nullopt;
    }
    Hash computed;
    crypto_generichash(computed.data(), computed.size(), p, kHeaderHashedBytes, nullptr, 0);
    if (sodium_memcmp(computed.data(), p + kHeaderHashedBytes, computed.size()) != 0) {
        return std::nullopt;
    }
    SegmentHeader header;
    header.segment = bytes::get_le<std::uint64_t>(p + 16);
    header.first_seq = bytes::get_le<std::uint64_t>(p + 24);
    std::memcpy(header.prev_hash.data(), p + 32, 32);
    header.hash = computed;
    if (header.segment == 0 || header.first_seq == 0) {
        return std::nullopt;
    }
    return header;
}

SegmentHeaderBytes ChainWriter::begin_segment(std::uint64_t realtime_usec, std::uint64_t monotonic_usec,
                                              std::vector<std::uint8_t>& out)
{
    const std::uint64_t segment = state_.segment + 1;
    const SegmentHeaderBytes header = encode_segment_header(segment, state_.next_seq, state_.last_hash);
    state_.segment = segment;
    state_.segment_bytes = kSegmentHeaderBytes;
    state_.segment_first_seq = state_.next_seq;
    std::memcpy(state_.last_hash.data(), header.data() + kHeaderHashedBytes, 32);
    state_.sealed = false;
    if (state_.pending_torn) {
        RecordView r;
        r.type = EventType::TornTailRecovered;
        r.realtime_usec = realtime_usec;
        r.monotonic_usec = monotonic_usec;
        r.action = "audit-recover";
        r.reason = "the previous segment ends in a torn frame (crash during a write); continued in a new segment";
        r.torn = *state_.pending_torn;
        r.seq = state_.next_seq;
        r.prev_hash = state_.last_hash;
        const FrameInfo frame = append_frame(r, out);
        state_.pending_torn.reset();
        ++state_.records_since_checkpoint;
        commit(frame);
    }
    return header;
}

void ChainWriter::require_open_segment() const
{
    if (needs_new_segment()) {
        throw std::logic_error("audit: append needs begin_segment first (no segment, sealed, or torn tail pending)");
    }
}

FrameInfo ChainWriter::commit(const FrameInfo& frame)
{
    state_.last_hash = frame.hash;
    state_.segment_bytes += frame.size;
    ++state_.next_seq;
    return frame;
}

FrameInfo ChainWriter::append(const RecordView& fields, std::vector<std::uint8_t>& out)
{
    require_open_segment();
    if (fields.type == EventType::Checkpoint || fields.type == EventType::TornTailRecovered) {
        throw std::logic_error("audit: checkpoints and torn-tail records have their own ChainWriter calls");
    }
    RecordView r = fields;
    r.seq = state_.next_seq;
    r.prev_hash = state_.last_hash;
    const FrameInfo frame = append_frame(r, out);
    ++state_.records_since_checkpoint;
    return commit(frame);
}

FrameInfo ChainWriter::append_checkpoint(const CheckpointSigner& signer, std::uint64_t realtime_usec,
                                         std::uint64_t monotonic_usec, bool seal, std::vector<std::uint8_t>& out)
{
    require_open_segment();
    RecordView r;
    r.type = EventType::Checkpoint;
    r.seq = state_.next_seq;
    r.realtime_usec = realtime_usec;
    r.monotonic_usec = monotonic_usec;
    r.prev_hash = state_.last_hash;
    r.checkpoint.segment = state_.segment;
    r.checkpoint.segment_first_seq = state_.segment_first_seq;
    r.checkpoint.prev_checkpoint_seq = state_.last_checkpoint_seq;
    r.checkpoint.prev_checkpoint_hash = state_.last_checkpoint_hash;
    r.checkpoint.chain_hash = state_.last_hash;
    r.checkpoint.sealed = seal;
    r.checkpoint.key_id = signer.key_id();
    const std::size_t start = begin_frame(r, out);
    const std::size_t payload_len = out.size() - start - kFrameHeaderBytes;
    sign_checkpoint_payload(std::span<std::uint8_t>(out.data() + start + kFrameHeaderBytes, payload_len), signer);
    const FrameInfo frame = finish_frame(out, start);
    state_.last_checkpoint_seq = frame.seq;
    state_.last_checkpoint_hash = frame.hash;
    state_.last_checkpoint_segment = state_.segment;
    state_.last_checkpoint_realtime_usec = realtime_usec;
    state_.records_since_checkpoint = 0;
    state_.sealed = seal;
    return commit(frame);
}

std::optional<HeadBytes> ChainWriter::head(const CheckpointSigner& signer) const noexcept
{
    if (state_.last_checkpoint_seq == 0) {
        return std::nullopt;
    }
    Head h;
    h.segment = state_.last_checkpoint_segment;
    h.seq = state_.last_checkpoint_seq;
    h.checkpoint_hash = state_.last_checkpoint_hash;
    h.realtime_usec = state_.last_checkpoint_realtime_usec;
    return encode_head(h, signer);
}

}  // namespace codexvault::audit
