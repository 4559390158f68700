#include "daemon/pipeline/vault_object.hpp"

#include <sodium.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <exception>
#include <iterator>
#include <string>
#include <system_error>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "daemon/grant_bridge.hpp"
#include "daemon/integrity/integrity_control.hpp"
#include "daemon/monitor_service.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/vault_service.hpp"
#include "lib/log/log.hpp"

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
    return spec.has(MethodFlag::PinnedIdentity) ? identity::IdentityResolver::Freshness::Pinned
                                                : identity::IdentityResolver::Freshness::Reread;
}

}  // namespace

VaultObject::VaultObject(sd_bus* bus, sd_event* event, VaultService& vault, audit::AuditTrail& audit,
                         IntegrityControl& integrity, MonitorService* monitor)
    : bus_(bus),
      vault_(vault),
      audit_(audit),
      integrity_(integrity),
      monitor_(monitor),
      resolver_(bus, monitor != nullptr && monitor->monitor() != nullptr ? monitor : nullptr)
{
    vtable_.push_back(SD_BUS_VTABLE_START(0));
    for (const auto& spec : method_table()) {
        // Authorization is the pipeline's job, so sd-bus must not filter on its own notion of
        // privilege (UNPRIVILEGED); secret-carrying methods are kept out of sd-bus's debug dumps.
        sd_bus_vtable entry =
            spec.has(MethodFlag::Sensitive)
                ? sd_bus_vtable SD_BUS_METHOD_WITH_NAMES_OFFSET(spec.name, spec.in_signature, "", spec.out_signature,
                                                                "", &VaultObject::on_method_call, 0,
                                                                SD_BUS_VTABLE_UNPRIVILEGED | SD_BUS_VTABLE_SENSITIVE)
                : sd_bus_vtable SD_BUS_METHOD_WITH_NAMES_OFFSET(spec.name, spec.in_signature, "", spec.out_signature,
                                                                "", &VaultObject::on_method_call, 0,
                                                                SD_BUS_VTABLE_UNPRIVILEGED);
        entry.x.method.names = spec.argument_names;
        vtable_.push_back(entry);
    }
    vtable_.push_back(SD_BUS_SIGNAL_WITH_NAMES(bus::signal::kApprovalRequested,
                                               bus::signal::kApprovalRequestedSignature,
                                               "approval_id\0capability\0expires_usec\0", 0));
    vtable_.push_back(SD_BUS_SIGNAL_WITH_NAMES(bus::signal::kLocked, bus::signal::kLockedSignature, "reason\0", 0));
    vtable_.push_back(SD_BUS_SIGNAL_WITH_NAMES(bus::signal::kInjectionAlert, bus::signal::kInjectionAlertSignature,
                                               "injection_id\0grant_id\0kind\0", 0));
    vtable_.push_back(SD_BUS_SIGNAL_WITH_NAMES(bus::signal::kRequestEnded, bus::signal::kRequestEndedSignature,
                                               "request_id\0end\0reason\0bytes_delivered\0redactions\0", 0));
    vtable_.push_back(SD_BUS_VTABLE_END);

    sd_bus_slot* slot = nullptr;
    int r = sd_bus_add_object_vtable(bus, &slot, bus::kObjectPath, bus::kInterface, vtable_.data(), this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "register /org/codexvault/Vault1");
    }
    slot_.reset(slot);

    sd_event_source* source = nullptr;
    r = sd_event_add_defer(event, &source, &VaultObject::on_commit, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "create the audit commit source");
    }
    commit_source_.reset(source);
    // Idle priority: every message the bus has ready is dispatched (and its decision queued)
    // before the round's one fdatasync.
    r = sd_event_source_set_priority(source, SD_EVENT_PRIORITY_IDLE);
    if (r >= 0) {
        r = sd_event_source_set_enabled(source, SD_EVENT_OFF);
    }
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "configure the audit commit source");
    }
    audit_.set_on_durable([this] { on_durable(); });
    r = sd_event_add_time(event, &source, CLOCK_MONOTONIC, UINT64_MAX, 0, &VaultObject::on_usage_timer, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "create the grant usage timer");
    }
    usage_timer_.reset(source);
    r = sd_event_source_set_enabled(source, SD_EVENT_OFF);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "configure the grant usage timer");
    }
    requests_ = std::make_unique<RequestBroker>(bus, event, vault_, audit_);
    // Whatever locks the vault (Lock, Incident, an integrity failure) cuts every stream in flight.
    vault_.set_on_lock([this](const std::string& reason) { requests_->cancel_all("vault locked: " + reason); });
}

