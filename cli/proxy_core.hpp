// The pure part of `vaultctl proxy` and `vaultctl run`: where to listen, which request goes to
// which provider, the token check, which headers cross the proxy, and the environment a client
// gets. No descriptors and no bus here, so all of it is unit-tested (tests/unit/cli).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/vault_error.hpp"

namespace codexvault::cli::proxy {

// --listen: "127.0.0.1:PORT", "[::1]:PORT", "localhost:PORT" (IPv4 loopback) or "unix:PATH".
// Loopback only: the token is the proxy's one lock, and it travels in clear over HTTP.
struct ListenAddress {
    enum class Kind { Tcp, Unix } kind = Kind::Tcp;
    std::string host;  // "127.0.0.1" or "::1" (no brackets) for Tcp
    std::uint16_t port = 0;
    std::string path;  // for Unix
};
// nullopt with `error` set when the text is not one of the accepted forms.
std::optional<ListenAddress> parse_listen(std::string_view text, std::string& error);

// Where a request goes: "/<provider>/<rest>?<query>" -> provider, "/<rest>?<query>".
struct Route {
    std::string provider;
    std::string path_and_query;  // starts with '/'; the raw bytes the client sent (no decoding)
};
struct RouteError {
    unsigned status = 404;
    std::string message;
};
// `raw_target` is the request target as received (origin form). `allowed` empty: any provider
// name (the daemon decides); else only those. Refused: absolute or asterisk forms, a missing or
// badly formed provider name, "." or ".." segments (raw or percent-encoded), control bytes,
// spaces, '#', and backslashes.
std::optional<Route> route_request(std::string_view raw_target, const std::vector<std::string>& allowed,
                                   RouteError& error);

// The methods a provider's `allow` list can name; anything else is refused with 405 here.
bool is_supported_method(std::string_view method) noexcept;

// Tokens: "sk-cv-" followed by 48 characters of [0-9a-f] from 24 random bytes. The SDKs that
// look at a key only ask for a non-empty string; the "sk-" prefix keeps tools that warn about
// an odd-looking key quiet.
inline constexpr std::string_view kTokenPrefix = "sk-cv-";
inline constexpr std::size_t kTokenRandomBytes = 24;
inline constexpr std::size_t kMinTokenLength = 32;
inline constexpr std::size_t kMaxTokenLength = 256;
std::string format_token(const std::uint8_t (&random)[kTokenRandomBytes]);
// A token read from --token-file: 32 to 256 visible ASCII bytes (no spaces, no controls).
// Surrounding whitespace (a trailing newline) is trimmed by the caller.
bool is_acceptable_token(std::string_view token) noexcept;

// The headers SDKs put an API key in, which carry the proxy's token instead: x-api-key
// (Anthropic), x-goog-api-key (Google Gemini), api-key (Azure OpenAI). Case-insensitive.
bool is_key_header(std::string_view name) noexcept;

// The token the client presented: "Authorization: Bearer TOKEN" (scheme case-insensitive) or a
// key header's value (is_key_header). Either may carry it; every one present must hold it.
struct PresentedCredentials {
    std::optional<std::string_view> authorization;
    std::optional<std::string_view> x_api_key;  // any key header's value
};
// Constant time in the token's content (libsodium's comparison); lengths are public.
bool token_accepted(const PresentedCredentials& presented, std::string_view expected) noexcept;

// Request headers that go to Request: not the token headers (Authorization, key headers), not the
// framing and hop-by-hop headers the proxy's own HTTP layer owns (Host, Content-Length,
// Transfer-Encoding, Connection, Keep-Alive, TE, Trailer, Upgrade, Expect, Proxy-*), and not
// whatever the Connection header names. Names are compared case-insensitively.
bool forward_request_header(std::string_view name, const std::vector<std::string>& connection_tokens) noexcept;
// Response headers that go back to the client: not the framing and hop-by-hop ones (the proxy
// frames the body itself, always chunked, so a cut body can be seen as cut).
bool forward_response_header(std::string_view name) noexcept;
// The comma-separated tokens of a Connection header, lower-cased and trimmed.
std::vector<std::string> connection_tokens(std::string_view value);

// A provider's `client` settings (policy/provider_transport.hpp ClientSettings), for run.
struct ClientVariables {
    std::string provider;
    std::string base_url_env;
    std::string base_path;
    std::string api_key_env;
};
// The variables `vaultctl run` sets: base URL "http://HOST:PORT/<provider><base_path>" and the
// token as the API key. Two providers naming the same variable are refused (`error` set).
std::optional<std::vector<std::pair<std::string, std::string>>> client_environment(
    const std::vector<ClientVariables>& providers, std::string_view proxy_origin, std::string_view token,
    std::string& error);
// "http://127.0.0.1:PORT" or "http://[::1]:PORT".
std::string proxy_origin(const ListenAddress& address, std::uint16_t port);

// "openai,anthropic" and repeated options -> names, in order, without duplicates.
std::vector<std::string> split_provider_list(const std::vector<std::string>& options);

// The HTTP status a refused Request call becomes (no code: the bus or the daemon failed, 502),
// and the error type the body names ("vault_permission_denied", ...).
unsigned status_for_vault_error(std::optional<ErrorCode> code) noexcept;
std::string_view error_type_for(std::optional<ErrorCode> code) noexcept;
// A small JSON error body in the shape the OpenAI and Anthropic SDKs print:
// {"type":"error","error":{"type":TYPE,"message":MESSAGE}}.
std::string error_body(std::string_view type, std::string_view message);

}  // namespace codexvault::cli::proxy
