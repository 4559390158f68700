// Between the daemon and the pure policy engine: the subject as the engine sees it, and the
// engine's decisions as the bus reports them to callers.
#pragma once

#include <string>

#include "common/vault_error.hpp"
#include "daemon/identity/subject.hpp"
#include "policy/capability.hpp"
#include "policy/engine.hpp"

namespace codexvault::daemon {

// A view over `subject`, which must outlive it. The exe (and its digest) only when the daemon
// could read them: unknown exe conditions fail closed in the engine.
policy::SubjectView subject_view(const identity::Subject& subject) noexcept;

// The decision a caller may see about itself. Whether grants exist for other principals is not
// the caller's business: "no grant" and "grant for someone else" read the same, and the id of a
// grant that did not match the caller is withheld.
policy::Decision caller_decision(const policy::Decision& decision) noexcept;

// The bus error for a denial or a pending approval.
ErrorCode error_for(const policy::Decision& decision) noexcept;
// "denied: <reason>" or "approval a-... required: ask the founder (vaultctl approve a-...)".
// The first "a-<16 hex>" in the message is the approval id, so clients can take it from there.
std::string caller_message(const policy::Decision& decision);

// Parses a capability argument; InvalidArgument naming the grammar otherwise.
policy::Capability capability_argument(const std::string& text);

}  // namespace codexvault::daemon
