// The exhaustive decision matrix: capability kinds x principal match kinds x grant states x
// where the grant comes from (policy file or runtime) x mode (Use or Check). Every combination
// is built from scratch and its decision is asserted against expected(), a small rule written
// from the documented semantics, never by asking the engine twice. In Check mode the test also
// asserts that nothing changed (the persisted state is byte-for-byte the same).
#include <criterion/criterion.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "policy/persistence.hpp"
#include "policy/policy_set.hpp"
#include "policy/time_units.hpp"

using namespace codexvault::policy;

namespace {

constexpr std::uint64_t kNow = 1'800'000'000ULL * kUsecPerSecond;
constexpr std::uint64_t kSetup = kNow - 5 * kUsecPerSecond;
const std::string kHash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const std::string kOtherHash = "0000000000000000000000000000000000000000000000000000000000000001";

// An owning subject; view() is what the engine sees.
struct Subject {
    std::uint32_t uid = 1000;
    std::uint32_t gid = 100;
    std::vector<std::uint32_t> groups{27, 1500};
    std::uint32_t pid = 4242;
    std::uint64_t start_time = 777;
    std::string unit = "agent.service";
    std::string cgroup = "/system.slice/agent.service/worker";
    std::optional<std::string> exe = "/usr/bin/python3";
    std::optional<std::string> exe_sha256 = kHash;

