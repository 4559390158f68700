#include "daemon/egress/header_rules.hpp"

#include <algorithm>
#include <array>

namespace codexvault::egress {

namespace {

// Credentials and routing the caller may not set; the vault sets what is needed itself.
constexpr std::array<std::string_view, 7> kCallerForbidden{
    "authorization", "proxy-authorization", "cookie", "host", "content-length", "expect", "accept-encoding",
};

// RFC 9110 7.6.1 hop-by-hop headers, plus the legacy Proxy-Connection and Transfer-Encoding.
constexpr std::array<std::string_view, 7> kHopByHop{
    "connection", "keep-alive", "te", "trailer", "upgrade", "proxy-connection", "transfer-encoding",
};

constexpr std::array<std::string_view, 4> kResponseDropped{
    "set-cookie",
    "www-authenticate",
    "proxy-authenticate",
    "content-length",
};

template <std::size_t N>
bool listed(const std::array<std::string_view, N>& list, std::string_view name) noexcept
{
    return std::find(list.begin(), list.end(), name) != list.end();
}

bool is_tchar(char c) noexcept
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
        return true;
    }
    static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
    return kExtra.find(c) != std::string_view::npos;
}

std::string_view trim(std::string_view text) noexcept
{
    while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) {
        text.remove_prefix(1);
    }
    while (!text.empty() && (text.back() == ' ' || text.back() == '\t' || text.back() == '\r' || text.back() == '\n')) {
        text.remove_suffix(1);
    }
    return text;
}

// The header names a Connection header lists are hop-by-hop for this message (RFC 9110 7.6.1).
std::vector<std::string> connection_tokens(const std::vector<Header>& headers)
{
    std::vector<std::string> tokens;
    for (const Header& header : headers) {
        if (lower_ascii(header.name) != "connection") {
            continue;
        }
        std::string_view rest = header.value;
        while (!rest.empty()) {
            const std::size_t comma = std::min(rest.find(','), rest.size());
            const std::string_view token = trim(rest.substr(0, comma));
            if (!token.empty()) {
                tokens.push_back(lower_ascii(token));
            }
            rest.remove_prefix(std::min(comma + 1, rest.size()));
        }
    }
    return tokens;
}

}  // namespace

bool is_header_name(std::string_view name) noexcept
{
    return !name.empty() && name.size() <= 256 && std::all_of(name.begin(), name.end(), is_tchar);
}

bool is_header_value(std::string_view value) noexcept
{
    return value.size() <= kMaxHeaderValueBytes && std::all_of(value.begin(), value.end(), [](char c) {
               const auto byte = static_cast<unsigned char>(c);
               return byte == '\t' || (byte >= 0x20 && byte != 0x7F);
           });
}

std::string lower_ascii(std::string_view text)
{
    std::string out(text);
    for (char& c : out) {
        if (c >= 'A' && c <= 'Z') {
            c = static_cast<char>(c - 'A' + 'a');
        }
    }
    return out;
}

policy::Result<FilteredHeaders> filter_request_headers(const std::vector<Header>& caller,
                                                       const policy::Injection& inject)
{
    if (caller.size() > kMaxCallerHeaders) {
        return policy::make_error("more than " + std::to_string(kMaxCallerHeaders) + " request headers");
    }
    std::size_t total = 0;
    for (const Header& header : caller) {
        if (!is_header_name(header.name)) {
            return policy::make_error("a request header name is not an HTTP token");
        }
        if (!is_header_value(header.value)) {
            return policy::make_error("request header " + header.name +
                                      " has a control character (CR, LF, NUL) or is longer than 8192 bytes");
        }
        total += header.name.size() + header.value.size();
    }
    if (total > kMaxCallerHeaderBytes) {
        return policy::make_error("request headers are larger than 32 KiB in all");
    }
    const std::vector<std::string> named_by_connection = connection_tokens(caller);
    const std::string injected = lower_ascii(inject.header);
    FilteredHeaders out;
    for (const Header& header : caller) {
        std::string name = lower_ascii(header.name);
        const bool drop =
            listed(kCallerForbidden, name) || listed(kHopByHop, name) || name == injected ||
            std::find(named_by_connection.begin(), named_by_connection.end(), name) != named_by_connection.end();
        if (drop) {
            if (std::find(out.dropped.begin(), out.dropped.end(), name) == out.dropped.end()) {
                out.dropped.push_back(std::move(name));
            }
            continue;
        }
        out.headers.push_back(Header{header.name, std::string(trim(header.value))});
    }
    out.headers.push_back(Header{"Accept-Encoding", "identity"});
    return out;
}

bool keep_response_header(std::string_view name) noexcept
{
    std::array<char, 64> lowered{};
    if (name.size() > lowered.size()) {
        return true;  // longer than every name dropped here
    }
    for (std::size_t i = 0; i < name.size(); ++i) {
        const char c = name[i];
        lowered[i] = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    const std::string_view low(lowered.data(), name.size());
    return !listed(kResponseDropped, low) && !listed(kHopByHop, low);
}

bool split_header_line(std::string_view line, Header& out)
{
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
        return false;
    }
    const std::string_view name = line.substr(0, colon);
    if (!is_header_name(name)) {
        return false;
    }
    out.name = std::string(name);
    out.value = std::string(trim(line.substr(colon + 1)));
    return true;
}

}  // namespace codexvault::egress
