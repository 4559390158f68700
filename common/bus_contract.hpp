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
inline constexpr const char* kCheck = "Check";
inline constexpr const char* kUse = "Use";
inline constexpr const char* kExplain = "Explain";
inline constexpr const char* kIssueGrant = "IssueGrant";
inline constexpr const char* kListGrants = "ListGrants";
inline constexpr const char* kRevokeGrant = "RevokeGrant";
inline constexpr const char* kRevokeAllGrants = "RevokeAllGrants";
inline constexpr const char* kListApprovals = "ListApprovals";
inline constexpr const char* kApprove = "Approve";
inline constexpr const char* kDeny = "Deny";
inline constexpr const char* kLock = "Lock";
inline constexpr const char* kUnlock = "Unlock";
inline constexpr const char* kIncident = "Incident";
inline constexpr const char* kAuditTail = "AuditTail";
inline constexpr const char* kAuditPublicKey = "AuditPublicKey";
inline constexpr const char* kIngest = "Ingest";
}  // namespace method

namespace signal {
// (approval id, capability, expiry in CLOCK_REALTIME microseconds). Deliberately no subject or
// request details: anyone on the bus can receive it; the founder reads those with ListApprovals.
inline constexpr const char* kApprovalRequested = "ApprovalRequested";
inline constexpr const char* kApprovalRequestedSignature = "sst";
// (reason): the vault locked itself or was locked (Lock, Incident, an integrity failure).
inline constexpr const char* kLocked = "Locked";
inline constexpr const char* kLockedSignature = "s";
}  // namespace signal

// D-Bus signature of the founder proof that every founder-signed method takes last:
// (nonce issued by GetNonce, expiry in CLOCK_REALTIME microseconds, Ed25519 signature).
inline constexpr const char* kFounderProofSignature = "(aytay)";

}  // namespace codexvault::bus
