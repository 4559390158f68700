// Audit records and frames (daemon/audit/record.*): round trips of every event type and field,
// truncation of oversized fields, hostile input to the decoder and the frame reader, the stable
// names and journald MESSAGE_IDs, the JSON form and the tail filters.
#include <nlohmann/json.hpp>
#include <sodium.h>

#include <criterion/criterion.h>

#include <array>
#include <cstdint>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "lib/auditcore/record.hpp"

using namespace codexvault::audit;

namespace {

using Bytes = std::vector<std::uint8_t>;

void setup()
{
    cr_assert_geq(sodium_init(), 0);
}

Hash hash_of(std::uint8_t fill)
{
    Hash h;
    h.fill(fill);
    return h;
}

// A record with every field set to something distinct.
Record full_record(EventType type)
{
    Record r;
    r.type = type;
    r.decision = Decision::Deny;
    r.seq = 0x0102030405060708ULL;
    r.realtime_usec = 1'714'564'800'123'456ULL;
    r.monotonic_usec = 987'654'321ULL;
    r.prev_hash = hash_of(0xab);
    r.subject_known = true;
    r.uid = 4'000'000'000U;
    r.pid = -2;  // any i32 survives the trip
    r.sender = ":1.42";
    r.exe = "/usr/bin/python3.11";
    r.unit = "agent@1.service";
    r.action = "request";
    r.object = "openai-prod";
    r.reason = "no grant for this subject";
    r.grant = "g-7f3a";
    r.repeat_count = 17;
    if (type == EventType::Checkpoint) {
        r.checkpoint.segment = 3;
        r.checkpoint.segment_first_seq = 2001;
        r.checkpoint.prev_checkpoint_seq = 2000;
        r.checkpoint.prev_checkpoint_hash = hash_of(0x11);
        r.checkpoint.chain_hash = hash_of(0x22);
        r.checkpoint.sealed = true;
        r.checkpoint.key_id = {1, 2, 3, 4, 5, 6, 7, 8};
        r.checkpoint.signature.fill(0x5a);
    }
    if (type == EventType::TornTailRecovered) {
        r.torn = TornTail{7, 123456, 99};
    }
    return r;
}

std::optional<Record> round_trip(const Record& r, Bytes& frame)
{
    frame.clear();
    const FrameInfo info = append_frame(r.view(), frame);
    cr_assert_eq(info.offset, 0U);
    cr_assert_eq(info.size, frame.size());
    const FrameRead fr = read_frame(frame, 0);
    cr_assert(fr.status == FrameStatus::Ok);
    cr_assert_eq(fr.size, frame.size());
    cr_assert(fr.hash == info.hash);
    const auto view = decode_payload(fr.payload);
    if (!view) {
        return std::nullopt;
    }
    return Record::from(*view);
}

}  // namespace

TestSuite(audit_record, .init = setup);

Test(audit_record, every_event_type_and_field_round_trips)
{
    for (std::uint8_t wire = kFirstEventType; wire <= kLastEventType; ++wire) {
        const auto type = static_cast<EventType>(wire);
        for (const Decision decision : {Decision::None, Decision::Allow, Decision::Deny}) {
            Record r = full_record(type);
            r.decision = decision;
            Bytes frame;
            const auto back = round_trip(r, frame);
            cr_assert(back.has_value(), "event %s does not decode", std::string(event_type_name(type)).c_str());
            cr_assert(*back == r, "event %s does not round trip", std::string(event_type_name(type)).c_str());
        }
    }
}

Test(audit_record, unknown_subject_and_empty_fields_round_trip)
{
    Record r;
    r.type = EventType::Start;
    r.seq = 1;
    Bytes frame;
    const auto back = round_trip(r, frame);
    cr_assert(back.has_value());
    cr_assert(*back == r);
    cr_assert_not(back->subject_known);
    cr_assert_eq(frame.size(), kFrameOverheadBytes + kMinPayloadBytes);
}

Test(audit_record, checkpoint_and_torn_bodies_are_only_encoded_for_their_types)
{
    Record r = full_record(EventType::Decision);
    r.checkpoint.segment = 9;  // ignored for a decision
    r.torn.offset = 9;
    Bytes frame;
    const auto back = round_trip(r, frame);
    cr_assert(back.has_value());
    cr_assert_eq(back->checkpoint.segment, 0U);
    cr_assert_eq(back->torn.offset, 0U);
}

