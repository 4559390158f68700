// The persistent lock record, pure part: what STATE/lock says and which incident step a
// restart must run next. No syscalls; lock_file.hpp reads and writes it.
//
// File format (text, every line ends in '\n', exactly these five lines in this order):
//
//   codex-vault-lock 1
//   since <u64 decimal CLOCK_REALTIME usec>
//   incident <yes|no>
//   steps <decimal bitmask of IncidentStep, only defined bits>
//   reason <1..kMaxLockReasonBytes printable ASCII characters>
//
// Decimal numbers have no sign and no leading zero (except "0"). The file holds no secret:
// reasons are written by the daemon (or typed by the founder) and sanitized on save.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace codexvault::store {

// Incident response, in the order the daemon runs it. A plain (non-incident) lock needs only
// Locked and SignalEmitted.
enum class IncidentStep : std::uint32_t {
    Locked = 1U << 0,         // the vault refuses use; this record exists
    AccessRevoked = 1U << 1,  // every grant revoked, every pending approval denied
    SecretsMarked = 1U << 2,  // every secret marked rotation-required (SecretStore)
    AuditSealed = 1U << 3,    // the current audit segment sealed
    SignalEmitted = 1U << 4,  // the Locked signal sent on the bus
};

inline constexpr std::uint32_t kAllIncidentSteps = 0x1f;
inline constexpr std::size_t kMaxLockReasonBytes = 1024;
inline constexpr const char* kLockFileName = "lock";
inline constexpr const char* kUnreadableLockReason = "lock state file unreadable";

const char* to_string(IncidentStep step) noexcept;  // e.g. "access-revoked"

struct LockState {
    std::uint64_t locked_since_usec = 0;
    std::string reason;
    bool incident = false;
    std::uint32_t steps_done = 0;  // IncidentStep bits
    // Not stored: set by lock_file::load() when the file existed but could not be trusted (the
    // vault is then locked with kUnreadableLockReason; whether an incident was under way is
    // unknown, and the daemon decides whether to re-run incident response).
    bool unreadable = false;

    [[nodiscard]] bool done(IncidentStep step) const noexcept
    {
        return (steps_done & static_cast<std::uint32_t>(step)) != 0;
    }
    void mark_done(IncidentStep step) noexcept { steps_done |= static_cast<std::uint32_t>(step); }
    bool operator==(const LockState&) const = default;
};

// The first step, in enum order, that the lock still needs; nullopt when all are done.
std::optional<IncidentStep> next_incomplete_step(const LockState& state) noexcept;

// Printable ASCII only (anything else becomes '?'), at most kMaxLockReasonBytes, never empty
// ("unspecified"). Locking must not fail because of an odd reason, so this never throws.
std::string sanitize_lock_reason(std::string_view reason);

// The file's bytes; the reason is sanitized first.
std::string encode_lock_state(const LockState& state);
// nullopt for anything that is not exactly the format above (including undefined step bits
// and a reason sanitize_lock_reason() would change).
std::optional<LockState> decode_lock_state(std::string_view text);

}  // namespace codexvault::store
