#include "lib/auditcore/record.hpp"

#include <nlohmann/json.hpp>
#include <sodium.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace codexvault::audit {
namespace {

struct EventInfo {
    std::string_view name;
    std::string_view message_id;
};

// Index = wire value - 1. The MESSAGE_IDs were generated once with `systemd-id128 new`.
constexpr std::array<EventInfo, kLastEventType> kEvents{{
    {"decision", "686b2e9f520d46c5bfce6fba46ae17c5"},
    {"outcome", "2a5e814d4aa9436c8afd70d6ec87c8ca"},
    {"start", "5ec32b5dd0fd48268923c1a679c9df3d"},
    {"stop", "965bb46f2ba3484fa330bdfe70560f8a"},
    {"reload", "c7aa05c9c5574e07b42ae2c8dbc66908"},
    {"lock", "44b8333463154a2eb25eb4de04e8e7a4"},
    {"unlock", "b17935358d61437e82c9ed91ab1f9fd2"},
    {"incident", "0e8a51300cff436bb560340300d3ed6d"},
    {"enrolment", "ecb3aa8ff1854b87997f565354435a69"},
    {"rotation", "c534bfdeb8d049a4ae634c5c1f06ff97"},
    {"checkpoint", "4be3323aac29420f95e6cf7cb9c007f5"},
    {"torn-tail-recovered", "0f299bcbaf9448c29232e7ce8a2e0538"},
    {"folded-repeats", "482d2972079e4fd8b1df5a2b9cabfe9a"},
    {"monitor", "2bcffb3c48784c2cbd7b61cfcae3e7d0"},
    {"integrity", "908563f619b04be3b0db9dee7e43ae0b"},
}};

constexpr std::uint16_t kFlagSubjectKnown = 1U << 0;
constexpr unsigned kTruncatedShift = 1;          // truncated bits live at flags bits 1..7
constexpr std::uint16_t kFlagProcess = 1U << 8;  // the process tail follows the typed tail
constexpr std::uint16_t kFlagsKnownMask = 0x01ff;
constexpr std::uint8_t kCheckpointFlagSealed = 1U << 0;

// Bounds-checked cursor over hostile bytes: every read checks the remaining length first.
class Reader {
public:
    explicit Reader(std::span<const std::uint8_t> bytes) noexcept : p_(bytes.data()), left_(bytes.size()) {}

