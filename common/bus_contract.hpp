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
inline constexpr const char* kRequest = "Request";
inline constexpr const char* kRequestOutcome = "RequestOutcome";
inline constexpr const char* kInject = "Inject";
inline constexpr const char* kIngest = "Ingest";
}  // namespace method

// Provider mediation (docs/bus-api.md, Request and RequestOutcome).
//   Request(s provider, s method, s path_and_query, a(ss) headers, ah body)
//       -> (t request_id, q status, a(ss) response_headers, h stream)
//   RequestOutcome(t request_id) -> (s end, s reason, t bytes_delivered, t redactions)
// A caller reads `stream` to EOF, then asks RequestOutcome: only kEndComplete means the body it
// read is the whole response.
namespace request {
inline constexpr const char* kRequestInSignature = "sssa(ss)ah";
inline constexpr const char* kRequestOutSignature = "tqa(ss)h";
inline constexpr const char* kOutcomeInSignature = "t";
inline constexpr const char* kOutcomeOutSignature = "sstt";
inline constexpr const char* kEndComplete = "complete";
inline constexpr const char* kEndTruncated = "truncated";
inline constexpr const char* kEndPending = "pending";
// A request header the daemon takes (and never sends upstream) to present an approval id when a
// request is retried after ApprovalRequired: "Codex-Vault-Approval: a-0123...".
inline constexpr const char* kApprovalHeader = "Codex-Vault-Approval";
// Outcomes kept per bus connection (the oldest is dropped first; all dropped when it goes).
inline constexpr std::size_t kMaxOutcomesPerConnection = 256;
}  // namespace request

namespace signal {
// (approval id, capability, expiry in CLOCK_REALTIME microseconds). Deliberately no subject or
// request details: anyone on the bus can receive it; the founder reads those with ListApprovals.
inline constexpr const char* kApprovalRequested = "ApprovalRequested";
inline constexpr const char* kApprovalRequestedSignature = "sst";
// (reason): the vault locked itself or was locked (Lock, Incident, an integrity failure).
inline constexpr const char* kLocked = "Locked";
inline constexpr const char* kLockedSignature = "s";
// (injection id, grant id, what happened: "read", "mmap", "ptrace", "proc_open", ...): an
// unmarked process touched an injected secret or approached a process holding it. Ids only:
// anyone on the bus can receive it; the founder reads the rest with `vaultctl audit`.
inline constexpr const char* kInjectionAlert = "InjectionAlert";
inline constexpr const char* kInjectionAlertSignature = "sss";
// (request id, end, reason, bytes delivered, redactions): how a Request's stream ended, the
// fields of RequestOutcome. Unicast: sent only to the connection that made the Request, before
// its stream reaches EOF, so a caller learns the end without a RequestOutcome round trip.
inline constexpr const char* kRequestEnded = "RequestEnded";
inline constexpr const char* kRequestEndedSignature = "tsstt";
}  // namespace signal

// D-Bus signature of the founder proof that every founder-signed method takes last:
// (nonce issued by GetNonce, expiry in CLOCK_REALTIME microseconds, Ed25519 signature).
inline constexpr const char* kFounderProofSignature = "(aytay)";

}  // namespace codexvault::bus