int VaultObject::on_usage_timer(sd_event_source* /*source*/, std::uint64_t /*usec*/, void* userdata) noexcept
{
    static_cast<VaultObject*>(userdata)->save_usage();
    return 0;
}

void VaultObject::schedule_usage_save()
{
    int enabled = SD_EVENT_OFF;
    if (sd_event_source_get_enabled(usage_timer_.get(), &enabled) >= 0 && enabled != SD_EVENT_OFF) {
        return;  // already due within the second
    }
    const int r = sd_event_source_set_time_relative(usage_timer_.get(), 1'000'000);
    if (r < 0 || sd_event_source_set_enabled(usage_timer_.get(), SD_EVENT_ONESHOT) < 0) {
        save_usage_now();  // no timer: save now, on the loop: slower but never later
    }
}

// The use counts of unlimited grants, within a second: written by the audit flusher after the
// flush that makes the decisions they count durable (the loop waits for no disk here), and
// recorded when written. Enforced state (counted grants, approvals) is saved before the reply
// instead (persist_state).
void VaultObject::save_usage() noexcept
{
    try {
        if (!audit_.healthy() || vault_.policy_state_unsaved()) {
            // A failed log: no count may outrun it. Enforced changes pending: the next call's
            // persist_state saves everything, before its reply.
            return;
        }
        if (audit_.state_write_out()) {
            schedule_usage_save();  // one at a time; this one's counts go with the next
            return;
        }
        (void)vault_.save_policy_state_after_flush(
            [this](const std::string& failure) { (void)lock_for_unsaved_state(std::runtime_error(failure)); });
    } catch (const std::exception& e) {
        (void)lock_for_unsaved_state(e);
    }
}

// The orderly stop: saved now, on the loop, after the records it counts are durable.
void VaultObject::save_usage_now() noexcept
{
    try {
        if (!decisions_durable()) {
            return;  // the log failed: every call is refused, and no count may outrun the log
        }
        vault_.flush_policy_state();
    } catch (const std::exception& e) {
        (void)lock_for_unsaved_state(e);
    }
}

VaultObject::~VaultObject()
{
    // A usage save in flight reports to this object (it locks on failure): settled while it lives.
    audit_.settle_state_write();
    audit_.set_on_durable(nullptr);
    vault_.set_on_lock(nullptr);
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
        log::error(std::string("internal error in ") + spec->name + ": " + e.what());
    } catch (...) {
        log::error(std::string("internal error in ") + spec->name);
    }
    return reply_error(error, ErrorCode::Unavailable, "internal error; see the daemon's log");
}

int VaultObject::on_commit(sd_event_source* /*source*/, void* userdata) noexcept
{
    static_cast<VaultObject*>(userdata)->on_durable();
    return 0;
}

