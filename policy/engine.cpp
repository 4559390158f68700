#include "policy/engine.hpp"

#include <algorithm>
#include <array>

#include "policy/evaluation.hpp"
#include "policy/policy_limits.hpp"
#include "policy/rate.hpp"

namespace codexvault::policy {

using detail::classify;
using detail::GrantRef;
using detail::RequestFacts;
using detail::Status;

namespace {

struct ReasonText {
    Reason reason;
    std::string_view text;
};

constexpr std::array<ReasonText, 23> kReasons{{
    {Reason::Allowed, "allowed by grant"},
    {Reason::AllowedWithApproval, "allowed by grant with the founder's approval"},
    {Reason::PolicyNotLoaded, "no valid policy is loaded; grant-based use is denied"},
    {Reason::ProviderNotDefined, "provider not defined"},
    {Reason::InvalidRequest, "malformed request (method, path, body digest or target)"},
    {Reason::RequestNotAllowed, "request not allowed for this provider or grant"},
    {Reason::NoGrant, "no grant for this capability"},
    {Reason::PrincipalMismatch, "no grant for this capability matches the caller"},
    {Reason::ExeUnknown, "exe unknown"},
    {Reason::GrantRevoked, "grant revoked"},
    {Reason::GrantExpired, "grant expired"},
    {Reason::GrantUsedUp, "grant used up (max_uses reached)"},
    {Reason::RateLimited, "rate limit exceeded"},
    {Reason::ApprovalRequired, "approval required"},
    {Reason::ApprovalPending, "approval pending; retry with the approval id once it is approved"},
    {Reason::ApprovalUnknown, "unknown approval"},
    {Reason::ApprovalDenied, "approval denied"},
    {Reason::ApprovalUsed, "approval already used"},
    {Reason::ApprovalExpired, "approval expired"},
    {Reason::ApprovalOtherSubject, "approval belongs to another process"},
    {Reason::ApprovalOtherRequest, "approval is for a different request"},
    {Reason::ApprovalOtherGrant, "approval is for a different grant"},
    {Reason::ApprovalUnavailable, "too many approvals outstanding"},
}};

Reason reason_of(Status status) noexcept
{
    switch (status) {
    case Status::PrincipalMismatch:
        return Reason::PrincipalMismatch;
    case Status::ExeUnknown:
        return Reason::ExeUnknown;
    case Status::Revoked:
        return Reason::GrantRevoked;
    case Status::Expired:
        return Reason::GrantExpired;
    case Status::UsedUp:
        return Reason::GrantUsedUp;
    case Status::RequestNotAllowed:
        return Reason::RequestNotAllowed;
    case Status::RateLimited:
        return Reason::RateLimited;
    case Status::NeedsApproval:
        return Reason::ApprovalRequired;
    case Status::Usable:
        return Reason::Allowed;
    }
    return Reason::NoGrant;
}

// The best candidate of one kind seen so far.
struct Best {
    GrantRef ref;
    Status status = Status::PrincipalMismatch;
    bool set = false;

