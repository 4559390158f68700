// Approvals: single-use, bound to the grant, the process and the exact request, expiring after
// their ttl. Each rule is shown to deny when broken: reuse, another process, another request,
// expiry, denial, revocation of the grant, and the approval = once instance rule.
#include <criterion/criterion.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "policy/persistence.hpp"
#include "policy/policy_parser.hpp"
#include "policy/time_units.hpp"

using namespace codexvault::policy;

namespace {

constexpr std::uint64_t kT0 = 1'800'000'000ULL * kUsecPerSecond;
constexpr std::uint64_t kSec = kUsecPerSecond;

const char* const kPolicy = R"(
[principals.agent]
uid = 1000
unit = "agent.service"

[principals.anyexe]
uid = 1000

[providers.gh]
origin = "https://api.github.com"
allow = ["POST /repos/*", "GET /repos/*"]
secret = "gh"
inject = { header = "Authorization", template = "token {secret}" }

[grants.comment]
principal = "agent"
capability = "provider:gh:request"
approval = "each"

[grants.deploy]
principal = "agent"
capability = "secret:deploy:inject"
approval = "once"

[grants.scan]
principal = "anyexe"
capability = "ingest:scan"
approval = "once"

[grants.audit]
principal = "agent"
capability = "audit:read"
approval = "each"
)";

struct Subject {
    std::uint32_t uid = 1000;
    std::uint32_t pid = 500;
    std::uint64_t start_time = 9000;
    std::string unit = "agent.service";
    std::optional<std::string> exe = "/usr/bin/python3";
    [[nodiscard]] SubjectView view() const
    {
        SubjectView v;
        v.uid = uid;
        v.gid = uid;
        v.pid = pid;
        v.start_time = start_time;
        v.unit = unit;
        v.cgroup = "/system.slice/agent.service";
        if (exe) {
            v.exe = *exe;
        }
        return v;
    }
};

std::uint8_t g_seed = 0;
IdSeed fresh()
{
    ++g_seed;
    return IdSeed{g_seed, 0xa1, 0xb2, 0xc3, 0xd4, 0xe5, 0xf6, 0x07};
}

Engine make_engine(EngineOptions options = {})
{
    const PolicyDocument document{"approvals.toml", kPolicy};
    auto loaded = load_policy(std::span<const PolicyDocument>(&document, 1));
    cr_assert(loaded.ok(), "%s", loaded.error_text().c_str());
    Engine engine(options);
    engine.set_policy(loaded.policy);
    return engine;
}

const Capability kGh = Capability::provider_request("gh");

RequestContext comment(std::string_view path = "/repos/o/r/issues/1/comments", std::string_view body = "d1")
{
    RequestContext r;
    r.method = "POST";
    r.path = path;
    r.body_digest = body;
    return r;
}

RequestContext with(RequestContext r, const ApprovalId& id)
{
    r.approval_id = id.view();
    return r;
}

// Asks, gets a pending approval, has the founder approve it; returns its id.
ApprovalId approved(Engine& engine, const Subject& s, const Capability& c, const RequestContext& r, std::uint64_t now)
{
    const Decision asked = engine.evaluate(s.view(), c, r, now, Mode::Use, fresh());
    cr_assert_eq(asked.verdict, Verdict::ApprovalRequired, "%s", std::string(asked.reason_text()).c_str());
    cr_assert_not(asked.approval_id.empty());
    cr_assert_eq(engine.approve(asked.approval_id.view(), now), DecideResult::Ok);
    return asked.approval_id;
}

}  // namespace