// A flush completed (or the log failed): release what it made durable, at once.
void VaultObject::on_durable() noexcept
{
    try {
        if (in_commit_) {
            schedule_commit();  // reached from inside a round (a seal waited for the flush)
        } else {
            commit();
        }
    } catch (const std::exception& e) {
        log::error(std::string("internal error in the audit commit: ") + e.what());
    } catch (...) {
        log::error("internal error in the audit commit");
    }
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
    // Audit readers: a signed call is the founder's (checked below, like any founder method); an
    // unsigned one needs a grant for audit:read.
    if (spec.access == Access::AuditReader || spec.access == Access::FounderOrGrant) {
        if (!call.proof || call.proof->signature.empty()) {
            authorize_use(subject, *call.grant_use);
            return;
        }
        call.grant_use.reset();
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
            ? authority.verify_with_key(subject.bus_name, *call.enrolling_key, spec.name, call.signed_arguments,
                                        *call.proof, realtime, monotonic)
            : authority.verify(subject.bus_name, spec.name, call.signed_arguments, *call.proof, realtime, monotonic);
    if (verdict != founder::ProofVerdict::Ok) {
        throw VaultError(error_for(verdict), describe(verdict));
    }
}

// The policy engine decides, in Use mode: an allowed use is recorded (uses, rate) and a
// presented approval consumed; a use that needs an approval creates one and tells the founder.
void VaultObject::authorize_use(const identity::Subject& subject, GrantUse& use)
{
    const policy::RequestContext request = use.request();
    const policy::IdSeed seed = next_id_seed();
    auto& engine = vault_.engine();
    use.decision = engine.evaluate(subject_view(subject), use.capability, request, clock::realtime_usec(),
                                   policy::Mode::Use, seed);
    // What a later decision depends on (uses against max_uses, rate state, approvals) is saved
    // before the reply; the count of an unlimited grant is saved within a second.
    if (use.decision.allowed() && use.decision.approval_id.empty() &&
        !vault_.grant_use_is_enforced(use.decision.grant_id.view())) {
        vault_.mark_policy_usage_dirty();
    } else if (use.decision.verdict != policy::Verdict::Deny || use.approval_id) {
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

// Every Use draws a seed for the approval id it might create: taken from a pool refilled with one
// getrandom per 64 seeds instead of one per call (each byte is used once).
policy::IdSeed VaultObject::next_id_seed()
{
    policy::IdSeed seed{};
    if (seed_pool_used_ + seed.size() > seed_pool_.size()) {
        randombytes_buf(seed_pool_.data(), seed_pool_.size());
        seed_pool_used_ = 0;
    }
    std::memcpy(seed.data(), seed_pool_.data() + seed_pool_used_, seed.size());
    sodium_memzero(seed_pool_.data() + seed_pool_used_, seed.size());
    seed_pool_used_ += seed.size();
    return seed;
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
        log::warning("could not emit ApprovalRequested for " + id + ": " + std::strerror(-r));
    }
}

// Grant state changed by this call is on disk before the reply; if it cannot be written the
// vault locks rather than serve grants a restart would bring back or forget.
void VaultObject::persist_state()
{
    if (!vault_.policy_state_unsaved()) {
        return;  // nothing to save (an unlimited grant's count is saved within a second)
    }
    if (!decisions_durable()) {
        throw VaultError(ErrorCode::Unavailable, "audit log unavailable, state not saved: " + audit_.failure_reason());
    }
    try {
        vault_.save_policy_state_if_dirty();
    } catch (const std::exception& e) {
        throw VaultError(ErrorCode::Unavailable, lock_for_unsaved_state(e));
    }
}

// Grant state on disk must never be ahead of the log: a use counted in a saved state file needs
// its decision record on disk, or a crash leaves a use nobody can account for. Each change to that
// state is made while deciding a call, whose decision record follows at once (state_mark_); with
// the flush off the loop, calls decided while a flush was in flight are not covered by it, so a
// save first waits for the flush in flight and flushes the rest, here on the loop. Only rounds
// that save state pay for it (counted grants, approvals, founder calls; an unlimited grant's use
// count once a second).
bool VaultObject::decisions_durable()
{
    if (audit_.durable_seq() >= state_mark_) {
        return true;
    }
    return audit_.sync();
}

// Grant state that cannot be saved locks the vault, like any other lock: recorded and signalled.
// If even that cannot be written, the lock holds in memory (VaultService::lock says so).
std::string VaultObject::lock_for_unsaved_state(const std::exception& error) noexcept
{
    std::string reason = std::string("could not persist grant state: ") + error.what();
    log::critical(reason + "; locking the vault");
    try {
        integrity_.lock(reason, "daemon");
    } catch (const std::exception&) {
        vault_.lock(reason);
    }
    return reason;
}

int VaultObject::dispatch(const MethodSpec& spec, sd_bus_message* message, sd_bus_error* error)
{
    const std::uint64_t dispatch_ticks = identity::boottime_ticks_now();
    const char* sender_name = sd_bus_message_get_sender(message);
    PendingCall pending;
    pending.spec = &spec;
    pending.sender = sender_name != nullptr ? sender_name : "";

    // No record, no action: a failed log leaves only Status, which says why.
    if (!audit_.healthy() && !spec.has(MethodFlag::ServedWhenAuditFailed)) {
        return reply_error(error, ErrorCode::Unavailable,
                           "audit log unavailable, request denied: " + audit_.failure_reason());
    }
    try {
        // Public methods that grant nothing are answered from the subject confirmed when the
        // caller was pinned (MethodFlag::PinnedIdentity); every other method re-reads it.
        // The groups are read again only while some grant could match on them.
        pending.subject = resolver_.resolve(
            message, dispatch_ticks, freshness_for(spec),
            vault_.engine().matches_groups() ? identity::GroupsRead::Read : identity::GroupsRead::Keep);
        pending.identified = true;
    } catch (const identity::CallerLimitError& e) {
        return refuse(spec, message, std::move(pending), Failure{ErrorCode::Unavailable, e.what()}, error);
    } catch (const identity::IdentityError& e) {
        return refuse(spec, message, std::move(pending),
                      Failure{ErrorCode::PermissionDenied, std::string("caller could not be identified: ") + e.what()},
                      error);
    }

    try {
        const VaultState state = vault_.state();
        if (state == VaultState::Locked && !spec.has(MethodFlag::AllowedWhenLocked)) {
            throw VaultError(ErrorCode::Locked, "vault is locked: " + vault_.lock_reason());
        }
        if (spec.has(MethodFlag::NeedsEnrolledFounder) && state == VaultState::Uninitialized) {
            throw VaultError(ErrorCode::Unavailable, "vault is not initialized; run 'vaultctl init'");
        }
        if (spec.access == Access::Enrollment && state != VaultState::Uninitialized) {
            throw VaultError(ErrorCode::PermissionDenied, "a founder is already enrolled");
        }
        pending.call = spec.decode(message);
        authorize(spec, pending.subject, pending.call);
    } catch (const VaultError& e) {
        if (pending.call.grant_use) {
            pending.grant = grant_reference(pending.call.grant_use->decision);
        }
        return refuse(spec, message, std::move(pending), Failure{e.code(), e.what()}, error);
    }
    if (pending.call.grant_use) {
        pending.grant = grant_reference(pending.call.grant_use->decision);
    }

    if (spec.has(MethodFlag::Informational)) {
        audit::AuditRecord record = record_of(pending, audit::EventType::Decision);
        return answer_now(spec, message, pending.subject, pending.call, record, error);
    }

    // Durable: nothing happens until the decision is on disk (the next commit round).
    audit::AuditRecord record = record_of(pending, audit::EventType::Decision);
    record.decision = audit::Decision::Allow;
    record.reason = "authorized";
    if (audit_.record(record) == audit::Appended::Failed) {
        return reply_error(error, ErrorCode::Unavailable,
                           "audit log unavailable, request denied: " + audit_.failure_reason());
    }
    pending.message.reset(sd_bus_message_ref(message));
    pending.mark = audit_.last_seq();
    state_mark_ = pending.mark;
    // A use whose action is only its reply (Use of a grant whose state needs no saving before
    // the reply) writes nothing outside the log: its outcome joins its decision, and one flush
    // covers both before the reply is sent.
    if (spec.has(MethodFlag::OneRoundCommit) && !vault_.policy_state_unsaved()) {
        (void)act(pending);  // OneRoundCommit rows neither start work nor reply later
        awaiting_outcome_.push_back(std::move(pending));
    } else {
        awaiting_decision_.push_back(std::move(pending));
    }
    if (waiting() >= kMaxBatch && !audit_.flush_in_flight() && !in_commit_) {
        commit();  // start the flush now; the bus keeps being read while it runs
    } else {
        schedule_commit();
    }
    return 1;
}

// A refused call: its denial is recorded; a durable method's denial is on disk before the reply
// (unless it was folded as a repeat, which is answered at once).
int VaultObject::refuse(const MethodSpec& spec, sd_bus_message* message, PendingCall pending, const Failure& failure,
                        sd_bus_error* error)
{
    audit::AuditRecord record = record_of(pending, audit::EventType::Decision);
    record.decision = audit::Decision::Deny;
    record.reason = failure.message;
    const audit::Appended appended = audit_.record(record);
    if (!spec.has(MethodFlag::Informational)) {
        state_mark_ = audit_.last_seq();  // a refused use may still have changed state (an approval, a rate)
    }
    if (spec.has(MethodFlag::Informational) || appended != audit::Appended::Queued) {
        schedule_commit();
        return reply_error(error, failure.code, failure.message);
    }
    pending.failure = failure;
    pending.message.reset(sd_bus_message_ref(message));
    pending.mark = audit_.last_seq();
    awaiting_decision_.push_back(std::move(pending));
    schedule_commit();
    return 1;
}

// Informational calls: nothing changes, so they are answered now; one record (decision and
// outcome at once) goes out with the next round.
int VaultObject::answer_now(const MethodSpec& spec, sd_bus_message* message, const identity::Subject& subject,
                            PreparedCall& call, audit::AuditRecord& record, sd_bus_error* error)
{
    record.decision = audit::Decision::Allow;
    record.reason = "done";
    const bool recorded = audit_.record(record) != audit::Appended::Failed;
    if (!recorded && !spec.has(MethodFlag::ServedWhenAuditFailed)) {
        return reply_error(error, ErrorCode::Unavailable,
                           "audit log unavailable, request denied: " + audit_.failure_reason());
    }
    schedule_commit();
    sd_bus_message* raw_reply = nullptr;
    int r = sd_bus_message_new_method_return(message, &raw_reply);
    bus::MessagePtr reply(raw_reply);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "create reply");
    }
    try {
        RequestContext context{.vault = vault_,
                               .subject = subject,
                               .audit = &audit_,
                               .integrity = &integrity_,
                               .requests = requests_.get(),
                               .monitor = monitor_,
                               .ingest = scan_client_,
                               .injections = injections_};
        call.act(context, reply.get());
    } catch (const VaultError& e) {
        return reply_error(error, e.code(), e.what());
    }
    r = sd_bus_send(nullptr, reply.get(), nullptr);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "send reply");
    }
    return 1;
}

