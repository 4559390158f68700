// Audit records and their frames: the pure encoder and decoder of the tamper-evident log
// (issue 4). No I/O here: everything works on byte buffers the caller owns. The byte layout is
// documented in docs/audit-log.md; change it only together with kFormatVersion.
//
// A record has no field for secret bytes or for request/response bodies, by construction: the
// payload is exactly the fixed fields plus the seven bounded strings below (plus the typed tail of
// a checkpoint or torn-tail record, and the process tail of an injection's record), and decode rejects a payload with
// any byte left over.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"

namespace codexvault::audit {

inline constexpr std::uint16_t kFormatVersion = 1;

using Hash = std::array<std::uint8_t, 32>;       // BLAKE2b-256
using KeyId = std::array<std::uint8_t, 8>;       // first 8 bytes of BLAKE2b-256(public key)
using Signature = std::array<std::uint8_t, 64>;  // Ed25519, detached

// The wire values are part of the format: never renumber, only append.
enum class EventType : std::uint8_t {
    Decision = 1,            // the pipeline's authorization decision (allow/deny + reason)
    Outcome = 2,             // what happened after an allowed decision
    Start = 3,               // the daemon started (first record it writes)
    Stop = 4,                // orderly stop
    Reload = 5,              // SIGHUP / configuration reload
    Lock = 6,                // the vault was locked
    Unlock = 7,              // the vault was unlocked (founder)
    Incident = 8,            // `vaultctl incident` and what it did
    Enrolment = 9,           // a founder key was enrolled
    Rotation = 10,           // a secret or key was rotated, or marked for rotation
    Checkpoint = 11,         // signed checkpoint (ChainWriter::append_checkpoint)
    TornTailRecovered = 12,  // a torn last frame was found and the log continued in a new segment
    FoldedRepeats = 13,      // repeats of one record folded into one, with repeat_count
    Monitor = 14,            // an observation of the eBPF monitor
    Integrity = 15,          // an integrity failure detected by the daemon (store, log, config)
};
inline constexpr std::uint8_t kFirstEventType = 1;
inline constexpr std::uint8_t kLastEventType = 15;

enum class Decision : std::uint8_t { None = 0, Allow = 1, Deny = 2 };

// Stable names ("decision", "torn-tail-recovered", ...) and journald MESSAGE_IDs (32 lowercase
// hex digits). Both are part of the interface: never change an existing one.
std::string_view event_type_name(EventType type) noexcept;
std::optional<EventType> event_type_from_name(std::string_view name) noexcept;
std::string_view event_message_id(EventType type) noexcept;
// The MESSAGE_ID of one record: its type's, except that each kind of eBPF monitor record
// (`monitor.start`, `monitor.mark.*`, `monitor.touch.*`, `monitor.attempt.*`, `monitor.alert.*`,
// `monitor.lost`) has its own, so `journalctl MESSAGE_ID=` can follow alerts alone.
std::string_view record_message_id(EventType type, std::string_view action) noexcept;
bool is_valid_event_type(std::uint8_t wire) noexcept;
std::string_view decision_name(Decision decision) noexcept;  // "none", "allow", "deny"
std::optional<Decision> decision_from_name(std::string_view name) noexcept;

// Each string field holds at most this many bytes. The encoder TRUNCATES a longer value (at a
// UTF-8 character boundary) and sets the field's bit in RecordView::truncated: an audit record is
// never dropped because a caller chose a long exe path or object name. The decoder rejects any
// length above the limit.
inline constexpr std::size_t kMaxFieldBytes = 4096;

// The string fields, in wire order; their bit in RecordView::truncated is 1 << index.
enum class Field : std::uint8_t { Sender = 0, Exe, Unit, Action, Object, Reason, Grant };
inline constexpr std::size_t kStringFieldCount = 7;

// Claims of a checkpoint record (EventType::Checkpoint only). See checkpoint.hpp.
struct CheckpointBody {
    std::uint64_t segment = 0;              // segment number holding the checkpoint
    std::uint64_t segment_first_seq = 0;    // seq of that segment's first record
    std::uint64_t prev_checkpoint_seq = 0;  // 0 = none before this one
    Hash prev_checkpoint_hash{};            // record hash of that checkpoint (zeros = none)
    Hash chain_hash{};                      // hash of the record (or segment header) before this one
    bool sealed = false;                    // last record of its segment
    KeyId key_id{};
    Signature signature{};  // over checkpoint_signing_message(payload), see checkpoint.hpp
    bool operator==(const CheckpointBody&) const = default;
};

// Where a torn frame was found (EventType::TornTailRecovered only).
struct TornTail {
    std::uint64_t segment = 0;  // segment number holding the torn frame
    std::uint64_t offset = 0;   // byte offset of the torn frame in that segment
    std::uint64_t bytes = 0;    // bytes from there to the end of that segment
    bool operator==(const TornTail&) const = default;
};

// The process a record is about, as the kernel knew it: present (flags bit 8) on the records of
// an injection whose subject is a process the monitor saw (docs/injection.md), so the tree of the
// processes that received a secret is built from these fields rather than from reason text.
struct ProcessLink {
    std::uint64_t start_ticks = 0;  // the subject's start, clock ticks since boot (/proc/PID/stat field 22); 0 unknown
    std::uint64_t start_usec = 0;   // the same moment, CLOCK_REALTIME µs; 0 unknown
    std::int32_t parent_pid = 0;    // the process it was forked from; 0 none recorded
    std::uint64_t parent_start_ticks = 0;  // that parent's start, clock ticks since boot; 0 unknown
    std::uint64_t event_usec = 0;          // when the kernel saw what the record reports (fork, exec, exit,
                                           // touch), CLOCK_REALTIME µs; 0: not a kernel event
    bool operator==(const ProcessLink&) const = default;
};

// One record, viewing caller-owned strings: the encoder's input and the allocation-free decoder's
// output (the views then point into the decoded buffer).
struct RecordView {
    EventType type = EventType::Decision;
    Decision decision = Decision::None;
    std::uint64_t seq = 0;             // 1, 2, 3 ... over the whole log (ChainWriter sets it)
    std::uint64_t realtime_usec = 0;   // CLOCK_REALTIME
    std::uint64_t monotonic_usec = 0;  // CLOCK_MONOTONIC
    Hash prev_hash{};                  // hash of the previous record (ChainWriter sets it)
    bool subject_known = false;        // uid and pid are meaningful
    std::uint32_t uid = 0;
    std::int32_t pid = 0;
    std::string_view sender;  // unique bus name
    std::string_view exe;     // empty when unknown
    std::string_view unit;
    std::string_view action;
    std::string_view object;  // e.g. a secret name; never a value
    std::string_view reason;
    std::string_view grant;          // grant or approval id
    std::uint64_t repeat_count = 0;  // folded records: how many were folded; else 0
    std::uint8_t truncated = 0;      // decode: bit (1 << Field) per truncated string; encode ignores it
    CheckpointBody checkpoint;       // EventType::Checkpoint only
    TornTail torn;                   // EventType::TornTailRecovered only
    bool has_process = false;        // the process tail is present
    ProcessLink process;             // has_process only

