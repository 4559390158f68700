// Policy files: good documents load (the shipped examples among them), bad ones give errors that
// name the file, line and column, and hostile input (huge, deeply nested, non-UTF-8, random
// bytes) gives a clean error: never a crash, an exception or a partial policy.
#include <criterion/criterion.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "policy/engine.hpp"
#include "policy/policy_parser.hpp"

using namespace codexvault::policy;

namespace {

LoadResult load_one(std::string_view name, std::string_view content)
{
    const PolicyDocument document{name, content};
    return load_policy(std::span<const PolicyDocument>(&document, 1));
}

const std::string kProvider =
    "[providers.p]\n"
    "origin = \"https://api.example.com\"\n"
    "allow = [\"POST /v1/*\"]\n"
    "secret = \"k\"\n"
    "inject = { header = \"Authorization\", template = \"Bearer {secret}\" }\n";

std::filesystem::path source_root()
{
    // tests/unit/policy/this_file.cpp -> the checkout (relative when built from the checkout's root).
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

std::string slurp(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

struct BadCase {
    std::string content;
    std::uint32_t line;
    std::uint32_t column;
    std::string fragment;
};

}  // namespace

Test(policy_parser, good_documents_load)
{
    const std::vector<std::string> good{
        "",
        "# only a comment\n",
        "version = 1\n",
        "[principals.a]\nuid = 0\n",
        "[principals.a]\ngid = 4294967294\n",
        "[principals.a]\nunit = \"agent@1.service\"\n",
        "[principals.a]\ncgroup = \"/user.slice/user-1000.slice\"\n",
        "[principals.a]\nexe = \"/usr/bin/python3\"\n"
        "exe_sha256 = \"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08\"\n",
        "principals.a.uid = 5\n",
        "[principals]\na = { uid = 1, description = \"inline table\" }\n",
        kProvider,
        kProvider +
            "[grants.g]\nprincipal = \"uid=1\"\ncapability = \"provider:p:request\"\n"
            "requests = [\n  \"POST /v1/chat\",  # one\n  \"POST /v1/x/*\",\n]\n",
        "[grants.g]\nprincipal = \"uid=1,exe=/bin/sh\"\ncapability = \"secret:k:inject\"\napproval = \"once\"\n"
        "max_uses = 1000000000\nrate = \"1000000/s\"\nexpires = 2030-06-01T12:00:00+02:00\n",
        "[principals.a]\nuid = 1\n[grants.g]\nprincipal = \"a\"\ncapability = \"ingest:scan\"\napproval = \"each\"\n"
        "description = \"caf\xc3\xa9\"\n",
    };
    for (const auto& content : good) {
        const auto result = load_one("good.toml", content);
        cr_assert(result.ok(), "%s\n---\n%s", content.c_str(), result.error_text().c_str());
    }
    const auto loaded = load_one("x.toml", kProvider +
                                               "[grants.g]\nprincipal = \"uid=7\"\ncapability = "
                                               "\"provider:p:request\"\nexpires = 2030-01-01T00:00:00Z\n");
    const GrantDefinition* grant = loaded.policy->find_grant("g");
    cr_assert_not_null(grant);
    cr_assert_eq(grant->principal_label, "inline:uid=7");
    cr_assert_eq(grant->expires_at_usec.value(), 1'893'456'000ULL * 1'000'000);
    cr_assert_eq(grant->source.to_string(), "x.toml:6:9");
    cr_assert_eq(loaded.policy->find_provider("p")->inject.prefix, "Bearer ");
}

Test(policy_parser, shipped_examples_load)
{
    const auto dir = source_root() / "policy" / "examples";
    std::vector<std::string> names;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        if (entry.path().extension() == ".toml") {
            names.push_back(entry.path().filename().string());
        }
    }
    std::sort(names.begin(), names.end());
    cr_assert_geq(names.size(), 3U, "examples in %s", dir.c_str());
    std::vector<std::string> contents;
    for (const auto& name : names) {
        contents.push_back(slurp(dir / name));
    }
    std::vector<PolicyDocument> documents;
    for (std::size_t i = 0; i < names.size(); ++i) {
        documents.push_back(PolicyDocument{names[i], contents[i]});
        const auto alone = load_one(names[i], contents[i]);
        // Each file parses on its own except for references to the others.
        for (const auto& diagnostic : alone.errors) {
            cr_assert(diagnostic.message.find("no principal named") != std::string::npos ||
                          diagnostic.message.find("not defined") != std::string::npos,
                      "%s", diagnostic.to_string().c_str());
        }
    }
    const auto result = load_policy(documents);
    cr_assert(result.ok(), "%s", result.error_text().c_str());
    cr_assert_geq(result.policy->principals().size(), 3U);
    cr_assert_geq(result.policy->providers().size(), 2U);
    cr_assert_geq(result.policy->grants().size(), 5U);
}

Test(policy_parser, bad_documents_name_file_line_and_column)
{
    const std::vector<BadCase> cases{
        {"[principals.a\nuid = 1\n", 1, 14, "TOML syntax"},
        {"x = \"unterminated\n", 1, 18, "TOML syntax"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\n[grants.g]\nprincipal = \"uid=2\"\n", 4, 1,
         "cannot redefine"},
        {"frobnicate = 1\n", 1, 1, "unknown top-level key \"frobnicate\""},
        {"version = 2\n", 1, 11, "version must be 1"},
        {"principals = 5\n", 1, 1, "principals must be a table"},
        {"[principals.a]\nuidd = 1000\n", 2, 1, "unknown key \"uidd\""},
        {"[principals.a]\nuid = -5\n", 2, 7, "uid must be a whole number"},
        {"[principals.a]\nuid = 4294967295\n", 2, 7, "uid must be a whole number"},
        {"[principals.a]\nuid = \"1000\"\n", 2, 7, "uid must be an integer"},
        {"[principals.a]\ndescription = \"x\"\n", 1, 13, "has no conditions"},
        {"[principals.\"bad name\"]\nuid = 1\n", 1, 13, "principal name \"bad name\""},
        {"[principals.a]\nexe = \"python3\"\n", 2, 7, "absolute path"},
        {"[principals.a]\nexe = \"/usr/bin/x\\u0000y\"\n", 2, 7, "absolute path"},
        {"[principals.a]\nunit = \"agent\"\n", 2, 8, "systemd unit"},
        {"[principals.a]\ncgroup = \"/\"\n", 2, 10, "cgroup"},
        {"[principals.a]\nexe_sha256 = \"abc\"\n", 2, 14, "64 hexadecimal"},
        {"[principals.a]\nuid = 1\ndescription = \"tab\\there\"\n", 3, 15, "control characters"},
        {"[providers.p]\norigin = \"http://api.example.com\"\nallow = [\"POST /v1/*\"]\nsecret = \"k\"\n"
         "inject = { header = \"Authorization\", template = \"Bearer {secret}\" }\n",
         2, 10, "https://"},
        {"[providers.p]\norigin = \"https://u@api.example.com\"\n", 2, 10, "userinfo"},
        {"[providers.p]\norigin = \"https://api.example.com\"\nallow = [\"POST /v1/*\"]\n"
         "inject = { header = \"Authorization\", template = \"Bearer {secret}\" }\n",
         1, 12, "secret is required"},
        {"[providers.p]\norigin = \"https://api.example.com\"\nallow = [\"POST /v1/*\",\n  \"GET /v1/../x\"]\n", 4, 3,
         "request pattern \"GET /v1/../x\""},
        {"[providers.p]\norigin = \"https://api.example.com\"\nallow = []\nsecret = \"k\"\n", 3, 9, "at least one"},
        {"[providers.p]\norigin = \"https://api.example.com\"\nallow = [\"POST /v1/*\"]\nsecret = \"k\"\n"
         "inject = { header = \"Host\", template = \"Bearer {secret}\" }\n",
         5, 10, "framing or routing header"},
        {"[providers.p]\norigin = \"https://api.example.com\"\nallow = [\"POST /v1/*\"]\nsecret = \"k\"\n"
         "inject = { header = \"Authorization\", template = \"Bearer\" }\n",
         5, 10, "{secret} exactly once"},
        {"[providers.p]\nsecret = \"../x\"\n", 2, 10, "not a valid secret name"},
        {kProvider + "[grants.g]\nprincipal = \"nobody\"\ncapability = \"status:read\"\n", 7, 13,
         "no principal named \"nobody\""},
        {kProvider + "[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:write\"\n", 8, 14,
         "unknown capability \"status:write\""},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"provider:nope:request\"\n", 3, 14,
         "provider \"nope\", which is not defined"},
        {kProvider +
             "[grants.g]\nprincipal = \"uid=1\"\ncapability = \"provider:p:request\"\nrequests = [\"GET /v1/x\"]\n",
         9, 12, "not within what provider \"p\" allows"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\nrequests = [\"GET /v1/x\"]\n", 4, 12,
         "only be given for provider"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\nttl = \"1h\"\n", 4, 1, "ttl is for runtime"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\nexpires = 2030-01-01T00:00:00\n", 4, 11,
         "UTC offset"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\nexpires = \"2030-01-01\"\n", 4, 11,
         "date-time"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\nexpires = 1969-12-31T00:00:00Z\n", 4, 11,
         "out of range"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\nmax_uses = 0\n", 4, 12, "max_uses"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\nrate = \"60/m\"\n", 4, 8, "ambiguous"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\napproval = \"sometimes\"\n", 4, 12,
         "approval must be"},
        {"[grants.g]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\nowner = \"me\"\n", 4, 1,
         "unknown key \"owner\""},
        {"[grants.g-0123456789abcdef]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\n", 1, 9,
         "form of a runtime grant id"},
        {"[grants.g]\nprincipal = \"uid=1\"\n", 1, 9, "capability is required"},
        {"[grants.g]\ncapability = \"status:read\"\n", 1, 9, "principal is required"},
        {"[grants.g]\nprincipal = \"uid=1,uid=2\"\ncapability = \"status:read\"\n", 2, 13, "given twice"},
        {"# ok\n[principals.a]\nexe = \"/usr/bin/caf\xc3\xa9\"\nunit = \"x\xff.service\"\n", 4, 10, "not valid UTF-8"},
        {std::string("[principals.a]\nuid = 1\n\0", 25), 3, 1, "NUL byte"},
    };
    for (const auto& c : cases) {
        const auto result = load_one("bad.toml", c.content);
        cr_assert_not(result.ok(), "accepted:\n%s", c.content.c_str());
        cr_assert_null(result.policy.get());
        cr_assert_geq(result.errors.size(), 1U);
        const Diagnostic& first = result.errors.front();
        const std::string shown = first.to_string();
        cr_assert_eq(first.where.file, "bad.toml", "%s", shown.c_str());
        cr_assert_eq(first.where.line, c.line, "line, want %u: %s\n---\n%s", c.line, shown.c_str(), c.content.c_str());
        cr_assert_eq(first.where.column, c.column, "column, want %u: %s\n---\n%s", c.column, shown.c_str(),
                     c.content.c_str());
        cr_assert(first.message.find(c.fragment) != std::string::npos, "want \"%s\" in: %s", c.fragment.c_str(),
                  shown.c_str());
        cr_assert(shown.rfind("bad.toml:" + std::to_string(c.line) + ":" + std::to_string(c.column) + ": ", 0) == 0,
                  "%s", shown.c_str());
    }
}

Test(policy_parser, every_error_is_reported_in_text_order)
{
    const auto result = load_one("m.toml", "[principals.a]\nuidd = 1\ngidd = 2\n[principals.b]\nexe = \"rel\"\n");
    cr_assert_eq(result.errors.size(), 3U, "%s", result.error_text().c_str());
    cr_assert_eq(result.errors[0].where.line, 2U);
    cr_assert_eq(result.errors[1].where.line, 3U);
    cr_assert_eq(result.errors[2].where.line, 5U);
    cr_assert_eq(result.error_text(),
                 "m.toml:2:1: principal \"a\": unknown key \"uidd\" (expected uid, gid, unit, cgroup, exe, exe_sha256, "
                 "description)\n"
                 "m.toml:3:1: principal \"a\": unknown key \"gidd\" (expected uid, gid, unit, cgroup, exe, exe_sha256, "
                 "description)\n"
                 "m.toml:5:7: principal \"b\": exe \"rel\" must be an absolute path without empty, \".\" or \"..\" "
                 "segments or a trailing '/'\n");
}

Test(policy_parser, across_documents)
{
    const std::string one = "[principals.a]\nuid = 1\n";
    const std::string two = "\n\n[principals.a]\ngid = 2\n";
    const PolicyDocument dup[] = {{"one.toml", one}, {"two.toml", two}};
    auto result = load_policy(dup);
    cr_assert_not(result.ok());
    cr_assert_eq(result.errors.size(), 1U);
    cr_assert_eq(result.errors[0].to_string(),
                 "two.toml:3:13: duplicate principal \"a\" (first defined at one.toml:1:13)");

    const PolicyDocument twice[] = {{"one.toml", one}, {"one.toml", one}};
    result = load_policy(twice);
    cr_assert_not(result.ok());
    cr_assert(result.errors[0].message.find("given twice") != std::string::npos);

    // A grant may use a principal and a provider from other documents.
    const std::string grants = "[grants.g]\nprincipal = \"a\"\ncapability = \"provider:p:request\"\n";
    const PolicyDocument split[] = {{"a.toml", grants}, {"b.toml", one}, {"c.toml", kProvider}};
    result = load_policy(split);
    cr_assert(result.ok(), "%s", result.error_text().c_str());

    // All or nothing: one bad document and there is no policy at all.
    const PolicyDocument mixed[] = {{"good.toml", one}, {"bad.toml", "[principals.b]\nuid = \"x\"\n"}};
    result = load_policy(mixed);
    cr_assert_null(result.policy.get());
    cr_assert_eq(result.errors.size(), 1U);
    cr_assert_eq(result.errors[0].where.file, "bad.toml");

    // Document names are shown escaped.
    result = load_one("evil\nname\x1b.toml", "x = 1\n");
    cr_assert_eq(result.errors[0].where.to_string(), "evil\\x0aname\\x1b.toml:1:1");
}

Test(policy_parser, grants_keep_the_order_of_the_text)
{
    // toml++ sorts keys; evaluation order must follow the files and the lines in them.
    const std::string first =
        "[grants.zz-first]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\n"
        "[grants.aa-second]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\n";
    const std::string second = "[grants.00-third]\nprincipal = \"uid=1\"\ncapability = \"status:read\"\n";
    const PolicyDocument documents[] = {{"10.toml", first}, {"20.toml", second}};
    const auto result = load_policy(documents);
    cr_assert(result.ok(), "%s", result.error_text().c_str());
    const auto& grants = result.policy->grants();
    cr_assert_eq(grants.size(), 3U);
    cr_assert_eq(grants[0].id, "zz-first");
    cr_assert_eq(grants[1].id, "aa-second");
    cr_assert_eq(grants[2].id, "00-third");
    Engine engine;
    engine.set_policy(result.policy);
    SubjectView subject;
    subject.uid = 1;
    const auto decision = engine.check(subject, Capability::of(CapabilityKind::StatusRead), {}, 0);
    cr_assert_eq(decision.grant_id.str(), "zz-first");
}

Test(policy_parser, hostile_input_is_a_clean_error)
{
    // Over 1 MiB.
    const std::string huge(1024 * 1024 + 1, '#');
    auto result = load_one("huge.toml", huge);
    cr_assert_not(result.ok());
    cr_assert(result.errors[0].message.find("1 MiB") != std::string::npos);
    cr_assert(load_one("max.toml", std::string(1024 * 1024, '#')).ok(), "exactly 1 MiB is allowed");

    // A dotted key 100,000 segments deep would exhaust toml++'s stack.
    std::string deep = "a";
    for (int i = 0; i < 100'000; ++i) {
        deep += ".a";
    }
    result = load_one("deep.toml", deep + " = 1\n");
    cr_assert_not(result.ok());
    cr_assert_eq(result.errors[0].where.line, 1U);
    cr_assert(result.errors[0].message.find("dotted-key") != std::string::npos);
    result = load_one("deep.toml", "[" + deep + "]\n");
    cr_assert_not(result.ok());

    // Nested arrays and inline tables.
    result = load_one("arrays.toml", "x = " + std::string(100'000, '['));
    cr_assert_not(result.ok());
    cr_assert(result.errors[0].message.find("nested") != std::string::npos);
    std::string tables = "x = ";
    for (int i = 0; i < 10'000; ++i) {
        tables += "{a=";
    }
    result = load_one("tables.toml", tables);
    cr_assert_not(result.ok());

    // Too many entries, too many assignments.
    std::string many;
    for (int i = 0; i < 10'001; ++i) {
        many += "[principals.p" + std::to_string(i) + "]\nuid = 1\n";
    }
    result = load_one("many.toml", many);
    cr_assert_not(result.ok());
    cr_assert(result.errors[0].message.find("more than 10000") != std::string::npos, "%s", result.error_text().c_str());
    std::string assignments;
    for (int i = 0; i < 200'001; ++i) {
        assignments += "a=1\n";
    }
    result = load_one("assign.toml", assignments);
    cr_assert_not(result.ok());
    cr_assert(result.errors[0].message.find("key/value pairs") != std::string::npos);

    // Non-UTF-8 and embedded NUL anywhere, including inside strings and comments.
    for (const std::string& bad : {std::string("# \xc3\x28\n"), std::string("a = \"\xff\"\n"),
                                   std::string("a = 1 # \xed\xa0\x80\n"), std::string("a = '\0'\n", 8)}) {
        result = load_one("bytes.toml", bad);
        cr_assert_not(result.ok());
        cr_assert_eq(result.errors[0].where.line, 1U);
    }

    // Lots of errors are capped.
    std::string noisy;
    for (int i = 0; i < 500; ++i) {
        noisy += "[principals.p" + std::to_string(i) + "]\nuid = -1\n";
    }
    result = load_one("noisy.toml", noisy);
    cr_assert_leq(result.errors.size(), 101U);
    cr_assert(result.error_text().find("too many errors") != std::string::npos);
}

Test(policy_parser, fuzz_seed_corpus_is_what_its_names_say)
{
    const auto dir = source_root() / "tests" / "fuzz" / "corpus" / "policy_parser";
    std::size_t good = 0;
    std::size_t bad = 0;
    for (const auto& entry : std::filesystem::directory_iterator(dir)) {
        const std::string name = entry.path().filename().string();
        const auto result = load_one(name, slurp(entry.path()));
        if (name.rfind("good-", 0) == 0) {
            cr_assert(result.ok(), "%s", result.error_text().c_str());
            ++good;
        } else {
            cr_assert_not(result.ok(), "%s loaded", name.c_str());
            ++bad;
        }
    }
    cr_assert_geq(good, 3U);
    cr_assert_geq(bad, 5U);
}

Test(policy_parser, random_mutations_never_crash)
{
    const std::string base = slurp(source_root() / "policy" / "examples" / "30-grants.toml") +
                             slurp(source_root() / "policy" / "examples" / "20-providers.toml");
    cr_assert_gt(base.size(), 100U);
    std::mt19937 random(12345);
    for (int round = 0; round < 1500; ++round) {
        std::string text = base;
        const int edits = 1 + static_cast<int>(random() % 8);
        for (int e = 0; e < edits; ++e) {
            const std::size_t at = random() % text.size();
            switch (random() % 4) {
            case 0:
                text[at] = static_cast<char>(random() % 256);
                break;
            case 1:
                text.erase(at, random() % 16);
                break;
            case 2:
                text.insert(at, std::string(1 + random() % 4, "[]{}=.\"'\n#,"[random() % 11]));
                break;
            default:
                text.insert(at, text.substr(random() % text.size(), random() % 64));
                break;
            }
            if (text.empty()) {
                text = "x";
            }
        }
        const auto result = load_one("mutant.toml", text);
        cr_assert(result.ok() == result.errors.empty());
        for (const auto& diagnostic : result.errors) {
            cr_assert_geq(diagnostic.where.line, 1U);
        }
    }
}
