// Status and WhoAmI: informational, open to any identified caller, never secret-bearing.
#include <vector>

#include "daemon/methods/message_io.hpp"
#include "daemon/methods/methods.hpp"
#include "daemon/vault_service.hpp"
#include "daemon/version.hpp"

namespace codexvault::daemon::methods {

PreparedCall decode_status(sd_bus_message* /*message*/)
{
    PreparedCall call;
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        VaultService& vault = context.vault;
        io::Dictionary dict(reply);
        dict.add("state", to_string(vault.state()));
        dict.add("version", kVersion);
        dict.add("lock_reason", vault.lock_reason());
        dict.add("founder_enrolled", vault.founder().enrolled());
        dict.add("founder_uid", static_cast<std::uint32_t>(vault.founder_uid()));
        dict.add("key_storage", store::to_string(vault.keyring().memory_kind()));
        dict.add("key_source", vault.keyring().source());
        // Said plainly until those parts exist, so nobody mistakes absence for health.
        dict.add("monitor", "not available: the eBPF monitor is not built yet; injection is disabled");
        // Grant-based use (Check, grants, approvals) reaches the bus with issue 3's next part.
        dict.add("policy", vault.policy_status());
        dict.add("audit", "stderr: structured decision lines (tamper-evident log not built yet)");
        dict.close();
    };
    return call;
}

PreparedCall decode_who_am_i(sd_bus_message* /*message*/)
{
    PreparedCall call;
    call.act = [](RequestContext& context, sd_bus_message* reply) {
        const identity::Subject& s = context.subject;
        io::Dictionary dict(reply);
        dict.add("bus_name", s.bus_name);
        dict.add("uid", static_cast<std::uint32_t>(s.uid));
        dict.add("gid", static_cast<std::uint32_t>(s.gid));
        const std::vector<std::uint32_t> groups(s.groups.begin(), s.groups.end());
        dict.add_uint32_array("groups", groups);
        dict.add("pid", static_cast<std::uint32_t>(s.pid));
        dict.add("start_time", s.start_time_ticks);
        dict.add("exe", s.exe);
        dict.add("exe_known", s.exe_known);
        dict.add("exe_device", s.exe_device);
        dict.add("exe_inode", s.exe_inode);
        dict.add("unit", s.unit);
        dict.add("cgroup", s.cgroup);
        dict.add("is_founder_uid", s.uid == context.vault.founder_uid());
        dict.close();
        // Live grants join this reply with the policy engine (issue 3); none exist yet.
        io::check(sd_bus_message_open_container(reply, 'a', "a{sv}"), "open grants");
        io::check(sd_bus_message_close_container(reply), "close grants");
    };
    return call;
}

}  // namespace codexvault::daemon::methods