Test(policy_approvals, each_use_needs_its_own_approval)
{
    Engine engine = make_engine();
    const Subject s;
    const Decision first = engine.evaluate(s.view(), kGh, comment(), kT0, Mode::Use, fresh());
    cr_assert_eq(first.verdict, Verdict::ApprovalRequired);
    cr_assert_eq(first.reason, Reason::ApprovalRequired);
    cr_assert_eq(first.grant_id.str(), "comment");
    cr_assert(is_approval_id(first.approval_id.view()), "%s", first.approval_id.str().c_str());

    // Asking again for the same thing does not pile up approvals.
    const Decision again = engine.evaluate(s.view(), kGh, comment(), kT0 + kSec, Mode::Use, fresh());
    cr_assert_eq(again.verdict, Verdict::ApprovalRequired);
    cr_assert_eq(again.reason, Reason::ApprovalPending);
    cr_assert(again.approval_id == first.approval_id);
    cr_assert_eq(engine.approvals().pending(kT0 + kSec).size(), 1U);
    cr_assert(engine.approvals().pending(kT0).front().summary.find("/repos/o/r/issues/1/comments") !=
              std::string::npos);

    // Presented before the founder decided: still pending.
    const Decision early =
        engine.evaluate(s.view(), kGh, with(comment(), first.approval_id), kT0 + kSec, Mode::Use, fresh());
    cr_assert_eq(early.verdict, Verdict::ApprovalRequired);
    cr_assert_eq(early.reason, Reason::ApprovalPending);

    cr_assert_eq(engine.approve(first.approval_id.view(), kT0 + 2 * kSec), DecideResult::Ok);
    cr_assert_eq(engine.approve(first.approval_id.view(), kT0 + 2 * kSec), DecideResult::AlreadyDecided);
    const Decision used =
        engine.evaluate(s.view(), kGh, with(comment(), first.approval_id), kT0 + 3 * kSec, Mode::Use, fresh());
    cr_assert_eq(used.verdict, Verdict::Allow);
    cr_assert_eq(used.reason, Reason::AllowedWithApproval);
    cr_assert(used.approval_id == first.approval_id);

    // Single use: the same approval again is refused, and the next use needs a new one.
    const Decision reused =
        engine.evaluate(s.view(), kGh, with(comment(), first.approval_id), kT0 + 4 * kSec, Mode::Use, fresh());
    cr_assert_eq(reused.verdict, Verdict::Deny);
    cr_assert_eq(reused.reason, Reason::ApprovalUsed);
    const Decision next = engine.evaluate(s.view(), kGh, comment(), kT0 + 5 * kSec, Mode::Use, fresh());
    cr_assert_eq(next.verdict, Verdict::ApprovalRequired);
    cr_assert_eq(next.reason, Reason::ApprovalRequired);
    cr_assert_not(next.approval_id == first.approval_id);
}

Test(policy_approvals, bound_to_the_process)
{
    Engine engine = make_engine();
    const Subject s;
    const ApprovalId id = approved(engine, s, kGh, comment(), kT0);

    Subject other_pid = s;
    other_pid.pid = 501;
    Subject reused_pid = s;  // same pid, a later process
    reused_pid.start_time = 9001;
    Subject other_exe = s;
    other_exe.exe = "/usr/bin/perl";
    Subject exe_unknown = s;
    exe_unknown.exe.reset();
    Subject other_uid = s;
    other_uid.uid = 1001;
    for (const Subject* thief : {&other_pid, &reused_pid, &other_exe, &exe_unknown, &other_uid}) {
        const Decision d = engine.evaluate(thief->view(), kGh, with(comment(), id), kT0 + kSec, Mode::Use, fresh());
        cr_assert_eq(d.verdict, Verdict::Deny);
        cr_assert_eq(d.reason, Reason::ApprovalOtherSubject, "pid %u start %llu: %s", thief->pid,
                     static_cast<unsigned long long>(thief->start_time), std::string(d.reason_text()).c_str());
    }
    // The failed attempts did not use it up.
    const Decision mine = engine.evaluate(s.view(), kGh, with(comment(), id), kT0 + 2 * kSec, Mode::Use, fresh());
    cr_assert_eq(mine.verdict, Verdict::Allow);
}

