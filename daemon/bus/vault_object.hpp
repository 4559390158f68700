// /org/codexvault/Vault1: the vtable built from the method table, and the request pipeline.
#pragma once

#include <systemd/sd-bus.h>

#include <string_view>
#include <vector>

#include "daemon/audit/audit_hook.hpp"
#include "daemon/bus/method_table.hpp"
#include "daemon/bus/sd_ptr.hpp"
#include "daemon/identity/identity_resolver.hpp"

namespace codexvault::daemon {

class VaultService;

class VaultObject {
public:
    // Registers the object on `bus`; the caller requests the name afterwards.
    VaultObject(sd_bus* bus, VaultService& vault, audit::AuditHook& audit);
    VaultObject(const VaultObject&) = delete;
    VaultObject& operator=(const VaultObject&) = delete;

private:
    static int on_method_call(sd_bus_message* message, void* userdata, sd_bus_error* error) noexcept;
    int dispatch(const MethodSpec& spec, sd_bus_message* message, sd_bus_error* error);
    void authorize(const MethodSpec& spec, const identity::Subject& subject, PreparedCall& call);
    void authorize_use(const identity::Subject& subject, GrantUse& use);
    void announce_approval(std::string_view approval_id);
    void persist_state();

    sd_bus* bus_;
    VaultService& vault_;
    audit::AuditHook& audit_;
    identity::IdentityResolver resolver_;
    std::vector<sd_bus_vtable> vtable_;
    bus::SlotPtr slot_;
};

}  // namespace codexvault::daemon