    [[nodiscard]] std::string_view field(Field f) const noexcept;
};

// The owning form, for readers (`vaultctl audit tail`) and tests.
struct Record {
    EventType type = EventType::Decision;
    Decision decision = Decision::None;
    std::uint64_t seq = 0;
    std::uint64_t realtime_usec = 0;
    std::uint64_t monotonic_usec = 0;
    Hash prev_hash{};
    bool subject_known = false;
    std::uint32_t uid = 0;
    std::int32_t pid = 0;
    std::string sender;
    std::string exe;
    std::string unit;
    std::string action;
    std::string object;
    std::string reason;
    std::string grant;
    std::uint64_t repeat_count = 0;
    std::uint8_t truncated = 0;
    CheckpointBody checkpoint;
    TornTail torn;
    bool has_process = false;
    ProcessLink process;

    [[nodiscard]] RecordView view() const noexcept;
    static Record from(const RecordView& view);
    bool operator==(const Record&) const = default;
};

// ---- payload -------------------------------------------------------------------------------------

// Bytes of the payload before the strings, and a checkpoint's / torn-tail record's typed tail.
inline constexpr std::size_t kPayloadFixedBytes = 76;
inline constexpr std::size_t kCheckpointTailBytes = 161;
inline constexpr std::size_t kTornTailBytes = 24;
inline constexpr std::size_t kProcessTailBytes = 36;  // after the typed tail, when flags bit 8 is set
inline constexpr std::size_t kMinPayloadBytes = kPayloadFixedBytes + 2 * kStringFieldCount;
inline constexpr std::size_t kMaxPayloadBytes =
    kPayloadFixedBytes + kStringFieldCount * (2 + kMaxFieldBytes) + kCheckpointTailBytes + kProcessTailBytes;

// Size of r's payload after truncation.
std::size_t payload_size(const RecordView& r) noexcept;
// Writes r's payload into dst (dst.size() == payload_size(r)); returns the truncation bits.
std::uint8_t write_payload(const RecordView& r, std::span<std::uint8_t> dst) noexcept;
// Decodes a payload; nullopt when it is malformed in any way (never reads out of bounds). The
// string views in the result point into `payload`.
std::optional<RecordView> decode_payload(std::span<const std::uint8_t> payload) noexcept;

// ---- frames --------------------------------------------------------------------------------------
//
//   u32 LE  payload length L (kMinPayloadBytes..kMaxPayloadBytes)
//   u32 LE  ~L (bitwise complement: a damaged length is detected, not mistaken for a torn tail)
//   L bytes payload
//   32      BLAKE2b-256 over the 8 header bytes and the payload = the record's hash

inline constexpr std::size_t kFrameHeaderBytes = 8;
inline constexpr std::size_t kFrameOverheadBytes = kFrameHeaderBytes + 32;

struct FrameInfo {
    std::uint64_t seq = 0;
    std::size_t offset = 0;  // where the frame starts in the buffer it was appended to
    std::size_t size = 0;    // frame bytes
    Hash hash{};             // the record's hash
};

// Appends r as a complete frame. Low level: r.seq and r.prev_hash are written as given (use
// ChainWriter to keep a chain). A checkpoint's signature is written as given too.
FrameInfo append_frame(const RecordView& r, std::vector<std::uint8_t>& out);
// Two halves of append_frame, for a caller that must edit the payload before it is hashed (the
// checkpoint signature): begin_frame writes header and payload and returns the frame's start;
// finish_frame appends the hash.
std::size_t begin_frame(const RecordView& r, std::vector<std::uint8_t>& out);
FrameInfo finish_frame(std::vector<std::uint8_t>& out, std::size_t frame_start);

enum class FrameStatus {
    Ok,
    End,        // offset == size: no more frames
    Truncated,  // the bytes end inside this frame (or inside its header): a torn tail candidate
    ZeroFill,   // from here to the end only zero bytes: a crash artefact, also a torn tail candidate
    BadHeader,  // the length and its complement disagree, or the length is out of bounds
    BadHash,    // the frame's hash does not match its bytes
};

struct FrameRead {
    FrameStatus status = FrameStatus::End;
    std::size_t size = 0;                   // frame bytes (Ok and BadHash only)
    std::span<const std::uint8_t> payload;  // Ok and BadHash only
    Hash hash{};                            // the stored hash (Ok only)
};

// Reads the frame starting at `offset`; never reads outside `bytes`.
FrameRead read_frame(std::span<const std::uint8_t> bytes, std::size_t offset) noexcept;
// Cheap structural check without hashing (used to look ahead); same statuses except BadHash.
FrameRead peek_frame(std::span<const std::uint8_t> bytes, std::size_t offset) noexcept;

// ---- readers -------------------------------------------------------------------------------------

using bytes::from_hex;
using bytes::to_hex;
// "2024-05-01T12:00:00.000000Z"
std::string format_realtime_utc(std::uint64_t realtime_usec);

// For `vaultctl audit tail --json`: one object per record. Strings that are not valid UTF-8 are
// shown with U+FFFD replacement characters when dumped (use dump_record_json).
nlohmann::json record_to_json(const RecordView& r, const Hash* record_hash = nullptr);
// One line of JSON, never throwing on invalid UTF-8 (replaced).
std::string dump_record_json(const RecordView& r, const Hash* record_hash = nullptr);

// Filters of `vaultctl audit tail`; every set member must match (strings: exact match).
struct RecordFilter {
    std::optional<EventType> type;
    std::optional<std::uint32_t> uid;
    std::optional<std::int32_t> pid;
    std::optional<std::string> exe;
    std::optional<std::string> unit;
    std::optional<std::string> sender;
    std::optional<std::string> action;
    std::optional<std::string> object;
    std::optional<Decision> decision;

    [[nodiscard]] bool matches(const RecordView& r) const noexcept;
};

}  // namespace codexvault::audit
