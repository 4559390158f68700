#include "policy/request.hpp"

#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

void field(std::string& out, std::string_view name, std::string_view value)
{
    out += name;
    out.push_back('=');
    out += std::to_string(value.size());
    out.push_back(':');
    out += value;
    out.push_back('\n');
}

}  // namespace

std::string canonical_request(const Capability& capability, const RequestContext& request)
{
    std::string out = "codex-vault-request-v1\n";
    field(out, "capability", capability.to_string());
    switch (capability.kind) {
    case CapabilityKind::ProviderRequest:
        field(out, "method", request.method);
        field(out, "path", request.path);
        field(out, "body", request.body_digest);
        break;
    case CapabilityKind::SecretInject:
        field(out, "target", request.target);
        break;
    default:
        break;
    }
    return out;
}

std::string describe_request(const Capability& capability, const RequestContext& request)
{
    std::string out = capability.to_string();
    switch (capability.kind) {
    case CapabilityKind::ProviderRequest:
        out += " " + quote(request.method, 16) + " " + quote(request.path, 512);
        if (!request.body_digest.empty()) {
            out += " body " + quote(request.body_digest, 128);
        }
        break;
    case CapabilityKind::SecretInject:
        out += " to " + quote(request.target, 512);
        break;
    default:
        break;
    }
    return out;
}

}  // namespace codexvault::policy
