#include "lib/scan/verifiers.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "lib/scan/ascii.hpp"
#include "lib/scan/secret_names.hpp"

namespace codexvault::scan {

namespace {

using re::Span;

int base64_value(char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+' || c == '-') {
        return 62;
    }
    if (c == '/' || c == '_') {
        return 63;
    }
    return -1;
}

// Decodes standard or URL-safe base64 (padding optional) up to max_out bytes; nullopt on a
// byte outside both alphabets.
std::optional<std::string> decode_base64(std::string_view text, std::size_t max_out)
{
    std::string out;
    std::uint32_t accumulator = 0;
    int bits = 0;
    for (const char c : text) {
        if (c == '=') {
            break;
        }
        const int value = base64_value(c);
        if (value < 0) {
            return std::nullopt;
        }
        accumulator = (accumulator << 6) | static_cast<std::uint32_t>(value);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((accumulator >> bits) & 0xFF));
            if (out.size() >= max_out) {
                break;
            }
        }
    }
    return out;
}

bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view text)
{
    while (!text.empty() && is_space(text.front())) {
        text.remove_prefix(1);
    }
    while (!text.empty() && is_space(text.back())) {
        text.remove_suffix(1);
    }
    return text;
}

bool is_base64_text(std::string_view text)
{
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/' ||
               c == '=';
    });
}

// "-----BEGIN <label>-----" in the candidate; the END line is searched for with the same label
// within kMaxPemBytes, and the lines between must be a plausible base64 body: optional
// "Name: value" headers (encrypted PEM, PGP armor), base64 lines, a PGP checksum line
// ("=abcd"), blank lines; at least 64 base64 bytes. Bodies inside JSON or code strings use
// literal "\n" separators, which count as line breaks.
std::optional<Span> verify_pem(std::string_view input, Span secret)
{
    const std::string_view begin_line = input.substr(secret.begin, secret.size());
    constexpr std::string_view kBegin = "-----BEGIN ";
    constexpr std::string_view kDashes = "-----";
    const auto label_at = begin_line.find(kBegin);
    if (label_at == std::string_view::npos || begin_line.size() < label_at + kBegin.size() + kDashes.size()) {
        return std::nullopt;
    }
    const std::string_view label =
        begin_line.substr(label_at + kBegin.size(), begin_line.size() - label_at - kBegin.size() - kDashes.size());
    const std::string end_line = "-----END " + std::string(label) + "-----";
    const std::string_view rest = input.substr(secret.end, std::min(kMaxPemBytes, input.size() - secret.end));
    const auto end_at = rest.find(end_line);
    if (end_at == std::string_view::npos) {
        return std::nullopt;
    }
    std::size_t base64_bytes = 0;
    bool in_body = false;
    std::string_view body = rest.substr(0, end_at);
    while (!body.empty()) {
        // The next line: up to a real newline or a literal "\n" / "\r".
        std::size_t cut = body.size();
        std::size_t skip = 0;
        for (std::size_t i = 0; i < body.size(); ++i) {
            if (body[i] == '\n') {
                cut = i;
                skip = 1;
                break;
            }
            if (body[i] == '\\' && i + 1 < body.size() && (body[i + 1] == 'n' || body[i + 1] == 'r')) {
                cut = i;
                skip = 2;
                break;
            }
        }
        const std::string_view line = trim(body.substr(0, cut));
        body.remove_prefix(std::min(body.size(), cut + skip));
        if (line.empty()) {
            continue;
        }
        if (!in_body && line.find(':') != std::string_view::npos) {
            continue;  // a header line
        }
        if (line.front() == '=' && line.size() <= 5 && is_base64_text(line)) {
            continue;  // PGP armor checksum
        }
        if (!is_base64_text(line)) {
            return std::nullopt;
        }
        in_body = true;
        base64_bytes += line.size();
    }
    if (base64_bytes < 64) {
        return std::nullopt;
    }
    return Span{secret.begin, secret.end + end_at + end_line.size()};
}

