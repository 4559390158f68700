// The chain writer, segment headers, checkpoint signatures, the head file and the audit key
// (daemon/audit/chain.*, checkpoint.*).
#include <sodium.h>

#include <criterion/criterion.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/record.hpp"
#include "tests/keys/audit_test_key.hpp"

using namespace codexvault::audit;
using codexvault::audit::test::TestKey;

namespace {

using Bytes = std::vector<std::uint8_t>;

void setup()
{
    cr_assert_geq(sodium_init(), 0);
}

RecordView decision(const char* object)
{
    RecordView r;
    r.type = EventType::Decision;
    r.decision = Decision::Allow;
    r.subject_known = true;
    r.uid = 1000;
    r.pid = 4242;
    r.sender = ":1.7";
    r.action = "request";
    r.object = object;
    r.reason = "grant";
    return r;
}

RecordView decode_at(const Bytes& bytes, std::size_t offset)
{
    const FrameRead fr = read_frame(bytes, offset);
    cr_assert(fr.status == FrameStatus::Ok);
    const auto view = decode_payload(fr.payload);
    cr_assert(view.has_value());
    return *view;
}

}  // namespace

TestSuite(audit_chain, .init = setup);
TestSuite(audit_checkpoint, .init = setup);

Test(audit_chain, segment_header_round_trips_and_detects_damage)
{
    Hash prev;
    prev.fill(0x33);
    const SegmentHeaderBytes bytes = encode_segment_header(5, 4001, prev);
    const auto header = parse_segment_header(bytes);
    cr_assert(header.has_value());
    cr_assert_eq(header->segment, 5U);
    cr_assert_eq(header->first_seq, 4001U);
    cr_assert(header->prev_hash == prev);
    cr_assert(std::memcmp(header->hash.data(), bytes.data() + 64, 32) == 0);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        SegmentHeaderBytes copy = bytes;
        copy[i] ^= 0x04;
        cr_assert_not(parse_segment_header(copy).has_value(), "byte %zu", i);
    }
    cr_assert_not(parse_segment_header(std::span<const std::uint8_t>(bytes.data(), 95)).has_value());
}

Test(audit_chain, writer_numbers_and_links_records_across_segments)
{
    const TestKey key(1);
    const CheckpointSigner signer = key.signer();
    ChainWriter w;
    cr_assert(w.needs_new_segment());
    Bytes seg1;
    cr_assert_throw(w.append(decision("x"), seg1), std::logic_error);
    const SegmentHeaderBytes h1 = w.begin_segment(1, 1, seg1);
    cr_assert(seg1.empty(), "no torn tail pending: nothing but the header");
    seg1.assign(h1.begin(), h1.end());
    const FrameInfo a = w.append(decision("a"), seg1);
    const FrameInfo b = w.append(decision("b"), seg1);
    cr_assert_eq(a.seq, 1U);
    cr_assert_eq(b.seq, 2U);
    cr_assert_eq(a.offset, kSegmentHeaderBytes);
    cr_assert_eq(b.offset, a.offset + a.size);
    cr_assert_eq(w.state().segment_bytes, seg1.size());
    const RecordView ra = decode_at(seg1, a.offset);
    const RecordView rb = decode_at(seg1, b.offset);
    cr_assert(std::memcmp(ra.prev_hash.data(), h1.data() + 64, 32) == 0, "first record chains to the header");
    cr_assert(rb.prev_hash == a.hash);
    cr_assert_eq(rb.object, "b");

    const FrameInfo cp = w.append_checkpoint(signer, 2, 2, true, seg1);
    cr_assert(w.needs_new_segment());
    cr_assert_throw(w.append(decision("late"), seg1), std::logic_error);
    const RecordView rc = decode_at(seg1, cp.offset);
    cr_assert(rc.type == EventType::Checkpoint);
    cr_assert(rc.checkpoint.sealed);
    cr_assert(rc.checkpoint.chain_hash == b.hash);
    cr_assert_eq(rc.checkpoint.segment, 1U);
    cr_assert_eq(rc.checkpoint.segment_first_seq, 1U);
    cr_assert_eq(rc.checkpoint.prev_checkpoint_seq, 0U);

    Bytes seg2;
    const SegmentHeaderBytes h2 = w.begin_segment(3, 3, seg2);
    const auto header2 = parse_segment_header(h2);
    cr_assert(header2.has_value());
    cr_assert_eq(header2->segment, 2U);
    cr_assert_eq(header2->first_seq, 4U);
    cr_assert(header2->prev_hash == cp.hash, "segment 2 chains to segment 1's last record");
    seg2.assign(h2.begin(), h2.end());
    const FrameInfo c = w.append(decision("c"), seg2);
    cr_assert_eq(c.seq, 4U);
    const FrameInfo cp2 = w.append_checkpoint(signer, 4, 4, false, seg2);
    const RecordView rc2 = decode_at(seg2, cp2.offset);
    cr_assert_eq(rc2.checkpoint.prev_checkpoint_seq, 3U);
    cr_assert(rc2.checkpoint.prev_checkpoint_hash == cp.hash);
    cr_assert_not(w.needs_new_segment());
}

