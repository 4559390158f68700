// Runtime approvals, founder only: list the pending ones, approve or deny one.
#include "common/vault_error.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/vault_service.hpp"

namespace codexvault::daemon::methods {
namespace {

void append_approval(sd_bus_message* reply, const policy::Approval& approval)
{
    io::Dictionary dict(reply);
    dict.add("id", approval.id.str());
    dict.add("grant_id", approval.grant_id);
    dict.add("capability", approval.capability.to_string());
    dict.add("state", std::string(policy::approval_state_name(approval.state)));
    dict.add("uid", approval.subject.uid);
    dict.add("pid", approval.subject.pid);
    dict.add("exe", approval.subject.exe.value_or(""));
    dict.add("request", approval.summary);
    dict.add("created_usec", approval.created_at_usec);
    dict.add("expires_usec", approval.expires_at_usec);
    dict.close();
}

void throw_for(policy::DecideResult result)
{
    switch (result) {
    case policy::DecideResult::Ok:
        return;
    case policy::DecideResult::NotFound:
        throw VaultError(ErrorCode::NotFound, "no approval with that id");
    case policy::DecideResult::Expired:
        throw VaultError(ErrorCode::Expired, "the approval expired; the caller must ask again");
    case policy::DecideResult::AlreadyDecided:
        throw VaultError(ErrorCode::InvalidArgument, "the approval was already decided");
    }
    throw VaultError(ErrorCode::InvalidArgument, std::string(policy::describe(result)));
}

PreparedCall decode_decision(sd_bus_message* message, bool approve)
{
    PreparedCall call;
    std::string id = io::read_string(message);
    call.proof = io::read_founder_proof(message);
    call.signed_arguments = {id};
    call.object = id;
    call.act = [id = std::move(id), approve](RequestContext& context, sd_bus_message* /*reply*/) {
        auto& engine = context.vault.engine();
        const auto now = clock::realtime_usec();
        const policy::DecideResult result = approve ? engine.approve(id, now) : engine.deny(id, now);
        throw_for(result);
        context.vault.mark_policy_state_dirty();
    };
    return call;
}

}  // namespace

PreparedCall decode_list_approvals(sd_bus_message* message)
{
    PreparedCall call;
    call.proof = io::read_founder_proof(message);
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        const auto now = clock::realtime_usec();
        io::check(sd_bus_message_open_container(reply, 'a', "a{sv}"), "open approvals");
        for (const auto& approval : context.vault.engine().approvals().all()) {
            if (approval.outstanding(now)) {
                append_approval(reply, approval);
            }
        }
        io::check(sd_bus_message_close_container(reply), "close approvals");
    };
    return call;
}

PreparedCall decode_approve(sd_bus_message* message)
{
    return decode_decision(message, true);
}

PreparedCall decode_deny(sd_bus_message* message)
{
    return decode_decision(message, false);
}

}  // namespace codexvault::daemon::methods
