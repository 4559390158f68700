// Provider definitions: where the daemon may send a mediated request, which requests, with
// which secret, and how the secret is put into the request. Parsed and validated here; the
// daemon's egress module performs the requests.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/diagnostic.hpp"
#include "policy/provider_transport.hpp"
#include "policy/request_pattern.hpp"
#include "policy/result.hpp"

namespace codexvault::policy {

// "https://host[:port]": https only, a host (DNS name, IPv4 address or [IPv6] address), an
// optional port 1-65535, no userinfo, no path other than "/", no query or fragment. The host is
// lower-cased and ":443" dropped, so equal origins compare equal.
struct Origin {
    std::string host;  // IPv6 addresses keep their brackets
    std::uint16_t port = 443;
    [[nodiscard]] std::string to_string() const;
    friend bool operator==(const Origin&, const Origin&) = default;
};
Result<Origin> parse_origin(std::string_view text);

// The secret goes into one header: value = prefix + secret + suffix, from a template with
// exactly one "{secret}" ("Bearer {secret}"). Header names are HTTP tokens; framing and
// routing headers (Host, Content-Length, Transfer-Encoding, Connection, ...) are refused.
struct Injection {
    std::string header;
    std::string prefix;
    std::string suffix;
    [[nodiscard]] std::string template_text() const { return prefix + "{secret}" + suffix; }
    friend bool operator==(const Injection&, const Injection&) = default;
};
Result<Injection> parse_injection(std::string_view header, std::string_view template_text);

struct Provider {
    std::string name;
    Origin origin;
    std::vector<RequestPattern> allow;  // at least one
    std::string secret;                 // the secret's name in the store
    Injection inject;
    Transport transport;                   // trust, address guard, timeouts, limits (defaults)
    std::optional<ClientSettings> client;  // for `vaultctl run`; absent: not runnable that way
    std::string description;
    SourceLocation source;  // where it is defined

    // path_only: a clean request path (clean_request_path).
    [[nodiscard]] bool allows(HttpMethod method, std::string_view path_only) const noexcept;
    // Whether some allowed pattern covers the (grant's) pattern.
    [[nodiscard]] bool covers(const RequestPattern& pattern) const noexcept;
};

}  // namespace codexvault::policy
