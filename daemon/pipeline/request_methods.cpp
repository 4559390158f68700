// Provider mediation: Request (the daemon makes the HTTPS call with the secret injected) and
// RequestOutcome (whether the body a caller read was whole). request_broker.hpp says what
// happens after the decision.
#include <strings.h>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "daemon/egress/header_rules.hpp"
#include "daemon/grant_bridge.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/pipeline/request_body.hpp"
#include "daemon/pipeline/request_broker.hpp"
#include "policy/request_pattern.hpp"
#include "policy/text.hpp"

namespace codexvault::daemon::methods {
namespace {

std::vector<egress::Header> read_headers(sd_bus_message* message, std::optional<std::string>& approval_id)
{
    std::vector<egress::Header> headers;
    io::check_argument(sd_bus_message_enter_container(message, 'a', "(ss)"), "headers");
    for (;;) {
        const char* name = nullptr;
        const char* value = nullptr;
        const int r = sd_bus_message_read(message, "(ss)", &name, &value);
        io::check_argument(r, "header");
        if (r == 0) {
            break;
        }
        if (::strcasecmp(name, bus::request::kApprovalHeader) == 0) {
            if (approval_id) {
                throw VaultError(ErrorCode::InvalidArgument, "more than one approval header");
            }
            approval_id = value;
            continue;
        }
        // The count and sizes are checked again, with the names and values, by the egress rules.
        if (headers.size() >= egress::kMaxCallerHeaders) {
            throw VaultError(ErrorCode::InvalidArgument,
                             "more than " + std::to_string(egress::kMaxCallerHeaders) + " request headers");
        }
        headers.push_back(egress::Header{name, value});
    }
    io::check_argument(sd_bus_message_exit_container(message), "headers");
    return headers;
}

RequestBody read_body(sd_bus_message* message)
{
    io::check_argument(sd_bus_message_enter_container(message, 'a', "h"), "body");
    std::optional<UniqueFd> fd;
    for (;;) {
        const int r = sd_bus_message_at_end(message, 0);
        io::check_argument(r, "body");
        if (r > 0) {
            break;
        }
        if (fd) {
            throw VaultError(ErrorCode::InvalidArgument, "a request takes at most one body descriptor");
        }
        fd = io::read_fd(message);
    }
    io::check_argument(sd_bus_message_exit_container(message), "body");
    if (!fd) {
        return no_request_body();
    }
    RequestBody body = take_request_body(fd->get());
    if (body.size == 0) {
        body.fd.reset();  // an empty body is no body
    }
    return body;
}

}  // namespace

PreparedCall decode_request(sd_bus_message* message)
{
    ProviderCall request;
    request.provider = io::read_string(message);
    request.method = io::read_string(message);
    request.path = io::read_string(message);
    if (!policy::is_valid_name(request.provider)) {
        throw VaultError(ErrorCode::InvalidArgument, "invalid provider name");
    }
    if (!policy::parse_method(request.method)) {
        throw VaultError(ErrorCode::InvalidArgument, "method must be one of GET POST PUT PATCH DELETE");
    }
    if (!policy::clean_request_path(request.path)) {
        throw VaultError(ErrorCode::InvalidArgument,
                         "path must be a clean absolute path (no '..', '.', '//', '\\\\', fragment or control "
                         "characters)");
    }
    std::optional<std::string> approval_id;
    request.headers = read_headers(message, approval_id);
    // Read before authorization because the approval is bound to its hash (request_body.hpp).
    request.body = read_body(message);

    PreparedCall call;
    GrantUse use;
    use.capability = capability_argument("provider:" + request.provider + ":request");
    use.method = request.method;
    use.path = request.path;
    use.body_digest = request.body.sha256_hex;
    use.approval_id = std::move(approval_id);
    call.object = RequestBroker::audit_object(request.provider, request.method, request.path);
    call.grant_use = std::move(use);
    auto shared = std::make_shared<ProviderCall>(std::move(request));
    call.act = [shared](RequestContext& context, sd_bus_message* /*reply*/) {
        if (context.requests == nullptr || context.call == nullptr) {
            throw VaultError(ErrorCode::Unavailable, "provider requests are not available in this daemon");
        }
        context.requests->start(std::move(*shared), context.call, context.subject, context.sender,
                                context.grant_reference);
    };
    return call;
}

PreparedCall decode_request_outcome(sd_bus_message* message)
{
    std::uint64_t id = 0;
    io::check_argument(sd_bus_message_read(message, "t", &id), "request_id");
    PreparedCall call;
    call.object = "request " + std::to_string(id);
    call.act = [id](RequestContext& context, sd_bus_message* reply) {
        const auto found =
            context.requests != nullptr ? context.requests->outcome(context.subject.bus_name, id) : std::nullopt;
        if (!found) {
            throw VaultError(ErrorCode::NotFound, "no request with that id on this connection");
        }
        io::check(sd_bus_message_append(reply, "sstt", found->end.c_str(), found->reason.c_str(),
                                        found->bytes_delivered, found->redactions),
                  "append request outcome");
    };
    return call;
}

}  // namespace codexvault::daemon::methods
