// FounderAuthority and NonceRegistry: every rule a founder proof must pass, each shown to
// deny when the rule is broken, with real Ed25519 signatures built here.
#include <sodium.h>

#include <criterion/criterion.h>

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "common/founder_proof.hpp"
#include "daemon/founder/founder_authority.hpp"

using codexvault::founder_signing_payload;
using codexvault::FounderProof;
using codexvault::founder::FounderAuthority;
using codexvault::founder::Nonce;
using codexvault::founder::NonceRegistry;
using codexvault::founder::ProofVerdict;
using codexvault::founder::PublicKey;

namespace {

constexpr std::uint64_t kSecond = 1000 * 1000;
constexpr std::uint64_t kNowRealtime = 1'700'000'000ULL * kSecond;
constexpr std::uint64_t kNowMonotonic = 5'000ULL * kSecond;
constexpr std::uint64_t kExpiry = kNowRealtime + 30 * kSecond;

struct KeyPair {
    PublicKey public_key{};
    std::array<std::uint8_t, crypto_sign_SECRETKEYBYTES> secret_key{};
};

KeyPair make_keys()
{
    cr_assert_geq(sodium_init(), 0);
    KeyPair keys;
    crypto_sign_keypair(keys.public_key.data(), keys.secret_key.data());
    return keys;
}

Nonce nonce_from(std::uint8_t seed)
{
    Nonce nonce{};
    for (std::size_t i = 0; i < nonce.size(); ++i) {
        nonce[i] = static_cast<std::uint8_t>(seed * 31 + i);
    }
    return nonce;
}

FounderProof sign(const KeyPair& keys, std::string_view operation, const std::vector<std::string>& arguments,
                  const Nonce& nonce, std::uint64_t expiry)
{
    FounderProof proof;
    proof.nonce.assign(nonce.begin(), nonce.end());
    proof.expires_realtime_usec = expiry;
    const auto payload = founder_signing_payload(operation, arguments, proof.nonce, expiry);
    proof.signature.resize(crypto_sign_BYTES);
    crypto_sign_detached(proof.signature.data(), nullptr, payload.data(), payload.size(), keys.secret_key.data());
    return proof;
}

const std::vector<std::string> kArgs{"openai", "agent-7"};
// Unique bus names of the founder's connection and of another caller's.
constexpr std::string_view kConnection = ":1.7";
constexpr std::string_view kOther = ":1.8";

Nonce numbered(std::size_t i)
{
    Nonce random{};
    random[0] = static_cast<std::uint8_t>(i);
    random[1] = static_cast<std::uint8_t>(i >> 8);
    random[31] = 0xA5;
    return random;
}

}  // namespace

Test(founder_authority, enrolment_is_required)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority;
    cr_assert_not(authority.enrolled());
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(1), kNowMonotonic);
    const FounderProof proof = sign(keys, "PutSecret", kArgs, nonce, kExpiry);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, proof, kNowRealtime, kNowMonotonic),
                 ProofVerdict::NotEnrolled);
}

Test(founder_authority, valid_proof_verifies)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    cr_assert(authority.enrolled());
    const Nonce issued = authority.issue_nonce(kConnection, nonce_from(2), kNowMonotonic);
    cr_assert(issued == nonce_from(2), "issue_nonce returns the random bytes it stored");
    const FounderProof proof = sign(keys, "PutSecret", kArgs, issued, kExpiry);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, proof, kNowRealtime, kNowMonotonic + kSecond),
                 ProofVerdict::Ok);
}

Test(founder_authority, enroll_replaces_missing_key)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority;
    authority.enroll(keys.public_key);
    cr_assert(authority.public_key().has_value() && *authority.public_key() == keys.public_key);
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(3), kNowMonotonic);
    cr_assert_eq(
        authority.verify(kConnection, "Lock", {}, sign(keys, "Lock", {}, nonce, kExpiry), kNowRealtime, kNowMonotonic),
        ProofVerdict::Ok);
}