    [[nodiscard]] SubjectView view() const
    {
        SubjectView v;
        v.uid = uid;
        v.gid = gid;
        v.groups = groups;
        v.pid = pid;
        v.start_time = start_time;
        v.unit = unit;
        v.cgroup = cgroup;
        if (exe) {
            v.exe = *exe;
        }
        if (exe_sha256) {
            v.exe_sha256 = *exe_sha256;
        }
        return v;
    }
};

enum class Expect { Match, Mismatch, ExeUnknown };

// A principal whose conditions the base Subject satisfies, and a change to the subject that
// the test then presents.
struct Variant {
    const char* name;
    std::string spec;
    void (*change)(Subject&);
    Expect expect;
};

const std::string kAll =
    "uid=1000,gid=1500,unit=agent.service,cgroup=/system.slice,exe=/usr/bin/python3,exe_sha256=" + kHash;

const std::vector<Variant>& variants()
{
    static const std::vector<Variant> list{
        {"uid", "uid=1000", [](Subject&) {}, Expect::Match},
        {"uid-other", "uid=1000", [](Subject& s) { s.uid = 1001; }, Expect::Mismatch},
        {"gid-effective", "gid=100", [](Subject&) {}, Expect::Match},
        {"gid-supplementary", "gid=1500", [](Subject&) {}, Expect::Match},
        {"gid-other", "gid=1500", [](Subject& s) { s.groups = {27}; }, Expect::Mismatch},
        {"unit", "unit=agent.service", [](Subject&) {}, Expect::Match},
        {"unit-other", "unit=agent.service", [](Subject& s) { s.unit = "other.service"; }, Expect::Mismatch},
        {"unit-none", "unit=agent.service", [](Subject& s) { s.unit.clear(); }, Expect::Mismatch},
        {"exe", "exe=/usr/bin/python3", [](Subject&) {}, Expect::Match},
        {"exe-other", "exe=/usr/bin/python3", [](Subject& s) { s.exe = "/usr/bin/perl"; }, Expect::Mismatch},
        {"exe-unknown", "exe=/usr/bin/python3",
         [](Subject& s) {
             s.exe.reset();
             s.exe_sha256.reset();
         },
         Expect::ExeUnknown},
        {"exe_sha256", "exe_sha256=" + kHash, [](Subject&) {}, Expect::Match},
        {"exe_sha256-other", "exe_sha256=" + kHash, [](Subject& s) { s.exe_sha256 = kOtherHash; }, Expect::Mismatch},
        {"exe_sha256-exe-unknown", "exe_sha256=" + kHash,
         [](Subject& s) {
             s.exe.reset();
             s.exe_sha256.reset();
         },
         Expect::ExeUnknown},
        {"cgroup-exact", "cgroup=/system.slice/agent.service/worker", [](Subject&) {}, Expect::Match},
        {"cgroup-prefix", "cgroup=/system.slice/agent.service", [](Subject&) {}, Expect::Match},
        {"cgroup-sibling", "cgroup=/system.slice/agent.service",
         [](Subject& s) { s.cgroup = "/system.slice/agent.service2"; }, Expect::Mismatch},
        {"cgroup-other", "cgroup=/system.slice/agent.service", [](Subject& s) { s.cgroup = "/user.slice"; },
         Expect::Mismatch},
        {"all", kAll, [](Subject&) {}, Expect::Match},
        {"all-but-uid", kAll, [](Subject& s) { s.uid = 1001; }, Expect::Mismatch},
        {"all-exe-unknown", kAll,
         [](Subject& s) {
             s.exe.reset();
             s.exe_sha256.reset();
         },
         Expect::ExeUnknown},
        {"uid-exe-unknown", "uid=1000",
         [](Subject& s) {
             s.exe.reset();
             s.exe_sha256.reset();
         },
         Expect::Match},
    };
    return list;
}

enum class State {
    None,  // no grant for this capability (one for another capability, same principal)
    Active,
    Expired,
    Revoked,
    UsedUp,
    RateLimited,
    EachNew,       // approval = each, nothing presented
    EachPending,   // presented, not decided yet
    EachApproved,  // presented, approved
    EachDenied,    // presented, denied
    EachConsumed,  // presented, already used
    OnceNew,       // approval = once, never approved
    OnceApproved,  // approval = once, approved and used once by the base subject
};
constexpr std::array<State, 13> kStates{
    State::None,         State::Active,  State::Expired,     State::Revoked,      State::UsedUp,
    State::RateLimited,  State::EachNew, State::EachPending, State::EachApproved, State::EachDenied,
    State::EachConsumed, State::OnceNew, State::OnceApproved};
constexpr std::array<const char*, 13> kStateNames{
    "none",         "active",        "expired",     "revoked",       "used-up",  "rate-limited", "each-new",
    "each-pending", "each-approved", "each-denied", "each-consumed", "once-new", "once-approved"};

struct Expected {
    Verdict verdict;
    Reason reason;
};

// The rule, from docs/policy.md: no grant -> deny; a principal that does not match -> deny
// (exe unknown is its own reason); then the grant's state decides. "once" covers the same
// principal instance: same uid, unit and (known) exe as the process that was approved.
Expected expected(const Variant& variant, State state, bool same_instance)
{
    if (state == State::None) {
        return {Verdict::Deny, Reason::NoGrant};
    }
    if (variant.expect == Expect::Mismatch) {
        return {Verdict::Deny, Reason::PrincipalMismatch};
    }
    if (variant.expect == Expect::ExeUnknown) {
        return {Verdict::Deny, Reason::ExeUnknown};
    }
    switch (state) {
    case State::Active:
        return {Verdict::Allow, Reason::Allowed};
    case State::Expired:
        return {Verdict::Deny, Reason::GrantExpired};
    case State::Revoked:
        return {Verdict::Deny, Reason::GrantRevoked};
    case State::UsedUp:
        return {Verdict::Deny, Reason::GrantUsedUp};
    case State::RateLimited:
        return {Verdict::Deny, Reason::RateLimited};
    case State::EachNew:
    case State::OnceNew:
        return {Verdict::ApprovalRequired, Reason::ApprovalRequired};
    case State::EachPending:
        return {Verdict::ApprovalRequired, Reason::ApprovalPending};
    case State::EachApproved:
        return {Verdict::Allow, Reason::AllowedWithApproval};
    case State::EachDenied:
        return {Verdict::Deny, Reason::ApprovalDenied};
    case State::EachConsumed:
        return {Verdict::Deny, Reason::ApprovalUsed};
    case State::OnceApproved:
        return same_instance ? Expected{Verdict::Allow, Reason::Allowed}
                             : Expected{Verdict::ApprovalRequired, Reason::ApprovalRequired};
    case State::None:
        break;
    }
    return {Verdict::Deny, Reason::NoGrant};
}

Capability capability_of(CapabilityKind kind)
{
    switch (kind) {
    case CapabilityKind::SecretInject:
        return Capability::secret_inject("s1");
    case CapabilityKind::ProviderRequest:
        return Capability::provider_request("p1");
    default:
        return Capability::of(kind);
    }
}

Capability other_capability(CapabilityKind kind)
{
    switch (kind) {
    case CapabilityKind::SecretInject:
        return Capability::secret_inject("s2");
    case CapabilityKind::ProviderRequest:
        return Capability::provider_request("p2");
    case CapabilityKind::IngestScan:
        return Capability::of(CapabilityKind::AuditRead);
    case CapabilityKind::AuditRead:
        return Capability::of(CapabilityKind::StatusRead);
    case CapabilityKind::StatusRead:
        return Capability::of(CapabilityKind::IngestScan);
    }
    return Capability::of(CapabilityKind::IngestScan);
}

RequestContext request_of(CapabilityKind kind)
{
    RequestContext request;
    if (kind == CapabilityKind::ProviderRequest) {
        request.method = "POST";
        request.path = "/v1/chat/completions";
        request.body_digest = "b0d7";
    } else if (kind == CapabilityKind::SecretInject) {
        request.target = "pid=4242 start=777 exe=/usr/bin/python3";
    }
    return request;
}

std::shared_ptr<PolicySet> base_policy()
{
    auto set = std::make_shared<PolicySet>();
    for (const char* name : {"p1", "p2"}) {
        Provider provider;
        provider.name = name;
        provider.origin = parse_origin("https://api.example.com").value();
        provider.allow = {parse_request_pattern("POST /v1/*").value()};
        provider.secret = "k";
        provider.inject = parse_injection("Authorization", "Bearer {secret}").value();
        cr_assert(set->add_provider(std::move(provider)).ok());
    }
    return set;
}

IdSeed seed(std::uint8_t n)
{
    return IdSeed{n, 1, 2, 3, 4, 5, 6, 7};
}

struct Combination {
    CapabilityKind kind;
    const Variant* variant;
    State state;
    bool runtime;
    Mode mode;
    [[nodiscard]] std::string label() const
    {
        return capability_of(kind).to_string() + " / " + variant->name + " / " +
               kStateNames[static_cast<std::size_t>(state)] + " / " + (runtime ? "runtime" : "policy") + " / " +
               (mode == Mode::Use ? "use" : "check");
    }
};

void run(const Combination& c)
{
    const std::string label = c.label();
    const Capability capability = capability_of(c.kind);
    const Capability granted = c.state == State::None ? other_capability(c.kind) : capability;
    const RequestContext base_request = request_of(c.kind);
    const Subject base;
    Subject test = base;
    c.variant->change(test);

    ApprovalMode approval = ApprovalMode::None;
    if (c.state >= State::EachNew && c.state <= State::EachConsumed) {
        approval = ApprovalMode::Each;
    } else if (c.state == State::OnceNew || c.state == State::OnceApproved) {
        approval = ApprovalMode::Once;
    }

    Engine engine;
    auto policy = base_policy();
    std::string grant_id;
    if (c.runtime) {
        engine.set_policy(policy);
        GrantRequest request;
        request.principal = c.variant->spec;
        request.capability = granted.to_string();
        request.ttl = c.state == State::Expired ? "1s" : "1d";
        if (c.state == State::UsedUp) {
            request.max_uses = 1;
        }
        if (c.state == State::RateLimited) {
            request.rate = "1/h";
        }
        request.approval = std::string(approval_mode_name(approval));
        auto issued = engine.issue(request, seed(1), kNow - 10 * kUsecPerSecond);
        cr_assert(issued.ok(), "%s: issue: %s", label.c_str(), issued.ok() ? "" : issued.message().c_str());
        grant_id = issued.value().str();
    } else {
        GrantDefinition grant;
        grant.id = "g1";
        auto conditions = parse_inline_conditions(c.variant->spec);
        cr_assert(conditions.ok(), "%s", label.c_str());
        grant.principal = conditions.value();
        grant.principal_label = "inline:" + grant.principal.to_spec();
        grant.capability = granted;
        grant.approval = approval;
        if (c.state == State::Expired) {
            grant.expires_at_usec = kNow - 1;
        }
        if (c.state == State::UsedUp) {
            grant.max_uses = 1;
        }
        if (c.state == State::RateLimited) {
            grant.rate = parse_rate("1/h").value();
        }
        auto added = policy->add_grant(std::move(grant));
        cr_assert(added.ok(), "%s: %s", label.c_str(), added.ok() ? "" : added.message().c_str());
        engine.set_policy(policy);
        grant_id = "g1";
    }

    // Bring the grant into its state, at kSetup.
    RequestContext request = base_request;
    std::optional<ApprovalId> presented;
    switch (c.state) {
    case State::Revoked:
        cr_assert_eq(engine.revoke(grant_id, kSetup), RevokeResult::Revoked, "%s", label.c_str());
        break;
    case State::UsedUp:
    case State::RateLimited: {
        const auto used = engine.evaluate(base.view(), capability, base_request, kSetup, Mode::Use, seed(2));
        cr_assert_eq(used.verdict, Verdict::Allow, "%s: setup use", label.c_str());
        break;
    }
    case State::EachPending:
    case State::EachApproved:
    case State::EachDenied:
    case State::EachConsumed: {
        auto created = engine.approvals().create(
            grant_id, capability, test.view(), canonical_request(capability, base_request), "matrix", seed(3), kSetup);
        cr_assert(created.ok(), "%s", label.c_str());
        presented = created.value();
        if (c.state == State::EachApproved || c.state == State::EachConsumed) {
            cr_assert_eq(engine.approve(presented->view(), kSetup), DecideResult::Ok);
        }
        if (c.state == State::EachDenied) {
            cr_assert_eq(engine.deny(presented->view(), kSetup), DecideResult::Ok);
        }
        if (c.state == State::EachConsumed) {
            cr_assert(engine.approvals().consume(presented->view(), kSetup));
        }
        break;
    }
    case State::OnceApproved: {
        const auto first = engine.evaluate(base.view(), capability, base_request, kSetup, Mode::Use, seed(4));
        cr_assert_eq(first.verdict, Verdict::ApprovalRequired, "%s: setup first use", label.c_str());
        cr_assert_eq(engine.approve(first.approval_id.view(), kSetup), DecideResult::Ok);
        RequestContext with_id = base_request;
        with_id.approval_id = first.approval_id.view();
        const auto approved = engine.evaluate(base.view(), capability, with_id, kSetup, Mode::Use, seed(5));
        cr_assert_eq(approved.verdict, Verdict::Allow, "%s: setup approved use", label.c_str());
        break;
    }
    default:
        break;
    }
    if (presented) {
        request.approval_id = presented->view();
    }

    const bool same_instance =
        test.uid == base.uid && test.unit == base.unit && test.exe.has_value() && test.exe == base.exe;
    const Expected want = expected(*c.variant, c.state, same_instance);

    const std::string before = encode_state(engine.grants(), engine.approvals());
    const Decision got = engine.evaluate(test.view(), capability, request, kNow, c.mode, seed(9));
    cr_assert_eq(got.verdict, want.verdict, "%s: verdict %s, want %s (%s)", label.c_str(),
                 std::string(verdict_name(got.verdict)).c_str(), std::string(verdict_name(want.verdict)).c_str(),
                 std::string(got.reason_text()).c_str());
    cr_assert_eq(got.reason, want.reason, "%s: reason \"%s\", want \"%s\"", label.c_str(),
                 std::string(got.reason_text()).c_str(), std::string(describe(want.reason)).c_str());
    if (got.verdict != Verdict::Deny) {
        cr_assert_eq(got.grant_id.str(), grant_id, "%s", label.c_str());
    }
    if (want.reason == Reason::ApprovalRequired) {
        // A use creates the pending approval; a check never does.
        cr_assert_eq(got.approval_id.empty(), c.mode == Mode::Check, "%s", label.c_str());
    }
    if (c.mode == Mode::Check) {
        cr_assert_eq(encode_state(engine.grants(), engine.approvals()), before, "%s: check changed state",
                     label.c_str());
    }
}

std::size_t run_kind(CapabilityKind kind)
{
    std::size_t combinations = 0;
    for (const Variant& variant : variants()) {
        for (State state : kStates) {
            for (bool runtime : {false, true}) {
                for (Mode mode : {Mode::Use, Mode::Check}) {
                    run(Combination{kind, &variant, state, runtime, mode});
                    ++combinations;
                }
            }
        }
    }
    return combinations;
}

constexpr std::size_t kPerKind = 22 * 13 * 2 * 2;

}  // namespace

