// The URL a mediated request goes to: the provider's origin and the caller's path with query,
// which must be clean (policy::clean_request_path: no "..", no encoded '/', no fragment), so the
// path the policy approved is exactly the path sent. Pure.
#pragma once

#include <string>
#include <string_view>

#include "policy/provider.hpp"
#include "policy/request_pattern.hpp"
#include "policy/result.hpp"

namespace codexvault::egress {

struct RequestTarget {
    policy::HttpMethod method = policy::HttpMethod::Get;
    std::string url;        // "https://api.example.com:8443/v1/x?y=1"
    std::string path_only;  // "/v1/x", what the policy matched
};

// Refuses an unknown method, an unclean path, and a request the provider does not allow.
policy::Result<RequestTarget> make_target(const policy::Provider& provider, std::string_view method,
                                          std::string_view path_with_query);

// Whether a request with this method may carry a body (GET and DELETE go without one).
[[nodiscard]] bool method_takes_body(policy::HttpMethod method) noexcept;

}  // namespace codexvault::egress