Test(founder_authority, nonce_reuse_is_denied)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(4), kNowMonotonic);
    const FounderProof proof = sign(keys, "PutSecret", kArgs, nonce, kExpiry);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, proof, kNowRealtime, kNowMonotonic),
                 ProofVerdict::Ok);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, proof, kNowRealtime, kNowMonotonic),
                 ProofVerdict::UnknownNonce);
}

Test(founder_authority, unknown_nonce_is_denied)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    (void)authority.issue_nonce(kConnection, nonce_from(5), kNowMonotonic);
    const FounderProof proof = sign(keys, "PutSecret", kArgs, nonce_from(6), kExpiry);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, proof, kNowRealtime, kNowMonotonic),
                 ProofVerdict::UnknownNonce);
}

Test(founder_authority, expired_nonce_is_denied)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce stale = authority.issue_nonce(kConnection, nonce_from(7), kNowMonotonic);
    const FounderProof proof = sign(keys, "PutSecret", kArgs, stale, kExpiry);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, proof, kNowRealtime, kNowMonotonic + 61 * kSecond),
                 ProofVerdict::NonceExpired);
    // The expired nonce was removed when it was presented.
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, proof, kNowRealtime, kNowMonotonic + 61 * kSecond),
                 ProofVerdict::UnknownNonce);

    // Exactly the lifetime is still acceptable; one microsecond more is not.
    const Nonce edge = authority.issue_nonce(kConnection, nonce_from(8), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(keys, "PutSecret", kArgs, edge, kExpiry),
                                  kNowRealtime, kNowMonotonic + NonceRegistry::kNonceLifetimeUsec),
                 ProofVerdict::Ok);
    const Nonce past_edge = authority.issue_nonce(kConnection, nonce_from(9), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(keys, "PutSecret", kArgs, past_edge, kExpiry),
                                  kNowRealtime, kNowMonotonic + NonceRegistry::kNonceLifetimeUsec + 1),
                 ProofVerdict::NonceExpired);
}

Test(founder_authority, monotonic_clock_going_backwards_fails_closed)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(10), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(keys, "PutSecret", kArgs, nonce, kExpiry),
                                  kNowRealtime, kNowMonotonic - 1),
                 ProofVerdict::NonceExpired);
}

Test(founder_authority, expired_proof_is_denied)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce at_now = authority.issue_nonce(kConnection, nonce_from(11), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(keys, "PutSecret", kArgs, at_now, kNowRealtime),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::ProofExpired);
    const Nonce in_past = authority.issue_nonce(kConnection, nonce_from(12), kNowMonotonic);
    cr_assert_eq(
        authority.verify(kConnection, "PutSecret", kArgs,
                         sign(keys, "PutSecret", kArgs, in_past, kNowRealtime - kSecond), kNowRealtime, kNowMonotonic),
        ProofVerdict::ProofExpired);
}

Test(founder_authority, expiry_too_far_ahead_is_denied)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const std::uint64_t too_far = kNowRealtime + codexvault::limits::kMaxFounderProofLifetimeUsec + 1;
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(13), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(keys, "PutSecret", kArgs, nonce, too_far),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::ExpiryTooFar);
    const Nonce far = authority.issue_nonce(kConnection, nonce_from(14), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(keys, "PutSecret", kArgs, far, UINT64_MAX),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::ExpiryTooFar);
}

Test(founder_authority, expiry_exactly_sixty_seconds_ahead_is_allowed)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const std::uint64_t limit = kNowRealtime + 60 * kSecond;
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(15), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(keys, "PutSecret", kArgs, nonce, limit),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::Ok);
}

Test(founder_authority, signature_by_another_key_is_denied)
{
    const KeyPair founder = make_keys();
    const KeyPair intruder = make_keys();
    FounderAuthority authority(founder.public_key);
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(16), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(intruder, "PutSecret", kArgs, nonce, kExpiry),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::BadSignature);
}