    bool u8(std::uint8_t& v) noexcept
    {
        if (left_ < 1) {
            return false;
        }
        v = *p_;
        advance(1);
        return true;
    }
    bool u16(std::uint16_t& v) noexcept
    {
        if (left_ < 2) {
            return false;
        }
        v = bytes::get_le<std::uint16_t>(p_);
        advance(2);
        return true;
    }
    bool u32(std::uint32_t& v) noexcept
    {
        if (left_ < 4) {
            return false;
        }
        v = bytes::get_le<std::uint32_t>(p_);
        advance(4);
        return true;
    }
    bool u64(std::uint64_t& v) noexcept
    {
        if (left_ < 8) {
            return false;
        }
        v = bytes::get_le<std::uint64_t>(p_);
        advance(8);
        return true;
    }
    template <std::size_t N>
    bool bytes(std::array<std::uint8_t, N>& out) noexcept
    {
        if (left_ < N) {
            return false;
        }
        std::memcpy(out.data(), p_, N);
        advance(N);
        return true;
    }
    bool str(std::string_view& out) noexcept
    {
        std::uint16_t len = 0;
        if (!u16(len) || len > kMaxFieldBytes || left_ < len) {
            return false;
        }
        out = std::string_view(reinterpret_cast<const char*>(p_), len);
        advance(len);
        return true;
    }
    [[nodiscard]] std::size_t left() const noexcept { return left_; }

private:
    void advance(std::size_t n) noexcept
    {
        p_ += n;
        left_ -= n;
    }
    const std::uint8_t* p_;
    std::size_t left_;
};

// Longest prefix of at most kMaxFieldBytes that does not split a UTF-8 sequence (bytes that are
// not UTF-8 are cut at the limit; at most three continuation bytes are backed off).
std::size_t clamped_length(std::string_view s) noexcept
{
    if (s.size() <= kMaxFieldBytes) {
        return s.size();
    }
    std::size_t n = kMaxFieldBytes;
    for (int i = 0; i < 3 && n > 0; ++i) {
        if ((static_cast<unsigned char>(s[n]) & 0xC0) != 0x80) {
            break;  // s[n] starts a character (or is ASCII): cutting before it is clean
        }
        --n;
    }
    if ((static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) {
        n = kMaxFieldBytes;  // not UTF-8 after all: cut at the limit
    }
    return n;
}

std::size_t tail_size(EventType type) noexcept
{
    switch (type) {
    case EventType::Checkpoint:
        return kCheckpointTailBytes;
    case EventType::TornTailRecovered:
        return kTornTailBytes;
    default:
        return 0;
    }
}

bool is_valid_decision(std::uint8_t wire) noexcept
{
    return wire <= static_cast<std::uint8_t>(Decision::Deny);
}

}  // namespace

// ---- names ---------------------------------------------------------------------------------------

bool is_valid_event_type(std::uint8_t wire) noexcept
{
    return wire >= kFirstEventType && wire <= kLastEventType;
}

std::string_view event_type_name(EventType type) noexcept
{
    const auto wire = static_cast<std::uint8_t>(type);
    return is_valid_event_type(wire) ? kEvents[wire - 1].name : std::string_view("unknown");
}

std::optional<EventType> event_type_from_name(std::string_view name) noexcept
{
    for (std::size_t i = 0; i < kEvents.size(); ++i) {
        if (kEvents[i].name == name) {
            return static_cast<EventType>(i + 1);
        }
    }
    return std::nullopt;
}

std::string_view event_message_id(EventType type) noexcept
{
    const auto wire = static_cast<std::uint8_t>(type);
    return is_valid_event_type(wire) ? kEvents[wire - 1].message_id : std::string_view();
}

std::string_view record_message_id(EventType type, std::string_view action) noexcept
{
    if (type == EventType::Monitor) {
        // Generated once with `systemd-id128 new`; the action prefix selects (audit-log.md).
        struct Kind {
            std::string_view prefix;
            std::string_view message_id;
        };
        static constexpr std::array<Kind, 6> kMonitorKinds{{
            {"monitor.start", "ef3b0d851933439996d9dac82a37de81"},
            {"monitor.mark.", "54ec2dcf8e304d268331d5b4f6089ea0"},
            {"monitor.touch.", "f10ca4a322534859982b75d4c43a4325"},
            {"monitor.attempt.", "9402a8ed795a43d19f2c4a1eedc07c7e"},
            {"monitor.alert.", "7d0ca3c47ffa436bbdfe8fd6fcb23ddc"},
            {"monitor.lost", "bac2ba1b4ace490a826265c5b35259dc"},
        }};
        for (const Kind& kind : kMonitorKinds) {
            if (action.substr(0, kind.prefix.size()) == kind.prefix) {
                return kind.message_id;
            }
        }
    }
    return event_message_id(type);
}

std::string_view decision_name(Decision decision) noexcept
{
    switch (decision) {
    case Decision::Allow:
        return "allow";
    case Decision::Deny:
        return "deny";
    case Decision::None:
        break;
    }
    return "none";
}

std::optional<Decision> decision_from_name(std::string_view name) noexcept
{
    if (name == "allow") {
        return Decision::Allow;
    }
    if (name == "deny") {
        return Decision::Deny;
    }
    if (name == "none") {
        return Decision::None;
    }
    return std::nullopt;
}

// ---- record forms --------------------------------------------------------------------------------

std::string_view RecordView::field(Field f) const noexcept
{
    switch (f) {
    case Field::Sender:
        return sender;
    case Field::Exe:
        return exe;
    case Field::Unit:
        return unit;
    case Field::Action:
        return action;
    case Field::Object:
        return object;
    case Field::Reason:
        return reason;
    case Field::Grant:
        return grant;
    }
    return {};
}

RecordView Record::view() const noexcept
{
    RecordView v;
    v.type = type;
    v.decision = decision;
    v.seq = seq;
    v.realtime_usec = realtime_usec;
    v.monotonic_usec = monotonic_usec;
    v.prev_hash = prev_hash;
    v.subject_known = subject_known;
    v.uid = uid;
    v.pid = pid;
    v.sender = sender;
    v.exe = exe;
    v.unit = unit;
    v.action = action;
    v.object = object;
    v.reason = reason;
    v.grant = grant;
    v.repeat_count = repeat_count;
    v.truncated = truncated;
    v.checkpoint = checkpoint;
    v.torn = torn;
    v.has_process = has_process;
    v.process = process;
    return v;
}

Record Record::from(const RecordView& v)
{
    Record r;
    r.type = v.type;
    r.decision = v.decision;
    r.seq = v.seq;
    r.realtime_usec = v.realtime_usec;
    r.monotonic_usec = v.monotonic_usec;
    r.prev_hash = v.prev_hash;
    r.subject_known = v.subject_known;
    r.uid = v.uid;
    r.pid = v.pid;
    r.sender = std::string(v.sender);
    r.exe = std::string(v.exe);
    r.unit = std::string(v.unit);
    r.action = std::string(v.action);
    r.object = std::string(v.object);
    r.reason = std::string(v.reason);
    r.grant = std::string(v.grant);
    r.repeat_count = v.repeat_count;
    r.truncated = v.truncated;
    r.checkpoint = v.checkpoint;
    r.torn = v.torn;
    r.has_process = v.has_process;
    r.process = v.process;
    return r;
}

// ---- payload -------------------------------------------------------------------------------------

std::size_t payload_size(const RecordView& r) noexcept
{
    std::size_t size = kPayloadFixedBytes + tail_size(r.type) + (r.has_process ? kProcessTailBytes : 0);
    for (std::size_t i = 0; i < kStringFieldCount; ++i) {
        size += 2 + clamped_length(r.field(static_cast<Field>(i)));
    }
    return size;
}

std::uint8_t write_payload(const RecordView& r, std::span<std::uint8_t> dst) noexcept
{
    std::uint8_t* p = dst.data();
    std::uint8_t truncated = 0;
    // Strings first (into their place after the fixed part) so the flags can record truncation.
    std::uint8_t* s = p + kPayloadFixedBytes;
    for (std::size_t i = 0; i < kStringFieldCount; ++i) {
        const std::string_view value = r.field(static_cast<Field>(i));
        const std::size_t len = clamped_length(value);
        if (len != value.size()) {
            truncated = static_cast<std::uint8_t>(truncated | (1U << i));
        }
        bytes::put_le(s, static_cast<std::uint16_t>(len));
        if (len != 0) {
            std::memcpy(s + 2, value.data(), len);
        }
        s += 2 + len;
    }
    std::uint16_t flags = r.subject_known ? kFlagSubjectKnown : 0;
    flags = static_cast<std::uint16_t>(flags | (truncated << kTruncatedShift) | (r.has_process ? kFlagProcess : 0));
    p[0] = static_cast<std::uint8_t>(r.type);
    p[1] = static_cast<std::uint8_t>(r.decision);
    bytes::put_le<std::uint16_t>(p + 2, flags);
    bytes::put_le<std::uint64_t>(p + 4, r.seq);
    bytes::put_le<std::uint64_t>(p + 12, r.realtime_usec);
    bytes::put_le<std::uint64_t>(p + 20, r.monotonic_usec);
    std::memcpy(p + 28, r.prev_hash.data(), r.prev_hash.size());
    bytes::put_le<std::uint32_t>(p + 60, r.subject_known ? r.uid : 0);
    bytes::put_le<std::uint32_t>(p + 64, r.subject_known ? static_cast<std::uint32_t>(r.pid) : 0);
    bytes::put_le<std::uint64_t>(p + 68, r.repeat_count);
    if (r.type == EventType::Checkpoint) {
        const CheckpointBody& c = r.checkpoint;
        bytes::put_le<std::uint64_t>(s, c.segment);
        bytes::put_le<std::uint64_t>(s + 8, c.segment_first_seq);
        bytes::put_le<std::uint64_t>(s + 16, c.prev_checkpoint_seq);
        std::memcpy(s + 24, c.prev_checkpoint_hash.data(), 32);
        std::memcpy(s + 56, c.chain_hash.data(), 32);
        s[88] = c.sealed ? kCheckpointFlagSealed : 0;
        std::memcpy(s + 89, c.key_id.data(), c.key_id.size());
        std::memcpy(s + 97, c.signature.data(), c.signature.size());
    } else if (r.type == EventType::TornTailRecovered) {
        bytes::put_le<std::uint64_t>(s, r.torn.segment);
        bytes::put_le<std::uint64_t>(s + 8, r.torn.offset);
        bytes::put_le<std::uint64_t>(s + 16, r.torn.bytes);
    }
    if (r.has_process) {
        std::uint8_t* t = s + tail_size(r.type);
        const ProcessLink& l = r.process;
        bytes::put_le<std::uint64_t>(t, l.start_ticks);
        bytes::put_le<std::uint64_t>(t + 8, l.start_usec);
        bytes::put_le<std::uint32_t>(t + 16, static_cast<std::uint32_t>(l.parent_pid));
        bytes::put_le<std::uint64_t>(t + 20, l.parent_start_ticks);
        bytes::put_le<std::uint64_t>(t + 28, l.event_usec);
    }
    return truncated;
}

std::optional<RecordView> decode_payload(std::span<const std::uint8_t> payload) noexcept
{
    if (payload.size() < kMinPayloadBytes || payload.size() > kMaxPayloadBytes) {
        return std::nullopt;
    }
    Reader in(payload);
    RecordView r;
    std::uint8_t type = 0;
    std::uint8_t decision = 0;
    std::uint16_t flags = 0;
    std::uint64_t uid_pid = 0;
    in.u8(type);
    in.u8(decision);
    in.u16(flags);
    if (!is_valid_event_type(type) || !is_valid_decision(decision) || (flags & ~kFlagsKnownMask) != 0) {
        return std::nullopt;
    }
    r.type = static_cast<EventType>(type);
    r.decision = static_cast<Decision>(decision);
    r.subject_known = (flags & kFlagSubjectKnown) != 0;
    r.truncated = static_cast<std::uint8_t>((flags >> kTruncatedShift) & 0x7f);
    r.has_process = (flags & kFlagProcess) != 0;
    in.u64(r.seq);
    in.u64(r.realtime_usec);
    in.u64(r.monotonic_usec);
    in.bytes(r.prev_hash);
    in.u64(uid_pid);  // the fixed part is within kMinPayloadBytes, checked above
    r.uid = static_cast<std::uint32_t>(uid_pid);
    r.pid = static_cast<std::int32_t>(static_cast<std::uint32_t>(uid_pid >> 32));
    in.u64(r.repeat_count);
    if (!r.subject_known && (r.uid != 0 || r.pid != 0)) {
        return std::nullopt;  // one encoding per record
    }
    if (!in.str(r.sender) || !in.str(r.exe) || !in.str(r.unit) || !in.str(r.action) || !in.str(r.object) ||
        !in.str(r.reason) || !in.str(r.grant)) {
        return std::nullopt;
    }
    if (in.left() != tail_size(r.type) + (r.has_process ? kProcessTailBytes : 0)) {
        return std::nullopt;
    }
    if (r.type == EventType::Checkpoint) {
        CheckpointBody& c = r.checkpoint;
        std::uint8_t cflags = 0;
        in.u64(c.segment);
        in.u64(c.segment_first_seq);
        in.u64(c.prev_checkpoint_seq);
        in.bytes(c.prev_checkpoint_hash);
        in.bytes(c.chain_hash);
        in.u8(cflags);
        in.bytes(c.key_id);
        in.bytes(c.signature);
        if ((cflags & ~kCheckpointFlagSealed) != 0) {
            return std::nullopt;
        }
        c.sealed = (cflags & kCheckpointFlagSealed) != 0;
    } else if (r.type == EventType::TornTailRecovered) {
        in.u64(r.torn.segment);
        in.u64(r.torn.offset);
        in.u64(r.torn.bytes);
    }
    if (r.has_process) {
        ProcessLink& l = r.process;
        std::uint32_t parent = 0;
        in.u64(l.start_ticks);
        in.u64(l.start_usec);
        in.u32(parent);
        in.u64(l.parent_start_ticks);
        in.u64(l.event_usec);
        l.parent_pid = static_cast<std::int32_t>(parent);
    }
    return r;
}

// ---- frames --------------------------------------------------------------------------------------

std::size_t begin_frame(const RecordView& r, std::vector<std::uint8_t>& out)
{
    const std::size_t len = payload_size(r);
    const std::size_t start = out.size();
    out.resize(start + kFrameHeaderBytes + len);
    std::uint8_t* p = out.data() + start;
    bytes::put_le(p, static_cast<std::uint32_t>(len));
    bytes::put_le(p + 4, ~static_cast<std::uint32_t>(len));
    write_payload(r, std::span<std::uint8_t>(p + kFrameHeaderBytes, len));
    return start;
}

FrameInfo finish_frame(std::vector<std::uint8_t>& out, std::size_t frame_start)
{
    if (frame_start + kFrameHeaderBytes > out.size()) {
        throw std::logic_error("audit: finish_frame without begin_frame");
    }
    const std::size_t body = out.size() - frame_start;
    FrameInfo info;
    info.offset = frame_start;
    info.size = body + 32;
    info.seq = bytes::get_le<std::uint64_t>(out.data() + frame_start + kFrameHeaderBytes + 4);
    crypto_generichash(info.hash.data(), info.hash.size(), out.data() + frame_start, body, nullptr, 0);
    out.insert(out.end(), info.hash.begin(), info.hash.end());
    return info;
}

FrameInfo append_frame(const RecordView& r, std::vector<std::uint8_t>& out)
{
    return finish_frame(out, begin_frame(r, out));
}

FrameRead peek_frame(std::span<const std::uint8_t> bytes, std::size_t offset) noexcept
{
    FrameRead result;
    if (offset >= bytes.size()) {
        result.status = FrameStatus::End;
        return result;
    }
    const std::size_t left = bytes.size() - offset;
    const std::uint8_t* p = bytes.data() + offset;
    const auto all_zero = [&] {
        for (std::size_t i = 0; i < left; ++i) {
            if (p[i] != 0) {
                return false;
            }
        }
        return true;
    };
    if (left < kFrameHeaderBytes) {
        result.status = FrameStatus::Truncated;
        return result;
    }
    const auto len = bytes::get_le<std::uint32_t>(p);
    const auto check = bytes::get_le<std::uint32_t>(p + 4);
    if (len != ~check || len < kMinPayloadBytes || len > kMaxPayloadBytes) {
        result.status = all_zero() ? FrameStatus::ZeroFill : FrameStatus::BadHeader;
        return result;
    }
    if (left < kFrameOverheadBytes + len) {
        result.status = FrameStatus::Truncated;
        return result;
    }
    result.status = FrameStatus::Ok;
    result.size = kFrameOverheadBytes + len;
    result.payload = bytes.subspan(offset + kFrameHeaderBytes, len);
    std::memcpy(result.hash.data(), p + kFrameHeaderBytes + len, 32);
    return result;
}

FrameRead read_frame(std::span<const std::uint8_t> bytes, std::size_t offset) noexcept
{
    FrameRead result = peek_frame(bytes, offset);
    if (result.status != FrameStatus::Ok) {
        return result;
    }
    Hash computed;
    crypto_generichash(computed.data(), computed.size(), bytes.data() + offset,
                       kFrameHeaderBytes + result.payload.size(), nullptr, 0);
    if (sodium_memcmp(computed.data(), result.hash.data(), computed.size()) != 0) {
        result.status = FrameStatus::BadHash;
    }
    return result;
}

// ---- readers -------------------------------------------------------------------------------------

std::string format_realtime_utc(std::uint64_t realtime_usec)
{
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm); no libc time zone lookup.
    const std::uint64_t secs = realtime_usec / 1000000;
    const auto usec = static_cast<unsigned>(realtime_usec % 1000000);
    const auto days = static_cast<std::int64_t>(secs / 86400);
    const auto sod = static_cast<unsigned>(secs % 86400);
    const std::int64_t z = days + 719468;
    const std::int64_t era = z / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned day = doy - (153 * mp + 2) / 5 + 1;
    const unsigned month = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t year = static_cast<std::int64_t>(yoe) + era * 400 + (month <= 2 ? 1 : 0);
    char buf[48];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ", static_cast<long long>(year), month, day,
                  sod / 3600, (sod / 60) % 60, sod % 60, usec);
    return buf;
}