Test(audit_chain, writer_refuses_reserved_types_through_append)
{
    ChainWriter w;
    Bytes out;
    w.begin_segment(1, 1, out);
    RecordView r;
    r.type = EventType::Checkpoint;
    cr_assert_throw(w.append(r, out), std::logic_error);
    r.type = EventType::TornTailRecovered;
    cr_assert_throw(w.append(r, out), std::logic_error);
}

Test(audit_chain, writer_overrides_caller_seq_and_prev_hash)
{
    ChainWriter w;
    Bytes seg;
    const SegmentHeaderBytes h = w.begin_segment(1, 1, seg);
    seg.assign(h.begin(), h.end());
    RecordView r = decision("x");
    r.seq = 999;
    r.prev_hash.fill(0xee);
    const FrameInfo f = w.append(r, seg);
    const RecordView back = decode_at(seg, f.offset);
    cr_assert_eq(back.seq, 1U);
    cr_assert(std::memcmp(back.prev_hash.data(), h.data() + 64, 32) == 0);
}

Test(audit_chain, pending_torn_tail_is_recorded_first_in_the_new_segment)
{
    ChainState state;
    state.segment = 4;
    state.next_seq = 77;
    state.last_hash.fill(0x44);
    state.pending_torn = TornTail{4, 5000, 37};
    ChainWriter w(state);
    cr_assert(w.needs_new_segment());
    Bytes out;
    const SegmentHeaderBytes h = w.begin_segment(10, 20, out);
    cr_assert_not(w.needs_new_segment());
    cr_assert_not(w.state().pending_torn.has_value());
    const auto header = parse_segment_header(h);
    cr_assert_eq(header->segment, 5U);
    cr_assert_eq(header->first_seq, 77U);
    cr_assert(header->prev_hash == state.last_hash);
    const RecordView r = decode_at(out, 0);
    cr_assert(r.type == EventType::TornTailRecovered);
    cr_assert_eq(r.seq, 77U);
    cr_assert(r.torn == (TornTail{4, 5000, 37}));
    cr_assert_eq(w.state().next_seq, 78U);
    cr_assert_eq(w.state().segment_bytes, kSegmentHeaderBytes + out.size());
}

Test(audit_checkpoint, key_derivation_is_deterministic_and_exported_as_one_line)
{
    const TestKey a(7);
    const TestKey b(7);
    const TestKey c(8);
    cr_assert(a.pub == b.pub);
    cr_assert(a.pub != c.pub);
    cr_assert(a.signer().public_key() == a.pub);
    cr_assert(a.signer().key_id() == key_id_of(a.pub));
    const std::string line = format_public_key(a.pub);
    cr_assert_eq(line.rfind("codex-vault-audit-ed25519 ", 0), 0U);
    cr_assert_eq(line.back(), '\n');
    cr_assert(parse_public_key(line) == a.pub);
    cr_assert(parse_public_key("  " + line + "\n\n") == a.pub);
    cr_assert_not(parse_public_key(line.substr(0, line.size() - 3)).has_value());
    cr_assert_not(parse_public_key("ssh-ed25519 AAAA").has_value());
    cr_assert_not(parse_public_key("").has_value());
}

