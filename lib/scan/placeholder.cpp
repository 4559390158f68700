#include "lib/scan/placeholder.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <string_view>

#include "lib/scan/ascii.hpp"

namespace codexvault::scan {

namespace {

constexpr std::size_t kMaxRunCheckedBytes = 256;
constexpr std::size_t kMaxMarkerBytes = 1024;

using ascii::to_lower;

bool equals_caseless(std::string_view a, std::string_view b)
{
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return to_lower(x) == y; });
}

// Substrings (lower case) that mark documentation, templates or indirection. Each is long or
// unusual enough that a random token contains it with negligible probability (7 fixed
// letters in base62: about 1 in 10^10 per position).
constexpr std::array<std::string_view, 34> kMarkers = {
    "example",   "changeme",    "change_me",  "change-me", "placeholder", "your_",       "your-",
    "yourkey",   "yourtoken",   "yoursecret", "yourpass",  "redacted",    "dummy",       "replace_me",
    "replaceme", "replace-me",  "insert_",    "insert-",   "sample",      "process.env", "os.environ",
    "getenv(",   "import.meta", "env::var",   "environ[",  "env[",        "env.fetch",   "${",
    "$(",        "{{",          "}}",         "%(",        "...",         "***"};

// Whole values (lower case, after the public prefix) that name a value instead of being one.
constexpr std::array<std::string_view, 30> kWords = {
    "password", "passwd", "pass",      "secret", "token", "apikey",   "api_key",  "api-key", "key",    "null",
    "none",     "nil",    "undefined", "true",   "false", "empty",    "todo",     "tbd",     "foo",    "bar",
    "foobar",   "test",   "testing",   "string", "value", "required", "optional", "hidden",  "masked", "xxx"};

// Runs of one byte (or of x/X) long enough not to happen by chance in a random token. Only for
// token-sized values: DER inside long base64 bodies (PEM, OpenSSH keys) has real runs of 'A'.
bool has_suspicious_run(std::string_view value)
{
    if (value.size() > kMaxRunCheckedBytes) {
        return false;
    }
    std::size_t same = 1;
    std::size_t x_run = 0;
    for (std::size_t i = 0; i < value.size(); ++i) {
        same = (i > 0 && value[i] == value[i - 1]) ? same + 1 : 1;
        x_run = to_lower(value[i]) == 'x' ? x_run + 1 : 0;
        if (same >= 8 || x_run >= 6 || (x_run >= 4 && value.size() <= 32)) {
            return true;
        }
    }
    return false;
}

// The body repeats with a period of at most 8 bytes ("aaaa", "abcabcabc", "12341234").
bool is_periodic(std::string_view body)
{
    for (std::size_t period = 1; period <= 8 && 2 * period <= body.size(); ++period) {
        bool repeats = true;
        for (std::size_t i = period; i < body.size() && repeats; ++i) {
            repeats = body[i] == body[i - period];
        }
        if (repeats) {
            return true;
        }
    }
    return false;
}

bool is_step(char a, char b)
{
    const int diff = static_cast<unsigned char>(b) - static_cast<unsigned char>(a);
    if (diff == 1 || diff == -1) {
        return true;
    }
    // Counting across digit/letter boundaries: "...789abc", "...9012", "...def0".
    const char la = to_lower(a);
    const char lb = to_lower(b);
    return (la == '9' && (lb == 'a' || lb == '0')) || ((la == 'f' || la == 'z') && lb == '0');
}

// Mostly counting up or down ("123456789", "abcdefgh", "0123456789abcdef").
bool is_sequence(std::string_view body)
{
    if (body.size() < 6) {
        return false;
    }
    std::size_t steps = 0;
    for (std::size_t i = 1; i < body.size(); ++i) {
        steps += is_step(body[i - 1], body[i]) ? 1 : 0;
    }
    return steps * 10 >= (body.size() - 1) * 7;
}

bool looks_like_reference(std::string_view value)
{
    if (value.empty()) {
        return false;
    }
    // $NAME, $1 (shell), %NAME% (cmd), {name} (format strings), <name> (docs).
    if (value.front() == '$') {
        return true;
    }
    if (value.size() >= 3 &&
        ((value.front() == '%' && value.back() == '%') || (value.front() == '{' && value.back() == '}'))) {
        return true;
    }
    const auto open = value.find('<');
    return open != std::string_view::npos && value.find('>', open) != std::string_view::npos;
}

}  // namespace

bool is_placeholder(std::string_view value, std::size_t public_prefix) noexcept
{
    const std::string_view body = value.substr(std::min(public_prefix, value.size()));
    if (body.empty()) {
        return true;
    }
    // One lower-case copy, then plain substring searches (memchr-driven). Long values (key
    // blocks) are judged on their first kMaxMarkerBytes: a placeholder says so early.
    std::array<char, kMaxMarkerBytes> buffer{};
    const std::size_t size = std::min(value.size(), buffer.size());
    for (std::size_t i = 0; i < size; ++i) {
        buffer[i] = to_lower(value[i]);
    }
    const std::string_view folded(buffer.data(), size);
    for (const auto marker : kMarkers) {
        if (folded.find(marker) != std::string_view::npos) {
            return true;
        }
    }
    for (const auto word : kWords) {
        if (equals_caseless(body, word)) {
            return true;
        }
    }
    if (looks_like_reference(value) || looks_like_reference(body)) {
        return true;
    }
    if (body.size() >= 3 && equals_caseless(body.substr(0, 3), "xxx")) {
        return true;
    }
    return has_suspicious_run(body) || is_periodic(body) || is_sequence(body);
}

}  // namespace codexvault::scan
