// Inject on the bus (docs/bus-api.md, docs/injection.md) and the daemon's side of the injection
// service: what it asks the vault (grant state, locks), revocation, the InjectionAlert signal.
#pragma once

#include <systemd/sd-bus.h>

#include "daemon/inject/injection_service.hpp"

namespace codexvault::audit {
class AuditTrail;
}

namespace codexvault::daemon {

class VaultService;
class MonitorService;

// The hooks the injection service runs on; `bus` emits InjectionAlert. Everything passed must
// outlive the service.
inject::Hooks injection_hooks(VaultService& vault, audit::AuditTrail& audit, MonitorService& monitor, sd_bus* bus);

}  // namespace codexvault::daemon