void VaultObject::schedule_commit()
{
    const int r = sd_event_source_set_enabled(commit_source_.get(), SD_EVENT_ONESHOT);
    if (r < 0) {
        // Without the deferred round, commit now: slower, never less durable.
        commit();
    }
}

void VaultObject::commit()
{
    if (in_commit_) {
        schedule_commit();
        return;
    }
    in_commit_ = true;
    const struct Done {
        bool& flag;
        ~Done() { flag = false; }
    } done{in_commit_};

    if (!audit_.healthy()) {
        fail_waiting();
        return;
    }
    // Marks ascend in both queues, so what the durable mark covers is a prefix of each.
    const std::uint64_t durable = audit_.durable_seq();
    const auto covered = [durable](std::vector<PendingCall>& queue) {
        const auto end =
            std::find_if(queue.begin(), queue.end(), [durable](const PendingCall& p) { return p.mark > durable; });
        std::vector<PendingCall> out(std::make_move_iterator(queue.begin()), std::make_move_iterator(end));
        queue.erase(queue.begin(), end);
        return out;
    };
    std::vector<PendingCall> acted = covered(awaiting_outcome_);
    std::vector<PendingCall> decided = covered(awaiting_decision_);
    for (auto& pending : acted) {
        send_reply(pending);  // its outcome record is durable
    }
    // An action may save grant state (and the calls decided meanwhile changed it in memory).
    const bool acting = std::any_of(decided.begin(), decided.end(), [](const PendingCall& p) { return !p.failure; });
    const bool may_act = !acting || decisions_durable();
    for (auto& pending : decided) {
        if (!pending.failure && !may_act) {
            pending.failure = Failure{ErrorCode::Unavailable,
                                      "audit log unavailable, request not carried out: " + audit_.failure_reason()};
        }
        if (pending.failure) {
            send_reply(pending);  // a refusal: its record is durable
            continue;
        }
        if (act(pending)) {
            queue_acted(std::move(pending));
        }
    }
    if (!audit_.healthy()) {
        fail_waiting();
        return;
    }
    if (waiting() != 0) {
        if (!audit_.request_flush()) {
            fail_waiting();
            return;
        }
    } else {
        (void)audit_.write_pending();  // informational records: written, not waited for
    }
    if (vault_.policy_usage_unsaved()) {
        schedule_usage_save();
    }
}