Test(founder_authority, signature_binds_operation_arguments_order_and_expiry)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);

    const Nonce n1 = authority.issue_nonce(kConnection, nonce_from(17), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "DeleteSecret", kArgs, sign(keys, "PutSecret", kArgs, n1, kExpiry),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::BadSignature, "a different operation");

    const Nonce n2 = authority.issue_nonce(kConnection, nonce_from(18), kNowMonotonic);
    const std::vector<std::string> other_argument{"openai", "agent-8"};
    cr_assert_eq(authority.verify(kConnection, "PutSecret", other_argument, sign(keys, "PutSecret", kArgs, n2, kExpiry),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::BadSignature, "a different argument");

    const Nonce n3 = authority.issue_nonce(kConnection, nonce_from(19), kNowMonotonic);
    const std::vector<std::string> swapped{"agent-7", "openai"};
    cr_assert_eq(authority.verify(kConnection, "PutSecret", swapped, sign(keys, "PutSecret", kArgs, n3, kExpiry),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::BadSignature, "the same arguments in another order");

    const Nonce n4 = authority.issue_nonce(kConnection, nonce_from(20), kNowMonotonic);
    FounderProof moved_expiry = sign(keys, "PutSecret", kArgs, n4, kExpiry);
    moved_expiry.expires_realtime_usec = kExpiry + 1;
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, moved_expiry, kNowRealtime, kNowMonotonic),
                 ProofVerdict::BadSignature, "a different expiry");

    const Nonce n5 = authority.issue_nonce(kConnection, nonce_from(21), kNowMonotonic);
    const std::vector<std::string> joined{"openaiagent-7"};
    cr_assert_eq(authority.verify(kConnection, "PutSecret", joined, sign(keys, "PutSecret", kArgs, n5, kExpiry),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::BadSignature, "arguments concatenated differently");
}

Test(founder_authority, malformed_sizes_are_denied_without_consuming_the_nonce)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(22), kNowMonotonic);
    const FounderProof good = sign(keys, "PutSecret", kArgs, nonce, kExpiry);

    FounderProof short_signature = good;
    short_signature.signature.pop_back();
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, short_signature, kNowRealtime, kNowMonotonic),
                 ProofVerdict::Malformed);

    FounderProof long_signature = good;
    long_signature.signature.push_back(0);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, long_signature, kNowRealtime, kNowMonotonic),
                 ProofVerdict::Malformed);

    FounderProof long_nonce = good;
    long_nonce.nonce.push_back(0);  // starts with the real nonce
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, long_nonce, kNowRealtime, kNowMonotonic),
                 ProofVerdict::Malformed);

    FounderProof short_nonce = good;
    short_nonce.nonce.pop_back();
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, short_nonce, kNowRealtime, kNowMonotonic),
                 ProofVerdict::Malformed);

    FounderProof empty = good;
    empty.nonce.clear();
    empty.signature.clear();
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, empty, kNowRealtime, kNowMonotonic),
                 ProofVerdict::Malformed);

    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, good, kNowRealtime, kNowMonotonic), ProofVerdict::Ok,
                 "the nonce survived the malformed attempts");
}

Test(founder_authority, issuing_beyond_a_connections_limit_evicts_its_oldest)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    std::vector<Nonce> issued;
    for (std::size_t i = 0; i < NonceRegistry::kMaxPerConnection + 1; ++i) {
        issued.push_back(authority.issue_nonce(kConnection, numbered(i), kNowMonotonic + i));
    }
    const std::uint64_t later = kNowMonotonic + NonceRegistry::kMaxPerConnection + 1;
    cr_assert_eq(
        authority.verify(kConnection, "Lock", {}, sign(keys, "Lock", {}, issued.front(), kExpiry), kNowRealtime, later),
        ProofVerdict::UnknownNonce, "the first nonce was evicted");
    cr_assert_eq(
        authority.verify(kConnection, "Lock", {}, sign(keys, "Lock", {}, issued[1], kExpiry), kNowRealtime, later),
        ProofVerdict::Ok, "the second is still there");
    cr_assert_eq(
        authority.verify(kConnection, "Lock", {}, sign(keys, "Lock", {}, issued.back(), kExpiry), kNowRealtime, later),
        ProofVerdict::Ok, "and the newest");
}

