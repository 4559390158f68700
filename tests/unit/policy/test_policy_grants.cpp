// Runtime grants and grant state: issuing (and every way to get it wrong), expiry at the moment
// of use, max_uses, rate limits, Check consuming nothing, revocation that survives a JSON round
// trip and a policy reload, the persisted format's strictness, provider request checks, and
// `policy explain`.
#include <criterion/criterion.h>

#include <cstdint>
#include <memory>
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

const std::string kPolicy = R"(
[principals.agents]
uid = 1000

[principals.python]
uid = 1000
exe = "/usr/bin/python3"

[providers.openai]
origin = "https://api.openai.com"
allow = ["POST /v1/chat/completions", "GET /v1/models/*"]
secret = "openai"
inject = { header = "Authorization", template = "Bearer {secret}" }

[grants.static-status]
principal = "agents"
capability = "status:read"

[grants.static-chat]
principal = "python"
capability = "provider:openai:request"
requests = ["POST /v1/chat/completions"]
max_uses = 2
)";

std::shared_ptr<const PolicySet> load(const std::string& text)
{
    const PolicyDocument document{"grants.toml", text};
    auto result = load_policy(std::span<const PolicyDocument>(&document, 1));
    cr_assert(result.ok(), "%s", result.error_text().c_str());
    return result.policy;
}

Engine make_engine()
{
    Engine engine;
    engine.set_policy(load(kPolicy));
    return engine;
}

struct Subject {
    std::uint32_t uid = 1000;
    std::string exe = "/usr/bin/python3";
    [[nodiscard]] SubjectView view() const
    {
        SubjectView v;
        v.uid = uid;
        v.gid = uid;
        v.pid = 77;
        v.start_time = 1;
        v.exe = exe;
        return v;
    }
};

std::uint8_t g_seed = 0;
IdSeed fresh()
{
    ++g_seed;
    return IdSeed{0x10, g_seed, 0, 0, 0, 0, 0, 1};
}

GrantRequest request(std::string principal, std::string capability, std::string ttl = "1h")
{
    GrantRequest r;
    r.principal = std::move(principal);
    r.capability = std::move(capability);
    r.ttl = std::move(ttl);
    return r;
}

const Capability kStatus = Capability::of(CapabilityKind::StatusRead);
const Capability kAudit = Capability::of(CapabilityKind::AuditRead);
const Capability kOpenai = Capability::provider_request("openai");

RequestContext chat()
{
    RequestContext r;
    r.method = "POST";
    r.path = "/v1/chat/completions";
    r.body_digest = "00ff";
    return r;
}

Decision use(Engine& engine, const Subject& s, const Capability& c, const RequestContext& r, std::uint64_t now)
{
    return engine.evaluate(s.view(), c, r, now, Mode::Use, fresh());
}

Engine restart(const Engine& engine, std::shared_ptr<const PolicySet> policy)
{
    auto state = decode_state(encode_state(engine.grants(), engine.approvals()));
    cr_assert(state.ok(), "%s", state.ok() ? "" : state.message().c_str());
    Engine restarted;
    restarted.set_policy(std::move(policy));
    restarted.replace_state(std::move(state.value().grants), std::move(state.value().approvals));
    return restarted;
}

}  // namespace

