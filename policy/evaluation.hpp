// Internal to the engine (engine.cpp, explain.cpp): one grant seen from one request.
#pragma once

#include <cstdint>
#include <string_view>

#include "policy/grant.hpp"
#include "policy/grant_index.hpp"
#include "policy/grant_table.hpp"
#include "policy/policy_set.hpp"
#include "policy/principal.hpp"
#include "policy/request_pattern.hpp"

namespace codexvault::policy::detail {

// Ordered from "does not apply at all" to "usable": a higher rank is a more specific answer.
enum class Status : std::uint8_t {
    PrincipalMismatch,
    ExeUnknown,
    Revoked,
    Expired,
    UsedUp,
    RequestNotAllowed,
    RateLimited,
    NeedsApproval,
    Usable,
};
int rank(Status status) noexcept;

// Building a ref reads nothing of the grant's definition or usage (only their addresses): the
// evaluation dereferences them only when the index entry cannot answer on its own.
struct GrantRef {
    const GrantDefinition* definition = nullptr;
    const GrantUsage* usage = nullptr;  // nullptr: never used
    const IndexEntry* entry = nullptr;  // the grant's index entry, when found through the index,
    const GrantFacts* facts = nullptr;  // and the index's facts for it (set together)
    bool revoked = false;
    bool runtime = false;
    std::uint32_t slot = 0;  // runtime grants: slot in the table
};

// The grant's id, from its index entry when that holds it (no need to touch the definition).
GrantId grant_id_of(const GrantRef& grant) noexcept;
// Whether the grant has a rate limit (from the entry when there is one).
bool has_rate(const GrantRef& grant) noexcept;

struct RequestFacts {
    bool is_provider = false;
    HttpMethod method = HttpMethod::Get;
    std::string_view path_only;
};

GrantRef policy_grant_ref(const GrantDefinition& definition, const GrantTable& table) noexcept;
GrantRef runtime_grant_ref(const GrantTable& table, std::uint32_t slot) noexcept;

Status classify(const GrantRef& grant, const SubjectView& subject, const RequestFacts& request,
                std::uint64_t now_usec) noexcept;
// classify() once the principal has been matched (`matched` is what match() says of the
// grant's principal and the subject).
Status classify_matched(const GrantRef& grant, MatchStatus matched, const SubjectView& subject,
                        const RequestFacts& request, std::uint64_t now_usec) noexcept;

}  // namespace codexvault::policy::detail