Test(audit_checkpoint, signature_covers_every_byte_but_itself)
{
    const TestKey key(3);
    const TestKey other(4);
    ChainWriter w;
    Bytes seg;
    const SegmentHeaderBytes h = w.begin_segment(1, 1, seg);
    seg.assign(h.begin(), h.end());
    w.append(decision("a"), seg);
    const FrameInfo cp = w.append_checkpoint(key.signer(), 5, 6, false, seg);
    const auto payload =
        std::span<const std::uint8_t>(seg.data() + cp.offset + kFrameHeaderBytes, cp.size - kFrameOverheadBytes);
    cr_assert(verify_checkpoint_payload(payload, key.pub));
    cr_assert_not(verify_checkpoint_payload(payload, other.pub));
    for (std::size_t i = 0; i < payload.size(); ++i) {
        Bytes copy(payload.begin(), payload.end());
        copy[i] ^= 0x01;
        cr_assert_not(verify_checkpoint_payload(copy, key.pub), "payload byte %zu", i);
    }
    cr_assert_not(verify_checkpoint_payload(std::span<const std::uint8_t>(payload.data(), 10), key.pub));
}

Test(audit_checkpoint, head_round_trips_and_refuses_damage_and_other_keys)
{
    const TestKey key(5);
    const TestKey other(6);
    Head head;
    head.segment = 3;
    head.seq = 3000;
    head.checkpoint_hash.fill(0x77);
    head.realtime_usec = 1'700'000'000'000'000ULL;
    const HeadBytes bytes = encode_head(head, key.signer());
    const HeadParse parsed = parse_head(bytes, key.pub);
    cr_assert(parsed.status == HeadStatus::Ok);
    head.key_id = key.signer().key_id();
    cr_assert(parsed.head == head);
    cr_assert(parse_head(bytes, other.pub).status == HeadStatus::WrongKey);
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        HeadBytes copy = bytes;
        copy[i] ^= 0x80;
        cr_assert(parse_head(copy, key.pub).status != HeadStatus::Ok, "byte %zu", i);
    }
    cr_assert(parse_head(std::span<const std::uint8_t>(bytes.data(), 100), key.pub).status == HeadStatus::Malformed);
    const HeadBytes forged = encode_head(head, other.signer());
    cr_assert(parse_head(forged, key.pub).status == HeadStatus::WrongKey);
}

Test(audit_checkpoint, checkpoint_signature_is_not_a_head_signature)
{
    // Domain separation: the bytes a checkpoint signs can never verify as a head, and vice versa.
    const TestKey key(9);
    Bytes payload(200, 0x42);
    sign_checkpoint_payload(payload, key.signer());
    const SigningMessage message = checkpoint_signing_message(payload);
    cr_assert_eq(std::memcmp(message.data(), "codex-vault/audit/checkpoint/v1", 31), 0);
    Head head;
    head.segment = 1;
    head.seq = 1;
    HeadBytes bytes = encode_head(head, key.signer());
    std::memcpy(bytes.data() + 80, payload.data() + payload.size() - 64, 64);
    cr_assert(parse_head(bytes, key.pub).status == HeadStatus::BadSignature);
}

Test(audit_checkpoint, writer_head_names_the_last_checkpoint)
{
    const TestKey key(10);
    ChainWriter w;
    cr_assert_not(w.head(key.signer()).has_value());
    Bytes seg;
    const SegmentHeaderBytes h = w.begin_segment(1, 1, seg);
    seg.assign(h.begin(), h.end());
    w.append(decision("a"), seg);
    const FrameInfo cp = w.append_checkpoint(key.signer(), 123, 456, false, seg);
    w.append(decision("b"), seg);
    const auto head = w.head(key.signer());
    cr_assert(head.has_value());
    const HeadParse parsed = parse_head(*head, key.pub);
    cr_assert(parsed.status == HeadStatus::Ok);
    cr_assert_eq(parsed.head.seq, cp.seq);
    cr_assert_eq(parsed.head.segment, 1U);
    cr_assert(parsed.head.checkpoint_hash == cp.hash);
    cr_assert_eq(parsed.head.realtime_usec, 123U);
}
