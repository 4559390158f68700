#include "policy/provider.hpp"

#include <algorithm>
#include <array>

#include "policy/policy_limits.hpp"
#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

char lower(char c) noexcept
{
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_digit(char c) noexcept
{
    return c >= '0' && c <= '9';
}

bool valid_dns_name(std::string_view host) noexcept
{
    if (host.empty() || host.size() > limits::kMaxHostLength) {
        return false;
    }
    std::size_t start = 0;
    while (start <= host.size()) {
        const std::size_t end = std::min(host.find('.', start), host.size());
        const std::string_view label = host.substr(start, end - start);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-') {
            return false;
        }
        for (char c : label) {
            if (!((c >= 'a' && c <= 'z') || is_digit(c) || c == '-')) {
                return false;
            }
        }
        if (end == host.size()) {
            break;
        }
        start = end + 1;
    }
    // A name whose last label is all digits would be read as an IPv4 address by some resolvers.
    const std::size_t last_dot = host.rfind('.');
    const std::string_view last = last_dot == std::string_view::npos ? host : host.substr(last_dot + 1);
    return !std::all_of(last.begin(), last.end(), is_digit);
}

bool valid_ipv4(std::string_view host) noexcept
{
    int parts = 0;
    std::size_t start = 0;
    while (start <= host.size()) {
        const std::size_t end = std::min(host.find('.', start), host.size());
        const auto octet = parse_decimal(host.substr(start, end - start), 255);
        if (!octet) {
            return false;
        }
        ++parts;
        if (end == host.size()) {
            break;
        }
        start = end + 1;
    }
    return parts == 4;
}

bool valid_ipv6_literal(std::string_view host) noexcept
{
    // "[...]" with hex digits, ':' and (for an embedded IPv4 tail) '.'; at least two ':'.
    if (host.size() < 4 || host.size() > 47 || host.front() != '[' || host.back() != ']') {
        return false;
    }
    const std::string_view inner = host.substr(1, host.size() - 2);
    if (std::count(inner.begin(), inner.end(), ':') < 2) {
        return false;
    }
    return std::all_of(inner.begin(), inner.end(),
                       [](char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || c == ':' || c == '.'; });
}

bool is_tchar(char c) noexcept
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c)) {
        return true;
    }
    static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
    return kExtra.find(c) != std::string_view::npos;
}

constexpr std::array<std::string_view, 11> kForbiddenHeaders{
    "host",    "content-length", "transfer-encoding", "connection", "keep-alive",          "te",
    "trailer", "upgrade",        "proxy-connection",  "expect",     "proxy-authorization",
};

}  // namespace

std::string Origin::to_string() const
{
    std::string text = "https://" + host;
    if (port != 443) {
        text += ":" + std::to_string(port);
    }
    return text;
}

Result<Origin> parse_origin(std::string_view text)
{
    const std::string shown = quote(text);
    constexpr std::string_view kScheme = "https://";
    if (text.size() < kScheme.size() ||
        !std::equal(kScheme.begin(), kScheme.end(), text.begin(), [](char a, char b) { return a == lower(b); })) {
        return make_error("origin " + shown + " must start with https:// (plain http is never allowed)");
    }
    std::string_view rest = text.substr(kScheme.size());
    if (rest.ends_with("/")) {
        rest.remove_suffix(1);
    }
    if (rest.find_first_of("/?#") != std::string_view::npos) {
        return make_error("origin " + shown + " must be only https://host[:port], without a path, query or fragment");
    }
    if (rest.find('@') != std::string_view::npos) {
        return make_error("origin " + shown + " must not contain userinfo (user@ or user:password@)");
    }
    std::string host;
    host.reserve(rest.size());
    for (char c : rest) {
        host.push_back(lower(c));
    }
    Origin origin;
    // Split the port off: after the closing ']' for IPv6, after the only ':' otherwise.
    std::size_t colon = std::string::npos;
    if (!host.empty() && host.front() == '[') {
        const std::size_t close = host.find(']');
        if (close != std::string::npos && close + 1 < host.size()) {
            if (host[close + 1] != ':') {
                return make_error("origin " + shown + ": unexpected text after the IPv6 address");
            }
            colon = close + 1;
        }
    } else {
        colon = host.find(':');
    }
    if (colon != std::string::npos) {
        const std::string port_text = host.substr(colon + 1);
        const auto port = parse_decimal(port_text, 65535);
        if (!port || *port == 0) {
            return make_error("origin " + shown + ": port must be a number from 1 to 65535");
        }
        origin.port = static_cast<std::uint16_t>(*port);
        host.resize(colon);
    }
    if (host.empty()) {
        return make_error("origin " + shown + " has no host");
    }
    if (!valid_ipv6_literal(host) && !valid_ipv4(host) && !valid_dns_name(host)) {
        return make_error("origin " + shown +
                          ": host must be a DNS name (letters, digits, '-' and '.'), an IPv4 address or a "
                          "bracketed IPv6 address");
    }
    origin.host = std::move(host);
    return origin;
}

Result<Injection> parse_injection(std::string_view header, std::string_view template_text)
{
    if (header.empty() || header.size() > limits::kMaxHeaderNameLength ||
        !std::all_of(header.begin(), header.end(), is_tchar)) {
        return make_error("inject.header " + quote(header) + " must be an HTTP header name (1-64 token characters)");
    }
    std::string lowered;
    for (char c : header) {
        lowered.push_back(lower(c));
    }
    if (std::find(kForbiddenHeaders.begin(), kForbiddenHeaders.end(), lowered) != kForbiddenHeaders.end()) {
        return make_error("inject.header " + quote(header) +
                          " is a framing or routing header and cannot carry a secret");
    }
    if (template_text.size() > limits::kMaxTemplateLength) {
        return make_error("inject.template is longer than 256 bytes");
    }
    for (char c : template_text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte >= 0x7F) {
            return make_error("inject.template " + quote(template_text) +
                              " must be printable ASCII (no CR, LF or tab)");
        }
    }
    constexpr std::string_view kPlaceholder = "{secret}";
    const std::size_t at = template_text.find(kPlaceholder);
    if (at == std::string_view::npos) {
        return make_error("inject.template " + quote(template_text) + " must contain {secret} exactly once");
    }
    const std::string_view prefix = template_text.substr(0, at);
    const std::string_view suffix = template_text.substr(at + kPlaceholder.size());
    if (prefix.find_first_of("{}") != std::string_view::npos || suffix.find_first_of("{}") != std::string_view::npos) {
        return make_error("inject.template " + quote(template_text) +
                          " must contain {secret} exactly once and no other braces");
    }
    return Injection{std::string(header), std::string(prefix), std::string(suffix)};
}

bool Provider::allows(HttpMethod method, std::string_view path_only) const noexcept
{
    return std::any_of(allow.begin(), allow.end(),
                       [&](const RequestPattern& pattern) { return pattern.matches(method, path_only); });
}

bool Provider::covers(const RequestPattern& pattern) const noexcept
{
    return std::any_of(allow.begin(), allow.end(),
                       [&](const RequestPattern& allowed) { return allowed.covers(pattern); });
}

}  // namespace codexvault::policy
