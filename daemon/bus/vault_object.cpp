#include "daemon/bus/vault_object.hpp"

#include <cstdio>
#include <exception>
#include <string>
#include <system_error>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/vault_service.hpp"

namespace codexvault::daemon {
namespace {

int reply_error(sd_bus_error* error, ErrorCode code, const std::string& message)
{
    return sd_bus_error_set(error, error_info(code).bus_name, message.c_str());
}

ErrorCode error_for(founder::ProofVerdict verdict)
{
    switch (verdict) {
    case founder::ProofVerdict::ProofExpired:
    case founder::ProofVerdict::NonceExpired:
        return ErrorCode::Expired;
    case founder::ProofVerdict::NotEnrolled:
        return ErrorCode::Unavailable;
    default:
        return ErrorCode::PermissionDenied;
    }
}

}  // namespace

VaultObject::VaultObject(sd_bus* bus, VaultService& vault, audit::AuditHook& audit)
    : vault_(vault), audit_(audit), resolver_(bus)
{
    vtable_.push_back(SD_BUS_VTABLE_START(0));
    for (const auto& spec : method_table()) {
        // Authorization is the pipeline's job, so sd-bus must not filter on its own notion of
        // privilege (UNPRIVILEGED); secret-carrying methods are kept out of sd-bus's debug dumps.
        sd_bus_vtable entry =
            spec.sensitive
                ? sd_bus_vtable SD_BUS_METHOD_WITH_NAMES_OFFSET(spec.name, spec.in_signature, "", spec.out_signature,
                                                                "", &VaultObject::on_method_call, 0,
                                                                SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE)
                : sd_bus_vtable SD_BUS_METHOD_WITH_NAMES_OFFSET(spec.name, spec.in_signature, "", spec.out_signature,
                                                                "", &VaultObject::on_method_call, 0,
                                                                SD_BUS_VTABLE_UNPRIVILEGED);
        entry.x.method.names = spec.argument_names;
        vtable_.push_back(entry);
    }
    vtable_.push_back(SD_BUS_VTABLE_END);

    sd_bus_slot* slot = nullptr;
    const int r = sd_bus_add_object_vtable(bus, &slot, bus::kObjectPath, bus::kInterface, vtable_.data(), this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "register /org/codexvault/Vault1");
    }
    slot_.reset(slot);
}

int VaultObject::on_method_call(sd_bus_message* message, void* userdata, sd_bus_error* error) noexcept
{
    auto* self = static_cast<VaultObject*>(userdata);
    const char* member = sd_bus_message_get_member(message);
    const MethodSpec* spec = find_method(member != nullptr ? member : "");
    if (spec == nullptr) {
        // Unreachable: sd-bus dispatches only members of the vtable, which is built from the table.
        return reply_error(error, ErrorCode::PermissionDenied, "no such method");
    }
    try {
        return self->dispatch(*spec, message, error);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "internal error in %s: %s\n", spec->name, e.what());
    } catch (...) {
        std::fprintf(stderr, "internal error in %s\n", spec->name);
    }
    return reply_error(error, ErrorCode::Unavailable, "internal error; see the daemon's log");
}

void VaultObject::authorize(const MethodSpec& spec, const identity::Subject& subject, const PreparedCall& call)
{
    if (spec.access == Access::Anyone) {
        return;
    }
    if (subject.uid != vault_.founder_uid()) {
        throw VaultError(ErrorCode::PermissionDenied, std::string(spec.action) + " is reserved to the founder");
    }
    if (spec.access == Access::FounderUid) {
        return;
    }
    if (!call.proof) {
        throw VaultError(ErrorCode::PermissionDenied, "founder proof missing");
    }
    const auto realtime = clock::realtime_usec();
    const auto monotonic = clock::monotonic_usec();
    auto& authority = vault_.founder();
    const founder::ProofVerdict verdict =
        spec.access == Access::Enrollment
            ? authority.verify_with_key(*call.enrolling_key, spec.name, call.signed_arguments, *call.proof, realtime,
                                        monotonic)
            : authority.verify(spec.name, call.signed_arguments, *call.proof, realtime, monotonic);
    if (verdict != founder::ProofVerdict::Ok) {
        throw VaultError(error_for(verdict), describe(verdict));
    }
}

// identity -> state -> decode -> authorize -> audit decision -> act -> audit outcome -> reply.
int VaultObject::dispatch(const MethodSpec& spec, sd_bus_message* message, sd_bus_error* error)
{
    const std::uint64_t dispatch_ticks = identity::boottime_ticks_now();
    const char* sender_name = sd_bus_message_get_sender(message);
    const std::string sender = sender_name != nullptr ? sender_name : "";
    audit::AuditRecord record{.event = "decision",
                              .action = spec.action,
                              .object = "",
                              .subject = nullptr,
                              .sender = sender,
                              .decision = audit::Decision::Deny,
                              .reason = "",
                              .informational = spec.access == Access::Anyone};

    identity::Subject subject;
    try {
        // Public methods grant nothing, so they are answered from the subject confirmed when the
        // caller was pinned; every method that authorizes re-reads it.
        subject = resolver_.resolve(message, dispatch_ticks,
                                    spec.access == Access::Anyone ? identity::IdentityResolver::Freshness::Pinned
                                                                  : identity::IdentityResolver::Freshness::Reread);
    } catch (const identity::IdentityError& e) {
        const std::string reason = std::string("caller could not be identified: ") + e.what();
        record.reason = reason;
        audit_.record(record);
        return reply_error(error, ErrorCode::PermissionDenied, reason);
    }
    record.subject = &subject;

    PreparedCall call;
    try {
        const VaultState state = vault_.state();
        if (state == VaultState::Locked && !spec.allowed_when_locked) {
            throw VaultError(ErrorCode::Locked, "vault is locked: " + vault_.lock_reason());
        }
        if (spec.requires_enrolled_founder && state == VaultState::Uninitialized) {
            throw VaultError(ErrorCode::Unavailable, "vault is not initialized; run 'vaultctl init'");
        }
        if (spec.access == Access::Enrollment && state != VaultState::Uninitialized) {
            throw VaultError(ErrorCode::PermissionDenied, "a founder is already enrolled");
        }
        call = spec.decode(message);
        record.object = call.object;
        authorize(spec, subject, call);
    } catch (const VaultError& e) {
        record.reason = e.what();
        audit_.record(record);
        return reply_error(error, e.code(), e.what());
    }
    record.decision = audit::Decision::Allow;
    record.reason = "authorized";
    // An informational call's decision and outcome are one record: nothing happens between them.
    if (!record.informational) {
        audit_.record(record);
    }

    record.event = "outcome";
    sd_bus_message* raw_reply = nullptr;
    int r = sd_bus_message_new_method_return(message, &raw_reply);
    bus::MessagePtr reply(raw_reply);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "create reply");
    }
    try {
        RequestContext context{vault_, subject};
        call.act(context, reply.get());
    } catch (const VaultError& e) {
        record.decision = audit::Decision::Deny;
        record.reason = e.what();
        audit_.record(record);
        return reply_error(error, e.code(), e.what());
    } catch (const std::exception& e) {
        record.decision = audit::Decision::Deny;
        record.reason = "internal error";
        audit_.record(record);
        throw;
    }
    record.reason = "done";
    audit_.record(record);
    r = sd_bus_send(nullptr, reply.get(), nullptr);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "send reply");
    }
    return 1;
}

}  // namespace codexvault::daemon
