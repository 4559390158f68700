// Provider transport keys: the defaults a provider gets when it says nothing, every key parsed,
// each bad value refused with an error naming the file, line and key, and every shipped provider
// file under policy/providers/ loading cleanly.
#include <criterion/criterion.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "policy/policy_parser.hpp"
#include "policy/policy_set.hpp"

using namespace codexvault::policy;

namespace {

LoadResult load_one(std::string_view name, std::string_view content)
{
    const PolicyDocument document{name, content};
    return load_policy(std::span<const PolicyDocument>(&document, 1));
}

const std::string kBase =
    "[providers.p]\n"
    "origin = \"https://api.example.com\"\n"
    "allow = [\"POST /v1/*\"]\n"
    "secret = \"k\"\n"
    "inject = { header = \"Authorization\", template = \"Bearer {secret}\" }\n";

const Provider& only_provider(const LoadResult& loaded)
{
    cr_assert(loaded.ok(), "policy did not load: %s", loaded.error_text().c_str());
    const Provider* provider = loaded.policy->find_provider("p");
    cr_assert_not_null(provider);
    return *provider;
}

std::filesystem::path source_root()
{
    return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path().parent_path();
}

std::string slurp(const std::filesystem::path& path)
{
    std::ifstream in(path, std::ios::binary);
    std::ostringstream out;
    out << in.rdbuf();
    return out.str();
}

// 32 zero bytes, and 32 bytes 0xff, in standard base64.
const std::string kPinZero = "sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
const std::string kPinOnes = "sha256////////////////////////////////////////////8=";

}  // namespace

Test(policy_providers, a_provider_without_transport_keys_gets_the_safe_defaults)
{
    const LoadResult loaded = load_one("p.toml", kBase);
    const Provider& p = only_provider(loaded);
    cr_assert(p.transport.ca_file.empty());
    cr_assert(p.transport.pins.empty());
    cr_assert_not(p.transport.allow_private_address);
    cr_assert_eq(p.transport.timeouts.connect_usec, 10'000'000ULL);
    cr_assert_eq(p.transport.timeouts.idle_usec, 300'000'000ULL);
    cr_assert_not(p.transport.timeouts.total_usec.has_value());
    cr_assert_eq(p.transport.max_request_bytes, 32ULL * 1024 * 1024);
    cr_assert_eq(p.transport.max_response_bytes, 256ULL * 1024 * 1024);
    cr_assert_not(p.client.has_value());
}

Test(policy_providers, every_transport_key_is_parsed)
{
    const std::string text = kBase +
                             "ca_file = \"/etc/codex-vault/ca/internal.pem\"\n"
                             "pins = [\"" +
                             kPinZero + "\", \"" + kPinOnes +
                             "\"]\n"
                             "allow_private_address = true\n"
                             "timeouts = { connect = \"5s\", idle = \"2m\", total = \"1h\" }\n"
                             "max_request_bytes = \"1MiB\"\n"
                             "max_response_bytes = 4096\n"
                             "client = { base_url_env = \"OPENAI_BASE_URL\", base_path = \"/v1\", api_key_env = "
                             "\"OPENAI_API_KEY\" }\n";
    const LoadResult loaded = load_one("p.toml", text);
    const Provider& p = only_provider(loaded);
    cr_assert_eq(p.transport.ca_file, "/etc/codex-vault/ca/internal.pem");
    cr_assert_eq(p.transport.pins.size(), 2U);
    cr_assert_eq(p.transport.pins[1], kPinOnes);
    cr_assert(p.transport.allow_private_address);
    cr_assert_eq(p.transport.timeouts.connect_usec, 5'000'000ULL);
    cr_assert_eq(p.transport.timeouts.idle_usec, 120'000'000ULL);
    cr_assert_eq(p.transport.timeouts.total_usec.value_or(0), 3600'000'000ULL);
    cr_assert_eq(p.transport.max_request_bytes, 1024ULL * 1024);
    cr_assert_eq(p.transport.max_response_bytes, 4096ULL);
    cr_assert(p.client.has_value());
    cr_assert_eq(p.client->base_url_env, "OPENAI_BASE_URL");
    cr_assert_eq(p.client->base_path, "/v1");
    cr_assert_eq(p.client->api_key_env, "OPENAI_API_KEY");
}

