// A deterministic audit signing key for the audit tests (never a real key).
#pragma once

#include <array>
#include <cstdint>

#include "lib/auditcore/checkpoint.hpp"

namespace codexvault::audit::test {

struct TestKey {
    std::array<std::uint8_t, kAuditSecretKeyBytes> secret{};
    PublicKey pub{};

    explicit TestKey(std::uint8_t seed_byte)
    {
        std::array<std::uint8_t, kAuditSeedBytes> seed{};
        seed.fill(seed_byte);
        derive_audit_keypair(seed, pub, secret);
    }
    [[nodiscard]] CheckpointSigner signer() const { return CheckpointSigner(secret); }
};

}  // namespace codexvault::audit::test
