#include "daemon/bus/vault_object.hpp"

#include <sodium.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <system_error>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "daemon/grant_bridge.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/vault_service.hpp"

namespace codexvault::daemon {
namespace {

// "g-0123456789abcdef" or "g-... a-..." for the audit record.
std::string grant_reference(const policy::Decision& decision)
{
    std::string out(decision.grant_id.view());
    if (!decision.approval_id.empty()) {
        out += (out.empty() ? "" : " ") + decision.approval_id.str();
    }
    return out;
}

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

// Public methods that grant nothing are answered from the subject pinned at connect time; a
// method that authorizes, or answers what the caller may do (Check), reads it again.
identity::IdentityResolver::Freshness freshness_for(const MethodSpec& spec)
{
    const bool informational = spec.access == Access::Anyone && std::string_view(spec.name) != bus::method::kCheck;
    return informational ? identity::IdentityResolver::Freshness::Pinned
                         : identity::IdentityResolver::Freshness::Reread;
}

}  // namespace

VaultObject::VaultObject(sd_bus* bus, VaultService& vault, audit::AuditHook& audit)
    : bus_(bus), vault_(vault), audit_(audit), resolver_(bus)
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
    vtable_.push_back(
        SD_BUS_SIGNAL_WITH_NAMES(bus::signal::kApprovalRequested, bus::signal::kApprovalRequestedSignature,
                                 SD_BUS_PARAM(approval_id) SD_BUS_PARAM(capability) SD_BUS_PARAM(expires_usec), 0));
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

void VaultObject::authorize(const MethodSpec& spec, const identity::Subject& subject, PreparedCall& call)
{
    if (spec.access == Access::Anyone) {
        return;
    }
    if (spec.access == Access::Grant) {
        authorize_use(subject, *call.grant_use);
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

// The policy engine decides, in Use mode: an allowed use is recorded (uses, rate) and a
// presented approval consumed; a use that needs an approval creates one and tells the founder.
void VaultObject::authorize_use(const identity::Subject& subject, GrantUse& use)
{
    policy::RequestContext request;
    request.method = use.method;
    request.path = use.path;
    request.body_digest = use.body_digest;
    request.target = use.target;
    if (use.approval_id) {
        request.approval_id = *use.approval_id;
    }
    policy::IdSeed seed{};
    randombytes_buf(seed.data(), seed.size());
    auto& engine = vault_.engine();
    use.decision = engine.evaluate(subject_view(subject), use.capability, request, clock::realtime_usec(),
                                   policy::Mode::Use, seed);
    if (use.decision.verdict != policy::Verdict::Deny || use.approval_id) {
        vault_.mark_policy_state_dirty();
    }
    if (use.decision.allowed()) {
        return;
    }
    if (use.decision.reason == policy::Reason::ApprovalRequired && !use.decision.approval_id.empty()) {
        persist_state();  // the founder must be able to approve what the signal announces
        announce_approval(use.decision.approval_id.view());
    }
    throw VaultError(error_for(use.decision), caller_message(use.decision));
}

void VaultObject::announce_approval(std::string_view approval_id)
{
    const policy::Approval* approval = vault_.engine().approvals().find(approval_id);
    if (approval == nullptr) {
        return;
    }
    const std::string id(approval_id);
    const std::string capability = approval->capability.to_string();
    const std::uint64_t expires_realtime = approval->expires_at_usec;
    const int r =
        sd_bus_emit_signal(bus_, bus::kObjectPath, bus::kInterface, bus::signal::kApprovalRequested,
                           bus::signal::kApprovalRequestedSignature, id.c_str(), capability.c_str(), expires_realtime);
    if (r < 0) {
        // The approval exists and `vaultctl approvals ls` shows it; only the notification is lost.
        std::fprintf(stderr, "could not emit ApprovalRequested for %s: %s\n", id.c_str(), std::strerror(-r));
    }
}

// Grant state changed by this call is on disk before the reply; if it cannot be written the
// vault locks rather than serve grants a restart would bring back or forget.
void VaultObject::persist_state()
{
    try {
        vault_.save_policy_state_if_dirty();
    } catch (const std::exception& e) {
        const std::string reason = std::string("could not persist grant state: ") + e.what();
        std::fprintf(stderr, "%s; locking the vault\n", reason.c_str());
        vault_.lock(reason);
        throw VaultError(ErrorCode::Unavailable, reason);
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
                              .grant = {},
                              .informational = spec.access == Access::Anyone};

    identity::Subject subject;
    try {
        // Public methods grant nothing, so they are answered from the subject confirmed when the
        // caller was pinned; every method that authorizes re-reads it.
        subject = resolver_.resolve(message, dispatch_ticks, freshness_for(spec));
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
        if (call.grant_use) {
            record.grant = grant_reference(call.grant_use->decision);
        }
        audit_.record(record);
        return reply_error(error, e.code(), e.what());
    }
    if (call.grant_use) {
        record.grant = grant_reference(call.grant_use->decision);
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
        RequestContext context{vault_, subject, call.grant_use ? &*call.grant_use : nullptr};
        call.act(context, reply.get());
        persist_state();
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
