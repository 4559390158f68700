#include "cli/proxy_core.hpp"

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cctype>

namespace codexvault::cli::proxy {
namespace {

char lower(char c) noexcept
{
    return static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
}

bool iequals(std::string_view a, std::string_view b) noexcept
{
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return lower(x) == lower(y); });
}

std::string_view trim(std::string_view text) noexcept
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t')) {
        text.remove_suffix(1);
    }
    return text;
}

std::optional<std::uint16_t> parse_port(std::string_view text) noexcept
{
    if (text.empty() || text.size() > 5) {
        return std::nullopt;
    }
    unsigned value = 0;
    for (char c : text) {
        if (c < '0' || c > '9') {
            return std::nullopt;
        }
        value = value * 10 + static_cast<unsigned>(c - '0');
    }
    if (value > 65535 || (text.size() > 1 && text[0] == '0')) {
        return std::nullopt;
    }
    return static_cast<std::uint16_t>(value);
}

bool is_ipv4_loopback(std::string_view host) noexcept
{
    // 127.a.b.c with decimal octets: the whole 127/8 block is loopback.
    int octets = 0;
    std::size_t i = 0;
    while (i <= host.size()) {
        const std::size_t dot = host.find('.', i);
        const std::string_view part = host.substr(i, dot == std::string_view::npos ? host.size() - i : dot - i);
        if (part.empty() || part.size() > 3 ||
            !std::all_of(part.begin(), part.end(), [](char c) { return c >= '0' && c <= '9'; })) {
            return false;
        }
        const int value = std::stoi(std::string(part));
        if (value > 255 || (part.size() > 1 && part[0] == '0') || (octets == 0 && value != 127)) {
            return false;
        }
        ++octets;
        if (dot == std::string_view::npos) {
            break;
        }
        i = dot + 1;
    }
    return octets == 4;
}

// A provider name as the policy grammar has it: [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
bool is_provider_name(std::string_view name) noexcept
{
    if (name.empty() || name.size() > 64 || !std::isalnum(static_cast<unsigned char>(name[0]))) {
        return false;
    }
    return std::all_of(name.begin(), name.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
    });
}

// "." and ".." in any spelling a server might decode: "%2e", "%2E", mixed.
bool is_dot_segment(std::string_view segment) noexcept
{
    int dots = 0;
    std::size_t i = 0;
    while (i < segment.size()) {
        if (segment[i] == '.') {
            ++dots;
            ++i;
        } else if (segment.size() - i >= 3 && segment[i] == '%' && segment[i + 1] == '2' &&
                   lower(segment[i + 2]) == 'e') {
            ++dots;
            i += 3;
        } else {
            return false;
        }
    }
    return dots == 1 || dots == 2;
}

constexpr std::array<std::string_view, 13> kHopByHop = {
    "connection",
    "keep-alive",
    "proxy-connection",
    "transfer-encoding",
    "te",
    "trailer",
    "upgrade",
    "content-length",
    "host",
    "expect",
    "proxy-authorization",
    "proxy-authenticate",
    "http2-settings",
};

bool is_hop_by_hop(std::string_view name) noexcept
{
    return std::any_of(kHopByHop.begin(), kHopByHop.end(), [&](std::string_view h) { return iequals(h, name); });
}

void append_json_string(std::string& out, std::string_view text)
{
    static constexpr char kHex[] = "0123456789abcdef";
    out += '"';
    for (char c : text) {
        const auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u >= 0x7f) {
            // Messages are ASCII from the daemon; anything else is shown escaped, never raw.
            out += "\\u00";
            out += kHex[u >> 4];
            out += kHex[u & 0xf];
        } else {
            out += c;
        }
    }
    out += '"';
}

}  // namespace

std::optional<ListenAddress> parse_listen(std::string_view text, std::string& error)
{
    ListenAddress address;
    if (text.substr(0, 5) == "unix:") {
        address.kind = ListenAddress::Kind::Unix;
        address.path = std::string(text.substr(5));
        // sun_path holds 108 bytes with its terminating NUL; abstract names are not offered.
        if (address.path.empty() || address.path[0] != '/' || address.path.size() > 107 ||
            address.path.find('\0') != std::string::npos) {
            error = "unix:PATH needs an absolute path of at most 107 bytes";
            return std::nullopt;
        }
        return address;
    }
    std::string_view host;
    std::string_view port;
    if (!text.empty() && text[0] == '[') {
        const std::size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
            error = "expected [::1]:PORT";
            return std::nullopt;
        }
        host = text.substr(1, close - 1);
        port = text.substr(close + 2);
        if (host != "::1") {
            error = "the proxy listens on loopback only: [::1]:PORT, 127.0.0.1:PORT or unix:PATH";
            return std::nullopt;
        }
    } else {
        const std::size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) {
            error = "expected HOST:PORT or unix:PATH";
            return std::nullopt;
        }
        host = text.substr(0, colon);
        port = text.substr(colon + 1);
        if (host == "localhost") {
            host = "127.0.0.1";
        }
        if (!is_ipv4_loopback(host)) {
            error = "the proxy listens on loopback only: 127.0.0.1:PORT, [::1]:PORT or unix:PATH";
            return std::nullopt;
        }
    }
    const auto number = parse_port(port);
    if (!number) {
        error = "the port must be a number from 0 to 65535 (0: any free port)";
        return std::nullopt;
    }
    address.host = std::string(host);
    address.port = *number;
    return address;
}