    // Higher rank wins; within a rank, the earlier grant.
    void offer(const GrantRef& candidate, Status candidate_status) noexcept
    {
        const int r = detail::rank(candidate_status);
        if (!set || r > detail::rank(status) ||
            (r == detail::rank(status) && candidate.definition->sequence < ref.definition->sequence)) {
            ref = candidate;
            status = candidate_status;
            set = true;
        }
    }
};

}  // namespace

std::string_view verdict_name(Verdict verdict) noexcept
{
    switch (verdict) {
    case Verdict::Allow:
        return "allow";
    case Verdict::Deny:
        return "deny";
    case Verdict::ApprovalRequired:
        return "approval-required";
    }
    return "deny";
}

std::string_view describe(Reason reason) noexcept
{
    return kReasons[static_cast<std::size_t>(reason)].text;
}

std::string Explanation::text() const
{
    std::string out;
    for (const auto& line : lines) {
        out += line;
        out.push_back('\n');
    }
    return out;
}

struct Engine::Plan {
    Decision decision;
    GrantRef grant;  // the grant to record a use of (Allow)
    bool use_grant = false;
    bool consume_approval = false;
    bool record_once = false;
    bool create_approval = false;
    std::string request;  // canonical request, when an approval is created
};

Engine::Engine(EngineOptions options) : approvals_(options.approvals)
{
}

Engine::Plan Engine::decide(const SubjectView& subject, const Capability& capability, const RequestContext& request,
                            std::uint64_t now_usec, bool use) const
{
    Plan plan;
    auto deny = [&plan](Reason reason, const GrantRef* closest = nullptr) {
        plan.decision.verdict = Verdict::Deny;
        plan.decision.reason = reason;
        if (closest != nullptr && closest->definition != nullptr) {
            plan.decision.grant_id = detail::grant_id_of(*closest);
        }
    };
    if (!policy_) {
        deny(Reason::PolicyNotLoaded);
        return plan;
    }
    const PolicySet& policy = *policy_;

    RequestFacts facts;
    if (capability.kind == CapabilityKind::ProviderRequest) {
        const Provider* provider = policy.find_provider(capability.name);
        if (provider == nullptr) {
            deny(Reason::ProviderNotDefined);
            return plan;
        }
        const auto method = parse_method(request.method);
        const auto path = clean_request_path(request.path);
        if (!method || !path || request.body_digest.size() > limits::kMaxBodyDigestLength) {
            deny(Reason::InvalidRequest);
            return plan;
        }
        if (!provider->allows(*method, *path)) {
            deny(Reason::RequestNotAllowed);
            return plan;
        }
        facts = RequestFacts{true, *method, *path};
    } else if (capability.kind == CapabilityKind::SecretInject) {
        if (request.target.size() > limits::kMaxInjectTargetLength) {
            deny(Reason::InvalidRequest);
            return plan;
        }
    }

    // A presented approval names its grant; remember how that grant fares.
    const Approval* presented = nullptr;
    if (request.approval_id) {
        presented = approvals_.find(*request.approval_id);
    }
    Best usable;
    Best needs_approval;
    Best other;
    GrantRef presented_grant;
    Status presented_status = Status::PrincipalMismatch;

    auto offer = [&](const GrantRef& ref, Status status) {
        if (status == Status::Usable) {
            usable.offer(ref, status);
        } else if (status == Status::NeedsApproval) {
            needs_approval.offer(ref, status);
        } else {
            other.offer(ref, status);
        }
    };
    // Each index entry matches the principal exactly (SubjectMatcher gives what match() would);
    // a grant whose principal does not match is not looked at further, which decides the same
    // as offering it as a PrincipalMismatch (that rank never names a grant). A presented
    // approval needs its grant found, so then every candidate is classified.
    SubjectKeys keys(subject);
    auto visit_all = [&](const GrantIndex& index, const GrantIndex::Hits& found, auto&& ref_of) {
        if (found.empty()) {
            return;
        }
        SubjectMatcher matcher(index, keys);
        for (const auto hits : {found.by_uid, found.any_uid}) {
            for (const IndexEntry& entry : hits) {
                if (presented != nullptr) {
                    GrantRef ref = ref_of(entry.slot);
                    ref.entry = &entry;
                    ref.facts = &index.facts(entry.slot);
                    const Status status = classify(ref, subject, facts, now_usec);
                    offer(ref, status);
                    if (presented->grant_id == ref.definition->id) {
                        presented_grant = ref;
                        presented_status = status;
                    }
                    continue;
                }
                const MatchStatus matched = matcher.match(entry);
                if (matched == MatchStatus::Mismatch) {
                    continue;
                }
                GrantRef ref = ref_of(entry.slot);
                ref.entry = &entry;
                ref.facts = &index.facts(entry.slot);
                const Status status = detail::classify_matched(ref, matched, subject, facts, now_usec);
                if (use && status == Status::Usable && ref.usage != nullptr) {
                    // commit() will record the use: start fetching the grant's usage now (a
                    // hint only; it changes nothing).
                    __builtin_prefetch(ref.usage, 1);
                }
                offer(ref, status);
            }
        }
    };
    const auto policy_hits = policy.index().find(capability.kind, capability.name, subject.uid);
    visit_all(policy.index(), policy_hits,
              [&](std::uint32_t slot) { return detail::policy_grant_ref(policy.grants()[slot], grants_); });
    const auto runtime_hits = grants_.index().find(capability.kind, capability.name, subject.uid);
    visit_all(grants_.index(), runtime_hits,
              [&](std::uint32_t slot) { return detail::runtime_grant_ref(grants_, slot); });

    if (usable.set) {
        plan.decision.verdict = Verdict::Allow;
        plan.decision.reason = Reason::Allowed;
        plan.decision.grant_id = detail::grant_id_of(usable.ref);
        plan.grant = usable.ref;
        plan.use_grant = true;
        return plan;
    }

    if (request.approval_id) {
        if (presented == nullptr) {
            deny(Reason::ApprovalUnknown, needs_approval.set ? &needs_approval.ref : nullptr);
            return plan;
        }
        plan.decision.approval_id = presented->id;
        if (!presented->subject.matches(subject)) {
            deny(Reason::ApprovalOtherSubject);
            return plan;
        }
        if (presented_grant.definition == nullptr) {
            // Not a candidate: the grant is gone, names another capability, or (through the uid
            // index) is for a principal with another uid.
            const GrantDefinition* named = policy.find_grant(presented->grant_id);
            if (named == nullptr) {
                const RuntimeGrant* runtime = grants_.find(presented->grant_id);
                named = runtime != nullptr ? &runtime->definition : nullptr;
            }
            if (named == nullptr) {
                deny(Reason::ApprovalOtherGrant);
                return plan;
            }
            if (named->capability != capability) {
                deny(Reason::ApprovalOtherRequest);
                return plan;
            }
            deny(Reason::PrincipalMismatch);
            return plan;
        }
        if (presented_status != Status::NeedsApproval) {
            // The approval's grant is no longer usable (revoked, expired, used up, rate limited...).
            deny(reason_of(presented_status), &presented_grant);
            return plan;
        }
        if (presented->capability != capability || presented->request != canonical_request(capability, request)) {
            deny(Reason::ApprovalOtherRequest, &presented_grant);
            return plan;
        }
        switch (presented->state) {
        case ApprovalState::Denied:
            deny(Reason::ApprovalDenied, &presented_grant);
            return plan;
        case ApprovalState::Consumed:
            deny(Reason::ApprovalUsed, &presented_grant);
            return plan;
        case ApprovalState::Pending:
        case ApprovalState::Approved:
            break;
        }
        if (presented->expired(now_usec)) {
            deny(Reason::ApprovalExpired, &presented_grant);
            return plan;
        }
        plan.decision.grant_id = detail::grant_id_of(presented_grant);
        if (presented->state == ApprovalState::Pending) {
            plan.decision.verdict = Verdict::ApprovalRequired;
            plan.decision.reason = Reason::ApprovalPending;
            return plan;
        }
        plan.decision.verdict = Verdict::Allow;
        plan.decision.reason = Reason::AllowedWithApproval;
        plan.grant = presented_grant;
        plan.use_grant = true;
        plan.consume_approval = true;
        plan.record_once = presented_grant.definition->approval == ApprovalMode::Once;
        return plan;
    }

    if (needs_approval.set) {
        plan.decision.verdict = Verdict::ApprovalRequired;
        plan.decision.grant_id = detail::grant_id_of(needs_approval.ref);
        plan.request = canonical_request(capability, request);
        if (const Approval* existing =
                approvals_.find_outstanding(needs_approval.ref.definition->id, subject, plan.request, now_usec)) {
            plan.decision.reason = Reason::ApprovalPending;
            plan.decision.approval_id = existing->id;
            return plan;
        }
        plan.decision.reason = Reason::ApprovalRequired;
        plan.grant = needs_approval.ref;
        plan.create_approval = true;
        return plan;
    }

    if (other.set) {
        const bool specific = detail::rank(other.status) >= 2;
        deny(reason_of(other.status), specific ? &other.ref : nullptr);
        return plan;
    }
    // Grants for the capability exist, but only for principals with other uids.
    if (policy_hits.capability_known || runtime_hits.capability_known) {
        deny(Reason::PrincipalMismatch);
        return plan;
    }
    deny(Reason::NoGrant);
    return plan;
}

void Engine::commit(Plan& plan, const SubjectView& subject, const Capability& capability, const RequestContext& request,
                    std::uint64_t now_usec, const IdSeed& approval_seed)
{
    if (plan.create_approval) {
        auto created = approvals_.create(plan.grant.definition->id, capability, subject, std::move(plan.request),
                                         describe_request(capability, request), approval_seed, now_usec);
        if (!created) {
            plan.decision.verdict = Verdict::Deny;
            plan.decision.reason = Reason::ApprovalUnavailable;
            return;
        }
        plan.decision.approval_id = created.value();
        return;
    }
    if (!plan.use_grant) {
        return;
    }
    const GrantDefinition& d = *plan.grant.definition;  // read only for a rate or approval=once
    GrantUsage& usage =
        plan.grant.runtime ? grants_.usage_for_update(plan.grant.slot) : grants_.policy_grant_usage_for_update(d.id);
    if (plan.consume_approval) {
        // decide() checked the approval is approved, unexpired and bound to this request.
        approvals_.consume(plan.decision.approval_id.view(), now_usec);
    }
    usage.uses = usage.uses == UINT64_MAX ? usage.uses : usage.uses + 1;
    usage.last_used_usec = now_usec;
    if (detail::has_rate(plan.grant)) {
        usage.rate_tat_usec = rate_after_use(*d.rate, usage.rate_tat_usec, now_usec);
    }
    if (plan.record_once) {
        InstanceKey key = InstanceKey::of(subject);
        auto& keys = usage.once_approved;
        if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
            if (keys.size() >= limits::kMaxOnceInstancesPerGrant) {
                keys.erase(keys.begin());
            }
            keys.push_back(std::move(key));
        }
    }
}

