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
    const RuntimeGrant& grant = table.at(slot);  // addresses only: nothing of the grant is read
    GrantRef ref;
    ref.definition = &grant.definition;
    ref.usage = &grant.usage;
    ref.revoked = table.is_revoked(slot);
    ref.runtime = true;
    ref.slot = slot;
    return ref;
}

GrantId grant_id_of(const GrantRef& grant) noexcept
{
    if (grant.entry != nullptr && grant.entry->has(GrantTrait::RuntimeId)) {
        return grant.facts->runtime_grant_id();
    }
    return GrantId(grant.definition->id);
}

bool has_rate(const GrantRef& grant) noexcept
{
    return grant.entry != nullptr ? grant.entry->has(GrantTrait::Rate) : grant.definition->rate.has_value();
}

Status classify(const GrantRef& grant, const SubjectView& subject, const RequestFacts& request,
                std::uint64_t now_usec) noexcept
{
    return classify_matched(grant, match(grant.definition->principal, subject).status, subject, request, now_usec);
}

Status classify_matched(const GrantRef& grant, MatchStatus matched, const SubjectView& subject,
                        const RequestFacts& request, std::uint64_t now_usec) noexcept
{
    if (matched == MatchStatus::Mismatch) {
        return Status::PrincipalMismatch;
    }
    if (matched == MatchStatus::ExeUnknown) {
        return Status::ExeUnknown;
    }
    if (grant.revoked) {
        return Status::Revoked;
    }
    if (const IndexEntry* e = grant.entry; e != nullptr) {
        // A plain grant is decided by its entry: the same checks, in the same order, as below.
        const bool plain = !e->has(GrantTrait::MaxUses) && !e->has(GrantTrait::Rate) &&
                           !e->has(GrantTrait::ApprovalOnce) && !(request.is_provider && e->has(GrantTrait::Requests));
        if (plain) {
            if (e->has(GrantTrait::Expires) && now_usec >= grant.facts->expires_at_usec) {
                return Status::Expired;
            }
            return e->has(GrantTrait::ApprovalEach) ? Status::NeedsApproval : Status::Usable;
        }
    }
    const GrantDefinition& d = *grant.definition;
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