Test(policy_approvals, bound_to_the_exact_request)
{
    Engine engine = make_engine();
    const Subject s;
    const ApprovalId id = approved(engine, s, kGh, comment(), kT0);
    RequestContext get = comment();
    get.method = "GET";
    const std::vector<RequestContext> different{
        comment("/repos/o/r/issues/2/comments"),
        comment("/repos/o/r/issues/1/comments?x=1"),
        comment("/repos/o/r/issues/1/comments", "d2"),
        comment("/repos/o/r/issues/1/comments", ""),
        get,
    };
    for (const auto& request : different) {
        const Decision d = engine.evaluate(s.view(), kGh, with(request, id), kT0 + kSec, Mode::Use, fresh());
        cr_assert_eq(d.verdict, Verdict::Deny);
        cr_assert_eq(d.reason, Reason::ApprovalOtherRequest, "%s %s: %s", std::string(request.method).c_str(),
                     std::string(request.path).c_str(), std::string(d.reason_text()).c_str());
    }
    // Presented for another capability (another grant), it is refused too.
    const Decision audit = engine.evaluate(s.view(), Capability::of(CapabilityKind::AuditRead), with({}, id),
                                           kT0 + kSec, Mode::Use, fresh());
    cr_assert_eq(audit.verdict, Verdict::Deny);
    cr_assert(audit.reason == Reason::ApprovalOtherGrant || audit.reason == Reason::ApprovalOtherRequest);
    cr_assert_eq(engine.evaluate(s.view(), kGh, with(comment(), id), kT0 + kSec, Mode::Use, fresh()).verdict,
                 Verdict::Allow);

    // Inject: bound to the secret and the target.
    const Capability deploy = Capability::secret_inject("deploy");
    RequestContext target;
    target.target = "pid=500 start=9000 exe=/usr/bin/python3";
    const ApprovalId inject_id = approved(engine, s, deploy, target, kT0);
    RequestContext elsewhere;
    elsewhere.target = "pid=777 start=1 exe=/usr/bin/python3";
    const Decision d = engine.evaluate(s.view(), deploy, with(elsewhere, inject_id), kT0 + kSec, Mode::Use, fresh());
    cr_assert_eq(d.reason, Reason::ApprovalOtherRequest);
    cr_assert_eq(canonical_request(deploy, target) == canonical_request(Capability::secret_inject("other"), target),
                 false);
}

Test(policy_approvals, expire_after_ttl)
{
    Engine engine = make_engine();
    const Subject s;
    const Decision asked = engine.evaluate(s.view(), kGh, comment(), kT0, Mode::Use, fresh());
    cr_assert_eq(engine.approve(asked.approval_id.view(), kT0 + 119 * kSec), DecideResult::Ok);
    const Decision late =
        engine.evaluate(s.view(), kGh, with(comment(), asked.approval_id), kT0 + 120 * kSec, Mode::Use, fresh());
    cr_assert_eq(late.verdict, Verdict::Deny);
    cr_assert_eq(late.reason, Reason::ApprovalExpired);

    // Too late to decide.
    const Decision second = engine.evaluate(s.view(), kGh, comment("/repos/a/b"), kT0, Mode::Use, fresh());
    cr_assert_eq(engine.approve(second.approval_id.view(), kT0 + 121 * kSec), DecideResult::Expired);
    cr_assert_eq(engine.deny(second.approval_id.view(), kT0 + 121 * kSec), DecideResult::Expired);
    cr_assert(engine.approvals().pending(kT0 + 121 * kSec).empty());

    // The ttl is configurable.
    EngineOptions options;
    options.approvals.ttl_usec = 5 * kSec;
    Engine quick = make_engine(options);
    const ApprovalId id = approved(quick, s, kGh, comment(), kT0);
    cr_assert_eq(quick.evaluate(s.view(), kGh, with(comment(), id), kT0 + 5 * kSec, Mode::Use, fresh()).reason,
                 Reason::ApprovalExpired);

    // Long expired approvals are forgotten; presenting one is then simply unknown (still denied).
    cr_assert_geq(engine.approvals().prune(kT0 + 1000 * kSec), 1U);
    cr_assert_eq(
        engine.evaluate(s.view(), kGh, with(comment(), asked.approval_id), kT0 + 1000 * kSec, Mode::Use, fresh())
            .reason,
        Reason::ApprovalUnknown);
}

