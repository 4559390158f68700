// Lock, unlock and incident response: the vault's integrity state changes, each recorded in the
// audit log and persisted (STATE/lock) before it is reported done.
//
// Incident response runs five steps, each marked in the lock file as it completes, so a crash
// halfway leaves a record the next start-up finishes (resume()); nothing is ever undone:
//   1. lock             the vault refuses use (the lock file exists)
//   2. revoke           every grant revoked, every pending approval denied (grant state saved)
//   3. mark secrets     every secret marked "rotation required" (one manifest write)
//   4. seal audit       the current audit segment ends with a signed sealing checkpoint
//   5. signal           the Locked signal on the bus
#pragma once

#include <systemd/sd-bus.h>

#include <cstddef>
#include <string>
#include <string_view>

#include "daemon/audit/audit_trail.hpp"
#include "daemon/integrity/lock_state.hpp"

namespace codexvault::daemon {

class VaultService;

class IntegrityControl {
public:
    IntegrityControl(VaultService& vault, audit::AuditTrail& audit);

    // Signals need the bus; before it is connected they are sent by resume().
    void set_bus(sd_bus* bus) noexcept { bus_ = bus; }

    // `by`: who asked ("founder", "start-up"). Throws VaultError(Unavailable) when the lock
    // cannot be persisted (it holds in memory regardless).
    void lock(std::string_view reason, std::string_view by);
    void unlock(std::string_view reason, std::string_view by);
    // Returns how many grants were revoked.
    std::size_t incident(std::string_view reason, std::string_view by);

    // Start-up, once the bus is connected: finishes an interrupted incident, and emits Locked for a
    // lock found at start-up.
    void resume();

private:
    std::size_t run_incident_steps(store::LockState& state);
    void emit_locked(const std::string& reason) noexcept;
    void record(audit::EventType type, std::string_view action, std::string_view reason, std::string_view by);

    VaultService& vault_;
    audit::AuditTrail& audit_;
    sd_bus* bus_ = nullptr;
};

}  // namespace codexvault::daemon
