#include "lib/scan/secret_names.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "lib/scan/ascii.hpp"

namespace codexvault::scan {

namespace {

using ascii::is_lower;
using ascii::is_upper;

bool is_name_byte(char c)
{
    return is_upper(c) || is_lower(c) || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

// Words a secret-holding name ends a word with ("db_password", "githubToken", "apikey").
constexpr auto kSecretEndings = std::to_array<std::string_view>({
    "password",
    "passwords",
    "passwd",
    "pwd",
    "secret",
    "secrets",
    "token",
    "tokens",
    "key",
    "keys",
    "credentials",
    "credential",
});

// Words that, after the secret word, make the name about something other than the secret's
// value. Chosen from names seen in /usr/include, Python's standard library and node modules
// whose values the generic rules reported ("TOKEN_ENDPOINT = '/v1/oauth/token'",
// "TokenType = 'cache_creation.ephemeral_1h_input_tokens'"). Not "id", "hash" or "base": a
// Vault AppRole secret_id, a password hash and Rails' secret_key_base are secrets.
constexpr auto kNotTheValue = std::to_array<std::string_view>({
    "endpoint", "endpoints", "url",        "urls",        "uri",     "uris",       "path",     "paths",    "file",
    "files",    "filename",  "dir",        "directory",   "folder",  "location",   "env",      "var",      "variable",
    "header",   "headers",   "cookie",     "param",       "params",  "parameter",  "field",    "fields",   "column",
    "attr",     "attribute", "label",      "placeholder", "hint",    "prompt",     "input",    "type",     "types",
    "kind",     "name",      "names",      "format",      "mode",    "algorithm",  "algo",     "encoding", "scheme",
    "class",    "schema",    "method",     "regex",       "pattern", "length",     "len",      "size",     "count",
    "limit",    "limits",    "ttl",        "expiry",      "expires", "expiration", "lifetime", "timeout",  "version",
    "policy",   "validator", "validation", "hasher",      "usage",   "ref",
});

bool ends_with(std::string_view word, std::string_view ending)
{
    return word.size() >= ending.size() && word.substr(word.size() - ending.size()) == ending;
}

}  // namespace

std::vector<std::string> name_words(std::string_view name)
{
    std::vector<std::string> words;
    std::string current;
    const auto finish = [&] {
        if (!current.empty()) {
            words.push_back(std::move(current));
            current.clear();
        }
    };
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        if (!is_upper(c) && !is_lower(c)) {
            finish();  // _ - . digits and anything else separate words
            continue;
        }
        if (is_upper(c) && i > 0) {
            const char before = name[i - 1];
            const bool after_lower = is_lower(before);
            const bool acronym_ends = is_upper(before) && i + 1 < name.size() && is_lower(name[i + 1]);
            if (after_lower || acronym_ends) {
                finish();
            }
        }
        current.push_back(ascii::to_lower(c));
    }
    finish();
    return words;
}

std::string_view assigned_name(std::string_view input, std::size_t value_begin)
{
    std::size_t at = std::min(value_begin, input.size());
    const auto back_while = [&](std::size_t max, auto keep) {
        for (std::size_t n = 0; n < max && at > 0 && keep(input[at - 1]); ++n) {
            --at;
        }
    };
    back_while(1, [](char c) { return c == '"' || c == '\''; });
    back_while(4, is_blank);
    back_while(3, [](char c) { return c == '=' || c == ':' || c == '>' || c == '|'; });
    back_while(4, is_blank);
    back_while(1, [](char c) { return c == '"' || c == '\''; });
    const std::size_t end = at;
    back_while(64, is_name_byte);
    return input.substr(at, end - at);
}

bool names_a_non_secret(std::string_view name)
{
    const std::vector<std::string> words = name_words(name);
    std::size_t first_after = 0;
    for (std::size_t i = words.size(); i > 0; --i) {
        const std::string& word = words[i - 1];
        if (std::any_of(kSecretEndings.begin(), kSecretEndings.end(),
                        [&](std::string_view ending) { return ends_with(word, ending); })) {
            first_after = i;
            break;
        }
    }
    return std::any_of(words.begin() + static_cast<std::ptrdiff_t>(first_after), words.end(),
                       [](const std::string& word) {
                           return std::find(kNotTheValue.begin(), kNotTheValue.end(), word) != kNotTheValue.end();
                       });
}

}  // namespace codexvault::scan
