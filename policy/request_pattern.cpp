#include "policy/request_pattern.hpp"

#include <array>

#include "policy/policy_limits.hpp"
#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

constexpr std::array<std::string_view, kHttpMethods> kMethods{"GET", "POST", "PUT", "PATCH", "DELETE"};

bool is_hex_digit(char c) noexcept
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

// RFC 3986 pchar minus '%' (handled separately): unreserved, sub-delims, ':' and '@'.
bool is_pchar(char c) noexcept
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    switch (c) {
    case '-':
    case '.':
    case '_':
    case '~':
    case '!':
    case '$':
    case '&':
    case '\'':
    case '(':
    case ')':
    case '*':
    case '+':
    case ',':
    case ';':
    case '=':
    case ':':
    case '@':
        return true;
    default:
        return false;
    }
}

// Percent escapes that would let a path mean something other than what it looks like.
bool is_forbidden_escape(char hi, char lo) noexcept
{
    const auto upper = [](char c) {
        return (c >= 'a' && c <= 'f') ? static_cast<char>(c - 'a' + 'A') : c;
    };
    const char h = upper(hi);
    const char l = upper(lo);
    return (h == '2' && (l == 'E' || l == 'F')) || (h == '5' && l == 'C') || (h == '0' && l == '0');
}

// Checks a path (no query). allow_star: '*' may appear (request paths); patterns pass false
// and handle the trailing wildcard themselves.
bool clean_path(std::string_view path, bool allow_star) noexcept
{
    if (path.empty() || path.front() != '/') {
        return false;
    }
    std::size_t segment_start = 1;
    for (std::size_t i = 1; i <= path.size(); ++i) {
        if (i == path.size() || path[i] == '/') {
            const std::string_view segment = path.substr(segment_start, i - segment_start);
            const bool last = i == path.size();
            // An empty segment is allowed only as the last one (a trailing '/').
            if ((segment.empty() && !last) || segment == "." || segment == "..") {
                return false;
            }
            segment_start = i + 1;
            continue;
        }
        const char c = path[i];
        if (c == '%') {
            if (i + 2 >= path.size() || !is_hex_digit(path[i + 1]) || !is_hex_digit(path[i + 2]) ||
                is_forbidden_escape(path[i + 1], path[i + 2])) {
                return false;
            }
            i += 2;
            continue;
        }
        if (!is_pchar(c) || (c == '*' && !allow_star)) {
            return false;
        }
    }
    return true;
}

}  // namespace

std::optional<HttpMethod> parse_method(std::string_view text) noexcept
{
    for (std::size_t i = 0; i < kMethods.size(); ++i) {
        if (kMethods[i] == text) {
            return static_cast<HttpMethod>(i);
        }
    }
    return std::nullopt;
}

std::string_view method_name(HttpMethod method) noexcept
{
    return kMethods[static_cast<std::size_t>(method)];
}

std::string RequestPattern::to_string() const
{
    std::string text(method_name(method));
    text.push_back(' ');
    text += path;
    if (wildcard) {
        text.push_back('*');
    }
    return text;
}

bool RequestPattern::matches(HttpMethod request_method, std::string_view path_only) const noexcept
{
    if (request_method != method) {
        return false;
    }
    return wildcard ? path_only.starts_with(path) : path_only == path;
}

bool RequestPattern::covers(const RequestPattern& narrower) const noexcept
{
    if (narrower.method != method) {
        return false;
    }
    if (!wildcard) {
        return !narrower.wildcard && narrower.path == path;
    }
    return narrower.path.starts_with(path);
}

Result<RequestPattern> parse_request_pattern(std::string_view text)
{
    const std::string shown = quote(text);
    const std::size_t space = text.find(' ');
    if (space == std::string_view::npos) {
        return make_error("request pattern " + shown + " must be \"METHOD /path\", e.g. \"POST /v1/chat/completions\"");
    }
    const auto method = parse_method(text.substr(0, space));
    if (!method) {
        return make_error("request pattern " + shown + ": method must be one of GET, POST, PUT, PATCH, DELETE");
    }
    std::string_view path = text.substr(space + 1);
    if (path.size() > limits::kMaxRequestPathLength) {
        return make_error("request pattern " + shown + ": path is longer than 2048 bytes");
    }
    bool wildcard = false;
    if (path.ends_with("/*")) {
        wildcard = true;
        path.remove_suffix(1);  // keep the '/'
    }
    if (!clean_path(path, false)) {
        return make_error("request pattern " + shown +
                          ": path must start with '/', use only URL path characters, have no empty, \".\" or "
                          "\"..\" segments, no query, and '*' only as a final \"/*\" segment");
    }
    return RequestPattern{*method, std::string(path), wildcard};
}

std::optional<std::string_view> clean_request_path(std::string_view path) noexcept
{
    if (path.size() > limits::kMaxRequestPathLength) {
        return std::nullopt;
    }
    const std::size_t question = path.find('?');
    const std::string_view path_only = path.substr(0, question);
    if (!clean_path(path_only, true)) {
        return std::nullopt;
    }
    if (question != std::string_view::npos) {
        for (std::size_t i = question + 1; i < path.size(); ++i) {
            const char c = path[i];
            if (c == '%') {
                if (i + 2 >= path.size() || !is_hex_digit(path[i + 1]) || !is_hex_digit(path[i + 2])) {
                    return std::nullopt;
                }
                i += 2;
            } else if (!is_pchar(c) && c != '/' && c != '?') {
                return std::nullopt;
            }
        }
    }
    return path_only;
}

}  // namespace codexvault::policy