// A base64-encoded PEM private key (kubeconfig client-key-data, Kubernetes secrets): decodes
// to "-----BEGIN ... PRIVATE KEY-----" and is long enough to hold a key.
std::optional<Span> verify_base64_pem(std::string_view input, Span secret)
{
    if (secret.size() < 200) {
        return std::nullopt;
    }
    const auto decoded = decode_base64(input.substr(secret.begin, std::min<std::size_t>(secret.size(), 128)), 96);
    if (!decoded || decoded->rfind("-----BEGIN ", 0) != 0) {
        return std::nullopt;
    }
    const std::string_view first_line = std::string_view(*decoded).substr(0, decoded->find('\n'));
    if (first_line.find("PRIVATE KEY-----") == std::string_view::npos) {
        return std::nullopt;
    }
    return secret;
}

// A JWT: three base64url parts; the header decodes to a JSON object with an "alg" member and
// the payload to a JSON object.
std::optional<Span> verify_jwt(std::string_view input, Span secret)
{
    const std::string_view token = input.substr(secret.begin, secret.size());
    const auto first_dot = token.find('.');
    const auto second_dot = first_dot == std::string_view::npos ? first_dot : token.find('.', first_dot + 1);
    if (second_dot == std::string_view::npos) {
        return std::nullopt;
    }
    const auto header = decode_base64(token.substr(0, first_dot), 1024);
    const auto payload = decode_base64(token.substr(first_dot + 1, second_dot - first_dot - 1), 16);
    if (!header || !payload) {
        return std::nullopt;
    }
    const std::string_view h = trim(*header);
    const std::string_view p = trim(*payload);
    if (h.empty() || h.front() != '{' || h.find("\"alg\"") == std::string_view::npos || p.empty() || p.front() != '{') {
        return std::nullopt;
    }
    return secret;
}

// Random tokens of this length mix digits, upper and lower case; hex hashes, UUIDs and most
// words do not. Identifiers and paths that do ("HEXAGON_V6_vS32b_nt_128B", "CC=/usr/bin/cc-14")
// are split by separators: four or more of _ - / is not random (a random base64url token of 48
// bytes has that many about 7% of the time, an acceptable loss for a low-confidence heuristic).
// What verify_mixed looks for, one bit per kind; separators also count one each (bit 4), so one
// table lookup per byte and no branch.
constexpr std::uint8_t kDigit = 1;
constexpr std::uint8_t kUpper = 2;
constexpr std::uint8_t kLower = 4;
constexpr std::uint8_t kSeparator = 16;

constexpr std::array<std::uint8_t, 256> kMixedKinds = [] {
    std::array<std::uint8_t, 256> out{};
    for (int c = '0'; c <= '9'; ++c) {
        out[static_cast<std::size_t>(c)] = kDigit;
    }
    for (int c = 'A'; c <= 'Z'; ++c) {
        out[static_cast<std::size_t>(c)] = kUpper;
    }
    for (int c = 'a'; c <= 'z'; ++c) {
        out[static_cast<std::size_t>(c)] = kLower;
    }
    for (const char c : {'_', '-', '/'}) {
        out[static_cast<unsigned char>(c)] = kSeparator;
    }
    return out;
}();

std::optional<Span> verify_mixed(std::string_view input, Span secret)
{
    unsigned kinds = 0;
    std::size_t separators = 0;
    for (const char c : input.substr(secret.begin, secret.size())) {
        const std::uint8_t kind = kMixedKinds[static_cast<unsigned char>(c)];
        kinds |= kind;
        separators += kind >> 4;
    }
    if ((kinds & (kDigit | kUpper | kLower)) != (kDigit | kUpper | kLower) || separators >= 4) {
        return std::nullopt;
    }
    return secret;
}

