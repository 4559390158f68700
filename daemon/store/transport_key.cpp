#include "daemon/store/transport_key.hpp"

#include <sodium.h>

#include <stdexcept>
#include <utility>

namespace codexvault::store {

static_assert(kTransportSeedBytes == crypto_box_SEEDBYTES);
static_assert(kTransportPublicKeyBytes == crypto_box_PUBLICKEYBYTES);
static_assert(kSealOverheadBytes == crypto_box_SEALBYTES);

TransportKey TransportKey::derive(const Keyring& keyring)
{
    const SecureBuffer seed = keyring.derive(kTransportKeySubkeyId, kTransportKeyContext, kTransportSeedBytes);
    return from_seed(seed.span());
}

TransportKey TransportKey::from_seed(std::span<const std::uint8_t> seed)
{
    if (seed.size() != crypto_box_SEEDBYTES) {
        throw std::invalid_argument("transport key seed must be 32 bytes");
    }
    ensure_sodium_initialized();
    PublicKey public_key{};
    SecureBuffer secret = SecureBuffer::allocate(crypto_box_SECRETKEYBYTES);
    if (crypto_box_seed_keypair(public_key.data(), secret.data(), seed.data()) != 0) {
        throw std::runtime_error("crypto_box_seed_keypair failed");
    }
    return TransportKey(public_key, std::move(secret));
}

std::optional<SecureBuffer> TransportKey::open(std::span<const std::uint8_t> sealed) const
{
    if (sealed.size() <= crypto_box_SEALBYTES) {
        return std::nullopt;  // nothing inside (or not a box at all)
    }
    SecureBuffer plaintext = SecureBuffer::allocate_guarded(sealed.size() - crypto_box_SEALBYTES);
    if (crypto_box_seal_open(plaintext.data(), sealed.data(), sealed.size(), public_.data(), secret_.data()) != 0) {
        return std::nullopt;
    }
    return plaintext;
}

}  // namespace codexvault::store