Test(founder_authority, a_flood_of_nonces_on_other_connections_does_not_evict_the_founders)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce mine = authority.issue_nonce(kConnection, nonce_from(50), kNowMonotonic);
    // One connection minting without end, then many connections minting their limit each.
    for (std::size_t i = 0; i < 1000; ++i) {
        (void)authority.issue_nonce(kOther, numbered(i), kNowMonotonic + 1);
    }
    cr_assert_eq(authority.nonces().outstanding_for(kOther), NonceRegistry::kMaxPerConnection);
    for (std::size_t i = 0; i < 2 * NonceRegistry::kMaxOutstanding; ++i) {
        const std::string connection = ":2." + std::to_string(i / NonceRegistry::kMaxPerConnection);
        Nonce random = numbered(i);
        random[30] = 0x5A;
        (void)authority.issue_nonce(connection, random, kNowMonotonic + 2);
    }
    cr_assert_leq(authority.nonces().outstanding(), NonceRegistry::kMaxOutstanding);
    cr_assert_eq(authority.verify(kConnection, "Lock", {}, sign(keys, "Lock", {}, mine, kExpiry), kNowRealtime,
                                  kNowMonotonic + 3),
                 ProofVerdict::Ok, "the founder's one fresh nonce survived the flood");
}

Test(founder_authority, a_nonce_presented_on_another_connection_is_refused_and_left_to_its_owner)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(51), kNowMonotonic);
    const FounderProof proof = sign(keys, "Lock", {}, nonce, kExpiry);
    cr_assert_eq(authority.verify(kOther, "Lock", {}, proof, kNowRealtime, kNowMonotonic), ProofVerdict::ForeignNonce);
    cr_assert_eq(authority.verify("", "Lock", {}, proof, kNowRealtime, kNowMonotonic), ProofVerdict::ForeignNonce,
                 "a caller without a bus name owns nothing");
    cr_assert_eq(authority.verify(kConnection, "Lock", {}, proof, kNowRealtime, kNowMonotonic), ProofVerdict::Ok,
                 "the owner can still spend it");
}

Test(nonce_registry, a_caller_without_a_bus_name_is_given_nothing_to_spend)
{
    NonceRegistry registry;
    registry.add("", nonce_from(52), 100);
    cr_assert_eq(registry.outstanding(), 0u);
}

Test(founder_authority, bad_signature_consumes_the_nonce)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(23), kNowMonotonic);
    FounderProof forged = sign(keys, "PutSecret", kArgs, nonce, kExpiry);
    forged.signature[0] ^= 0x01;
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, forged, kNowRealtime, kNowMonotonic),
                 ProofVerdict::BadSignature);
    cr_assert_eq(authority.verify(kConnection, "PutSecret", kArgs, sign(keys, "PutSecret", kArgs, nonce, kExpiry),
                                  kNowRealtime, kNowMonotonic),
                 ProofVerdict::UnknownNonce);
}

Test(founder_authority, expiry_checks_consume_the_nonce)
{
    const KeyPair keys = make_keys();
    FounderAuthority authority(keys.public_key);
    const Nonce nonce = authority.issue_nonce(kConnection, nonce_from(24), kNowMonotonic);
    cr_assert_eq(authority.verify(kConnection, "Lock", {}, sign(keys, "Lock", {}, nonce, kNowRealtime), kNowRealtime,
                                  kNowMonotonic),
                 ProofVerdict::ProofExpired);
    cr_assert_eq(
        authority.verify(kConnection, "Lock", {}, sign(keys, "Lock", {}, nonce, kExpiry), kNowRealtime, kNowMonotonic),
        ProofVerdict::UnknownNonce);
}

Test(founder_authority, verify_with_key_proves_possession_without_enrolment)
{
    const KeyPair candidate = make_keys();
    const KeyPair other = make_keys();
    FounderAuthority authority;
    const Nonce n1 = authority.issue_nonce(kConnection, nonce_from(25), kNowMonotonic);
    const FounderProof proof = sign(candidate, "Enroll", {"abcd"}, n1, kExpiry);
    cr_assert_eq(authority.verify_with_key(kConnection, other.public_key, "Enroll", std::vector<std::string>{"abcd"},
                                           proof, kNowRealtime, kNowMonotonic),
                 ProofVerdict::BadSignature);
    const Nonce n2 = authority.issue_nonce(kConnection, nonce_from(26), kNowMonotonic);
    const FounderProof good = sign(candidate, "Enroll", {"abcd"}, n2, kExpiry);
    cr_assert_eq(authority.verify_with_key(kConnection, candidate.public_key, "Enroll",
                                           std::vector<std::string>{"abcd"}, good, kNowRealtime, kNowMonotonic),
                 ProofVerdict::Ok);
    cr_assert_eq(authority.verify_with_key(kConnection, candidate.public_key, "Enroll",
                                           std::vector<std::string>{"abcd"}, good, kNowRealtime, kNowMonotonic),
                 ProofVerdict::UnknownNonce);
    cr_assert_not(authority.enrolled(), "verify_with_key does not enroll");
}