// The log failed: no waiting call is acted on, and each is told why.
void VaultObject::fail_waiting()
{
    std::vector<PendingCall> acted = std::move(awaiting_outcome_);
    std::vector<PendingCall> decided = std::move(awaiting_decision_);
    awaiting_outcome_.clear();
    awaiting_decision_.clear();
    const std::string reason = "audit log unavailable, request not carried out: " + audit_.failure_reason();
    for (auto* batch : {&acted, &decided}) {
        for (auto& pending : *batch) {
            if (!pending.reply && !pending.failure) {
                pending.failure = Failure{ErrorCode::Unavailable, reason};
            } else if (pending.reply) {
                // Done, but its outcome record may be lost: the caller must not take it as audited.
                pending.reply.reset();
                pending.failure = Failure{ErrorCode::Unavailable,
                                          "the request was carried out, but its audit record could not be made "
                                          "durable: " +
                                              audit_.failure_reason()};
            }
            send_reply(pending);
        }
    }
}

RequestContext VaultObject::context_of(const PendingCall& pending)
{
    return RequestContext{.vault = vault_,
                          .subject = pending.subject,
                          .grant_use = pending.call.grant_use ? &*pending.call.grant_use : nullptr,
                          .audit = &audit_,
                          .integrity = &integrity_,
                          .call = pending.message.get(),
                          .sender = pending.sender,
                          .grant_reference = pending.grant,
                          .requests = requests_.get(),
                          .monitor = monitor_,
                          .ingest = scan_client_,
                          .injections = injections_};
}