Test(policy_approvals, denied_unknown_and_revoked)
{
    Engine engine = make_engine();
    const Subject s;
    const Decision asked = engine.evaluate(s.view(), kGh, comment(), kT0, Mode::Use, fresh());
    cr_assert_eq(engine.deny(asked.approval_id.view(), kT0), DecideResult::Ok);
    cr_assert_eq(engine.approve(asked.approval_id.view(), kT0), DecideResult::AlreadyDecided);
    cr_assert_eq(engine.evaluate(s.view(), kGh, with(comment(), asked.approval_id), kT0, Mode::Use, fresh()).reason,
                 Reason::ApprovalDenied);

    cr_assert_eq(engine.approve("a-0000000000000000", kT0), DecideResult::NotFound);
    RequestContext bogus = comment();
    bogus.approval_id = "a-0000000000000000";
    cr_assert_eq(engine.evaluate(s.view(), kGh, bogus, kT0, Mode::Use, fresh()).reason, Reason::ApprovalUnknown);

    // Revoking the grant makes its approvals worthless.
    const ApprovalId id = approved(engine, s, kGh, comment("/repos/x/y"), kT0);
    cr_assert_eq(engine.revoke("comment", kT0 + kSec), RevokeResult::Revoked);
    const Decision after =
        engine.evaluate(s.view(), kGh, with(comment("/repos/x/y"), id), kT0 + 2 * kSec, Mode::Use, fresh());
    cr_assert_eq(after.verdict, Verdict::Deny);
    cr_assert_eq(after.reason, Reason::GrantRevoked);
}

Test(policy_approvals, check_never_consumes_or_creates)
{
    Engine engine = make_engine();
    const Subject s;
    const Decision checked = engine.check(s.view(), kGh, comment(), kT0);
    cr_assert_eq(checked.verdict, Verdict::ApprovalRequired);
    cr_assert(checked.approval_id.empty());
    cr_assert(engine.approvals().all().empty());

    const ApprovalId id = approved(engine, s, kGh, comment(), kT0);
    for (int i = 0; i < 5; ++i) {
        const Decision d = engine.check(s.view(), kGh, with(comment(), id), kT0 + kSec);
        cr_assert_eq(d.verdict, Verdict::Allow);
        const Decision mode_check =
            engine.evaluate(s.view(), kGh, with(comment(), id), kT0 + kSec, Mode::Check, fresh());
        cr_assert_eq(mode_check.verdict, Verdict::Allow);
    }
    cr_assert_eq(engine.approvals().find(id.view())->state, ApprovalState::Approved);
    cr_assert_eq(engine.evaluate(s.view(), kGh, with(comment(), id), kT0 + kSec, Mode::Use, fresh()).verdict,
                 Verdict::Allow);
}

Test(policy_approvals, once_covers_the_principal_instance)
{
    Engine engine = make_engine();
    const Capability deploy = Capability::secret_inject("deploy");
    RequestContext target;
    target.target = "pid=500";
    const Subject s;
    const ApprovalId id = approved(engine, s, deploy, target, kT0);
    cr_assert_eq(engine.evaluate(s.view(), deploy, with(target, id), kT0, Mode::Use, fresh()).verdict, Verdict::Allow);

    // The same principal instance (uid, unit, exe) needs no further approval: a new process of
    // the same program included.
    Subject restarted = s;
    restarted.pid = 900;
    restarted.start_time = 12345;
    for (const Subject* same : {&s, static_cast<const Subject*>(&restarted)}) {
        const Decision d = engine.evaluate(same->view(), deploy, target, kT0 + kSec, Mode::Use, fresh());
        cr_assert_eq(d.verdict, Verdict::Allow);
        cr_assert_eq(d.reason, Reason::Allowed);
    }
    // Another program under the same uid is another instance.
    Subject other = s;
    other.exe = "/usr/bin/perl";
    cr_assert_eq(engine.evaluate(other.view(), deploy, target, kT0 + kSec, Mode::Use, fresh()).verdict,
                 Verdict::ApprovalRequired);

    // With the exe unknown, "once" lasts only as long as the process (uid, pid, start time).
    const Capability scan = Capability::of(CapabilityKind::IngestScan);
    Subject blind = s;
    blind.exe.reset();
    const ApprovalId scan_id = approved(engine, blind, scan, {}, kT0);
    cr_assert_eq(engine.evaluate(blind.view(), scan, with({}, scan_id), kT0, Mode::Use, fresh()).verdict,
                 Verdict::Allow);
    cr_assert_eq(engine.evaluate(blind.view(), scan, {}, kT0 + kSec, Mode::Use, fresh()).verdict, Verdict::Allow);
    Subject blind_later = blind;
    blind_later.start_time = 9999;
    cr_assert_eq(engine.evaluate(blind_later.view(), scan, {}, kT0 + kSec, Mode::Use, fresh()).verdict,
                 Verdict::ApprovalRequired);
    // The approval was for that process: the same process is covered even once its exe can be
    // read, another process of the same program is not.
    cr_assert_eq(engine.evaluate(s.view(), scan, {}, kT0 + kSec, Mode::Use, fresh()).verdict, Verdict::Allow);
    Subject sibling = s;
    sibling.pid = 501;
    cr_assert_eq(engine.evaluate(sibling.view(), scan, {}, kT0 + kSec, Mode::Use, fresh()).verdict,
                 Verdict::ApprovalRequired);
}

