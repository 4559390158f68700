// HTTP request patterns ("POST /v1/chat/completions", "GET /v1/models/*") and the checks a
// request path must pass before it is compared with them.
//
// A pattern is a method (GET, POST, PUT, PATCH, DELETE) and an absolute path. The path either
// matches exactly, or ends with a "/*" wildcard segment and then matches every path that
// starts with the text before the '*' ("/v1/models/*" matches "/v1/models/" and
// "/v1/models/a/b", not "/v1/models"). The query string of a request (after '?') is not
// compared. '*' anywhere else is refused.
//
// A request path is refused outright (never compared) unless it is clean: it starts with '/',
// has only RFC 3986 path characters, no empty, "." or ".." segments, no percent-encoded '.',
// '/', '\' or NUL, no fragment, and is at most 2048 bytes. So "/v1/../admin" can never be
// smuggled under "/v1/*".
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/result.hpp"

namespace codexvault::policy {

enum class HttpMethod : std::uint8_t { Get, Post, Put, Patch, Delete };
inline constexpr std::size_t kHttpMethods = 5;

std::optional<HttpMethod> parse_method(std::string_view text) noexcept;  // upper case only
std::string_view method_name(HttpMethod method) noexcept;

struct RequestPattern {
    HttpMethod method = HttpMethod::Get;
    std::string path;       // exact path, or for a wildcard the prefix up to and including the last '/'
    bool wildcard = false;  // the pattern ended in "/*"

    [[nodiscard]] std::string to_string() const;  // "GET /v1/models/*"
    // path_only: a clean request path without its query (see clean_request_path).
    [[nodiscard]] bool matches(HttpMethod request_method, std::string_view path_only) const noexcept;
    // Whether every request this pattern admits is also admitted by `this`.
    [[nodiscard]] bool covers(const RequestPattern& narrower) const noexcept;
    friend bool operator==(const RequestPattern&, const RequestPattern&) = default;
};

Result<RequestPattern> parse_request_pattern(std::string_view text);

// The path part (before '?') of a clean request path, or nullopt when the path is refused.
std::optional<std::string_view> clean_request_path(std::string_view path) noexcept;

}  // namespace codexvault::policy