Test(policy_grants, issue_checks_everything)
{
    Engine engine = make_engine();
    const auto id = engine.issue(request("agents", "audit:read"), IdSeed{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3}, kT0);
    cr_assert(id.ok(), "%s", id.ok() ? "" : id.message().c_str());
    cr_assert_eq(id.value().str(), "g-deadbeef00010203");
    const RuntimeGrant* grant = engine.grants().find("g-deadbeef00010203");
    cr_assert_not_null(grant);
    cr_assert_eq(grant->definition.principal_label, "agents");
    cr_assert_eq(grant->definition.expires_at_usec.value(), kT0 + 3600 * kSec);
    cr_assert_eq(grant->definition.issued_at_usec, kT0);

    const auto collision =
        engine.issue(request("agents", "audit:read"), IdSeed{0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3}, kT0);
    cr_assert_not(collision.ok());
    cr_assert(collision.message().find("collision") != std::string::npos);

    struct Bad {
        GrantRequest request;
        const char* fragment;
    };
    auto with = [](GrantRequest r, auto change) {
        change(r);
        return r;
    };
    const std::vector<Bad> bad{
        {request("nobody", "audit:read"), "no principal named"},
        {request("", "audit:read"), "no principal named"},
        {request("uid=x", "audit:read"), "whole number"},
        {request("uid=1000,uid=1", "audit:read"), "twice"},
        {request("agents", "audit:write"), "unknown capability"},
        {request("agents", "provider:nope:request"), "not defined"},
        {request("agents", "audit:read", ""), "ttl is required"},
        {request("agents", "audit:read", "0s"), "ttl"},
        {request("agents", "audit:read", "forever"), "ttl"},
        {request("agents", "audit:read", "3651d"), "ttl"},
        {with(request("agents", "audit:read"), [](GrantRequest& r) { r.max_uses = 0; }), "max_uses"},
        {with(request("agents", "audit:read"), [](GrantRequest& r) { r.rate = "fast"; }), "rate"},
        {with(request("agents", "audit:read"), [](GrantRequest& r) { r.approval = "maybe"; }), "approval"},
        {with(request("agents", "audit:read"), [](GrantRequest& r) { r.requests = {"GET /x"}; }),
         "only be given for provider"},
        {with(request("agents", "provider:openai:request"), [](GrantRequest& r) { r.requests = {"GET /v1/*"}; }),
         "not within"},
        {with(request("agents", "provider:openai:request"), [](GrantRequest& r) { r.requests = {"GET /v1/../x"}; }),
         "request pattern"},
        {with(request("agents", "audit:read"), [](GrantRequest& r) { r.description = std::string(2000, 'x'); }),
         "description"},
    };
    for (const auto& b : bad) {
        const auto result = engine.issue(b.request, fresh(), kT0);
        cr_assert_not(result.ok(), "%s %s accepted", b.request.principal.c_str(), b.request.capability.c_str());
        cr_assert(result.message().find(b.fragment) != std::string::npos, "want \"%s\" in: %s", b.fragment,
                  result.message().c_str());
    }
    cr_assert_eq(engine.grants().size(), 1U, "nothing half-issued");

    // Inline principal, provider grant narrowed within the provider's set.
    GrantRequest narrowed = request("uid=1000,exe=/usr/bin/python3", "provider:openai:request");
    narrowed.requests = {"GET /v1/models/gpt/*"};
    narrowed.rate = "10/s";
    narrowed.max_uses = 5;
    narrowed.approval = "once";
    const auto ok = engine.issue(narrowed, fresh(), kT0);
    cr_assert(ok.ok(), "%s", ok.ok() ? "" : ok.message().c_str());
    cr_assert_eq(engine.grants().find(ok.value().view())->definition.principal_label,
                 "inline:uid=1000,exe=/usr/bin/python3");
}

Test(policy_grants, expiry_is_checked_at_the_moment_of_use)
{
    Engine engine = make_engine();
    cr_assert(engine.issue(request("agents", "audit:read", "1h"), fresh(), kT0).ok());
    const Subject s;
    cr_assert_eq(use(engine, s, kAudit, {}, kT0 + 3600 * kSec - 1).verdict, Verdict::Allow);
    const Decision expired = use(engine, s, kAudit, {}, kT0 + 3600 * kSec);
    cr_assert_eq(expired.verdict, Verdict::Deny);
    cr_assert_eq(expired.reason, Reason::GrantExpired);
    cr_assert_not(expired.grant_id.empty(), "the denial names the grant that came closest");
}

Test(policy_grants, max_uses_and_check_consumes_nothing)
{
    Engine engine = make_engine();
    GrantRequest r = request("agents", "audit:read");
    r.max_uses = 3;
    cr_assert(engine.issue(r, fresh(), kT0).ok());
    const Subject s;
    const std::string before = encode_state(engine.grants(), engine.approvals());
    for (int i = 0; i < 50; ++i) {
        cr_assert_eq(engine.check(s.view(), kAudit, {}, kT0).verdict, Verdict::Allow);
        cr_assert_eq(engine.evaluate(s.view(), kAudit, {}, kT0, Mode::Check, fresh()).verdict, Verdict::Allow);
    }
    cr_assert_eq(encode_state(engine.grants(), engine.approvals()), before, "Check changed nothing");
    for (int i = 0; i < 3; ++i) {
        cr_assert_eq(use(engine, s, kAudit, {}, kT0 + static_cast<std::uint64_t>(i)).verdict, Verdict::Allow, "use %d",
                     i);
    }
    const Decision fourth = use(engine, s, kAudit, {}, kT0 + 10);
    cr_assert_eq(fourth.verdict, Verdict::Deny);
    cr_assert_eq(fourth.reason, Reason::GrantUsedUp);
    cr_assert_eq(engine.check(s.view(), kAudit, {}, kT0 + 10).reason, Reason::GrantUsedUp);

    // Policy grants count their uses too.
    for (int i = 0; i < 2; ++i) {
        cr_assert_eq(use(engine, s, kOpenai, chat(), kT0).verdict, Verdict::Allow);
    }
    cr_assert_eq(use(engine, s, kOpenai, chat(), kT0).reason, Reason::GrantUsedUp);
}