bool ends_with_caseless(std::string_view text, std::string_view suffix)
{
    if (suffix.size() > text.size()) {
        return false;
    }
    const std::string_view tail = text.substr(text.size() - suffix.size());
    return std::equal(tail.begin(), tail.end(), suffix.begin(), [](char a, char b) { return ascii::to_lower(a) == b; });
}

// The password of "scheme://user:password@host": not the user name repeated
// (postgres:postgres, a well-known local default) and not on a documentation host
// (RFC 2606 example.com / .org / .net, *.example).
std::optional<Span> verify_url_password(std::string_view input, Span secret)
{
    const std::string_view password = input.substr(secret.begin, secret.size());
    if (secret.begin == 0 || input[secret.begin - 1] != ':') {
        return std::nullopt;
    }
    const std::size_t user_end = secret.begin - 1;
    const std::size_t look_from = user_end > 256 ? user_end - 256 : 0;
    const auto slashes = input.substr(look_from, user_end - look_from).rfind("//");
    if (slashes == std::string_view::npos) {
        return std::nullopt;
    }
    const std::size_t user_begin = look_from + slashes + 2;
    if (input.substr(user_begin, user_end - user_begin) == password) {
        return std::nullopt;
    }
    if (secret.end >= input.size() || input[secret.end] != '@') {
        return std::nullopt;
    }
    std::size_t host_end = secret.end + 1;
    while (host_end < input.size() && host_end - secret.end < 256) {
        const char c = input[host_end];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-')) {
            break;
        }
        ++host_end;
    }
    const std::string_view host = input.substr(secret.end + 1, host_end - secret.end - 1);
    for (const std::string_view doc : {"example.com", "example.org", "example.net", ".example"}) {
        if (ends_with_caseless(host, doc)) {
            return std::nullopt;
        }
    }
    return secret;
}

// Letter pairs that occur at least 3 times in 100,000 in English prose and code identifiers
// (the license texts of /usr/share/common-licenses and 400 modules of Python 3.11's standard
// library, identifiers split at case humps, all lower-cased): for each first letter, the second
// letters seen that often. 449 of the 676 pairs; the rest ("qz", "jx", "vk", ...) are rare in
// words and common in random letters.
constexpr std::array<std::string_view, 26> kCommonPairs = {
    "bcdefghijklmnprstuvwxyz",    // a
    "abcdegijlmnoprstuyz",        // b
    "acdefhiklmnopqrstuvwy",      // c
    "abcdefgijlmnoprstuvxy",      // d
    "abcdefghiklmnopqrstuvwxyz",  // e
    "acdefgilmnoprstuy",          // f
    "abcdeghilmnoprstuvz",        // g
    "adehilmnorstuy",             // h
    "abcdefgiklmnopqrstuvxz",     // i
    "aeou",                       // j
    "adegilnoprstuw",             // k
    "abcdefgiklmnoprstuvwyz",     // l
    "abcdefiklmnoprstuy",         // m
    "abcdefghiklmnoprstuvy",      // n
    "abcdefgiklmnoprstuvwxyz",    // o
    "abcdefhiklmnoprstuvwy",      // p
    "rsu",                        // q
    "abcdefgiklmnoprstuvwy",      // r
    "abcdefghiklmnopqrstuvwxy",   // s
    "abcdefhiklmnoprstuvwxyz",    // t
    "abcdefgilmnoprstux",         // u
    "aeimno",                     // v
    "abdefhilnorsw",              // w
    "abcefilmoprstxy",            // x
    "abcdefilmnoprstw",           // y
    "aeilmo",                     // z
};

// Two-letter words common in identifiers ("SetIdOfUser", "IsOkToGo").
constexpr std::array<std::string_view, 31> kTwoLetterWords = {
    "to", "in", "on", "of", "is", "id", "as", "or", "at", "by", "if", "no", "up", "do", "go", "me",
    "my", "we", "he", "it", "be", "an", "ok", "db", "io", "ui", "os", "fs", "vm", "ip", "js"};

