// The daemon's transport key: an X25519 key pair derived from the master key. vaultctl seals
// each secret value to its public half (libsodium crypto_box_seal) before the value enters the
// pipe it hands over, so whoever can read that pipe in transit (a root bus monitor with tee(2))
// sees ciphertext only. The public half is shown by Status (`transport_key`) and pinned by
// vaultctl at `init`, next to the founder key.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "daemon/store/keyring.hpp"
#include "daemon/store/secure_buffer.hpp"

namespace codexvault::store {

inline constexpr std::uint64_t kTransportKeySubkeyId = 6;
inline constexpr char kTransportKeyContext[9] = "CVtrnsp0";
inline constexpr std::size_t kTransportSeedBytes = 32;       // crypto_box_SEEDBYTES
inline constexpr std::size_t kTransportPublicKeyBytes = 32;  // crypto_box_PUBLICKEYBYTES
inline constexpr std::size_t kSealOverheadBytes = 48;        // crypto_box_SEALBYTES

class TransportKey {
public:
    using PublicKey = std::array<std::uint8_t, kTransportPublicKeyBytes>;

    // The vault's key pair: the same for every start with the same master key, so a pin made at
    // `init` holds until the master key changes.
    static TransportKey derive(const Keyring& keyring);
    // The key pair of a 32-byte seed (derive() uses the Keyring sub-key as the seed).
    static TransportKey from_seed(std::span<const std::uint8_t> seed);

    [[nodiscard]] const PublicKey& public_key() const noexcept { return public_; }

    // Opens a box sealed to this key into guarded secure memory. nullopt when `sealed` is not
    // one: too short, sealed to another key, altered, or a value sent in the clear.
    [[nodiscard]] std::optional<SecureBuffer> open(std::span<const std::uint8_t> sealed) const;

private:
    TransportKey(const PublicKey& public_key, SecureBuffer secret) : public_(public_key), secret_(std::move(secret)) {}

    PublicKey public_;
    SecureBuffer secret_;  // crypto_box_SECRETKEYBYTES, in the Keyring's kind of memory
};

}  // namespace codexvault::store