std::optional<Route> route_request(std::string_view raw_target, const std::vector<std::string>& allowed,
                                   RouteError& error)
{
    error = {};
    if (raw_target.empty() || raw_target[0] != '/') {
        error = {400, "the request target must be a path (origin form), /<provider>/<path>"};
        return std::nullopt;
    }
    for (char c : raw_target) {
        const auto u = static_cast<unsigned char>(c);
        if (u <= 0x20 || u >= 0x7f || c == '#' || c == '\\') {
            error = {400, "the request target holds a byte a URL may not carry unencoded"};
            return std::nullopt;
        }
    }
    const std::size_t query_at = raw_target.find('?');
    const std::string_view path = raw_target.substr(0, query_at);
    const std::string_view query =
        query_at == std::string_view::npos ? std::string_view{} : raw_target.substr(query_at);

    const std::size_t slash = path.find('/', 1);
    const std::string_view provider = path.substr(1, slash == std::string_view::npos ? path.size() - 1 : slash - 1);
    if (!is_provider_name(provider)) {
        error = {404, "no provider in the path: use /<provider>/<path>"};
        return std::nullopt;
    }
    if (!allowed.empty() && std::find(allowed.begin(), allowed.end(), provider) == allowed.end()) {
        error = {404, "this proxy does not route provider \"" + std::string(provider) + "\""};
        return std::nullopt;
    }
    std::string_view rest = slash == std::string_view::npos ? std::string_view{"/"} : path.substr(slash);
    // Every segment after the provider: no dot segments in any encoding, so what the daemon
    // authorizes is the path the upstream serves.
    std::size_t i = 1;
    while (i <= rest.size()) {
        const std::size_t next = rest.find('/', i);
        const std::string_view segment = rest.substr(i, next == std::string_view::npos ? rest.size() - i : next - i);
        if (is_dot_segment(segment)) {
            error = {400, "\".\" and \"..\" path segments are refused"};
            return std::nullopt;
        }
        if (next == std::string_view::npos) {
            break;
        }
        i = next + 1;
    }
    Route route;
    route.provider = std::string(provider);
    route.path_and_query = std::string(rest) + std::string(query);
    return route;
}

bool is_supported_method(std::string_view method) noexcept
{
    return method == "GET" || method == "POST" || method == "PUT" || method == "PATCH" || method == "DELETE";
}

std::string format_token(const std::uint8_t (&random)[kTokenRandomBytes])
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::string token(kTokenPrefix);
    for (std::uint8_t b : random) {
        token += kHex[b >> 4];
        token += kHex[b & 0xf];
    }
    return token;
}

bool is_acceptable_token(std::string_view token) noexcept
{
    if (token.size() < kMinTokenLength || token.size() > kMaxTokenLength) {
        return false;
    }
    return std::all_of(token.begin(), token.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return u > 0x20 && u < 0x7f;
    });
}

namespace {

bool same_token(std::string_view presented, std::string_view expected) noexcept
{
    if (presented.size() != expected.size() || expected.empty()) {
        return false;
    }
    return sodium_memcmp(presented.data(), expected.data(), expected.size()) == 0;
}

std::optional<std::string_view> bearer_value(std::string_view authorization) noexcept
{
    authorization = trim(authorization);
    if (authorization.size() < 7 || !iequals(authorization.substr(0, 6), "bearer") ||
        (authorization[6] != ' ' && authorization[6] != '\t')) {
        return std::nullopt;
    }
    return trim(authorization.substr(7));
}

}  // namespace

bool is_key_header(std::string_view name) noexcept
{
    return iequals(name, "x-api-key") || iequals(name, "x-goog-api-key") || iequals(name, "api-key");
}

bool token_accepted(const PresentedCredentials& presented, std::string_view expected) noexcept
{
    bool any = false;
    bool all_match = true;
    if (presented.authorization) {
        any = true;
        const auto value = bearer_value(*presented.authorization);
        // Both comparisons always run: which header was wrong does not change the timing.
        all_match = value.has_value() && same_token(*value, expected) && all_match;
    }
    if (presented.x_api_key) {
        any = true;
        all_match = same_token(trim(*presented.x_api_key), expected) && all_match;
    }
    return any && all_match;
}

