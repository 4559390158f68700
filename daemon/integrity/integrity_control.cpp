#include "daemon/integrity/integrity_control.hpp"

#include <cstdio>
#include <cstring>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/vault_service.hpp"
#include "lib/log/log.hpp"

namespace codexvault::daemon {
namespace {

void persist(VaultService& vault, const store::LockState& state)
{
    try {
        vault.save_lock(state);
    } catch (const std::exception& e) {
        throw VaultError(ErrorCode::Unavailable, std::string("could not persist the lock: ") + e.what());
    }
}

}  // namespace

IntegrityControl::IntegrityControl(VaultService& vault, audit::AuditTrail& audit) : vault_(vault), audit_(audit)
{
}

void IntegrityControl::record(audit::EventType type, std::string_view action, std::string_view reason,
                              std::string_view by)
{
    const audit::AuditRecord record{.type = type,
                                    .action = action,
                                    .object = "vault",
                                    .subject = nullptr,
                                    .sender = by,
                                    .decision = audit::Decision::Allow,
                                    .reason = reason,
                                    .grant = {},
                                    .informational = false};
    if (audit_.record(record) == audit::Appended::Failed) {
        throw VaultError(ErrorCode::Unavailable, "audit log unavailable: " + audit_.failure_reason());
    }
}

void IntegrityControl::lock(std::string_view reason, std::string_view by)
{
    persist(vault_, vault_.lock_state_for(reason));
    record(audit::EventType::Lock, "vault.lock", reason, by);
    emit_locked(vault_.lock_reason());
}

void IntegrityControl::unlock(std::string_view reason, std::string_view by)
{
    const auto& state = vault_.lock_state();
    if (!state) {
        throw VaultError(ErrorCode::InvalidArgument, "the vault is not locked");
    }
    // An interrupted incident is finished before anyone may unlock: unlocking must never leave
    // grants that the incident was about to revoke.
    if (state->incident && store::next_incomplete_step(*state)) {
        store::LockState finishing = *state;
        run_incident_steps(finishing);
    }
    try {
        vault_.clear_lock();
    } catch (const std::exception& e) {
        throw VaultError(ErrorCode::Unavailable, std::string("could not remove the lock file: ") + e.what());
    }
    record(audit::EventType::Unlock, "vault.unlock", reason, by);
    // Unlocking accepts the state files as they are now (a rolled-back or deleted one included):
    // each is rewritten above the generation the log last recorded, so the next start does not
    // find the same difference again. A grant state whose content was refused is not written.
    try {
        vault_.accept_state_files("accepted at unlock");
    } catch (const std::exception& e) {
        vault_.lock(std::string("could not rewrite the state files after unlocking: ") + e.what());
        throw VaultError(ErrorCode::Unavailable, std::string("could not rewrite the state files: ") + e.what());
    }
}

std::size_t IntegrityControl::incident(std::string_view reason, std::string_view by)
{
    store::LockState state;
    state.locked_since_usec = clock::realtime_usec();
    state.reason = "incident: " + std::string(reason);
    state.incident = true;
    state.mark_done(store::IncidentStep::Locked);
    persist(vault_, state);
    record(audit::EventType::Incident, "vault.incident", reason, by);
    return run_incident_steps(state);
}

std::size_t IntegrityControl::run_incident_steps(store::LockState& state)
{
    std::size_t revoked = 0;
    while (const auto step = store::next_incomplete_step(state)) {
        switch (*step) {
        case store::IncidentStep::Locked:
            break;
        case store::IncidentStep::AccessRevoked:
            revoked = vault_.revoke_all_grants(clock::realtime_usec());
            try {
                vault_.save_policy_state_if_dirty();
            } catch (const std::exception& e) {
                // Revoked in memory (and the vault is locked); a restart cannot bring them back
                // unnoticed, since this step stays unmarked and runs again.
                throw VaultError(ErrorCode::Unavailable, std::string("could not persist the revocations: ") + e.what());
            }
            record(audit::EventType::Incident, "vault.incident.revoke",
                   "revoked " + std::to_string(revoked) + " grant(s) and every pending approval", "daemon");
            break;
        case store::IncidentStep::SecretsMarked: {
            const std::size_t marked = vault_.secrets().mark_all_rotation_required(clock::realtime_usec());
            record(audit::EventType::Rotation, "vault.incident.mark-secrets",
                   "marked " + std::to_string(marked) + " secret(s) rotation-required", "daemon");
            break;
        }
        case store::IncidentStep::AuditSealed:
            if (!audit_.seal()) {
                throw VaultError(ErrorCode::Unavailable,
                                 "could not seal the audit segment: " + audit_.failure_reason());
            }
            break;
        case store::IncidentStep::SignalEmitted:
            if (bus_ == nullptr) {
                return revoked;  // resume() sends it once the bus is connected
            }
            emit_locked(state.reason);
            break;
        }
        state.mark_done(*step);
        persist(vault_, state);
    }
    return revoked;
}

void IntegrityControl::resume()
{
    const auto& state = vault_.lock_state();
    if (!state) {
        return;
    }
    store::LockState current = *state;
    if (current.incident && store::next_incomplete_step(current)) {
        record(audit::EventType::Incident, "vault.incident.resume",
               "completing an incident interrupted before it finished", "start-up");
        run_incident_steps(current);
        return;
    }
    emit_locked(current.reason);
}

void IntegrityControl::emit_locked(const std::string& reason) noexcept
{
    if (bus_ == nullptr) {
        return;
    }
    const int r = sd_bus_emit_signal(bus_, bus::kObjectPath, bus::kInterface, bus::signal::kLocked,
                                     bus::signal::kLockedSignature, reason.c_str());
    if (r < 0) {
        log::warning(std::string("could not emit Locked: ") + std::strerror(-r));
    }
}

}  // namespace codexvault::daemon
