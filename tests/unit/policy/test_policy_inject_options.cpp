// An inject grant's options (on_touch, on_expiry): carried in IssueGrant's requests list, kept
// across the grant state's JSON round trip, written in policy files, and refused anywhere else.
#include <criterion/criterion.h>

#include <cstdint>
#include <memory>
#include <string>

#include "policy/engine.hpp"
#include "policy/persistence.hpp"
#include "policy/policy_parser.hpp"
#include "policy/time_units.hpp"

using namespace codexvault::policy;

namespace {

constexpr std::uint64_t kT0 = 1'800'000'000ULL * kUsecPerSecond;

const std::string kPolicy = R"(
[principals.psql]
uid = 1000
exe = "/usr/bin/psql"

[grants.db]
principal = "psql"
capability = "secret:db:inject"
on_touch = "kill"
on_expiry = "terminate"

[grants.plain]
principal = "psql"
capability = "secret:other:inject"
)";

LoadResult load(const std::string& text)
{
    const PolicyDocument document{"inject.toml", text};
    return load_policy(std::span<const PolicyDocument>(&document, 1));
}

GrantRequest inject_request(std::vector<std::string> options)
{
    GrantRequest r;
    r.principal = "uid=1000";
    r.capability = "secret:db:inject";
    r.ttl = "1h";
    r.requests = std::move(options);
    return r;
}

IdSeed seed(std::uint8_t n)
{
    return IdSeed{0x20, n, 0, 0, 0, 0, 0, 1};
}

}  // namespace

Test(inject_options, a_policy_file_grant_carries_its_options_and_defaults_otherwise)
{
    const auto result = load(kPolicy);
    cr_assert(result.ok(), "%s", result.error_text().c_str());
    const GrantDefinition* db = result.policy->find_grant("db");
    cr_assert_not_null(db);
    cr_expect(db->inject.on_touch == InjectOnTouch::Kill);
    cr_expect(db->inject.on_expiry == InjectOnExpiry::Terminate);
    const GrantDefinition* plain = result.policy->find_grant("plain");
    cr_assert_not_null(plain);
    cr_expect(plain->inject == InjectOptions{});
}

Test(inject_options, a_policy_file_refuses_them_on_other_grants_and_unknown_values)
{
    cr_expect(!load("[principals.p]\nuid = 1\n[grants.g]\nprincipal = \"p\"\ncapability = \"audit:read\"\n"
                    "on_touch = \"kill\"\n")
                   .ok());
    cr_expect(!load("[principals.p]\nuid = 1\n[grants.g]\nprincipal = \"p\"\ncapability = \"secret:x:inject\"\n"
                    "on_touch = \"maybe\"\n")
                   .ok());
    cr_expect(!load("[principals.p]\nuid = 1\n[grants.g]\nprincipal = \"p\"\ncapability = \"secret:x:inject\"\n"
                    "on_expiry = \"kill\"\n")
                   .ok());
}

Test(inject_options, issued_options_survive_the_state_round_trip)
{
    const auto result = load(kPolicy);
    cr_assert(result.ok());
    Engine engine;
    engine.set_policy(result.policy);
    auto id = engine.issue(inject_request({"on_touch=kill", "on_expiry=terminate"}), seed(1), kT0);
    cr_assert(id.ok(), "%s", id.ok() ? "" : id.message().c_str());
    auto plain = engine.issue(inject_request({}), seed(2), kT0);
    cr_assert(plain.ok());
    auto state = decode_state(encode_state(engine.grants(), engine.approvals()));
    cr_assert(state.ok(), "%s", state.ok() ? "" : state.message().c_str());
    const RuntimeGrant* g = state.value().grants.find(id.value().str());
    cr_assert_not_null(g);
    cr_expect(g->definition.inject.on_touch == InjectOnTouch::Kill);
    cr_expect(g->definition.inject.on_expiry == InjectOnExpiry::Terminate);
    cr_expect(g->definition.requests.empty(), "options are not request patterns");
    const RuntimeGrant* p = state.value().grants.find(plain.value().str());
    cr_assert_not_null(p);
    cr_expect(p->definition.inject == InjectOptions{});
}

Test(inject_options, issue_refuses_unknown_options_and_options_on_other_grants)
{
    const auto result = load(kPolicy);
    cr_assert(result.ok());
    Engine engine;
    engine.set_policy(result.policy);
    cr_expect(!engine.issue(inject_request({"on_touch=explode"}), seed(3), kT0).ok());
    cr_expect(!engine.issue(inject_request({"POST /v1/x"}), seed(4), kT0).ok());
    GrantRequest audit = inject_request({"on_touch=kill"});
    audit.capability = "audit:read";
    cr_expect(!engine.issue(audit, seed(5), kT0).ok(), "on_touch is not a request pattern of another grant");
}

Test(inject_options, option_texts_round_trip)
{
    InjectOptions options;
    cr_expect(inject_option_texts(options).empty());
    cr_expect(apply_inject_option("on_touch=kill", options));
    cr_expect(apply_inject_option("on_expiry=terminate", options));
    cr_expect(!apply_inject_option("on_touch", options));
    cr_expect(!apply_inject_option("other=kill", options));
    InjectOptions again;
    for (const auto& text : inject_option_texts(options)) {
        cr_expect(apply_inject_option(text, again));
    }
    cr_expect(again == options);
}
