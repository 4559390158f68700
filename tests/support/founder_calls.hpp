// Raw founder-method calls for tests: the real client library, with proofs the test controls
// (replayed, expired, signed by the wrong key, presented by the wrong uid).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/founder_key.hpp"
#include "cli/vault_client.hpp"
#include "common/founder_proof.hpp"

namespace codexvault::test {

// Methods covered by denial tests. Every method the daemon introspects must be listed here:
// public ones are open to any identified caller, the others must deny a caller who may not.
struct CoveredMethod {
    const char* name;
    bool is_public;
};
inline const std::vector<CoveredMethod> kMethodCoverage = {
    {"Status", true},         {"WhoAmI", true},         {"GetNonce", false},     {"Enroll", false},
    {"PutSecret", false},     {"RotateSecret", false},  {"DeleteSecret", false}, {"ListSecrets", false},
    {"ReloadPolicy", false},  {"Check", true},          {"Use", false},          {"Explain", false},
    {"IssueGrant", false},    {"ListGrants", false},    {"RevokeGrant", false},  {"RevokeAllGrants", false},
    {"ListApprovals", false}, {"Approve", false},       {"Deny", false},         {"Lock", false},
    {"Unlock", false},        {"Incident", false},      {"AuditTail", false},    {"AuditPublicKey", true},
    {"Request", false},       {"RequestOutcome", true},
};

// The arguments a proof for `method` covers, for the fixed test object.
std::vector<std::string> signed_arguments(const std::string& method, const std::array<std::uint8_t, 32>& enroll_key,
                                          const std::string& secret_name);

FounderProof make_proof(cli::VaultClient& client, const cli::FounderKeyPair& key, const std::string& method,
                        const std::vector<std::string>& arguments, std::int64_t expires_in_usec = 30'000'000);

// Sends `method` with `proof`; for PutSecret/RotateSecret `value_fd` (or, when -1, a fresh pipe
// holding "value" sealed to the daemon's transport key, as vaultctl sends it). Throws
// cli::CallError on an error reply.
void call_method(cli::VaultClient& client, const std::string& method, const std::optional<FounderProof>& proof,
                 const std::array<std::uint8_t, 32>& enroll_key, const std::string& secret_name, int value_fd = -1);

// A freshly generated key pair the daemon has never seen (for Enroll and wrong-key proofs).
cli::FounderKeyPair stranger_key();

// A pipe whose write end is closed after writing `value` (as it is: the daemon refuses it as a
// secret value, which must be sealed).
int pipe_holding(const std::string& value);
// A pipe whose write end is closed after writing `value` sealed to `transport_key` (what vaultctl
// sends; cli::VaultClient::transport_key() gives the daemon's).
int sealed_pipe_holding(const cli::TransportPublicKey& transport_key, const std::string& value);

std::string hex(const std::array<std::uint8_t, 32>& bytes);

}  // namespace codexvault::test