Decision Engine::evaluate(const SubjectView& subject, const Capability& capability, const RequestContext& request,
                          std::uint64_t now_usec, Mode mode, const IdSeed& approval_seed)
{
    Plan plan = decide(subject, capability, request, now_usec, mode == Mode::Use);
    if (mode == Mode::Use) {
        commit(plan, subject, capability, request, now_usec, approval_seed);
    }
    return plan.decision;
}

Decision Engine::check(const SubjectView& subject, const Capability& capability, const RequestContext& request,
                       std::uint64_t now_usec) const
{
    return decide(subject, capability, request, now_usec).decision;
}

std::vector<GrantInfo> Engine::grants_for(const SubjectView& subject, std::uint64_t now_usec) const
{
    std::vector<GrantInfo> out;
    if (!policy_) {
        return out;
    }
    for (auto& info : grants_.list(policy_.get(), now_usec)) {
        if (info.state == GrantState::Active &&
            match(info.definition.principal, subject).status == MatchStatus::Match) {
            out.push_back(std::move(info));
        }
    }
    return out;
}

Result<GrantId> Engine::issue(const GrantRequest& request, const IdSeed& seed, std::uint64_t now_usec)
{
    if (!policy_) {
        return make_error("no valid policy is loaded; grants cannot be issued until it is fixed");
    }
    return grants_.issue(*policy_, request, seed, now_usec);
}

RevokeResult Engine::revoke(std::string_view grant_id, std::uint64_t now_usec)
{
    return grants_.revoke(policy_.get(), grant_id, now_usec);
}

std::size_t Engine::revoke_all(std::uint64_t now_usec)
{
    approvals_.deny_all(now_usec);
    return grants_.revoke_all(policy_.get(), now_usec);
}

DecideResult Engine::approve(std::string_view approval_id, std::uint64_t now_usec)
{
    return approvals_.approve(approval_id, now_usec);
}

DecideResult Engine::deny(std::string_view approval_id, std::uint64_t now_usec)
{
    return approvals_.deny(approval_id, now_usec);
}

void Engine::replace_state(GrantTable grants, ApprovalBook approvals)
{
    grants_ = std::move(grants);
    approvals_ = std::move(approvals);
}

}  // namespace codexvault::policy
