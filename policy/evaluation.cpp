#include "policy/evaluation.hpp"

#include <algorithm>

#include "policy/rate.hpp"

namespace codexvault::policy::detail {

int rank(Status status) noexcept
{
    switch (status) {
    case Status::PrincipalMismatch:
        return 0;
    case Status::ExeUnknown:
        return 1;
    case Status::NeedsApproval:
        return 3;
    case Status::Usable:
        return 4;
    default:
        return 2;
    }
}

GrantRef policy_grant_ref(const GrantDefinition& definition, const GrantTable& table) noexcept
{
    GrantRef ref;
    ref.definition = &definition;
    ref.revoked = table.is_policy_grant_revoked(definition.id);
    if (definition.max_uses || definition.rate || definition.approval == ApprovalMode::Once) {
        ref.usage = table.policy_grant_usage(definition.id);
    }
    return ref;
}

GrantRef runtime_grant_ref(const GrantTable& table, std::uint32_t slot) noexcept
{
    const RuntimeGrant& grant = table.at(slot);
    GrantRef ref;
    ref.definition = &grant.definition;
    ref.usage = &grant.usage;
    ref.revoked = grant.revoked_at_usec.has_value();
    ref.runtime = true;
    ref.slot = slot;
    return ref;
}

Status classify(const GrantRef& grant, const SubjectView& subject, const RequestFacts& request,
                std::uint64_t now_usec) noexcept
{
    const GrantDefinition& d = *grant.definition;
    const MatchResult matched = match(d.principal, subject);
    if (matched.status == MatchStatus::Mismatch) {
        return Status::PrincipalMismatch;
    }
    if (matched.status == MatchStatus::ExeUnknown) {
        return Status::ExeUnknown;
    }
    if (grant.revoked) {
        return Status::Revoked;
    }
    if (d.expires_at_usec && now_usec >= *d.expires_at_usec) {
        return Status::Expired;
    }
    if (d.max_uses && grant.usage != nullptr && grant.usage->uses >= *d.max_uses) {
        return Status::UsedUp;
    }
    if (request.is_provider && !d.admits_request(request.method, request.path_only)) {
        return Status::RequestNotAllowed;
    }
    if (d.rate && !rate_allows(*d.rate, grant.usage != nullptr ? grant.usage->rate_tat_usec : 0, now_usec)) {
        return Status::RateLimited;
    }
    switch (d.approval) {
    case ApprovalMode::None:
        return Status::Usable;
    case ApprovalMode::Once:
        if (grant.usage != nullptr &&
            std::any_of(grant.usage->once_approved.begin(), grant.usage->once_approved.end(),
                        [&subject](const InstanceKey& key) { return key.matches(subject); })) {
            return Status::Usable;
        }
        return Status::NeedsApproval;
    case ApprovalMode::Each:
        return Status::NeedsApproval;
    }
    return Status::NeedsApproval;
}

}  // namespace codexvault::policy::detail
