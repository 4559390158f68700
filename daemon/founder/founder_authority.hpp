// Pure core: the founder's enrolled public key, the daemon-issued nonces, and the rules a
// founder proof must pass. No syscalls: the daemon shell supplies time, randomness and the
// bus connection a call came from.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <map>
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
    ForeignNonce,  // issued to another bus connection (left unspent: it is still its owner's)
};

const char* describe(ProofVerdict verdict) noexcept;

// Nonces live kNonceLifetimeUsec (monotonic clock) and are consumed by their first presentation
// on the connection they were issued to, whether or not the proof around them verifies.
//
// Each nonce belongs to the bus connection (unique name, which the bus never reuses) that asked
// for it, and only that connection can spend it, so a caller of the founder uid without the key
// can neither use nor crowd out the founder's nonces (issue 10, item 10): a connection keeps at
// most kMaxPerConnection (its oldest goes first); all connections together at most
// kMaxOutstanding, and when that is full the oldest nonce of the connection holding the most is
// dropped, so a flood from many connections takes its own nonces before a connection's single
// fresh one. A connection's nonces are not dropped when it leaves the bus (the registry does not
// hear of it); they are unusable once it is gone and expire with the lifetime.
class NonceRegistry {
public:
    static constexpr std::uint64_t kNonceLifetimeUsec = limits::kMaxFounderProofLifetimeUsec;
    static constexpr std::size_t kMaxPerConnection = 4;
    static constexpr std::size_t kMaxOutstanding = 4096;

    // `connection` must not be empty (the shell refuses a caller without a bus name).
    void add(std::string_view connection, const Nonce& nonce, std::uint64_t now_monotonic_usec);
    enum class Consumed { Ok, Unknown, Expired, Foreign };
    // Foreign: the nonce exists but belongs to another connection; it stays with its owner.
    Consumed consume(std::string_view connection, std::span<const std::uint8_t> nonce,
                     std::uint64_t now_monotonic_usec);
    [[nodiscard]] std::size_t outstanding() const noexcept { return entries_.size(); }
    [[nodiscard]] std::size_t outstanding_for(std::string_view connection) const noexcept;

private:
    struct Entry {
        Nonce nonce;
        std::string connection;
        std::uint64_t issued_monotonic_usec;
    };
    void drop_expired(std::uint64_t now_monotonic_usec);
    void erase_at(std::size_t index);
    void evict_oldest_of(std::string_view connection);

    std::deque<Entry> entries_;                                       // oldest first
    std::map<std::string, std::size_t, std::less<>> per_connection_;  // outstanding per connection
};

class FounderAuthority {
public:
    explicit FounderAuthority(std::optional<PublicKey> enrolled = std::nullopt) : key_(enrolled) {}

    [[nodiscard]] bool enrolled() const noexcept { return key_.has_value(); }
    [[nodiscard]] const std::optional<PublicKey>& public_key() const noexcept { return key_; }
    void enroll(const PublicKey& key) { key_ = key; }

    // `random` comes from the shell's CSPRNG; the registry keeps the nonce for `connection` (the
    // caller's unique bus name) and returns it.
    Nonce issue_nonce(std::string_view connection, const Nonce& random, std::uint64_t now_monotonic_usec);

    // Checks, in order: enrolment, shape, nonce (issued to `connection`; consuming it), expiry
    // window, signature over founder_signing_payload(operation, arguments, nonce, expiry) with the
    // enrolled key.
    ProofVerdict verify(std::string_view connection, std::string_view operation, std::span<const std::string> arguments,
                        const FounderProof& proof, std::uint64_t now_realtime_usec, std::uint64_t now_monotonic_usec);

    // Same checks against a candidate key (enrolment proves possession of the new key).
    ProofVerdict verify_with_key(std::string_view connection, const PublicKey& key, std::string_view operation,
                                 std::span<const std::string> arguments, const FounderProof& proof,
                                 std::uint64_t now_realtime_usec, std::uint64_t now_monotonic_usec);

    [[nodiscard]] const NonceRegistry& nonces() const noexcept { return nonces_; }

private:
    std::optional<PublicKey> key_;
    NonceRegistry nonces_;
};

}  // namespace codexvault::founder