Test(policy_grants, rate_limits)
{
    Engine engine = make_engine();
    GrantRequest r = request("agents", "audit:read");
    r.rate = "2/min";
    cr_assert(engine.issue(r, fresh(), kT0).ok());
    const Subject s;
    cr_assert_eq(use(engine, s, kAudit, {}, kT0).verdict, Verdict::Allow);
    cr_assert_eq(use(engine, s, kAudit, {}, kT0 + kSec).verdict, Verdict::Allow);
    const Decision limited = use(engine, s, kAudit, {}, kT0 + 2 * kSec);
    cr_assert_eq(limited.verdict, Verdict::Deny);
    cr_assert_eq(limited.reason, Reason::RateLimited);
    // Checks while limited change nothing; a denied use costs nothing either.
    cr_assert_eq(engine.check(s.view(), kAudit, {}, kT0 + 29 * kSec).reason, Reason::RateLimited);
    cr_assert_eq(use(engine, s, kAudit, {}, kT0 + 30 * kSec).verdict, Verdict::Allow, "one interval later");
    cr_assert_eq(use(engine, s, kAudit, {}, kT0 + 31 * kSec).reason, Reason::RateLimited);

    // The limiter's state persists: still limited after a restart.
    Engine restarted = restart(engine, engine.policy());
    cr_assert_eq(restarted.check(s.view(), kAudit, {}, kT0 + 31 * kSec).reason, Reason::RateLimited);
    cr_assert_eq(restarted.check(s.view(), kAudit, {}, kT0 + 60 * kSec).verdict, Verdict::Allow);
}

Test(policy_grants, revocation_survives_json_and_reload)
{
    Engine engine = make_engine();
    const auto id = engine.issue(request("agents", "audit:read"), fresh(), kT0);
    const Subject s;
    cr_assert_eq(use(engine, s, kAudit, {}, kT0).verdict, Verdict::Allow);
    cr_assert_eq(engine.revoke(id.value().view(), kT0 + kSec), RevokeResult::Revoked);
    cr_assert_eq(engine.revoke(id.value().view(), kT0 + kSec), RevokeResult::AlreadyRevoked);
    cr_assert_eq(engine.revoke("g-0000000000000000", kT0), RevokeResult::NotFound);
    cr_assert_eq(use(engine, s, kAudit, {}, kT0 + 2 * kSec).reason, Reason::GrantRevoked);

    // A policy grant, revoked by name.
    cr_assert_eq(use(engine, s, kStatus, {}, kT0).verdict, Verdict::Allow);
    cr_assert_eq(engine.revoke("static-status", kT0 + kSec), RevokeResult::Revoked);
    cr_assert_eq(use(engine, s, kStatus, {}, kT0 + 2 * kSec).reason, Reason::GrantRevoked);

    // Restart: state through JSON, policy loaded again from the same text.
    Engine restarted = restart(engine, load(kPolicy));
    cr_assert_eq(use(restarted, s, kAudit, {}, kT0 + 3 * kSec).reason, Reason::GrantRevoked);
    cr_assert_eq(use(restarted, s, kStatus, {}, kT0 + 3 * kSec).reason, Reason::GrantRevoked);
    const RuntimeGrant* grant = restarted.grants().find(id.value().view());
    cr_assert_not_null(grant);
    cr_assert_eq(grant->usage.uses, 1U);
    cr_assert_eq(grant->revoked_at_usec.value(), kT0 + kSec);

    // Reload (SIGHUP) with a new policy set: the policy grant stays revoked, and is still known
    // as revoked (not "not found") to a second revocation.
    restarted.set_policy(load(kPolicy + "\n# edited\n"));
    cr_assert_eq(use(restarted, s, kStatus, {}, kT0 + 4 * kSec).reason, Reason::GrantRevoked);
    cr_assert_eq(restarted.revoke("static-status", kT0 + 5 * kSec), RevokeResult::AlreadyRevoked);
    cr_assert_eq(use(restarted, s, kStatus, {}, kT0 + 5 * kSec).reason, Reason::GrantRevoked);
}