using ascii::is_lower;
using ascii::is_upper;

// A value of letters only is random, not a name, when its letter pairs or its capitalization
// are not those of words. Names ("PasswordInputField", "HTTPServer", "bearer") are words run
// together: capitalized words of three or more letters, acronyms, a few two-letter words, and
// letter pairs words have. Random letters have rare pairs and, mixed-case, many capitals
// followed by just one lower-case letter ("zKYRVBQoqqrekGspTq": "Gs", "Tq"). Measured on
// 172,000 names of 8 or more letters from /usr/include, Python's standard library and node
// modules: 160 (0.09%) look random (base64 that happens to hold no digit, and names such as
// "LLVMAtomicRMWBinOp"); random mixed-case letters are recognised 94% of the time at 18
// letters, 99% at 32, 72% at 12; random lower-case letters about half the time (their pairs
// only). A name still has to be quoted and assigned to a secret-like name to be a finding.
bool random_letters(std::string_view value)
{
    std::size_t pairs = 0;
    std::size_t rare = 0;
    for (std::size_t i = 1; i < value.size(); ++i) {
        const char a = ascii::to_lower(value[i - 1]);
        const char b = ascii::to_lower(value[i]);
        ++pairs;
        rare += kCommonPairs[static_cast<std::size_t>(a - 'a')].find(b) == std::string_view::npos ? 1 : 0;
    }
    const double rare_share = pairs == 0 ? 0.0 : static_cast<double>(rare) / static_cast<double>(pairs);
    const bool long_and_rare = pairs >= 11 && rare_share >= 0.35;
    const bool mixed =
        std::any_of(value.begin(), value.end(), is_upper) && std::any_of(value.begin(), value.end(), is_lower);
    if (!mixed) {
        return long_and_rare;
    }
    // Capitalized tokens of two letters that are no common word ("Gs" in "ekGspTq").
    std::size_t odd = 0;
    std::size_t i = 0;
    while (i < value.size()) {
        std::size_t j = i;
        while (j < value.size() && is_upper(value[j])) {
            ++j;
        }
        if (j > i && (j == value.size() || !is_lower(value[j]))) {
            i = j;  // an acronym
            continue;
        }
        // One capital (the last of a run; those before it are an acronym) and its lower case.
        const std::size_t start = j > i ? j - 1 : i;
        std::size_t end = j;
        while (end < value.size() && is_lower(value[end])) {
            ++end;
        }
        if (j > i && end - start == 2) {
            const char word[2] = {ascii::to_lower(value[start]), value[start + 1]};
            const std::string_view two(word, 2);
            odd += std::find(kTwoLetterWords.begin(), kTwoLetterWords.end(), two) == kTwoLetterWords.end() ? 1 : 0;
        }
        i = std::max(end, i + 1);  // always forward, whatever the byte
    }
    // Or one such token in a long value a third capitals (names are mostly lower case).
    const auto capitals = static_cast<std::size_t>(std::count_if(value.begin(), value.end(), is_upper));
    const bool capital_heavy = value.size() >= 16 && 10 * capitals >= 3 * value.size();
    return odd >= 2 || (odd >= 1 && (rare_share >= 0.3 || capital_heavy)) || long_and_rare;
}

bool word_cased(std::string_view word)
{
    const bool all_lower = std::all_of(word.begin(), word.end(), is_lower);
    const bool all_upper = std::all_of(word.begin(), word.end(), is_upper);
    const bool capitalized = is_upper(word.front()) && std::all_of(word.begin() + 1, word.end(), is_lower);
    return all_lower || all_upper || capitalized;
}

