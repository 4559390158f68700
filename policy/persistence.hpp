// JSON encoding of the runtime state the daemon persists (and reloads at start-up): runtime
// grants with their uses and rate state, the state of policy grants by name, every revocation
// (so a revoked grant stays revoked after a restart), and approvals. The daemon writes the
// text with its atomic state-file routine; this library only converts.
//
// Decoding is strict: any malformed, out-of-range or inconsistent field rejects the whole text
// (nothing partial), and the error says which entry and field. Never throws for bad input.
#pragma once

#include <string>
#include <string_view>

#include "policy/approvals.hpp"
#include "policy/grant_table.hpp"
#include "policy/result.hpp"

namespace codexvault::policy {

inline constexpr std::string_view kStateFormat = "codex-vault-policy-state";
inline constexpr int kStateVersion = 1;

struct RuntimeState {
    GrantTable grants;
    ApprovalBook approvals;
};

std::string encode_state(const GrantTable& grants, const ApprovalBook& approvals);

// `options` configures the returned ApprovalBook (they are configuration, not state).
Result<RuntimeState> decode_state(std::string_view json, const ApprovalOptions& options = {});

}  // namespace codexvault::policy