Test(policy_grants, revoke_all)
{
    Engine engine = make_engine();
    for (int i = 0; i < 3; ++i) {
        cr_assert(engine.issue(request("agents", "audit:read"), fresh(), kT0).ok());
    }
    cr_assert_eq(engine.revoke_all(kT0 + kSec), 5U, "3 runtime + 2 policy grants");
    cr_assert_eq(engine.revoke_all(kT0 + kSec), 0U);
    const Subject s;
    cr_assert_eq(engine.check(s.view(), kAudit, {}, kT0 + kSec).reason, Reason::GrantRevoked);
    cr_assert_eq(engine.check(s.view(), kStatus, {}, kT0 + kSec).reason, Reason::GrantRevoked);
    cr_assert_eq(engine.check(s.view(), kOpenai, chat(), kT0 + kSec).reason, Reason::GrantRevoked);
    for (const auto& info : engine.list_grants(kT0 + kSec)) {
        cr_assert_eq(info.state, GrantState::Revoked, "%s", info.definition.id.c_str());
    }
    Engine restarted = restart(engine, load(kPolicy));
    for (const auto& info : restarted.list_grants(kT0 + kSec)) {
        cr_assert_eq(info.state, GrantState::Revoked, "%s after restart", info.definition.id.c_str());
    }
}

Test(policy_grants, json_round_trip_is_exact)
{
    Engine engine = make_engine();
    GrantRequest full = request("python", "provider:openai:request", "7d");
    full.max_uses = 10;
    full.rate = "5/s";
    full.approval = "once";
    full.requests = {"GET /v1/models/*"};
    full.description = "all options \"quoted\" caf\xc3\xa9";
    cr_assert(engine.issue(full, fresh(), kT0).ok());
    cr_assert(
        engine
            .issue(request("uid=1000,gid=5,unit=a.service,cgroup=/x,exe=/bin/sh,exe_sha256=" + std::string(64, 'a'),
                           "secret:k:inject"),
                   fresh(), kT0)
            .ok());
    const Subject s;
    cr_assert_eq(use(engine, s, kOpenai, chat(), kT0).verdict, Verdict::Allow);
    RequestContext models;
    models.method = "GET";
    models.path = "/v1/models/gpt";
    const Decision asked = use(engine, s, kOpenai, models, kT0);
    cr_assert_eq(asked.verdict, Verdict::ApprovalRequired, "%s", std::string(asked.reason_text()).c_str());
    cr_assert_eq(engine.approve(asked.approval_id.view(), kT0), DecideResult::Ok);
    models.approval_id = asked.approval_id.view();
    cr_assert_eq(use(engine, s, kOpenai, models, kT0).verdict, Verdict::Allow);
    engine.revoke("static-status", kT0);

    const std::string first = encode_state(engine.grants(), engine.approvals());
    auto decoded = decode_state(first);
    cr_assert(decoded.ok(), "%s", decoded.ok() ? "" : decoded.message().c_str());
    cr_assert_eq(encode_state(decoded.value().grants, decoded.value().approvals), first);

    // The approval once given is part of the state.
    Engine restarted = restart(engine, engine.policy());
    RequestContext again;
    again.method = "GET";
    again.path = "/v1/models/other";
    cr_assert_eq(use(restarted, s, kOpenai, again, kT0 + kSec).verdict, Verdict::Allow);
}

