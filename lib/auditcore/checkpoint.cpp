#include "lib/auditcore/checkpoint.hpp"

#include <sodium.h>

#include <cstring>

#include "common/bytes.hpp"

namespace codexvault::audit {
namespace {

// Domain tags, each exactly 32 bytes (NUL padded): a checkpoint signature can never be taken
// for a head signature or for a founder proof, and vice versa.
using DomainTag = std::array<std::uint8_t, 32>;

constexpr DomainTag make_tag(std::string_view text) noexcept
{
    DomainTag tag{};
    for (std::size_t i = 0; i < text.size() && i < tag.size(); ++i) {
        tag[i] = static_cast<std::uint8_t>(text[i]);
    }
    return tag;
}

constexpr DomainTag kCheckpointTag = make_tag("codex-vault/audit/checkpoint/v1");
constexpr DomainTag kHeadTag = make_tag("codex-vault/audit/head/v1");
constexpr std::array<std::uint8_t, 8> kHeadMagic{'C', 'V', 'A', 'U', 'D', 'H', 'E', 'D'};
constexpr std::size_t kHeadSignedBytes = 80;

std::array<std::uint8_t, 32 + kHeadSignedBytes> head_message(const std::uint8_t* head_bytes) noexcept
{
    std::array<std::uint8_t, 32 + kHeadSignedBytes> message{};
    std::memcpy(message.data(), kHeadTag.data(), kHeadTag.size());
    std::memcpy(message.data() + kHeadTag.size(), head_bytes, kHeadSignedBytes);
    return message;
}

}  // namespace

void derive_audit_keypair(std::span<const std::uint8_t, kAuditSeedBytes> seed, PublicKey& public_key,
                          std::span<std::uint8_t, kAuditSecretKeyBytes> secret_key)
{
    static_assert(kAuditSeedBytes == crypto_sign_SEEDBYTES);
    static_assert(kAuditSecretKeyBytes == crypto_sign_SECRETKEYBYTES);
    crypto_sign_seed_keypair(public_key.data(), secret_key.data(), seed.data());
}

KeyId key_id_of(const PublicKey& public_key) noexcept
{
    Hash digest;
    crypto_generichash(digest.data(), digest.size(), public_key.data(), public_key.size(), nullptr, 0);
    KeyId id;
    std::memcpy(id.data(), digest.data(), id.size());
    return id;
}

CheckpointSigner::CheckpointSigner(std::span<const std::uint8_t, kAuditSecretKeyBytes> secret_key) noexcept
    : secret_key_(secret_key)
{
    crypto_sign_ed25519_sk_to_pk(public_key_.data(), secret_key_.data());
    key_id_ = key_id_of(public_key_);
}

Signature CheckpointSigner::sign(std::span<const std::uint8_t> message) const noexcept
{
    Signature sig;
    crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_key_.data());
    return sig;
}

SigningMessage checkpoint_signing_message(std::span<const std::uint8_t> checkpoint_payload) noexcept
{
    SigningMessage message{};
    std::memcpy(message.data(), kCheckpointTag.data(), kCheckpointTag.size());
    const std::size_t signed_bytes =
        checkpoint_payload.size() >= sizeof(Signature) ? checkpoint_payload.size() - sizeof(Signature) : 0;
    crypto_generichash(message.data() + kCheckpointTag.size(), 32, checkpoint_payload.data(), signed_bytes, nullptr, 0);
    return message;
}

void sign_checkpoint_payload(std::span<std::uint8_t> checkpoint_payload, const CheckpointSigner& signer) noexcept
{
    if (checkpoint_payload.size() < sizeof(Signature)) {
        return;
    }
    const SigningMessage message = checkpoint_signing_message(checkpoint_payload);
    const Signature sig = signer.sign(message);
    std::memcpy(checkpoint_payload.data() + checkpoint_payload.size() - sig.size(), sig.data(), sig.size());
}