namespace {

ProcessLink sample_link()
{
    return ProcessLink{.start_ticks = 0x1112131415161718ULL,
                       .start_usec = 1'714'564'799'000'001ULL,
                       .parent_pid = -7,  // any i32 survives the trip
                       .parent_start_ticks = 0x2122232425262728ULL,
                       .event_usec = 1'714'564'800'000'002ULL};
}

}  // namespace

Test(audit_record, the_process_tail_round_trips_on_every_event_type)
{
    for (std::uint8_t wire = kFirstEventType; wire <= kLastEventType; ++wire) {
        Record r = full_record(static_cast<EventType>(wire));
        r.has_process = true;
        r.process = sample_link();
        Bytes frame;
        const auto back = round_trip(r, frame);
        cr_assert(back.has_value(), "event %s with a process tail does not decode",
                  std::string(event_type_name(r.type)).c_str());
        cr_assert(*back == r, "event %s with a process tail does not round trip",
                  std::string(event_type_name(r.type)).c_str());
        const auto j = record_to_json(back->view());
        cr_assert_eq(j["process"]["parent_pid"], -7);
        cr_assert_eq(j["process"]["start_ticks"], r.process.start_ticks);
        cr_assert_eq(j["process"]["parent_start_ticks"], r.process.parent_start_ticks);
        cr_assert_eq(j["process"]["event_usec"], r.process.event_usec);
    }
    Record plain = full_record(EventType::Monitor);
    plain.process = sample_link();  // ignored without has_process
    Bytes frame;
    const auto back = round_trip(plain, frame);
    cr_assert(back.has_value());
    cr_assert_not(back->has_process);
    cr_assert_eq(back->process, ProcessLink{});
    cr_assert_not(record_to_json(back->view()).contains("process"));
}

Test(audit_record, a_process_flag_without_its_tail_or_a_tail_without_its_flag_is_refused)
{
    Record r = full_record(EventType::Monitor);
    r.has_process = true;
    r.process = sample_link();
    const std::size_t with = payload_size(r.view());
    Bytes payload(with);
    write_payload(r.view(), payload);
    cr_assert(decode_payload(payload).has_value());
    // Cut the tail off: the flag promises bytes that are not there.
    cr_assert_not(decode_payload(std::span<const std::uint8_t>(payload.data(), with - kProcessTailBytes)).has_value());
    // Clear the flag (bit 8 of the flags at offset 2): the tail is then bytes left over.
    Bytes unflagged = payload;
    unflagged[3] = static_cast<std::uint8_t>(unflagged[3] & ~1U);
    cr_assert_not(decode_payload(unflagged).has_value());
}

Test(audit_record, every_payload_byte_belongs_to_a_declared_field)
{
    // There is no room for a body or a secret: the payload is exactly the fixed fields, the seven
    // length-prefixed strings and the typed tail, and decode refuses anything more.
    for (std::uint8_t wire = kFirstEventType; wire <= kLastEventType; ++wire) {
        const Record r = full_record(static_cast<EventType>(wire));
        std::size_t expected = kPayloadFixedBytes;
        for (std::size_t i = 0; i < kStringFieldCount; ++i) {
            expected += 2 + r.view().field(static_cast<Field>(i)).size();
        }
        if (r.type == EventType::Checkpoint) {
            expected += kCheckpointTailBytes;
        }
        if (r.type == EventType::TornTailRecovered) {
            expected += kTornTailBytes;
        }
        cr_assert_eq(payload_size(r.view()), expected);
        Bytes payload(expected + 1);
        write_payload(r.view(), std::span<std::uint8_t>(payload.data(), expected));
        cr_assert(decode_payload(std::span<const std::uint8_t>(payload.data(), expected)).has_value());
        cr_assert_not(decode_payload(payload).has_value(), "a trailing byte must be refused");
        // With the process tail: exactly its declared bytes more.
        Record linked = r;
        linked.has_process = true;
        linked.process = sample_link();
        cr_assert_eq(payload_size(linked.view()), expected + kProcessTailBytes);
        Bytes longer(expected + kProcessTailBytes + 1);
        write_payload(linked.view(), std::span<std::uint8_t>(longer.data(), expected + kProcessTailBytes));
        cr_assert(
            decode_payload(std::span<const std::uint8_t>(longer.data(), expected + kProcessTailBytes)).has_value());
        cr_assert_not(decode_payload(longer).has_value(), "a trailing byte after the process tail must be refused");
    }
}

Test(audit_record, canary_only_appears_when_put_in_a_field)
{
    const std::string canary = "CANARY-sk-live-0123456789abcdef";
    Record r = full_record(EventType::Outcome);
    Bytes frame;
    append_frame(r.view(), frame);
    const std::string plain(frame.begin(), frame.end());
    cr_assert_eq(plain.find(canary), std::string::npos);
    r.object = canary;
    frame.clear();
    append_frame(r.view(), frame);
    cr_assert_neq(std::string(frame.begin(), frame.end()).find(canary), std::string::npos);
}

Test(audit_record, oversized_fields_are_truncated_and_flagged)
{
    Record r = full_record(EventType::Decision);
    r.exe = std::string(kMaxFieldBytes + 100, 'x');
    // 'é' is two bytes; the limit falls inside one: the cut backs off to the character boundary.
    r.object = std::string(kMaxFieldBytes - 1, 'a') + "\xc3\xa9" + "tail";
    r.reason = std::string(kMaxFieldBytes, 'r');  // exactly the limit: kept whole
    Bytes frame;
    const auto back = round_trip(r, frame);
    cr_assert(back.has_value());
    cr_assert_eq(back->exe, std::string(kMaxFieldBytes, 'x'));
    cr_assert_eq(back->object, std::string(kMaxFieldBytes - 1, 'a'));
    cr_assert_eq(back->reason, r.reason);
    const auto bit = [](Field f) {
        return 1U << static_cast<unsigned>(f);
    };
    cr_assert_eq(back->truncated, bit(Field::Exe) | bit(Field::Object));
    const auto json = record_to_json(back->view());
    cr_assert_eq(json["truncated"], nlohmann::json::array({"exe", "object"}));
    cr_assert_leq(frame.size(), kFrameOverheadBytes + kMaxPayloadBytes);
}

Test(audit_record, largest_record_fits_the_frame_bound)
{
    Record r = full_record(EventType::Checkpoint);
    const std::string big(kMaxFieldBytes * 2, 'z');
    r.sender = r.exe = r.unit = r.action = r.object = r.reason = r.grant = big;
    r.has_process = true;
    Bytes frame;
    const auto back = round_trip(r, frame);
    cr_assert(back.has_value());
    cr_assert_eq(frame.size(), kFrameOverheadBytes + kMaxPayloadBytes);
    cr_assert_eq(back->truncated, 0x7f);
}

Test(audit_record, hostile_payloads_never_crash_and_are_refused)
{
    std::mt19937_64 rng(42);
    Bytes buf;
    // Random bytes of every size around the bounds.
    for (int round = 0; round < 20000; ++round) {
        const std::size_t size = rng() % (kMinPayloadBytes + 400);
        buf.resize(size);
        for (auto& b : buf) {
            b = static_cast<std::uint8_t>(rng());
        }
        (void)decode_payload(buf);
        (void)read_frame(buf, 0);
        (void)read_frame(buf, size / 2);
    }
    // Valid payloads with one byte changed, truncated at every length, or a string length that
    // points past the end: decode may accept (a changed value) but must never read out of bounds.
    const Record r = full_record(EventType::Checkpoint);
    Bytes payload(payload_size(r.view()));
    write_payload(r.view(), payload);
    for (std::size_t cut = 0; cut < payload.size(); ++cut) {
        cr_assert_not(decode_payload(std::span<const std::uint8_t>(payload.data(), cut)).has_value());
    }
    for (std::size_t i = 0; i < payload.size(); ++i) {
        for (const std::uint8_t value : {std::uint8_t{0x00}, std::uint8_t{0xff}, std::uint8_t{0x80}}) {
            Bytes copy = payload;
            copy[i] = value;
            (void)decode_payload(copy);
        }
    }
    Bytes huge = payload;
    huge[kPayloadFixedBytes] = 0xff;  // sender length 0xffff > kMaxFieldBytes
    huge[kPayloadFixedBytes + 1] = 0xff;
    cr_assert_not(decode_payload(huge).has_value());
    Bytes unknown = payload;
    unknown[0] = 0;  // event type 0
    cr_assert_not(decode_payload(unknown).has_value());
    unknown[0] = kLastEventType + 1;
    cr_assert_not(decode_payload(unknown).has_value());
    Bytes bad_decision = payload;
    bad_decision[1] = 3;
    cr_assert_not(decode_payload(bad_decision).has_value());
    Bytes bad_flags = payload;
    bad_flags[3] = 1;  // flag bits 8..15 are reserved
    cr_assert_not(decode_payload(bad_flags).has_value());
}

Test(audit_record, frame_reader_classifies_damage)
{
    const Record r = full_record(EventType::Decision);
    Bytes frame;
    append_frame(r.view(), frame);
    // Every cut inside the frame is a truncated (torn) frame, never a crash or a valid frame.
    for (std::size_t cut = 1; cut < frame.size(); ++cut) {
        const FrameRead fr = read_frame(std::span<const std::uint8_t>(frame.data(), cut), 0);
        cr_assert(fr.status == FrameStatus::Truncated, "cut at %zu", cut);
    }
    cr_assert(read_frame(frame, frame.size()).status == FrameStatus::End);
    // A damaged length is a bad header, even when it would reach past the end.
    for (std::size_t bit = 0; bit < 64; ++bit) {
        Bytes copy = frame;
        copy[bit / 8] ^= static_cast<std::uint8_t>(1U << (bit % 8));
        cr_assert(read_frame(copy, 0).status == FrameStatus::BadHeader, "header bit %zu", bit);
    }
    // Any other bit: hash mismatch.
    for (std::size_t i = kFrameHeaderBytes; i < frame.size(); ++i) {
        Bytes copy = frame;
        copy[i] ^= 0x10;
        cr_assert(read_frame(copy, 0).status == FrameStatus::BadHash, "byte %zu", i);
    }
    // A huge length with a matching complement is out of bounds: bad header, not a torn tail.
    Bytes huge = frame;
    const std::uint32_t len = 0x7fffffff;
    const std::uint32_t check = ~len;
    std::memcpy(huge.data(), &len, 4);
    std::memcpy(huge.data() + 4, &check, 4);
    cr_assert(read_frame(huge, 0).status == FrameStatus::BadHeader);
    // Zero bytes to the end (a crash artefact) are told apart from garbage.
    const Bytes zeros(100, 0);
    cr_assert(read_frame(zeros, 0).status == FrameStatus::ZeroFill);
    Bytes garbage(100, 0);
    garbage[50] = 1;
    cr_assert(read_frame(garbage, 0).status == FrameStatus::BadHeader);
}

Test(audit_record, names_and_message_ids_are_unique_and_stable)
{
    std::set<std::string> names;
    std::set<std::string> ids;
    for (std::uint8_t wire = kFirstEventType; wire <= kLastEventType; ++wire) {
        const auto type = static_cast<EventType>(wire);
        const std::string name(event_type_name(type));
        const std::string id(event_message_id(type));
        cr_assert(names.insert(name).second, "duplicate name %s", name.c_str());
        cr_assert(ids.insert(id).second, "duplicate MESSAGE_ID %s", id.c_str());
        cr_assert_eq(id.size(), 32U);
        cr_assert_eq(id.find_first_not_of("0123456789abcdef"), std::string::npos);
        cr_assert(event_type_from_name(name) == type);
    }
    // Pinned: these are part of the interface (journal queries, docs/audit-log.md).
    cr_assert_eq(event_type_name(EventType::Decision), std::string_view("decision"));
    cr_assert_eq(event_message_id(EventType::Decision), std::string_view("686b2e9f520d46c5bfce6fba46ae17c5"));
    cr_assert_eq(event_type_name(EventType::TornTailRecovered), std::string_view("torn-tail-recovered"));
    cr_assert_eq(event_message_id(EventType::Checkpoint), std::string_view("4be3323aac29420f95e6cf7cb9c007f5"));
    cr_assert_not(event_type_from_name("nope").has_value());
    cr_assert(decision_from_name("deny") == Decision::Deny);
    cr_assert_eq(decision_name(Decision::Allow), std::string_view("allow"));
}

Test(audit_record, each_kind_of_monitor_record_has_its_own_message_id)
{
    std::set<std::string> ids;
    for (std::uint8_t wire = kFirstEventType; wire <= kLastEventType; ++wire) {
        ids.insert(std::string(event_message_id(static_cast<EventType>(wire))));
    }
    for (const char* action : {"monitor.start", "monitor.mark.inherited", "monitor.touch.read",
                               "monitor.attempt.ptrace", "monitor.alert.touch.read", "monitor.lost"}) {
        const std::string id(record_message_id(EventType::Monitor, action));
        cr_expect(ids.insert(id).second, "%s shares MESSAGE_ID %s", action, id.c_str());
    }
    // Alerts of every kind share one; an unknown monitor action falls back to the type's.
    cr_expect_eq(record_message_id(EventType::Monitor, "monitor.alert.mark.overflow"),
                 record_message_id(EventType::Monitor, "monitor.alert.attempt.ptrace"));
    cr_expect_eq(record_message_id(EventType::Monitor, "monitor.other"), event_message_id(EventType::Monitor));
    cr_expect_eq(record_message_id(EventType::Decision, "monitor.start"), event_message_id(EventType::Decision));
}

Test(audit_record, json_form_and_filters)
{
    Record r = full_record(EventType::Decision);
    r.reason = std::string("bad utf8 \xff\xfe and \"quotes\"\n");
    const Hash h = hash_of(0xcd);
    const auto j = record_to_json(r.view(), &h);
    cr_assert_eq(j["seq"], r.seq);
    cr_assert_eq(j["event"], "decision");
    cr_assert_eq(j["message_id"], std::string(event_message_id(EventType::Decision)));
    cr_assert_eq(j["decision"], "deny");
    cr_assert_eq(j["subject"]["uid"], r.uid);
    cr_assert_eq(j["subject"]["pid"], r.pid);
    cr_assert_eq(j["subject"]["exe"], r.exe);
    cr_assert_eq(j["hash"], to_hex(h));
    cr_assert_eq(j["time"], "2024-05-01T12:00:00.123456Z");
    const std::string line = dump_record_json(r.view(), &h);  // must not throw on invalid UTF-8
    cr_assert_eq(line.find('\n'), std::string::npos);
    const auto parsed = nlohmann::json::parse(line);
    cr_assert_eq(parsed["object"], "openai-prod");

    const Record cp = full_record(EventType::Checkpoint);
    const auto jc = record_to_json(cp.view());
    cr_assert_eq(jc["checkpoint"]["sealed"], true);
    cr_assert_eq(jc["checkpoint"]["segment"], 3);
    Record unknown;
    unknown.type = EventType::Stop;
    cr_assert(record_to_json(unknown.view())["subject"]["uid"].is_null());

    RecordFilter f;
    cr_assert(f.matches(r.view()));
    f.decision = Decision::Deny;
    f.action = "request";
    f.uid = r.uid;
    f.unit = "agent@1.service";
    cr_assert(f.matches(r.view()));
    f.decision = Decision::Allow;
    cr_assert_not(f.matches(r.view()));
    f.decision.reset();
    f.exe = "/usr/bin/other";
    cr_assert_not(f.matches(r.view()));
    RecordFilter by_uid;
    by_uid.uid = 0;
    cr_assert_not(by_uid.matches(unknown.view()), "a uid filter never matches an unknown subject");
}

Test(audit_record, hex_and_time_helpers)
{
    const Bytes bytes{0x00, 0x7f, 0xff};
    cr_assert_eq(to_hex(bytes), "007fff");
    cr_assert(from_hex("007FFF") == bytes);
    cr_assert_not(from_hex("0g").has_value());
    cr_assert_not(from_hex("abc").has_value());
    cr_assert_eq(format_realtime_utc(0), "1970-01-01T00:00:00.000000Z");
    cr_assert_eq(format_realtime_utc(951'782'400'000'001ULL), "2000-02-29T00:00:00.000001Z");
    cr_assert_eq(format_realtime_utc(4'102'444'799'999'999ULL), "2099-12-31T23:59:59.999999Z");
}