bool VaultObject::act(PendingCall& pending)
{
    audit::AuditRecord outcome = record_of(pending, audit::EventType::Outcome);
    std::string reason = "done";
    outcome.decision = audit::Decision::Allow;
    // Authorized before a Lock or Incident that was acted on first in this round.
    if (vault_.state() == VaultState::Locked && !pending.spec->has(MethodFlag::AllowedWhenLocked)) {
        pending.failure = Failure{ErrorCode::Locked, "vault is locked: " + vault_.lock_reason()};
    } else if (pending.call.start) {
        // Deferred: started now, its outcome recorded when it completes (complete_deferred).
        try {
            RequestContext context = context_of(pending);
            const std::uint64_t id = next_deferred_++;
            pending.call.start(context, [this, id](const FinishCall& finish) { complete_deferred(id, finish); });
            pending.deferred = id;
            return true;
        } catch (const VaultError& e) {
            pending.failure = Failure{e.code(), e.what()};
        } catch (const std::exception& e) {
            log::error(std::string("internal error in ") + pending.spec->name + ": " + e.what());
            pending.failure = Failure{ErrorCode::Unavailable, "internal error; see the daemon's log"};
            reason = "internal error";
        }
    } else {
        try {
            sd_bus_message* raw_reply = nullptr;
            const int r = sd_bus_message_new_method_return(pending.message.get(), &raw_reply);
            bus::MessagePtr reply(raw_reply);
            if (r < 0) {
                throw std::system_error(-r, std::generic_category(), "create reply");
            }
            RequestContext context = context_of(pending);
            pending.call.act(context, reply.get());
            persist_state();
            if (pending.spec->has(MethodFlag::RepliesLater)) {
                return false;  // answered, and its outcome recorded, by the work it started
            }
            pending.reply = std::move(reply);
        } catch (const VaultError& e) {
            pending.failure = Failure{e.code(), e.what()};
        } catch (const std::system_error& e) {
            // Storage errors (a full disk, an I/O error): say so. Their messages name files and
            // errno, never secret bytes (store/secret_store.hpp).
            log::error(std::string(pending.spec->name) + " failed: " + e.what());
            pending.failure = Failure{ErrorCode::Unavailable, std::string("storage error: ") + e.what()};
        } catch (const std::exception& e) {
            log::error(std::string("internal error in ") + pending.spec->name + ": " + e.what());
            pending.failure = Failure{ErrorCode::Unavailable, "internal error; see the daemon's log"};
            reason = "internal error";
        }
    }
    if (pending.failure) {
        outcome.decision = audit::Decision::Deny;
        if (reason == "done") {
            reason = pending.failure->message;
        }
    }
    outcome.reason = reason;
    (void)audit_.record(outcome);  // a failure here fails the log, and so this reply
    // Folded (a repeated failure): the mark stays at or after the decision's.
    pending.mark = std::max(pending.mark, audit_.last_seq());
    return true;
}

void VaultObject::queue_acted(PendingCall pending)
{
    if (pending.deferred != 0) {
        deferred_.push_back(std::move(pending));
    } else {
        awaiting_outcome_.push_back(std::move(pending));
    }
}