bool verify_checkpoint_payload(std::span<const std::uint8_t> checkpoint_payload, const PublicKey& key) noexcept
{
    if (checkpoint_payload.size() < sizeof(Signature)) {
        return false;
    }
    const SigningMessage message = checkpoint_signing_message(checkpoint_payload);
    const std::uint8_t* sig = checkpoint_payload.data() + checkpoint_payload.size() - sizeof(Signature);
    return crypto_sign_verify_detached(sig, message.data(), message.size(), key.data()) == 0;
}

HeadBytes encode_head(const Head& head, const CheckpointSigner& signer) noexcept
{
    HeadBytes out{};
    std::memcpy(out.data(), kHeadMagic.data(), kHeadMagic.size());
    bytes::put_le<std::uint16_t>(out.data() + 8, kFormatVersion);
    bytes::put_le<std::uint64_t>(out.data() + 16, head.segment);
    bytes::put_le<std::uint64_t>(out.data() + 24, head.seq);
    std::memcpy(out.data() + 32, head.checkpoint_hash.data(), 32);
    bytes::put_le<std::uint64_t>(out.data() + 64, head.realtime_usec);
    std::memcpy(out.data() + 72, signer.key_id().data(), signer.key_id().size());
    const auto message = head_message(out.data());
    const Signature sig = signer.sign(message);
    std::memcpy(out.data() + kHeadSignedBytes, sig.data(), sig.size());
    return out;
}

std::string_view head_status_name(HeadStatus status) noexcept
{
    switch (status) {
    case HeadStatus::Ok:
        return "ok";
    case HeadStatus::Malformed:
        return "malformed";
    case HeadStatus::WrongKey:
        return "signed by another key";
    case HeadStatus::BadSignature:
        return "bad signature";
    }
    return "unknown";
}

HeadParse parse_head(std::span<const std::uint8_t> bytes, const PublicKey& key) noexcept
{
    HeadParse result;
    if (bytes.size() != kHeadBytes || std::memcmp(bytes.data(), kHeadMagic.data(), kHeadMagic.size()) != 0) {
        return result;
    }
    const std::uint8_t* p = bytes.data();
    const auto version = bytes::get_le<std::uint16_t>(p + 8);
    for (std::size_t i = 10; i < 16; ++i) {
        if (p[i] != 0) {
            return result;
        }
    }
    if (version != kFormatVersion) {
        return result;
    }
    Head head;
    head.segment = bytes::get_le<std::uint64_t>(p + 16);
    head.seq = bytes::get_le<std::uint64_t>(p + 24);
    std::memcpy(head.checkpoint_hash.data(), p + 32, 32);
    head.realtime_usec = bytes::get_le<std::uint64_t>(p + 64);
    std::memcpy(head.key_id.data(), p + 72, head.key_id.size());
    if (head.segment == 0 || head.seq == 0) {
        return result;
    }
    const auto message = head_message(p);
    if (crypto_sign_verify_detached(p + kHeadSignedBytes, message.data(), message.size(), key.data()) != 0) {
        result.status = head.key_id == key_id_of(key) ? HeadStatus::BadSignature : HeadStatus::WrongKey;
        return result;
    }
    result.status = HeadStatus::Ok;
    result.head = head;
    return result;
}

std::string format_public_key(const PublicKey& key)
{
    return std::string(kPublicKeyFilePrefix) + to_hex(key) + "\n";
}

std::optional<PublicKey> parse_public_key(std::string_view file_text)
{
    const auto is_space = [](char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
    };
    while (!file_text.empty() && is_space(file_text.front())) {
        file_text.remove_prefix(1);
    }
    while (!file_text.empty() && is_space(file_text.back())) {
        file_text.remove_suffix(1);
    }
    if (file_text.substr(0, kPublicKeyFilePrefix.size()) != kPublicKeyFilePrefix) {
        return std::nullopt;
    }
    file_text.remove_prefix(kPublicKeyFilePrefix.size());
    const auto bytes = from_hex(file_text);
    if (!bytes || bytes->size() != sizeof(PublicKey)) {
        return std::nullopt;
    }
    PublicKey key;
    std::memcpy(key.data(), bytes->data(), key.size());
    return key;
}

}  // namespace codexvault::audit
