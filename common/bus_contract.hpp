// The names both sides of the bus agree on. Changing any of these breaks deployed clients.
#pragma once

#include <cstddef>
#include <cstdint>

namespace codexvault::bus {

inline constexpr const char* kBusName = "org.codexvault.Vault1";
inline constexpr const char* kObjectPath = "/org/codexvault/Vault1";
inline constexpr const char* kInterface = "org.codexvault.Vault1";
inline constexpr const char* kBusAddressEnv = "CODEX_VAULT_BUS";

namespace method {
inline constexpr const char* kStatus = "Status";
inline constexpr const char* kWhoAmI = "WhoAmI";
inline constexpr const char* kGetNonce = "GetNonce";
inline constexpr const char* kEnroll = "Enroll";
inline constexpr const char* kPutSecret = "PutSecret";
inline constexpr const char* kRotateSecret = "RotateSecret";
inline constexpr const char* kDeleteSecret = "DeleteSecret";
inline constexpr const char* kListSecrets = "ListSecrets";
inline constexpr const char* kReloadPolicy = "ReloadPolicy";
}  // namespace method

// D-Bus signature of the founder proof that every founder-signed method takes last:
// (nonce issued by GetNonce, expiry in CLOCK_REALTIME microseconds, Ed25519 signature).
inline constexpr const char* kFounderProofSignature = "(aytay)";

}  // namespace codexvault::bus