bool forward_request_header(std::string_view name, const std::vector<std::string>& connection_tokens) noexcept
{
    if (name.empty() || iequals(name, "authorization") || is_key_header(name) || is_hop_by_hop(name)) {
        return false;
    }
    return std::none_of(connection_tokens.begin(), connection_tokens.end(),
                        [&](const std::string& token) { return iequals(token, name); });
}

bool forward_response_header(std::string_view name) noexcept
{
    return !name.empty() && !is_hop_by_hop(name);
}

std::vector<std::string> connection_tokens(std::string_view value)
{
    std::vector<std::string> tokens;
    std::size_t i = 0;
    while (i <= value.size()) {
        const std::size_t comma = value.find(',', i);
        const std::string_view part =
            trim(value.substr(i, comma == std::string_view::npos ? value.size() - i : comma - i));
        if (!part.empty()) {
            std::string token(part);
            std::transform(token.begin(), token.end(), token.begin(), lower);
            tokens.push_back(std::move(token));
        }
        if (comma == std::string_view::npos) {
            break;
        }
        i = comma + 1;
    }
    return tokens;
}

std::optional<std::vector<std::pair<std::string, std::string>>> client_environment(
    const std::vector<ClientVariables>& providers, std::string_view proxy_origin, std::string_view token,
    std::string& error)
{
    std::vector<std::pair<std::string, std::string>> env;
    auto add = [&](const std::string& name, std::string value, const std::string& provider) {
        for (const auto& [existing, unused] : env) {
            if (existing == name) {
                error = "two providers set ";
                error.append(name).append(" (the second is ").append(provider);
                error += "): run them in separate `vaultctl run` commands";
                return false;
            }
        }
        env.emplace_back(name, std::move(value));
        return true;
    };
    for (const auto& p : providers) {
        if (!add(p.base_url_env, std::string(proxy_origin) + "/" + p.provider + p.base_path, p.provider) ||
            !add(p.api_key_env, std::string(token), p.provider)) {
            return std::nullopt;
        }
    }
    return env;
}

std::string proxy_origin(const ListenAddress& address, std::uint16_t port)
{
    const bool v6 = address.host.find(':') != std::string::npos;
    return "http://" + (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(port);
}

std::vector<std::string> split_provider_list(const std::vector<std::string>& options)
{
    std::vector<std::string> names;
    for (const auto& option : options) {
        std::size_t i = 0;
        while (i <= option.size()) {
            const std::size_t comma = option.find(',', i);
            const std::string name(
                trim(std::string_view(option).substr(i, comma == std::string::npos ? option.size() - i : comma - i)));
            if (!name.empty() && std::find(names.begin(), names.end(), name) == names.end()) {
                names.push_back(name);
            }
            if (comma == std::string::npos) {
                break;
            }
            i = comma + 1;
        }
    }
    return names;
}

unsigned status_for_vault_error(std::optional<ErrorCode> code) noexcept
{
    if (!code) {
        return 502;
    }
    switch (*code) {
    case ErrorCode::PermissionDenied:
    case ErrorCode::ApprovalRequired:
    case ErrorCode::Expired:
        return 403;
    case ErrorCode::InvalidArgument:
        return 400;
    case ErrorCode::NotFound:
        return 404;
    case ErrorCode::Locked:
    case ErrorCode::IntegrityFailure:
        return 503;
    case ErrorCode::Unavailable:
        return 502;
    }
    return 502;
}

std::string_view error_type_for(std::optional<ErrorCode> code) noexcept
{
    if (!code) {
        return "vault_unreachable";
    }
    switch (*code) {
    case ErrorCode::PermissionDenied:
        return "vault_permission_denied";
    case ErrorCode::ApprovalRequired:
        return "vault_approval_required";
    case ErrorCode::Expired:
        return "vault_expired";
    case ErrorCode::InvalidArgument:
        return "vault_invalid_argument";
    case ErrorCode::NotFound:
        return "vault_not_found";
    case ErrorCode::Locked:
        return "vault_locked";
    case ErrorCode::IntegrityFailure:
        return "vault_integrity_failure";
    case ErrorCode::Unavailable:
        return "vault_unavailable";
    }
    return "vault_error";
}

std::string error_body(std::string_view type, std::string_view message)
{
    std::string out = R"({"type":"error","error":{"type":)";
    append_json_string(out, type);
    out += R"(,"message":)";
    append_json_string(out, message);
    out += "}}";
    return out;
}

}  // namespace codexvault::cli::proxy