Test(policy_approvals, outstanding_approvals_are_bounded)
{
    Engine engine = make_engine();
    const Subject s;
    const std::size_t limit = engine.approvals().options().max_outstanding_per_uid;
    std::vector<std::string> paths;
    for (std::size_t i = 0; i <= limit; ++i) {
        paths.push_back("/repos/o/r/issues/" + std::to_string(i));
    }
    for (std::size_t i = 0; i < limit; ++i) {
        cr_assert_eq(engine.evaluate(s.view(), kGh, comment(paths[i]), kT0, Mode::Use, fresh()).verdict,
                     Verdict::ApprovalRequired);
    }
    const Decision full = engine.evaluate(s.view(), kGh, comment(paths[limit]), kT0, Mode::Use, fresh());
    cr_assert_eq(full.verdict, Verdict::Deny);
    cr_assert_eq(full.reason, Reason::ApprovalUnavailable);
    // Once they expire there is room again.
    cr_assert_eq(engine.evaluate(s.view(), kGh, comment(paths[limit]), kT0 + 121 * kSec, Mode::Use, fresh()).verdict,
                 Verdict::ApprovalRequired);
}

Test(policy_approvals, revoke_all_denies_outstanding_approvals)
{
    Engine engine = make_engine();
    const Subject s;
    const ApprovalId pending = engine.evaluate(s.view(), kGh, comment("/repos/a"), kT0, Mode::Use, fresh()).approval_id;
    const ApprovalId yes = approved(engine, s, kGh, comment("/repos/b"), kT0);
    cr_assert_geq(engine.revoke_all(kT0 + kSec), 4U);
    cr_assert_eq(engine.approvals().find(pending.view())->state, ApprovalState::Denied);
    cr_assert_eq(engine.approvals().find(yes.view())->state, ApprovalState::Denied);
    cr_assert_eq(engine.evaluate(s.view(), kGh, with(comment("/repos/b"), yes), kT0 + kSec, Mode::Use, fresh()).verdict,
                 Verdict::Deny);
}

Test(policy_approvals, survive_a_restart)
{
    Engine engine = make_engine();
    const Subject s;
    const ApprovalId ready = approved(engine, s, kGh, comment("/repos/a"), kT0);
    const ApprovalId spent = approved(engine, s, kGh, comment("/repos/b"), kT0);
    cr_assert_eq(engine.evaluate(s.view(), kGh, with(comment("/repos/b"), spent), kT0, Mode::Use, fresh()).verdict,
                 Verdict::Allow);

    auto state = decode_state(encode_state(engine.grants(), engine.approvals()));
    cr_assert(state.ok(), "%s", state.ok() ? "" : state.message().c_str());
    Engine restarted = make_engine();
    restarted.replace_state(std::move(state.value().grants), std::move(state.value().approvals));
    cr_assert_eq(
        restarted.evaluate(s.view(), kGh, with(comment("/repos/b"), spent), kT0 + kSec, Mode::Use, fresh()).reason,
        Reason::ApprovalUsed);
    Subject other = s;
    other.pid = 4;
    cr_assert_eq(
        restarted.evaluate(other.view(), kGh, with(comment("/repos/a"), ready), kT0 + kSec, Mode::Use, fresh()).reason,
        Reason::ApprovalOtherSubject);
    cr_assert_eq(
        restarted.evaluate(s.view(), kGh, with(comment("/repos/a"), ready), kT0 + kSec, Mode::Use, fresh()).verdict,
        Verdict::Allow);
}