// "cache_creation.ephemeral_1h_input_tokens", "api_key_v2", "db-main-01": parts joined by _ . -
// that are words (letters in a word's casing, not random_letters) or at most 3 bytes, with at
// least one word of 3 letters or more. A random token with separators has a long part that is
// neither ("9fK_LmQ-zz3Qx"), or no word at all.
bool separated_identifier(std::string_view value)
{
    bool has_word = false;
    std::size_t parts = 0;
    std::size_t begin = 0;
    while (begin <= value.size()) {
        std::size_t end = value.find_first_of("_.-", begin);
        if (end == std::string_view::npos) {
            end = value.size();
        }
        const std::string_view part = value.substr(begin, end - begin);
        ++parts;
        const bool letters =
            !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return is_upper(c) || is_lower(c); });
        const bool word = letters && part.size() >= 3 && word_cased(part) && !random_letters(part);
        if (!word && part.size() > 3) {
            return false;
        }
        has_word = has_word || word;
        begin = end + 1;
    }
    return parts >= 2 && has_word;
}

// A value assigned to a secret-like name: not a word or identifier ("access_token",
// "PasswordInputField"), not a path or URL (a URL's credentials have their own rules), and not
// assigned to a name that says it holds something else about the secret ("TOKEN_ENDPOINT",
// "password_file": secret_names.hpp). Word-like values have no digit and nothing but letters and
// . _ - / : ; real secrets of this length almost always have a digit or another symbol, and those
// of letters only have no separators and do not read as words (random_letters). Identifiers
// with a digit or a short part ("api_key_v2") are not values either (separated_identifier).
std::optional<Span> verify_generic_value(std::string_view input, Span secret)
{
    const std::string_view value = input.substr(secret.begin, secret.size());
    const std::string_view name = assigned_name(input, secret.begin);
    if (names_a_non_secret(name)) {
        return std::nullopt;
    }
    // "MYTOKEN1", "my_secret_value", "apikey-goes-here": a value that names what it stands for.
    for (const std::string_view word : {"token", "secret", "passw", "apikey", "api_key", "api-key"}) {
        if (ascii::contains_caseless(value, word)) {
            return std::nullopt;
        }
    }
    // `https://token:x-oauth-basic@host`: a URL's user name, not an assignment.
    const auto name_begin = static_cast<std::size_t>(name.data() - input.data());
    if (name_begin >= 3 && input.substr(name_begin - 3, 3) == "://") {
        return std::nullopt;
    }
    const bool word_like = std::all_of(value.begin(), value.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' || c == '_' || c == '-' || c == '/' ||
               c == ':';
    });
    const bool letters_only =
        std::all_of(value.begin(), value.end(), [](char c) { return is_upper(c) || is_lower(c); });
    if (word_like && !(letters_only && random_letters(value))) {
        return std::nullopt;
    }
    if (separated_identifier(value)) {
        return std::nullopt;
    }
    for (const std::string_view scheme : {"http://", "https://", "file://"}) {
        if (value.size() >= scheme.size() &&
            std::equal(scheme.begin(), scheme.end(), value.begin(),
                       [](char a, char b) { return a == (b >= 'A' && b <= 'Z' ? static_cast<char>(b + 32) : b); })) {
            return std::nullopt;
        }
    }
    return secret;
}

struct Named {
    std::string_view name;
    Verifier verifier;
};

constexpr std::array<Named, 6> kVerifiers = {{
    {"pem", verify_pem},
    {"generic-value", verify_generic_value},
    {"base64-pem", verify_base64_pem},
    {"jwt", verify_jwt},
    {"mixed", verify_mixed},
    {"url-password", verify_url_password},
}};

constexpr std::array<std::string_view, kVerifiers.size()> kNames = {"pem", "generic-value", "base64-pem",
                                                                    "jwt", "mixed",         "url-password"};

}  // namespace

Verifier find_verifier(std::string_view name) noexcept
{
    for (const auto& named : kVerifiers) {
        if (named.name == name) {
            return named.verifier;
        }
    }
    return nullptr;
}

std::span<const std::string_view> verifier_names() noexcept
{
    return kNames;
}

}  // namespace codexvault::scan
