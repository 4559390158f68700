// Policy administration over the bus (founder only).
#include "common/vault_error.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
#include "daemon/vault_service.hpp"

namespace codexvault::daemon::methods {

PreparedCall decode_reload_policy(sd_bus_message* message)
{
    PreparedCall call;
    call.proof = io::read_founder_proof(message);
    call.object = "policy";
    // A failed reload is an error reply naming file, line and column, and the audit outcome
    // records it; the engine is left with no policy, so grant-based use is denied.
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        VaultService& vault = context.vault;
        if (!vault.reload_policy()) {
            throw VaultError(ErrorCode::InvalidArgument, "policy " + vault.policy_status());
        }
        io::check(sd_bus_message_append(reply, "s", vault.policy_status().c_str()), "append policy status");
    };
    return call;
}

}  // namespace codexvault::daemon::methods