Test(policy_matrix, secret_inject)
{
    cr_assert_eq(run_kind(CapabilityKind::SecretInject), kPerKind);
}

Test(policy_matrix, provider_request)
{
    cr_assert_eq(run_kind(CapabilityKind::ProviderRequest), kPerKind);
}

Test(policy_matrix, ingest_scan)
{
    cr_assert_eq(run_kind(CapabilityKind::IngestScan), kPerKind);
}

Test(policy_matrix, audit_read)
{
    cr_assert_eq(run_kind(CapabilityKind::AuditRead), kPerKind);
}

Test(policy_matrix, status_read)
{
    cr_assert_eq(run_kind(CapabilityKind::StatusRead), kPerKind);
}

Test(policy_matrix, no_policy_denies_everything)
{
    // Fail closed: without a valid policy even a matching runtime grant is not used.
    Engine engine;
    engine.set_policy(base_policy());
    GrantRequest request;
    request.principal = "uid=1000";
    request.capability = "status:read";
    request.ttl = "1h";
    cr_assert(engine.issue(request, seed(1), kNow).ok());
    const Subject subject;
    cr_assert_eq(engine.check(subject.view(), Capability::of(CapabilityKind::StatusRead), {}, kNow).verdict,
                 Verdict::Allow);
    engine.set_policy(nullptr);
    for (CapabilityKind kind : {CapabilityKind::SecretInject, CapabilityKind::ProviderRequest,
                                CapabilityKind::IngestScan, CapabilityKind::AuditRead, CapabilityKind::StatusRead}) {
        const auto decision =
            engine.evaluate(subject.view(), capability_of(kind), request_of(kind), kNow, Mode::Use, seed(2));
        cr_assert_eq(decision.verdict, Verdict::Deny);
        cr_assert_eq(decision.reason, Reason::PolicyNotLoaded);
    }
    cr_assert_not(engine.issue(request, seed(3), kNow).ok(), "no issuing without a policy");
}
