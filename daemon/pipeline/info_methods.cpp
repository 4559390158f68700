// Status and WhoAmI: informational, open to any identified caller, never secret-bearing.
#include <vector>

#include "daemon/audit/audit_trail.hpp"
#include "daemon/grant_bridge.hpp"
#include "daemon/monitor_service.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/pipeline/message_io.hpp"
#include "daemon/pipeline/methods.hpp"
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
        // Compare with the id `vaultctl init` printed for the founder's own key.
        dict.add("founder_key_id", vault.founder_key_id());
        dict.add("founder_key_generation", vault.state_generation(store::StateKind::Founder));
        dict.add("grant_state_generation", vault.state_generation(store::StateKind::PolicyState));
        dict.add("store_manifest_generation", vault.secrets().manifest_generation());
        dict.add("founder_uid", static_cast<std::uint32_t>(vault.founder_uid()));
        dict.add("key_storage", store::to_string(vault.keyring().memory_kind()));
        dict.add("key_source", vault.keyring().source());
        // vaultctl seals secret values to this key and compares it with the one it pinned at init.
        dict.add("transport_key", to_hex(vault.transport_key().public_key()));
        // "off: ...", "unavailable: REASON" or "recording (...)": absence is never mistaken for health.
        dict.add("monitor",
                 context.monitor != nullptr ? context.monitor->state_line() : std::string("off: not started"));
        dict.add("policy", vault.policy_status());
        dict.add("audit", context.audit->status_line());
        const auto& lock = vault.lock_state();
        dict.add("incident", lock && lock->incident);
        dict.add("locked_since_usec", lock ? lock->locked_since_usec : std::uint64_t{0});
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
        // "proc" (its /proc/PID/exe), "monitor" (the eBPF monitor's exec records) or "none".
        dict.add("exe_source", std::string(identity::to_string(s.exe_source)));
        dict.add("exe_device", s.exe_device);
        dict.add("exe_inode", s.exe_inode);
        // "verified" (the kernel: same credentials as at connect) or "unverified: REASON".
        dict.add("connect_check", s.connect_check);
        dict.add("unit", s.unit);
        dict.add("cgroup", s.cgroup);
        dict.add("is_founder_uid", s.uid == context.vault.founder_uid());
        dict.close();
        // The caller's live grants: the ones whose principal matches it now.
        io::check(sd_bus_message_open_container(reply, 'a', "a{sv}"), "open grants");
        for (const auto& grant : context.vault.engine().grants_for(subject_view(s), clock::realtime_usec())) {
            io::Dictionary entry(reply);
            entry.add("id", grant.definition.id);
            entry.add("capability", grant.definition.capability.to_string());
            entry.add("state", std::string(policy::grant_state_name(grant.state)));
            entry.add("uses", grant.uses);
            entry.add("max_uses", grant.definition.max_uses.value_or(0));
            entry.add("expires_usec", grant.definition.expires_at_usec.value_or(0));
            entry.add("approval", std::string(policy::approval_mode_name(grant.definition.approval)));
            entry.close();
        }
        io::check(sd_bus_message_close_container(reply), "close grants");
    };
    return call;
}

}  // namespace codexvault::daemon::methods
