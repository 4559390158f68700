// Checkpoint signatures, the audit signing key and the head file: pure, over caller-owned bytes.
//
// The audit key is Ed25519, derived from a 32-byte seed that the shell takes from the master key
// (Keyring::derive(kAuditSeedSubkeyId, kAuditSeedContext, 32)); the 64-byte secret key lives in
// memory the caller owns (a SecureBuffer), never in this module. The public half is exported as a
// one-line text file for offline verification (`vaultctl audit verify --pubkey FILE`).
//
// A checkpoint is a record (EventType::Checkpoint) whose signature covers a domain tag and the
// BLAKE2b-256 of its whole payload except the signature itself: sequence number, timestamps, the
// previous record's hash (so the whole chain up to it) and its claims (CheckpointBody). The head is
// a separate small file, signed under another domain tag, naming the latest checkpoint; it lets the
// verifier notice a log cut short at a record boundary. See docs/audit-log.md.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lib/auditcore/record.hpp"

namespace codexvault::audit {

using PublicKey = std::array<std::uint8_t, 32>;

inline constexpr std::size_t kAuditSeedBytes = 32;       // crypto_sign_SEEDBYTES
inline constexpr std::size_t kAuditSecretKeyBytes = 64;  // crypto_sign_SECRETKEYBYTES
// What the shell passes to Keyring::derive for the seed.
inline constexpr std::uint64_t kAuditSeedSubkeyId = 1;
inline constexpr char kAuditSeedContext[9] = "CVaudsig";

// Ed25519 key pair from the seed (crypto_sign_seed_keypair). secret_key receives 64 bytes.
void derive_audit_keypair(std::span<const std::uint8_t, kAuditSeedBytes> seed, PublicKey& public_key,
                          std::span<std::uint8_t, kAuditSecretKeyBytes> secret_key);
KeyId key_id_of(const PublicKey& public_key) noexcept;

// Signs with a secret key it does not own: `secret_key` must outlive the signer.
class CheckpointSigner {
public:
    explicit CheckpointSigner(std::span<const std::uint8_t, kAuditSecretKeyBytes> secret_key) noexcept;

    [[nodiscard]] const PublicKey& public_key() const noexcept { return public_key_; }
    [[nodiscard]] const KeyId& key_id() const noexcept { return key_id_; }
    [[nodiscard]] Signature sign(std::span<const std::uint8_t> message) const noexcept;

private:
    std::span<const std::uint8_t, kAuditSecretKeyBytes> secret_key_;
    PublicKey public_key_{};
    KeyId key_id_{};
};

// ---- checkpoint signatures ----------------------------------------------------------------------

// 32-byte domain tag || BLAKE2b-256(payload without its last 64 bytes, the signature field).
using SigningMessage = std::array<std::uint8_t, 64>;
SigningMessage checkpoint_signing_message(std::span<const std::uint8_t> checkpoint_payload) noexcept;
// Writes the signature into the payload's last 64 bytes. The payload must be a checkpoint's.
void sign_checkpoint_payload(std::span<std::uint8_t> checkpoint_payload, const CheckpointSigner& signer) noexcept;
// True when the payload's signature verifies with `key` (the payload must be a checkpoint's).
bool verify_checkpoint_payload(std::span<const std::uint8_t> checkpoint_payload, const PublicKey& key) noexcept;

// ---- head file ----------------------------------------------------------------------------------
//
//   0   8  magic "CVAUDHED"
//   8   2  u16 LE format version (1)
//  10   6  zero
//  16   8  u64 LE segment number holding the checkpoint
//  24   8  u64 LE the checkpoint's sequence number
//  32  32  the checkpoint record's hash
//  64   8  u64 LE the checkpoint's realtime timestamp (usec)
//  72   8  key id of the signing key
//  80  64  Ed25519 signature over domain tag (32 bytes) || bytes 0..79

inline constexpr std::size_t kHeadBytes = 144;
using HeadBytes = std::array<std::uint8_t, kHeadBytes>;

struct Head {
    std::uint64_t segment = 0;
    std::uint64_t seq = 0;
    Hash checkpoint_hash{};
    std::uint64_t realtime_usec = 0;
    KeyId key_id{};
    bool operator==(const Head&) const = default;
};

HeadBytes encode_head(const Head& head, const CheckpointSigner& signer) noexcept;  // key_id taken from signer

enum class HeadStatus { Ok, Malformed, WrongKey, BadSignature };
std::string_view head_status_name(HeadStatus status) noexcept;

struct HeadParse {
    HeadStatus status = HeadStatus::Malformed;
    Head head;  // meaningful when status is Ok
};
HeadParse parse_head(std::span<const std::uint8_t> bytes, const PublicKey& key) noexcept;

// ---- public key file ----------------------------------------------------------------------------
//
// One line: "codex-vault-audit-ed25519 " + 64 lowercase hex digits + "\n". parse_public_key also
// accepts upper-case hex, no newline, and surrounding white space.

inline constexpr std::string_view kPublicKeyFilePrefix = "codex-vault-audit-ed25519 ";
std::string format_public_key(const PublicKey& key);
std::optional<PublicKey> parse_public_key(std::string_view file_text);

}  // namespace codexvault::audit
