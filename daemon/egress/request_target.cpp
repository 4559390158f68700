#include "daemon/egress/request_target.hpp"

namespace codexvault::egress {

policy::Result<RequestTarget> make_target(const policy::Provider& provider, std::string_view method,
                                          std::string_view path_with_query)
{
    const auto parsed = policy::parse_method(method);
    if (!parsed) {
        return policy::make_error("method must be one of GET, POST, PUT, PATCH, DELETE");
    }
    const auto path_only = policy::clean_request_path(path_with_query);
    if (!path_only) {
        return policy::make_error(
            "the request path is not clean (absolute, no '.' or '..' segments, no encoded "
            "'/', '.', '\\' or NUL, no fragment, at most 2048 bytes)");
    }
    if (!provider.allows(*parsed, *path_only)) {
        return policy::make_error("provider " + provider.name + " does not allow " + std::string(method) + " " +
                                  std::string(*path_only));
    }
    RequestTarget target;
    target.method = *parsed;
    target.url = provider.origin.to_string() + std::string(path_with_query);
    target.path_only = std::string(*path_only);
    return target;
}

bool method_takes_body(policy::HttpMethod method) noexcept
{
    return method == policy::HttpMethod::Post || method == policy::HttpMethod::Put ||
           method == policy::HttpMethod::Patch;
}

}  // namespace codexvault::egress
