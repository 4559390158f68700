// Which headers cross the vault in each direction. Pure: no I/O.
//
// Upstream, the caller's headers are checked (HTTP token names, values without CR, LF or NUL,
// bounded count and size: a malformed header is refused, never repaired) and then filtered:
// credentials the caller brings (Authorization, Proxy-Authorization, Cookie, the provider's own
// injection header), routing and framing (Host, Content-Length, Transfer-Encoding, Expect) and
// hop-by-hop headers (Connection and the headers it names, Keep-Alive, TE, Trailer, Upgrade,
// Proxy-Connection) are dropped, Accept-Encoding is replaced by "identity" (the redactor must see
// the bytes as sent), and the secret goes in last through the provider's template. Dropping
// rather than refusing keeps unmodified SDKs working: they always send an Authorization header
// (the proxy's token or a dummy key) that the vault replaces.
//
// Downstream, Set-Cookie, WWW-Authenticate, Proxy-Authenticate, hop-by-hop and framing headers
// (Content-Length no longer holds once the body is redacted) are removed.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "policy/provider.hpp"
#include "policy/result.hpp"

namespace codexvault::egress {

struct Header {
    std::string name;
    std::string value;
    friend bool operator==(const Header&, const Header&) = default;
};

inline constexpr std::size_t kMaxCallerHeaders = 64;
inline constexpr std::size_t kMaxHeaderValueBytes = 8192;
inline constexpr std::size_t kMaxCallerHeaderBytes = 32 * 1024;  // names + values, all headers
inline constexpr std::size_t kMaxResponseHeaders = 128;
inline constexpr std::size_t kMaxResponseHeaderBytes = 64 * 1024;

struct FilteredHeaders {
    std::vector<Header> headers;       // what goes upstream besides the injected one
    std::vector<std::string> dropped;  // lower-case names the vault removed, for the audit record
};

[[nodiscard]] bool is_header_name(std::string_view name) noexcept;
// Printable ASCII, space, tab and obs-text; never CR, LF, NUL or other controls.
[[nodiscard]] bool is_header_value(std::string_view value) noexcept;
[[nodiscard]] std::string lower_ascii(std::string_view text);

// Checks and filters the caller's headers (see above); the result never holds an injected header.
policy::Result<FilteredHeaders> filter_request_headers(const std::vector<Header>& caller,
                                                       const policy::Injection& inject);

// Whether a response header goes back to the caller (its value is redacted separately).
[[nodiscard]] bool keep_response_header(std::string_view name) noexcept;

// Splits "Name: value\r\n" as curl hands a header line over; false for a status line, a blank
// line or a line that is not a header. Leading and trailing blanks of the value are removed.
[[nodiscard]] bool split_header_line(std::string_view line, Header& out);

}  // namespace codexvault::egress
