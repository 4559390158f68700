// The rules file as data: every rule's examples are found by that rule and its negative
// examples by none (so a new rule is tested by adding it), the family count, and the loader's
// refusal of malformed rules.
#include <criterion/criterion.h>

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "tests/unit/scan/scan_support.hpp"

using namespace scan_test;

Test(scan_rules, builtin_rules_load)
{
    const auto matcher = builtin_matcher();
    cr_assert_gt(matcher->rule_set().rules().size(), 0u);
}

Test(scan_rules, every_example_is_found_by_its_rule)
{
    std::size_t examples = 0;
    for (const Rule& rule : builtin_matcher()->rule_set().rules()) {
        for (const std::string& example : rule.examples) {
            ++examples;
            const ScanResult result = scan(example, example_file_name(rule));
            cr_expect_not_null(find_rule(result, rule.id), "rule %s misses its example #%zu (%zu findings)",
                               rule.id.c_str(), examples, result.findings.size());
        }
    }
    cr_assert_gt(examples, 100u);
}

Test(scan_rules, no_negative_example_produces_any_finding)
{
    std::size_t negatives = 0;
    for (const Rule& rule : builtin_matcher()->rule_set().rules()) {
        for (const std::string& example : rule.negative_examples) {
            ++negatives;
            // Under the rule's own file name and under a neutral one.
            for (const std::string& name : {example_file_name(rule), std::string("notes.txt")}) {
                const ScanResult result = scan(example, name);
                for (const Finding& finding : result.findings) {
                    cr_expect(false, "negative example of %s (as %s) is found by %s: %s", rule.id.c_str(), name.c_str(),
                              finding.rule_id.c_str(), finding.preview.c_str());
                }
            }
        }
    }
    cr_assert_gt(negatives, 100u);
}

// A gate may only spare searches: the same rules without their gates find exactly the same
// things in every example, negative example, and text built to sit at the edges of each gate.
Test(scan_rules, gates_never_hide_a_finding_the_pattern_would_make)
{
    std::string text(builtin_rules_text());
    std::size_t gates = 0;
    for (std::size_t at = text.find("\ngate = "); at != std::string::npos; at = text.find("\ngate = ", at)) {
        text.erase(at, text.find('\n', at + 1) - at);
        ++gates;
    }
    cr_assert_geq(gates, 3u);
    auto ungated = Matcher::create(text, "ungated.toml");
    cr_assert(ungated.ok(), "%s", ungated.ok() ? "" : ungated.message().c_str());
    Scanner plain(ungated.value());
    std::vector<std::string> inputs;
    for (const Rule& rule : builtin_matcher()->rule_set().rules()) {
        inputs.insert(inputs.end(), rule.examples.begin(), rule.examples.end());
        inputs.insert(inputs.end(), rule.negative_examples.begin(), rule.negative_examples.end());
    }
    const std::string value = "Zq7pX2mK9vR4tW8yB3nL";
    for (const std::string name :
         {"password", "db_password", "API_KEY", "client_secret.v2-x", "auth_token_for_the_service_account_x"}) {
        for (const std::string op : {"=", ":", ":=", "=>", "||=", "==", "= =", "=:"}) {
            for (const std::string space : {"", " ", "   ", "    ", "\t", "\n"}) {
                for (const std::string quote : {"\"", "'", "`", ""}) {
                    inputs.push_back(name + space + op + space + quote + value + quote);
                    inputs.push_back("\"" + name + "\"" + space + op + space + quote + value + quote);
                }
            }
        }
    }
    for (const std::string& user :
         {std::string(), std::string("u"), std::string("user.name"), std::string(128, 'u'), std::string(129, 'u')}) {
        for (const std::string scheme : {"https://", "postgres://", "SMTP://", "mongodb+srv://"}) {
            inputs.push_back(scheme + user + ":" + value + "@db.internal:5432/x");
            inputs.push_back(scheme + user + ":" + std::string(257, 'p') + "@db.internal");
            inputs.push_back(scheme + user + "@" + value + ":x@h");
        }
    }
    for (const std::string& input : inputs) {
        const ScanResult gated = scan(input, "src/app.py");
        const ScanResult bare = plain.scan(input, "src/app.py", kKey);
        cr_expect_eq(gated.findings.size(), bare.findings.size(), "%s", input.c_str());
        for (std::size_t i = 0; i < gated.findings.size() && i < bare.findings.size(); ++i) {
            cr_expect(gated.findings[i].rule_id == bare.findings[i].rule_id &&
                          gated.findings[i].offset == bare.findings[i].offset &&
                          gated.findings[i].length == bare.findings[i].length,
                      "%s", input.c_str());
        }
    }
}

Test(scan_rules, at_least_forty_families)
{
    std::set<std::string> families;
    for (const Rule& rule : builtin_matcher()->rule_set().rules()) {
        families.insert(rule.family);
    }
    cr_assert_geq(families.size(), 40u, "only %zu rule families", families.size());
    cr_assert_eq(families.size(), builtin_matcher()->rule_set().family_count());
}

