// Founder proof rules. Pure: the only library calls are libsodium's signature check and its
// constant-time compare; clocks and randomness arrive as parameters from the daemon shell.
#include "daemon/founder/founder_authority.hpp"

#include <sodium.h>

#include <algorithm>
#include <limits>

namespace codexvault::founder {

namespace {

// A monotonic clock never runs backwards; if the shell ever reports that it did, every nonce
// issued "later" counts as stale (fail closed). Stated outright rather than left to the
// unsigned wrap-around of now - issued, which happens to give the same answer.
bool nonce_expired(std::uint64_t issued, std::uint64_t now) noexcept
{
    return now < issued || now - issued > NonceRegistry::kNonceLifetimeUsec;
}

ProofVerdict check_proof(NonceRegistry& nonces, std::string_view connection, const PublicKey& key,
                         std::string_view operation, std::span<const std::string> arguments, const FounderProof& proof,
                         std::uint64_t now_realtime_usec, std::uint64_t now_monotonic_usec)
{
    // Shape first and without touching the registry: a truncated message must not burn a
    // nonce the founder's next, well-formed attempt may still be carrying.
    if (proof.nonce.size() != limits::kNonceBytes || proof.signature.size() != crypto_sign_BYTES) {
        return ProofVerdict::Malformed;
    }

    // From here on the nonce is spent whatever the outcome, so a wrong guess at a signature
    // cannot be retried against the same nonce. A nonce of another connection is not spent: a
    // bus monitor that saw it in a GetNonce reply could otherwise cancel the founder's call.
    switch (nonces.consume(connection, proof.nonce, now_monotonic_usec)) {
    case NonceRegistry::Consumed::Ok:
        break;
    case NonceRegistry::Consumed::Unknown:
        return ProofVerdict::UnknownNonce;
    case NonceRegistry::Consumed::Expired:
        return ProofVerdict::NonceExpired;
    case NonceRegistry::Consumed::Foreign:
        return ProofVerdict::ForeignNonce;
    }

    if (proof.expires_realtime_usec <= now_realtime_usec) {
        return ProofVerdict::ProofExpired;
    }
    // Written as a difference so a `now` near UINT64_MAX cannot overflow the bound.
    if (proof.expires_realtime_usec - now_realtime_usec > limits::kMaxFounderProofLifetimeUsec) {
        return ProofVerdict::ExpiryTooFar;
    }

    const std::vector<std::uint8_t> payload =
        founder_signing_payload(operation, arguments, proof.nonce, proof.expires_realtime_usec);
    if (crypto_sign_verify_detached(proof.signature.data(), payload.data(), payload.size(), key.data()) != 0) {
        return ProofVerdict::BadSignature;
    }
    return ProofVerdict::Ok;
}

}  // namespace

const char* describe(ProofVerdict verdict) noexcept
{
    switch (verdict) {
    case ProofVerdict::Ok:
        return "founder proof accepted";
    case ProofVerdict::NotEnrolled:
        return "no founder key is enrolled";
    case ProofVerdict::Malformed:
        return "founder proof is malformed (nonce or signature has the wrong length)";
    case ProofVerdict::UnknownNonce:
        return "nonce unknown or already used";
    case ProofVerdict::NonceExpired:
        return "nonce expired; request a new one";
    case ProofVerdict::ProofExpired:
        return "founder proof has expired";
    case ProofVerdict::ExpiryTooFar:
        return "founder proof expiry is more than 60 seconds ahead";
    case ProofVerdict::BadSignature:
        return "founder proof signature does not verify";
    case ProofVerdict::ForeignNonce:
        return "nonce was issued to another bus connection; ask for one on the connection that signs";
    }
    return "founder proof rejected";
}

void NonceRegistry::add(std::string_view connection, const Nonce& nonce, std::uint64_t now_monotonic_usec)
{
    drop_expired(now_monotonic_usec);
    if (connection.empty()) {
        return;  // nobody could ever spend it
    }
    if (outstanding_for(connection) >= kMaxPerConnection) {
        evict_oldest_of(connection);
    }
    if (entries_.size() >= kMaxOutstanding) {
        // The oldest nonce of the connection holding the most: a flood spread over many
        // connections loses its own nonces before anyone's single fresh one.
        std::size_t most = 0;
        for (const auto& [name, count] : per_connection_) {
            most = std::max(most, count);
        }
        for (std::size_t i = 0; i < entries_.size(); ++i) {
            if (per_connection_.find(entries_[i].connection)->second == most) {
                erase_at(i);
                break;
            }
        }
    }
    entries_.push_back(Entry{nonce, std::string(connection), now_monotonic_usec});
    ++per_connection_[std::string(connection)];
}

NonceRegistry::Consumed NonceRegistry::consume(std::string_view connection, std::span<const std::uint8_t> nonce,
                                               std::uint64_t now_monotonic_usec)
{
    if (nonce.size() != limits::kNonceBytes) {
        return Consumed::Unknown;
    }

    // Compare against every entry in constant time per entry and without stopping at the
    // first match, so response timing says nothing about how much of a guess was right.
    std::size_t found = std::numeric_limits<std::size_t>::max();
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (sodium_memcmp(entries_[i].nonce.data(), nonce.data(), nonce.size()) == 0) {
            found = i;
        }
    }