Test(policy_grants, decode_rejects_bad_state_cleanly)
{
    Engine engine = make_engine();
    cr_assert(engine.issue(request("agents", "audit:read"), IdSeed{1, 2, 3, 4, 5, 6, 7, 8}, kT0).ok());
    const std::string good = encode_state(engine.grants(), engine.approvals());
    cr_assert(decode_state(good).ok());

    auto replace = [&good](const std::string& from, const std::string& to) {
        std::string text = good;
        const auto at = text.find(from);
        cr_assert_neq(at, std::string::npos, "%s", from.c_str());
        return text.replace(at, from.size(), to);
    };
    const std::vector<std::string> bad{
        "",
        "null",
        "[]",
        "{}",
        "{\"format\": \"codex-vault-policy-state\"",
        std::string(100'000, '['),
        "{\"format\": \"x\", \"version\": 1}",
        replace("\"version\": 1", "\"version\": 2"),
        replace("\"id\": \"g-0102030405060708\"", "\"id\": \"g-XYZ\""),
        replace("\"id\": \"g-0102030405060708\"", "\"id\": \"static\""),
        replace("\"capability\": \"audit:read\"", "\"capability\": \"audit:write\""),
        replace("\"capability\": \"audit:read\"", "\"capability\": 5"),
        replace("\"uid\": 1000", "\"uid\": -1"),
        replace("\"uid\": 1000", "\"uid\": 4294967295"),
        replace("\"uid\": 1000", "\"user\": 1000"),
        replace("\"uses\": 0", "\"uses\": -3"),
        replace("\"uses\": 0", "\"uses\": 1.5"),
        replace("\"approval\": \"none\"", "\"approval\": \"sometimes\""),
        replace("\"revoked_at\": null", "\"revoked_at\": \"now\""),
        replace("\"requests\": []", "\"requests\": [\"GET /x\"]"),
        replace("\"sequence\": 4294967296", "\"sequence\": 3"),
        replace("\"max_uses\": null,", ""),
        replace("\"runtime_grants\": [", "\"runtime_grants\": [{},"),
        replace("\"policy_grant_revocations\": []",
                "\"policy_grant_revocations\": [{\"name\": \"../x\", \"revoked_at\": 1}]"),
        replace("\"approvals\": []", "\"approvals\": [{\"id\": \"a-00\"}]"),
        "{\"format\": \"codex-vault-policy-state\", \"version\": 1, \"x\": \"\xff\"}",
    };
    for (const auto& text : bad) {
        const auto result = decode_state(text);
        cr_assert_not(result.ok(), "accepted: %.200s", text.c_str());
        cr_assert_not(result.message().empty());
    }
    // Duplicated grants are refused.
    const auto start = good.find("\"runtime_grants\": [") + 19;
    const auto end = good.find("\n ]", start);
    std::string twice = good;
    twice.insert(end, "," + good.substr(start, end - start));
    const auto duplicated = decode_state(twice);
    cr_assert_not(duplicated.ok());
    cr_assert(duplicated.message().find("duplicate") != std::string::npos, "%s", duplicated.message().c_str());
}

Test(policy_grants, provider_requests_are_checked)
{
    Engine engine = make_engine();
    const Subject s;
    auto req = [](const char* method, const char* path) {
        RequestContext r;
        r.method = method;
        r.path = path;
        return r;
    };
    cr_assert_eq(engine.check(s.view(), kOpenai, chat(), kT0).verdict, Verdict::Allow);
    cr_assert_eq(engine.check(s.view(), kOpenai, req("POST", "/v1/chat/completions/../x"), kT0).reason,
                 Reason::InvalidRequest);
    cr_assert_eq(engine.check(s.view(), kOpenai, req("post", "/v1/chat/completions"), kT0).reason,
                 Reason::InvalidRequest);
    cr_assert_eq(engine.check(s.view(), kOpenai, req("POST", "/v1/%2e%2e/admin"), kT0).reason, Reason::InvalidRequest);
    cr_assert_eq(engine.check(s.view(), kOpenai, req("DELETE", "/v1/chat/completions"), kT0).reason,
                 Reason::RequestNotAllowed, "not in the provider's allow list");
    // Allowed by the provider, but not by the only grant (it is narrowed to chat).
    cr_assert_eq(engine.check(s.view(), kOpenai, req("GET", "/v1/models/gpt"), kT0).reason, Reason::RequestNotAllowed);
    cr_assert_eq(engine.check(s.view(), Capability::provider_request("nope"), chat(), kT0).reason,
                 Reason::ProviderNotDefined);

    // A runtime grant for a provider that a reload removed: denied, not an error.
    GrantRequest r = request("agents", "provider:openai:request");
    cr_assert(engine.issue(r, fresh(), kT0).ok());
    cr_assert_eq(engine.check(s.view(), kOpenai, req("GET", "/v1/models/gpt"), kT0).verdict, Verdict::Allow);
    engine.set_policy(load("[principals.agents]\nuid = 1000\n"));
    cr_assert_eq(engine.check(s.view(), kOpenai, chat(), kT0).reason, Reason::ProviderNotDefined);
}

Test(policy_grants, principal_is_fixed_when_issued)
{
    Engine engine = make_engine();
    cr_assert(engine.issue(request("agents", "audit:read"), fresh(), kT0).ok());
    // The reload changes what "agents" means; the runtime grant keeps what the founder saw.
    engine.set_policy(load("[principals.agents]\nuid = 2000\n"));
    Subject s;
    cr_assert_eq(engine.check(s.view(), kAudit, {}, kT0).verdict, Verdict::Allow);
    s.uid = 2000;
    cr_assert_eq(engine.check(s.view(), kAudit, {}, kT0).verdict, Verdict::Deny);
}

Test(policy_grants, uid_index_and_fallback)
{
    Engine engine = make_engine();
    cr_assert(engine.issue(request("exe=/usr/bin/python3", "audit:read"), fresh(), kT0).ok(), "no uid: fallback list");
    for (std::uint32_t uid = 0; uid < 200; ++uid) {
        cr_assert(engine.issue(request("uid=" + std::to_string(uid + 5000), "secret:k:inject"), fresh(), kT0).ok());
    }
    Subject s;
    for (std::uint32_t uid : {0U, 1000U, 65534U}) {
        s.uid = uid;
        cr_assert_eq(engine.check(s.view(), kAudit, {}, kT0).verdict, Verdict::Allow, "uid %u", uid);
    }
    s.uid = 5123;
    const Decision found = engine.check(s.view(), Capability::secret_inject("k"), {}, kT0);
    cr_assert_eq(found.verdict, Verdict::Allow);
    cr_assert_eq(engine.grants().find(found.grant_id.view())->definition.principal.uid.value(), 5123U);
    s.uid = 4999;
    cr_assert_eq(engine.check(s.view(), Capability::secret_inject("k"), {}, kT0).reason, Reason::PrincipalMismatch);
    cr_assert_eq(engine.check(s.view(), Capability::secret_inject("other"), {}, kT0).reason, Reason::NoGrant);
}

Test(policy_grants, list_prune_and_grants_for)
{
    Engine engine = make_engine();
    const auto short_lived = engine.issue(request("agents", "audit:read", "1m"), fresh(), kT0);
    const auto revoked = engine.issue(request("agents", "audit:read", "1d"), fresh(), kT0);
    const auto live = engine.issue(request("uid=1", "audit:read", "1d"), fresh(), kT0);
    engine.revoke(revoked.value().view(), kT0);
    const auto all = engine.list_grants(kT0 + 2 * 60 * kSec);
    cr_assert_eq(all.size(), 5U);
    cr_assert_eq(all[0].definition.id, "static-status", "policy grants first");
    cr_assert_eq(all[0].definition.origin, GrantOrigin::Policy);
    cr_assert_eq(all[2].state, GrantState::Expired);
    cr_assert_eq(all[3].state, GrantState::Revoked);
    cr_assert_eq(all[4].state, GrantState::Active);

    const Subject s;
    const auto mine = engine.grants_for(s.view(), kT0 + 2 * 60 * kSec);
    cr_assert_eq(mine.size(), 2U, "static-status and static-chat; not expired, revoked or another uid's");

    cr_assert_eq(engine.grants().prune(engine.policy().get(), kT0 + 2 * 60 * kSec, 3600 * kSec), 0U, "kept an hour");
    cr_assert_eq(engine.grants().prune(engine.policy().get(), kT0 + 2 * 3600 * kSec, 3600 * kSec), 2U);
    cr_assert_null(engine.grants().find(short_lived.value().view()));
    cr_assert_null(engine.grants().find(revoked.value().view()));
    cr_assert_not_null(engine.grants().find(live.value().view()));
    Subject one;
    one.uid = 1;
    cr_assert_eq(engine.check(one.view(), kAudit, {}, kT0 + 2 * 3600 * kSec).verdict, Verdict::Allow,
                 "index rebuilt after prune");
}

Test(policy_grants, explain_says_why)
{
    Engine engine = make_engine();
    const auto id = engine.issue(request("agents", "audit:read"), IdSeed{0, 0, 0, 0, 0, 0, 0, 0x12}, kT0);
    cr_assert(
        engine.issue(request("uid=1000,exe=/usr/bin/perl", "audit:read"), IdSeed{0, 0, 0, 0, 0, 0, 0, 0x13}, kT0).ok());
    Subject s;
    s.uid = 1001;
    const Explanation why = engine.explain(s.view(), kAudit, {}, kT0);
    const std::string text = why.text();
    cr_assert_eq(why.decision.verdict, Verdict::Deny);
    cr_assert(text.find("grant g-0000000000000012 (principal agents): uid 1001 != 1000\n") != std::string::npos, "%s",
              text.c_str());
    cr_assert(text.find("grant g-0000000000000013 (principal inline:uid=1000,exe=/usr/bin/perl): uid 1001 != 1000; "
                        "exe \"/usr/bin/python3\" != \"/usr/bin/perl\"") != std::string::npos,
              "%s", text.c_str());
    cr_assert(text.find("decision: deny (no grant for this capability matches the caller)") != std::string::npos, "%s",
              text.c_str());

    s.uid = 1000;
    engine.revoke(id.value().view(), kT0);
    const std::string allowed = engine.explain(s.view(), kStatus, {}, kT0).text();
    cr_assert(allowed.find("grant static-status (principal agents, grants.toml:") != std::string::npos, "%s",
              allowed.c_str());
    cr_assert(allowed.find("decision: allow (allowed by grant) grant static-status") != std::string::npos, "%s",
              allowed.c_str());
    const std::string revoked = engine.explain(s.view(), kAudit, {}, kT0).text();
    cr_assert(revoked.find("principal matches; grant revoked") != std::string::npos, "%s", revoked.c_str());
    const std::string none = engine.explain(s.view(), Capability::of(CapabilityKind::IngestScan), {}, kT0).text();
    cr_assert(none.find("no grant names capability ingest:scan") != std::string::npos, "%s", none.c_str());

    s.exe.clear();
    SubjectView blind = s.view();
    blind.exe.reset();
    const std::string unknown = engine.explain(blind, kOpenai, chat(), kT0).text();
    cr_assert(unknown.find("exe=(unknown)") != std::string::npos, "%s", unknown.c_str());
    cr_assert(unknown.find("static-chat") != std::string::npos && unknown.find(": exe unknown") != std::string::npos,
              "%s", unknown.c_str());
    cr_assert(unknown.find("decision: deny (exe unknown)") != std::string::npos, "%s", unknown.c_str());

    Engine empty;
    cr_assert(empty.explain(s.view(), kAudit, {}, kT0).text().find("no valid policy is loaded") != std::string::npos);
}

// The daemon re-reads a caller's supplementary groups only while some grant could match on them.
Test(policy_grants, the_engine_says_whether_any_grant_matches_on_groups)
{
    Engine engine = make_engine();
    cr_assert_not(engine.matches_groups(), "no principal in kPolicy has a gid");
    cr_assert(engine.issue(request("uid=1000", "audit:read"), fresh(), kT0).ok());
    cr_assert_not(engine.matches_groups());
    const auto issued = engine.issue(request("gid=4242", "audit:read"), fresh(), kT0);
    cr_assert(issued.ok());
    cr_assert(engine.matches_groups(), "a runtime grant with a gid condition");
    // A revoked grant stays in the index: still answered as matching (conservative).
    (void)engine.revoke(issued.value().view(), kT0);
    cr_assert(engine.matches_groups());
    // Kept across a restart (the state decoded from disk).
    cr_assert(restart(engine, load(kPolicy)).matches_groups());

    Engine from_policy;
    from_policy.set_policy(
        load("[principals.staff]\ngid = 50\n[grants.staff-audit]\nprincipal = \"staff\"\n"
             "capability = \"audit:read\"\n"));
    cr_assert(from_policy.matches_groups(), "a policy grant with a gid condition");
    from_policy.set_policy(load(kPolicy));
    cr_assert_not(from_policy.matches_groups(), "the reload removed it");
    from_policy.set_policy(nullptr);
    cr_assert_not(from_policy.matches_groups());
}