// A deferred action completed: its reply is filled and its outcome recorded now, and the reply
// waits for that record like any other (marks stay ascending: this record is the newest).
void VaultObject::complete_deferred(std::uint64_t id, const FinishCall& finish) noexcept
{
    try {
        const auto it =
            std::find_if(deferred_.begin(), deferred_.end(), [id](const PendingCall& p) { return p.deferred == id; });
        if (it == deferred_.end()) {
            return;  // answered already (the daemon is stopping)
        }
        PendingCall pending = std::move(*it);
        deferred_.erase(it);
        pending.deferred = 0;
        audit::AuditRecord outcome = record_of(pending, audit::EventType::Outcome);
        outcome.decision = audit::Decision::Allow;
        std::string reason;  // outlives the record (AuditRecord holds views)
        try {
            sd_bus_message* raw_reply = nullptr;
            const int r = sd_bus_message_new_method_return(pending.message.get(), &raw_reply);
            bus::MessagePtr reply(raw_reply);
            if (r < 0) {
                throw std::system_error(-r, std::generic_category(), "create reply");
            }
            reason = finish(reply.get());
            pending.reply = std::move(reply);
        } catch (const VaultError& e) {
            pending.failure = Failure{e.code(), e.what()};
            reason = pending.failure->message;
        } catch (const std::exception& e) {
            log::error(std::string("internal error in ") + pending.spec->name + ": " + e.what());
            pending.failure = Failure{ErrorCode::Unavailable, "internal error; see the daemon's log"};
            reason = "internal error";
        }
        outcome.reason = reason;
        if (pending.failure) {
            outcome.decision = audit::Decision::Deny;
        }
        (void)audit_.record(outcome);  // a failure here fails the log, and so this reply
        pending.mark = std::max(pending.mark, audit_.last_seq());
        awaiting_outcome_.push_back(std::move(pending));
        schedule_commit();
    } catch (const std::exception& e) {
        log::error(std::string("internal error completing a deferred call: ") + e.what());
    }
}

void VaultObject::send_reply(PendingCall& pending) noexcept
{
    int r = 0;
    if (pending.failure) {
        const sd_bus_error e =
            SD_BUS_ERROR_MAKE_CONST(error_info(pending.failure->code).bus_name, pending.failure->message.c_str());
        r = sd_bus_reply_method_error(pending.message.get(), &e);
    } else if (pending.reply) {
        r = sd_bus_send(nullptr, pending.reply.get(), nullptr);
    }
    if (r < 0) {
        // The caller went away; what was done is recorded either way.
        log::notice("could not reply to " + pending.sender + " (" + pending.spec->name + "): " + std::strerror(-r));
    }
}

audit::AuditRecord VaultObject::record_of(const PendingCall& pending, audit::EventType type) const
{
    return audit::AuditRecord{.type = type,
                              .action = pending.spec->action,
                              .object = pending.call.object,
                              .subject = pending.identified ? &pending.subject : nullptr,
                              .sender = pending.sender,
                              .decision = audit::Decision::Deny,
                              .reason = {},
                              .grant = pending.grant,
                              .informational = pending.spec->has(MethodFlag::Informational)};
}

// After the loop stopped: each round waits for the flush in flight, then releases what it covered
// and starts the next (a call needs at most two flushes: decision, then outcome).
void VaultObject::drain()
{
    // Provider streams in flight are cut now, so their outcome records join the last rounds.
    try {
        requests_->stop("daemon stopping");
    } catch (const std::exception& e) {
        log::error(std::string("cutting provider requests at stop: ") + e.what());
    }
    // Deferred actions still running are answered as stopped, their outcome recorded.
    for (auto& pending : deferred_) {
        pending.deferred = 0;
        pending.failure = Failure{ErrorCode::Unavailable, "the daemon stopped before the action completed"};
        audit::AuditRecord outcome = record_of(pending, audit::EventType::Outcome);
        outcome.reason = pending.failure->message;
        (void)audit_.record(outcome);
        pending.mark = std::max(pending.mark, audit_.last_seq());
        awaiting_outcome_.push_back(std::move(pending));
    }
    deferred_.clear();
    for (int round = 0; round < 8 && waiting() != 0; ++round) {
        audit_.settle();
        commit();
    }
    audit_.settle();
    (void)audit_.write_pending();
    save_usage_now();
}

}  // namespace codexvault::daemon