Test(policy_providers, a_zero_byte_request_limit_is_allowed_for_bodyless_providers)
{
    const LoadResult loaded = load_one("p.toml", kBase + "max_request_bytes = 0\n");
    cr_assert_eq(only_provider(loaded).transport.max_request_bytes, 0ULL);
}

struct BadCase {
    std::string line;  // appended to kBase, so it is line 6
    std::uint32_t column;
    std::string fragment;
};

Test(policy_providers, bad_transport_values_are_refused_with_the_line_and_a_reason)
{
    const std::vector<BadCase> cases{
        {"ca_file = \"etc/ca.pem\"\n", 11, "must be an absolute path"},
        {"ca_file = \"/etc/../ca.pem\"\n", 11, "must be an absolute path"},
        {"ca_file = 3\n", 11, "ca_file must be a string"},
        {"pins = \"" + kPinZero + "\"\n", 8, "must be an array"},
        {"pins = []\n", 8, "at least one pin"},
        {"pins = [\"sha1//AAAA\"]\n", 9, "must be sha256//BASE64"},
        {"pins = [\"sha256//AAAA\"]\n", 9, "44 characters"},
        {"pins = [\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=\"]\n", 9, "not a canonical"},
        {"pins = [\"sha256//AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA-=\"]\n", 9, "44 characters"},
        {"pins = [\"" + kPinZero + "\", \"" + kPinZero + "\"]\n", 65, "listed twice"},
        {"allow_private_address = \"yes\"\n", 25, "true or false"},
        {"timeouts = \"10s\"\n", 12, "must be a table"},
        {"timeouts = { connect = \"0s\" }\n", 24, "timeouts.connect"},
        {"timeouts = { connect = 10 }\n", 24, "timeouts.connect must be a string"},
        {"timeouts = { idle = \"forever\" }\n", 21, "timeouts.idle"},
        {"timeouts = { read = \"10s\" }\n", 14, "unknown key timeouts.read"},
        {"timeouts = { connect = \"1m\", total = \"30s\" }\n", 1, "timeouts.total must be at least"},
        {"max_request_bytes = -1\n", 21, "from 0 to"},
        {"max_request_bytes = \"5GiB\"\n", 21, "byte count"},
        {"max_request_bytes = \"32 MiB\"\n", 21, "byte count"},
        {"max_request_bytes = \"32MB\"\n", 21, "byte count"},
        {"max_request_bytes = 1.5\n", 21, "integer or a string"},
        {"max_response_bytes = 0\n", 22, "at least 1 byte"},
        {"client = \"OPENAI\"\n", 10, "client must be a table"},
        {"client = { base_url_env = \"X_URL\" }\n", 10, "needs base_url_env and api_key_env"},
        {"client = { base_url_env = \"X\", api_key_env = \"X\" }\n", 10, "must be different"},
        {"client = { base_url_env = \"x_url\", api_key_env = \"K\" }\n", 27, "environment variable name"},
        {"client = { base_url_env = \"LD_PRELOAD\", api_key_env = \"K\" }\n", 27, "dynamic loader"},
        {"client = { base_url_env = \"U\", api_key_env = \"K\", base_path = \"v1\" }\n", 63, "base_path"},
        {"client = { base_url_env = \"U\", api_key_env = \"K\", base_path = \"/v1/\" }\n", 63, "base_path"},
        {"client = { base_url_env = \"U\", api_key_env = \"K\", base_path = \"/v1?x=1\" }\n", 63, "base_path"},
        {"client = { base_url_env = \"U\", api_key_env = \"K\", home = \"/\" }\n", 51, "unknown key client.home"},
        {"keepalive = false\n", 1, "unknown key \"keepalive\""},
    };
    for (const BadCase& bad : cases) {
        const LoadResult loaded = load_one("p.toml", kBase + bad.line);
        cr_assert_not(loaded.ok(), "accepted: %s", bad.line.c_str());
        const std::string text = loaded.error_text();
        cr_assert(text.find(bad.fragment) != std::string::npos, "for %s got: %s", bad.line.c_str(), text.c_str());
        const std::uint32_t line = bad.line.find("total") != std::string::npos ? 1U : 6U;
        cr_assert_eq(loaded.errors.front().where.line, line, "for %s got: %s", bad.line.c_str(), text.c_str());
        if (line == 6U) {
            cr_assert_eq(loaded.errors.front().where.column, bad.column, "for %s got: %s", bad.line.c_str(),
                         text.c_str());
        }
    }
}