    Consumed result = Consumed::Unknown;
    if (found != std::numeric_limits<std::size_t>::max()) {
        if (connection.empty() || entries_[found].connection != connection) {
            result = Consumed::Foreign;
        } else {
            // Single use: a found nonce is removed whether it is still fresh or not.
            const std::uint64_t issued = entries_[found].issued_monotonic_usec;
            erase_at(found);
            result = nonce_expired(issued, now_monotonic_usec) ? Consumed::Expired : Consumed::Ok;
        }
    }
    drop_expired(now_monotonic_usec);
    return result;
}

std::size_t NonceRegistry::outstanding_for(std::string_view connection) const noexcept
{
    const auto it = per_connection_.find(connection);
    return it == per_connection_.end() ? 0 : it->second;
}

void NonceRegistry::drop_expired(std::uint64_t now_monotonic_usec)
{
    for (std::size_t i = entries_.size(); i-- > 0;) {
        if (nonce_expired(entries_[i].issued_monotonic_usec, now_monotonic_usec)) {
            erase_at(i);
        }
    }
}

void NonceRegistry::erase_at(std::size_t index)
{
    const auto it = per_connection_.find(entries_[index].connection);
    if (--it->second == 0) {
        per_connection_.erase(it);
    }
    entries_.erase(entries_.begin() + static_cast<std::ptrdiff_t>(index));
}

void NonceRegistry::evict_oldest_of(std::string_view connection)
{
    for (std::size_t i = 0; i < entries_.size(); ++i) {
        if (entries_[i].connection == connection) {
            erase_at(i);
            return;
        }
    }
}

Nonce FounderAuthority::issue_nonce(std::string_view connection, const Nonce& random, std::uint64_t now_monotonic_usec)
{
    nonces_.add(connection, random, now_monotonic_usec);
    return random;
}

ProofVerdict FounderAuthority::verify(std::string_view connection, std::string_view operation,
                                      std::span<const std::string> arguments, const FounderProof& proof,
                                      std::uint64_t now_realtime_usec, std::uint64_t now_monotonic_usec)
{
    if (!key_) {
        return ProofVerdict::NotEnrolled;
    }
    return check_proof(nonces_, connection, *key_, operation, arguments, proof, now_realtime_usec, now_monotonic_usec);
}

ProofVerdict FounderAuthority::verify_with_key(std::string_view connection, const PublicKey& key,
                                               std::string_view operation, std::span<const std::string> arguments,
                                               const FounderProof& proof, std::uint64_t now_realtime_usec,
                                               std::uint64_t now_monotonic_usec)
{
    return check_proof(nonces_, connection, key, operation, arguments, proof, now_realtime_usec, now_monotonic_usec);
}

}  // namespace codexvault::founder
