// Pure core: the founder's enrolled public key, the daemon-issued nonces, and the rules a
// founder proof must pass. No syscalls: the daemon shell supplies time and randomness.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/founder_proof.hpp"
#include "common/limits.hpp"

namespace codexvault::founder {

using PublicKey = std::array<std::uint8_t, 32>;  // Ed25519
using Nonce = std::array<std::uint8_t, limits::kNonceBytes>;

enum class ProofVerdict {
    Ok,
    NotEnrolled,
    Malformed,     // wrong nonce or signature length
    UnknownNonce,  // never issued, already used, or evicted
    NonceExpired,  // issued too long ago
    ProofExpired,  // expiry is in the past
    ExpiryTooFar,  // expiry more than 60 s ahead
    BadSignature,
};

const char* describe(ProofVerdict verdict) noexcept;

// Nonces live kNonceLifetimeUsec (monotonic clock) and are consumed by their first
// presentation, whether or not the proof around them verifies. At most kMaxOutstanding are
// kept; issuing more evicts the oldest, so a flood of GetNonce cannot grow memory.
class NonceRegistry {
public:
    static constexpr std::uint64_t kNonceLifetimeUsec = limits::kMaxFounderProofLifetimeUsec;
    static constexpr std::size_t kMaxOutstanding = 256;

    void add(const Nonce& nonce, std::uint64_t now_monotonic_usec);
    enum class Consumed { Ok, Unknown, Expired };
    Consumed consume(std::span<const std::uint8_t> nonce, std::uint64_t now_monotonic_usec);
    [[nodiscard]] std::size_t outstanding() const noexcept { return entries_.size(); }

private:
    struct Entry {
        Nonce nonce;
        std::uint64_t issued_monotonic_usec;
    };
    std::deque<Entry> entries_;
};

class FounderAuthority {
public:
    explicit FounderAuthority(std::optional<PublicKey> enrolled = std::nullopt) : key_(enrolled) {}

    [[nodiscard]] bool enrolled() const noexcept { return key_.has_value(); }
    [[nodiscard]] const std::optional<PublicKey>& public_key() const noexcept { return key_; }
    void enroll(const PublicKey& key) { key_ = key; }

    // `random` comes from the shell's CSPRNG; the registry keeps the nonce and returns it.
    Nonce issue_nonce(const Nonce& random, std::uint64_t now_monotonic_usec);

    // Checks, in order: enrolment, shape, nonce (consuming it), expiry window, signature over
    // founder_signing_payload(operation, arguments, nonce, expiry) with the enrolled key.
    ProofVerdict verify(std::string_view operation, std::span<const std::string> arguments, const FounderProof& proof,
                        std::uint64_t now_realtime_usec, std::uint64_t now_monotonic_usec);

    // Same checks against a candidate key (enrolment proves possession of the new key).
    ProofVerdict verify_with_key(const PublicKey& key, std::string_view operation,
                                 std::span<const std::string> arguments, const FounderProof& proof,
                                 std::uint64_t now_realtime_usec, std::uint64_t now_monotonic_usec);

private:
    std::optional<PublicKey> key_;
    NonceRegistry nonces_;
};

}  // namespace codexvault::founder