Test(policy_providers, the_unknown_key_message_lists_the_transport_keys)
{
    const LoadResult loaded = load_one("p.toml", kBase + "retries = 3\n");
    cr_assert_not(loaded.ok());
    cr_assert(loaded.error_text().find("allow_private_address") != std::string::npos);
}

Test(policy_providers, every_shipped_provider_file_loads_cleanly)
{
    const std::filesystem::path folder = source_root() / "policy" / "providers";
    const std::vector<std::string> expected{"anthropic",   "gemini",  "github", "groq",
                                            "huggingface", "mistral", "openai"};
    std::vector<std::string> seen;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
        if (entry.path().extension() != ".toml") {
            continue;
        }
        const std::string name = entry.path().filename().string();
        const std::string content = slurp(entry.path());
        const LoadResult loaded = load_one(name, content);
        cr_assert(loaded.ok(), "%s: %s", name.c_str(), loaded.error_text().c_str());
        cr_assert_eq(loaded.policy->providers().size(), 1U, "%s defines one provider", name.c_str());
        const Provider& provider = loaded.policy->providers().front();
        cr_assert_eq(provider.name + ".toml", name, "%s is named after its provider", name.c_str());
        // Copied files must not reach private addresses or skip any safety default silently.
        cr_assert_not(provider.transport.allow_private_address, "%s", name.c_str());
        seen.push_back(provider.name);
    }
    std::sort(seen.begin(), seen.end());
    cr_assert(seen == expected, "the shipped providers are the documented seven");
}

Test(policy_providers, all_shipped_provider_files_load_together)
{
    const std::filesystem::path folder = source_root() / "policy" / "providers";
    std::vector<std::string> names;
    std::vector<std::string> contents;
    for (const auto& entry : std::filesystem::directory_iterator(folder)) {
        if (entry.path().extension() == ".toml") {
            names.push_back(entry.path().filename().string());
            contents.push_back(slurp(entry.path()));
        }
    }
    std::vector<PolicyDocument> documents;
    for (std::size_t i = 0; i < names.size(); ++i) {
        documents.push_back(PolicyDocument{names[i], contents[i]});
    }
    const LoadResult loaded = load_policy(documents);
    cr_assert(loaded.ok(), "%s", loaded.error_text().c_str());
}

Test(policy_providers, gemini_injects_its_key_as_a_header_never_a_query)
{
    const std::string content = slurp(source_root() / "policy" / "providers" / "gemini.toml");
    const LoadResult loaded = load_one("gemini.toml", content);
    cr_assert(loaded.ok(), "%s", loaded.error_text().c_str());
    const Provider* gemini = loaded.policy->find_provider("gemini");
    cr_assert_not_null(gemini);
    cr_assert_eq(gemini->inject.header, "x-goog-api-key");
    cr_assert(content.find("?key=") == std::string::npos || content.find("never") != std::string::npos);
}

Test(policy_providers, pin_parser_accepts_only_canonical_sha256_digests)
{
    cr_assert(parse_pin(kPinZero).ok());
    cr_assert(parse_pin(kPinOnes).ok());
    cr_assert_not(parse_pin("sha256//" + std::string(43, 'A')).ok());  // padding missing
    cr_assert_not(parse_pin("SHA256//" + kPinZero.substr(8)).ok());
    cr_assert_not(parse_pin("").ok());
}

Test(policy_providers, byte_sizes_take_binary_units_and_refuse_overflow)
{
    cr_assert_eq(parse_byte_size("512KiB", kGiB, "x").value(), 512ULL * 1024);
    cr_assert_eq(parse_byte_size("1GiB", kGiB, "x").value(), kGiB);
    cr_assert_eq(parse_byte_size("7", kGiB, "x").value(), 7ULL);
    cr_assert_not(parse_byte_size("2GiB", kGiB, "x").ok());
    cr_assert_not(parse_byte_size("99999999999999999999GiB", kGiB, "x").ok());
    cr_assert_not(parse_byte_size("MiB", kGiB, "x").ok());
    cr_assert_not(parse_byte_size("01MiB", kGiB, "x").ok());
}