Test(scan_rules, required_families_are_present)
{
    std::set<std::string> families;
    for (const Rule& rule : builtin_matcher()->rule_set().rules()) {
        families.insert(rule.family);
    }
    for (const char* family : {"aws",
                               "github",
                               "gitlab",
                               "openai",
                               "anthropic",
                               "google",
                               "slack",
                               "stripe",
                               "private-key",
                               "jwt",
                               "npm",
                               "pypi",
                               "huggingface",
                               "sendgrid",
                               "database-uri",
                               "hashicorp-vault",
                               "digitalocean",
                               "databricks",
                               "docker",
                               "shopify",
                               "azure",
                               "groq",
                               "perplexity",
                               "age",
                               "wireguard",
                               "twilio",
                               "mailgun",
                               "cloudflare",
                               "terraform",
                               "atlassian",
                               "mistral",
                               "xai",
                               "replicate",
                               "generic",
                               "high-entropy-string"}) {
        cr_expect(families.count(family) == 1, "family %s missing", family);
    }
}

Test(scan_rules, every_rule_is_well_formed)
{
    std::set<std::string> ids;
    for (const Rule& rule : builtin_matcher()->rule_set().rules()) {
        cr_expect(ids.insert(rule.id).second, "duplicate id %s", rule.id.c_str());
        cr_expect(!rule.name.empty(), "%s has no name", rule.id.c_str());
        cr_expect(!rule.examples.empty() && !rule.negative_examples.empty(), "%s lacks examples", rule.id.c_str());
        // A keyword rule whose pattern could start anywhere would search its whole window.
        if (!rule.keywords.empty()) {
            cr_expect_leq(rule.before, 1024u, "%s looks too far back", rule.id.c_str());
        }
    }
}

namespace {

constexpr std::string_view kGoodRule = R"(version = 1
[[rule]]
id = "demo"
family = "demo"
name = "Demo"
confidence = "high"
keywords = ["demo_"]
pattern = '''\b(demo_[a-z0-9]{20})\b'''
examples = ["demo_k3j9x7q2m8w4z1p6v5b0"]
negative_examples = ["demo_short"]
)";

std::string with(std::string_view from, std::string_view to)
{
    std::string text(kGoodRule);
    const auto at = text.find(from);
    if (at == std::string::npos) {
        return "not found";
    }
    text.replace(at, from.size(), to);
    return text;
}

void expect_refused(const std::string& text, const char* needle)
{
    const auto result = RuleSet::parse(text, "test.toml");
    cr_assert(!result.ok(), "accepted a rules file that should fail with '%s'", needle);
    cr_expect(result.message().find(needle) != std::string::npos, "message '%s' lacks '%s'", result.message().c_str(),
              needle);
}

}  // namespace

Test(scan_rules, loader_accepts_a_minimal_rule_and_matches_with_it)
{
    auto matcher = Matcher::create(kGoodRule, "test.toml");
    cr_assert(matcher.ok(), "%s", matcher.ok() ? "" : matcher.message().c_str());
    Scanner scanner(matcher.value());
    const auto result = scanner.scan("x = demo_k3j9x7q2m8w4z1p6v5b0\n", "a.txt", kKey);
    cr_assert_eq(result.findings.size(), 1u);
    cr_expect_eq(result.findings[0].offset, 4u);
    cr_expect_eq(result.findings[0].length, 25u);
}

Test(scan_rules, loader_refuses_malformed_rules)
{
    expect_refused("version = 1\n[[rule]\n", "test.toml:");
    expect_refused(with("version = 1", "version = 2"), "version = 1");
    expect_refused(with("confidence = \"high\"", "confidence = \"sure\""), "confidence");
    expect_refused(with("family = \"demo\"", "family = \"demo\"\ncolour = \"blue\""), "unknown key 'colour'");
    expect_refused(with("id = \"demo\"", "id = \"Demo Rule\""), "'id'");
    expect_refused(with(R"(\b(demo_[a-z0-9]{20})\b)", R"(demo_(\d+)\1)"), "backreferences");
    expect_refused(with(R"(\b(demo_[a-z0-9]{20})\b)", R"(demo_[a-z)"), "'pattern': at byte");
    expect_refused(with(R"(\b(demo_[a-z0-9]{20})\b)", R"((*UTF)demo_\w+)"), "UTF");
    expect_refused(with(R"(\b(demo_[a-z0-9]{20})\b)", R"((a)(b))"), "(?:...)");
    expect_refused(with(R"(\b(demo_[a-z0-9]{20})\b)", R"(x*)"), "empty string");
    expect_refused(with("name = \"Demo\"", "name = \"Demo\"\nverify = \"telepathy\""), "unknown verifier");
    expect_refused(with("negative_examples = [\"demo_short\"]", ""), "negative_examples");
    expect_refused(with("keywords = [\"demo_\"]", "keywords = [\"demo_\"]\nrun_class = '[a-z]'\nrun_min = 20"),
                   "exclude each other");
    expect_refused(with("keywords = [\"demo_\"]", "run_class = '[a-z]+'\nrun_min = 20"), "one byte class");
    expect_refused(with("keywords = [\"demo_\"]", "keywords = [\"\"]"), "keyword");
    expect_refused(with("name = \"Demo\"", "name = \"Demo\"\nmin_entropy = 9.5"), "min_entropy");
    expect_refused(with("name = \"Demo\"", "name = \"Demo\"\ngate = \"hunch\""), "unknown gate");
    expect_refused(with("keywords = [\"demo_\"]", "gate = \"assignment\""), "keyword rules only");
    expect_refused(with("keywords = [\"demo_\"]", "window = 64"), "keyword and run rules only");
    expect_refused(with("keywords = [\"demo_\"]", "keywords = [\"demo_\"]\nmax_length = 64"), "max_length");
    expect_refused(std::string(kGoodRule) + std::string(kGoodRule.substr(kGoodRule.find("[[rule]]"))), "duplicate");
}
