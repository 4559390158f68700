// Authenticated state files, pure part: the envelope that STATE/policy-state.json (the grant
// state) and STATE/founder.pub (the enrolled founder key) are written in, so that an edit, a
// forged file, a file copied from the other name or an older copy put back is recognised at
// start-up. No syscalls here; state_file.* does the I/O.
//
// File format (text; the body is kept verbatim so the file stays readable):
//
//   codex-vault-state 1
//   kind <policy-state | founder>
//   generation <u64 decimal, >= 1>
//   audit <seq u64 decimal> <64 lowercase hex: the record hash at that seq>
//   body <byte count, decimal>
//   <exactly that many body bytes>
//   mac <64 lowercase hex: crypto_auth over every byte before this line>
//
//   generation  grows by one with every write of the file; the audit log records it
//               ("state.generation" records), so a file older than the log says is a rollback.
//   audit       a record the audit log held durably when the file was written (the last
//               synced record at start-up, the last checkpoint at run time; 0 and zeros when
//               the log was not open). An older audit/ folder put back lacks it.
//   body        policy-state: the JSON of policy/persistence.hpp; founder: 64 hex digits of
//               the Ed25519 public key.
//
// Decimal numbers have no sign and no leading zero (except "0"). The MAC is HMAC-SHA-512-256
// (libsodium crypto_auth) under a key derived from the master key, one per kind (Keyring
// sub-key ids 4 "CVgrants" and 5 "CVfoundr", listed in keyring.hpp). It is checked before the
// header is parsed. A file that does not start with the header line is reported as Legacy: the
// unauthenticated format of earlier versions, which the start-up check adopts at most once.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace codexvault::store {

inline constexpr std::size_t kStateMacKeyBytes = 32;  // crypto_auth_KEYBYTES
inline constexpr std::size_t kAuditHashBytes = 32;

// Keyring sub-keys of the two state files' MACs (see keyring.hpp's list).
inline constexpr std::uint64_t kGrantStateMacSubkeyId = 4;
inline constexpr char kGrantStateMacContext[9] = "CVgrants";
inline constexpr std::uint64_t kFounderKeyMacSubkeyId = 5;
inline constexpr char kFounderKeyMacContext[9] = "CVfoundr";

enum class StateKind { PolicyState, Founder };
const char* kind_name(StateKind kind) noexcept;  // "policy-state", "founder"
const char* file_name(StateKind kind) noexcept;  // "policy-state.json", "founder.pub"

// Where the audit log stood when a state file was written.
struct AuditStamp {
    std::uint64_t seq = 0;  // 0: no log was open (nothing to check against)
    std::array<std::uint8_t, kAuditHashBytes> hash{};
    bool operator==(const AuditStamp&) const = default;
};

struct SealedState {
    StateKind kind = StateKind::PolicyState;
    std::uint64_t generation = 1;
    AuditStamp audit;
    std::string body;
    bool operator==(const SealedState&) const = default;
};

// Throws std::invalid_argument for a generation of 0 or a key of the wrong size.
std::string encode_sealed_state(const SealedState& state, std::span<const std::uint8_t> key);

enum class StateFault {
    Legacy,       // no header: the unauthenticated format of an earlier version (body = the text)
    Malformed,    // starts like a sealed file but is cut short or breaks a rule before the MAC
    Unauthentic,  // the MAC does not verify: edited, forged, or sealed under another key
    WrongKind,    // authentic, but sealed as the other kind (a file copied to the other name)
};
const char* to_string(StateFault fault) noexcept;

struct DecodedState {
    std::optional<SealedState> state;  // set when authentic, well formed and of the expected kind
    StateFault fault = StateFault::Malformed;
    std::string detail;       // for a lock reason; never file content
    std::string legacy_body;  // Legacy only: the whole text, to be parsed and adopted
};

DecodedState decode_sealed_state(std::string_view text, StateKind expected, std::span<const std::uint8_t> key);

}  // namespace codexvault::store
