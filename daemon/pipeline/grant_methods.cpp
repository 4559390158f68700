// Capabilities over the bus: Check and Use for callers, grants for the founder.
#include <sodium.h>

#include <array>
#include <string_view>

#include "common/vault_error.hpp"
#include "daemon/grant_bridge.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/vault_service.hpp"

namespace codexvault::daemon::methods {
namespace {

constexpr std::array<std::string_view, 5> kRequestKeys{"method", "path", "body_digest", "target", "approval_id"};
constexpr std::size_t kMaxGrantRequests = 64;
constexpr std::string_view kAllGrants = "all grants";

GrantUse read_grant_use(sd_bus_message* message, bool allow_approval)
{
    GrantUse use;
    use.capability = capability_argument(io::read_string(message));
    const io::ArgumentDict request = io::read_argument_dict(message, kRequestKeys);
    use.method = io::dict_string(request, "method");
    use.path = io::dict_string(request, "path");
    use.body_digest = io::dict_string(request, "body_digest");
    use.target = io::dict_string(request, "target");
    if (request.find("approval_id") != request.end()) {
        if (!allow_approval) {
            throw VaultError(ErrorCode::InvalidArgument, "Check does not take an approval id");
        }
        use.approval_id = io::dict_string(request, "approval_id");
    }
    return use;
}

policy::IdSeed random_seed()
{
    policy::IdSeed seed{};
    randombytes_buf(seed.data(), seed.size());
    return seed;
}

void append_grant(sd_bus_message* reply, const policy::GrantInfo& info)
{
    const policy::GrantDefinition& grant = info.definition;
    io::Dictionary dict(reply);
    dict.add("id", grant.id);
    dict.add("capability", grant.capability.to_string());
    dict.add("principal", grant.principal_label);
    dict.add("conditions", grant.principal.to_spec());
    dict.add("origin", grant.origin == policy::GrantOrigin::Policy ? "policy" : "runtime");
    dict.add("state", std::string(policy::grant_state_name(info.state)));
    dict.add("uses", info.uses);
    dict.add("max_uses", grant.max_uses.value_or(0));
    dict.add("expires_usec", grant.expires_at_usec.value_or(0));
    dict.add("issued_usec", grant.issued_at_usec);
    dict.add("revoked_usec", info.revoked_at_usec.value_or(0));
    dict.add("rate", grant.rate ? policy::format_rate(*grant.rate) : std::string());
    dict.add("approval", std::string(policy::approval_mode_name(grant.approval)));
    std::vector<std::string> requests;
    requests.reserve(grant.requests.size());
    for (const auto& pattern : grant.requests) {
        requests.push_back(pattern.to_string());
    }
    dict.add_string_array("requests", requests);
    if (grant.capability.kind == policy::CapabilityKind::SecretInject) {
        dict.add("on_touch", std::string(policy::inject_on_touch_name(grant.inject.on_touch)));
        dict.add("on_expiry", std::string(policy::inject_on_expiry_name(grant.inject.on_expiry)));
    }
    dict.add("description", grant.description);
    dict.close();
}

}  // namespace

PreparedCall decode_check(sd_bus_message* message)
{
    PreparedCall call;
    GrantUse use = read_grant_use(message, false);
    call.object = use.capability.to_string();
    // Informational: the same evaluation as a use, computed without consuming anything.
    call.act = [use = std::move(use)](RequestContext& context, sd_bus_message* reply) {
        const policy::Decision decision = caller_decision(context.vault.engine().check(
            subject_view(context.subject), use.capability, use.request(), clock::realtime_usec()));
        const std::string verdict(policy::verdict_name(decision.verdict));
        const std::string reason(decision.reason_text());
        const std::string grant(decision.grant_id.view());
        io::check(sd_bus_message_append(reply, "bsss", static_cast<int>(decision.allowed()), verdict.c_str(),
                                        reason.c_str(), grant.c_str()),
                  "append check result");
    };
    return call;
}

PreparedCall decode_use(sd_bus_message* message)
{
    PreparedCall call;
    call.grant_use = read_grant_use(message, true);
    call.object = call.grant_use->capability.to_string();
    // The pipeline's authorize step made the decision (and recorded the use); this only reports it.
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        const policy::Decision& decision = context.grant_use->decision;
        const std::string grant(decision.grant_id.view());
        const std::string approval(decision.approval_id.view());
        io::check(sd_bus_message_append(reply, "ss", grant.c_str(), approval.c_str()), "append use result");
    };
    return call;
}

PreparedCall decode_issue_grant(sd_bus_message* message)
{
    PreparedCall call;
    policy::GrantRequest request;
    request.principal = io::read_string(message);
    request.capability = io::read_string(message);
    request.ttl = io::read_string(message);
    std::uint64_t max_uses = 0;
    io::check_argument(sd_bus_message_read(message, "t", &max_uses), "max_uses");
    if (max_uses != 0) {
        request.max_uses = max_uses;
    }
    std::string rate = io::read_string(message);
    if (!rate.empty()) {
        request.rate = rate;
    }
    request.approval = io::read_string(message);
    request.requests = io::read_string_array(message, kMaxGrantRequests);
    request.description = io::read_string(message);
    call.proof = io::read_founder_proof(message);
    call.signed_arguments = {request.principal, request.capability, request.ttl, std::to_string(max_uses), rate,
                             request.approval,  request.description};
    call.signed_arguments.insert(call.signed_arguments.end(), request.requests.begin(), request.requests.end());
    call.object = request.capability;
    call.act = [request = std::move(request)](RequestContext& context, sd_bus_message* reply) {
        auto issued = context.vault.engine().issue(request, random_seed(), clock::realtime_usec());
        if (!issued) {
            throw VaultError(ErrorCode::InvalidArgument, issued.message());
        }
        context.vault.mark_policy_state_dirty();
        const std::string id = issued.value().str();
        io::check(sd_bus_message_append(reply, "s", id.c_str()), "append grant id");
    };
    return call;
}

PreparedCall decode_list_grants(sd_bus_message* message)
{
    PreparedCall call;
    call.proof = io::read_founder_proof(message);
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        io::check(sd_bus_message_open_container(reply, 'a', "a{sv}"), "open grants");
        for (const auto& info : context.vault.engine().list_grants(clock::realtime_usec())) {
            append_grant(reply, info);
        }
        io::check(sd_bus_message_close_container(reply), "close grants");
    };
    return call;
}

PreparedCall decode_revoke_grant(sd_bus_message* message)
{
    PreparedCall call;
    std::string id = io::read_string(message);
    call.proof = io::read_founder_proof(message);
    call.signed_arguments = {id};
    call.object = id;
    call.act = [id = std::move(id)](RequestContext& context, sd_bus_message* /*reply*/) {
        // Revoking twice is not an error: the founder's intent (revoked) holds either way.
        if (context.vault.engine().revoke(id, clock::realtime_usec()) == policy::RevokeResult::NotFound) {
            throw VaultError(ErrorCode::NotFound, "no grant with that id");
        }
        context.vault.mark_policy_state_dirty();
    };
    return call;
}

PreparedCall decode_revoke_all_grants(sd_bus_message* message)
{
    PreparedCall call;
    call.proof = io::read_founder_proof(message);
    call.object = std::string(kAllGrants);
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        const std::size_t revoked = context.vault.engine().revoke_all(clock::realtime_usec());
        context.vault.mark_policy_state_dirty();
        io::check(sd_bus_message_append(reply, "u", static_cast<std::uint32_t>(revoked)), "append count");
    };
    return call;
}

}  // namespace codexvault::daemon::methods