Test(nonce_registry, consume_rules)
{
    NonceRegistry registry;
    registry.add(kConnection, nonce_from(30), 100);
    registry.add(kConnection, nonce_from(31), 100);
    cr_assert_eq(registry.outstanding(), 2u);

    const Nonce stored = nonce_from(30);
    const std::vector<std::uint8_t> truncated(stored.begin(), stored.end() - 1);
    cr_assert_eq(registry.consume(kConnection, truncated, 100), NonceRegistry::Consumed::Unknown);
    cr_assert_eq(registry.outstanding(), 2u, "a wrong-length nonce removes nothing");

    const Nonce first = nonce_from(30);
    cr_assert_eq(registry.consume(kConnection, first, 100), NonceRegistry::Consumed::Ok);
    cr_assert_eq(registry.consume(kConnection, first, 100), NonceRegistry::Consumed::Unknown);
    cr_assert_eq(registry.outstanding(), 1u);
}

Test(nonce_registry, expired_entries_are_dropped_opportunistically)
{
    NonceRegistry registry;
    registry.add(kConnection, nonce_from(40), 0);
    registry.add(kConnection, nonce_from(41), 0);
    registry.add(kConnection, nonce_from(42), NonceRegistry::kNonceLifetimeUsec + 1);
    cr_assert_eq(registry.outstanding(), 1u, "add() drops entries past their lifetime");

    registry.add(kConnection, nonce_from(43), NonceRegistry::kNonceLifetimeUsec + 1);
    const Nonce unknown = nonce_from(44);
    cr_assert_eq(registry.consume(kConnection, unknown, 3 * NonceRegistry::kNonceLifetimeUsec),
                 NonceRegistry::Consumed::Unknown);
    cr_assert_eq(registry.outstanding(), 0u, "consume() drops them too");
}

Test(nonce_registry, outstanding_never_exceeds_the_limits)
{
    NonceRegistry registry;
    for (std::size_t i = 0; i < 3 * NonceRegistry::kMaxPerConnection; ++i) {
        registry.add(kConnection, numbered(i), 1000);
    }
    cr_assert_eq(registry.outstanding(), NonceRegistry::kMaxPerConnection);
    for (std::size_t i = 0; i < 3 * NonceRegistry::kMaxOutstanding; ++i) {
        registry.add(":3." + std::to_string(i), numbered(i), 1000);
    }
    cr_assert_eq(registry.outstanding(), NonceRegistry::kMaxOutstanding);
}

Test(founder_authority, describe_gives_each_verdict_its_own_text)
{
    const ProofVerdict all[] = {ProofVerdict::Ok,           ProofVerdict::NotEnrolled,  ProofVerdict::Malformed,
                                ProofVerdict::UnknownNonce, ProofVerdict::NonceExpired, ProofVerdict::ProofExpired,
                                ProofVerdict::ExpiryTooFar, ProofVerdict::BadSignature, ProofVerdict::ForeignNonce};
    for (std::size_t i = 0; i < std::size(all); ++i) {
        cr_assert(describe(all[i]) != nullptr && describe(all[i])[0] != '\0');
        for (std::size_t j = 0; j < i; ++j) {
            cr_assert_str_neq(describe(all[i]), describe(all[j]));
        }
    }
    cr_assert_str_eq(describe(ProofVerdict::BadSignature), "founder proof signature does not verify");
    cr_assert_str_eq(describe(ProofVerdict::UnknownNonce), "nonce unknown or already used");
}