nlohmann::json record_to_json(const RecordView& r, const Hash* record_hash)
{
    nlohmann::json j;
    j["seq"] = r.seq;
    j["event"] = event_type_name(r.type);
    j["message_id"] = record_message_id(r.type, r.action);
    j["time"] = format_realtime_utc(r.realtime_usec);
    j["realtime_usec"] = r.realtime_usec;
    j["monotonic_usec"] = r.monotonic_usec;
    if (record_hash != nullptr) {
        j["hash"] = to_hex(*record_hash);
    }
    j["prev_hash"] = to_hex(r.prev_hash);
    nlohmann::json subject;
    if (r.subject_known) {
        subject["uid"] = r.uid;
        subject["pid"] = r.pid;
    } else {
        subject["uid"] = nullptr;
        subject["pid"] = nullptr;
    }
    subject["sender"] = std::string(r.sender);
    subject["exe"] = std::string(r.exe);
    subject["unit"] = std::string(r.unit);
    j["subject"] = std::move(subject);
    j["action"] = std::string(r.action);
    j["object"] = std::string(r.object);
    j["decision"] = decision_name(r.decision);
    j["reason"] = std::string(r.reason);
    j["grant"] = std::string(r.grant);
    if (r.repeat_count != 0) {
        j["repeat_count"] = r.repeat_count;
    }
    if (r.truncated != 0) {
        static constexpr std::array<std::string_view, kStringFieldCount> kNames{"sender", "exe",    "unit", "action",
                                                                                "object", "reason", "grant"};
        nlohmann::json list = nlohmann::json::array();
        for (std::size_t i = 0; i < kStringFieldCount; ++i) {
            if ((r.truncated & (1U << i)) != 0) {
                list.push_back(kNames[i]);
            }
        }
        j["truncated"] = std::move(list);
    }
    if (r.type == EventType::Checkpoint) {
        const CheckpointBody& c = r.checkpoint;
        j["checkpoint"] = {
            {"segment", c.segment},
            {"segment_first_seq", c.segment_first_seq},
            {"prev_checkpoint_seq", c.prev_checkpoint_seq},
            {"prev_checkpoint_hash", to_hex(c.prev_checkpoint_hash)},
            {"chain_hash", to_hex(c.chain_hash)},
            {"sealed", c.sealed},
            {"key_id", to_hex(c.key_id)},
            {"signature", to_hex(c.signature)},
        };
    } else if (r.type == EventType::TornTailRecovered) {
        j["torn_tail"] = {{"segment", r.torn.segment}, {"offset", r.torn.offset}, {"bytes", r.torn.bytes}};
    }
    if (r.has_process) {
        const ProcessLink& l = r.process;
        j["process"] = {{"start_ticks", l.start_ticks},
                        {"start_usec", l.start_usec},
                        {"parent_pid", l.parent_pid},
                        {"parent_start_ticks", l.parent_start_ticks},
                        {"event_usec", l.event_usec}};
    }
    return j;
}

std::string dump_record_json(const RecordView& r, const Hash* record_hash)
{
    return record_to_json(r, record_hash).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

bool RecordFilter::matches(const RecordView& r) const noexcept
{
    if (type && *type != r.type) {
        return false;
    }
    if ((uid || pid) && !r.subject_known) {
        return false;
    }
    if ((uid && *uid != r.uid) || (pid && *pid != r.pid)) {
        return false;
    }
    if ((exe && *exe != r.exe) || (unit && *unit != r.unit) || (sender && *sender != r.sender)) {
        return false;
    }
    if ((action && *action != r.action) || (object && *object != r.object)) {
        return false;
    }
    return !decision || *decision == r.decision;
}

}  // namespace codexvault::audit
