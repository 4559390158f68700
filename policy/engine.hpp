// The decision engine: given the subject the daemon resolved, a capability, the request and the
// time, decide Allow, Deny or ApprovalRequired, and say why.
//
//   evaluate(..., Mode::Use)   a real use: on Allow it records the use (max_uses, rate), consumes
//                              a presented approval; on ApprovalRequired it creates a pending
//                              approval (its id is in the decision).
//   check(...) / Mode::Check   the same decision, computed without changing anything.
//   explain(...)               the decision plus, for every grant that names the capability,
//                              why it applies or which condition fails.
//
// Choosing among grants: of the grants naming the capability whose principal matches, the first
// (policy grants in file order, then runtime grants in issue order) that is usable without an
// approval is used; failing that, the first that is usable with an approval; failing that, the
// most specific denial. Nothing allocates on the path to Allow or Deny; creating an approval does.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "policy/approvals.hpp"
#include "policy/capability.hpp"
#include "policy/grant_table.hpp"
#include "policy/ids.hpp"
#include "policy/policy_set.hpp"
#include "policy/principal.hpp"
#include "policy/request.hpp"

namespace codexvault::policy {

enum class Mode : std::uint8_t { Use, Check };
enum class Verdict : std::uint8_t { Allow, Deny, ApprovalRequired };
std::string_view verdict_name(Verdict verdict) noexcept;  // "allow", "deny", "approval-required"

enum class Reason : std::uint8_t {
    Allowed,
    AllowedWithApproval,
    PolicyNotLoaded,
    ProviderNotDefined,
    InvalidRequest,
    RequestNotAllowed,
    NoGrant,
    PrincipalMismatch,
    ExeUnknown,
    GrantRevoked,
    GrantExpired,
    GrantUsedUp,
    RateLimited,
    ApprovalRequired,
    ApprovalPending,
    ApprovalUnknown,
    ApprovalDenied,
    ApprovalUsed,
    ApprovalExpired,
    ApprovalOtherSubject,
    ApprovalOtherRequest,
    ApprovalOtherGrant,
    ApprovalUnavailable,
};
std::string_view describe(Reason reason) noexcept;  // static text, safe to send to the caller

struct Decision {
    Verdict verdict = Verdict::Deny;
    Reason reason = Reason::NoGrant;
    GrantId grant_id;        // the grant used, asked about, or (for a denial) the one that came closest
    ApprovalId approval_id;  // ApprovalRequired: the pending approval (empty in Check mode when none exists);
                             // Allow with approval: the approval consumed
    [[nodiscard]] bool allowed() const noexcept { return verdict == Verdict::Allow; }
    [[nodiscard]] std::string_view reason_text() const noexcept { return describe(reason); }
};

struct Explanation {
    Decision decision;
    std::vector<std::string> lines;          // subject, request, one line per grant, the decision
    [[nodiscard]] std::string text() const;  // lines joined with '\n'
};

struct EngineOptions {
    ApprovalOptions approvals;
};

class Engine {
public:
    explicit Engine(EngineOptions options = {});

    // Swaps in a policy set (reload). nullptr means "no valid policy": every grant-based use is
    // denied (PolicyNotLoaded), runtime grants included. A new engine starts that way.
    void set_policy(std::shared_ptr<const PolicySet> policy) noexcept { policy_ = std::move(policy); }
    [[nodiscard]] const std::shared_ptr<const PolicySet>& policy() const noexcept { return policy_; }

    Decision evaluate(const SubjectView& subject, const Capability& capability, const RequestContext& request,
                      std::uint64_t now_usec, Mode mode, const IdSeed& approval_seed);
    [[nodiscard]] Decision check(const SubjectView& subject, const Capability& capability,
                                 const RequestContext& request, std::uint64_t now_usec) const;
    [[nodiscard]] Explanation explain(const SubjectView& subject, const Capability& capability,
                                      const RequestContext& request, std::uint64_t now_usec) const;

    // Whether any grant (policy or runtime, revoked ones included) has a gid condition: only then
    // can a decision depend on the subject's supplementary groups. The daemon re-reads a caller's
    // groups (its /proc status) only while this holds.
    [[nodiscard]] bool matches_groups() const noexcept
    {
        return (policy_ && policy_->index().has_gid_condition()) || grants_.index().has_gid_condition();
    }

    // The grants that are active for this subject now (WhoAmI).
    [[nodiscard]] std::vector<GrantInfo> grants_for(const SubjectView& subject, std::uint64_t now_usec) const;
    [[nodiscard]] std::vector<GrantInfo> list_grants(std::uint64_t now_usec) const
    {
        return grants_.list(policy_.get(), now_usec);
    }

    // Founder operations.
    Result<GrantId> issue(const GrantRequest& request, const IdSeed& seed, std::uint64_t now_usec);
    RevokeResult revoke(std::string_view grant_id, std::uint64_t now_usec);
    // Revokes every grant (runtime and policy) and denies every outstanding approval.
    std::size_t revoke_all(std::uint64_t now_usec);
    DecideResult approve(std::string_view approval_id, std::uint64_t now_usec);
    DecideResult deny(std::string_view approval_id, std::uint64_t now_usec);

    [[nodiscard]] GrantTable& grants() noexcept { return grants_; }
    [[nodiscard]] const GrantTable& grants() const noexcept { return grants_; }
    [[nodiscard]] ApprovalBook& approvals() noexcept { return approvals_; }
    [[nodiscard]] const ApprovalBook& approvals() const noexcept { return approvals_; }
    // Replaces the runtime state with one decoded from disk (persistence.hpp).
    void replace_state(GrantTable grants, ApprovalBook approvals);

private:
    struct Plan;
    // `use`: the decision will be committed (Mode::Use), so the usage of a usable grant is
    // fetched early.
    [[nodiscard]] Plan decide(const SubjectView& subject, const Capability& capability, const RequestContext& request,
                              std::uint64_t now_usec, bool use = false) const;
    void commit(Plan& plan, const SubjectView& subject, const Capability& capability, const RequestContext& request,
                std::uint64_t now_usec, const IdSeed& approval_seed);

    std::shared_ptr<const PolicySet> policy_;
    GrantTable grants_;
    ApprovalBook approvals_;
};

}  // namespace codexvault::policy
