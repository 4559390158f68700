// /org/codexvault/Vault1: the vtable built from the method table, and the request pipeline.
//
// identity -> state -> decode -> authorize -> audit decision -> act -> audit outcome -> reply.
//
// Durability (group commit, off the loop): a call that changes state or uses a secret (every
// method but the informational ones) is not acted on until its decision record is on disk, and
// gets no reply until its outcome record is. Each waiting call keeps the sequence number (mark) of
// the record it waits for; the flush itself runs on the audit flusher thread (AuditTrail), and
// while it is in flight the loop keeps reading, deciding and writing. A commit round:
//   -> reply to the calls whose outcome records are durable (mark <= the durable mark)
//   -> act on the calls whose decision records are durable, queue their outcomes
//   -> ask for a flush of everything written (it starts now, or when the one in flight completes,
//      and covers everything written up to its start)
// A round runs when the bus has nothing more to dispatch (an idle-priority defer source), at once
// when kMaxBatch calls wait and no flush is in flight, and whenever a flush completes. If a record
// cannot be written or flushed, every waiting call is answered Unavailable and nothing further is
// done: no record, no action.
// A call flagged OneRoundCommit (Use), whose only action is its reply, skips the first half when
// no grant state awaits saving: its decision and outcome records share one flush.
// Informational calls (MethodFlag::Informational: Status, WhoAmI, Check, AuditPublicKey) are
// answered at once; their records are written with the next round without waiting for the disk.
// Repeated informational calls and denials are folded (audit_log.hpp); a folded denial is
// answered at once.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/vault_error.hpp"
#include "daemon/audit/audit_trail.hpp"
#include "daemon/identity/identity_resolver.hpp"
#include "daemon/pipeline/method_table.hpp"
#include "daemon/pipeline/request_broker.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::daemon {

class VaultService;
class IntegrityControl;
class MonitorService;

class VaultObject {
public:
    static constexpr std::size_t kMaxBatch = 64;

    // Registers the object on `bus`; the caller requests the name afterwards.
    // `monitor` (may be null) must outlive this object: the resolver asks it for exes, Status
    // for its state.
    VaultObject(sd_bus* bus, sd_event* event, VaultService& vault, audit::AuditTrail& audit,
                IntegrityControl& integrity, MonitorService* monitor = nullptr);
    VaultObject(const VaultObject&) = delete;
    VaultObject& operator=(const VaultObject&) = delete;
    ~VaultObject();

    // Runs commit rounds until nothing waits (orderly stop).
    void drain();

    // The ingest helper's client, for Ingest (RequestContext::ingest); null: Ingest is Unavailable.
    void set_scan_client(ingest::ScanClient* client) noexcept { scan_client_ = client; }
    void set_injection_service(inject::InjectionService* injections) noexcept { injections_ = injections; }

private:
    struct Failure {
        ErrorCode code;
        std::string message;
    };
    // A durable call between dispatch and reply.
    struct PendingCall {
        const MethodSpec* spec = nullptr;
        bus::MessagePtr message;
        identity::Subject subject;
        bool identified = false;
        PreparedCall call;
        std::string sender;
        std::string grant;
        std::optional<Failure> failure;  // refused (decision) or failed (act): the error reply
        bus::MessagePtr reply;           // acted: the reply to send
        std::uint64_t mark = 0;          // the seq of the record it waits for
        std::uint64_t deferred = 0;      // a started deferred action (PreparedCall::start): its id
    };

    static int on_method_call(sd_bus_message* message, void* userdata, sd_bus_error* error) noexcept;
    static int on_commit(sd_event_source* source, void* userdata) noexcept;
    static int on_usage_timer(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    void schedule_usage_save();
    void save_usage() noexcept;
    void save_usage_now() noexcept;
    int dispatch(const MethodSpec& spec, sd_bus_message* message, sd_bus_error* error);
    void authorize(const MethodSpec& spec, const identity::Subject& subject, PreparedCall& call);
    void authorize_use(const identity::Subject& subject, GrantUse& use);
    void announce_approval(std::string_view approval_id);
    policy::IdSeed next_id_seed();
    void persist_state();
    [[nodiscard]] bool decisions_durable();
    std::string lock_for_unsaved_state(const std::exception& error) noexcept;

    int refuse(const MethodSpec& spec, sd_bus_message* message, PendingCall pending, const Failure& failure,
               sd_bus_error* error);
    int answer_now(const MethodSpec& spec, sd_bus_message* message, const identity::Subject& subject,
                   PreparedCall& call, audit::AuditRecord& record, sd_bus_error* error);
    void schedule_commit();
    void commit();
    void on_durable() noexcept;
    void fail_waiting();
    [[nodiscard]] std::size_t waiting() const noexcept { return awaiting_decision_.size() + awaiting_outcome_.size(); }
    // The context an action runs in.
    RequestContext context_of(const PendingCall& pending);
    // False when the action answers the call itself later (MethodFlag::RepliesLater).
    bool act(PendingCall& pending);
    void queue_acted(PendingCall pending);
    void complete_deferred(std::uint64_t id, const FinishCall& finish) noexcept;
    void send_reply(PendingCall& pending) noexcept;
    audit::AuditRecord record_of(const PendingCall& pending, audit::EventType type) const;

    sd_bus* bus_;
    VaultService& vault_;
    audit::AuditTrail& audit_;
    IntegrityControl& integrity_;
    MonitorService* monitor_;
    identity::IdentityResolver resolver_;
    std::vector<sd_bus_vtable> vtable_;
    bus::SlotPtr slot_;
    bus::EventSourcePtr commit_source_;
    bus::EventSourcePtr usage_timer_;             // saves unlimited grants' use counts within a second
    std::vector<PendingCall> awaiting_decision_;  // decision queued, not yet on disk; marks ascending
    std::vector<PendingCall> awaiting_outcome_;   // acted, outcome queued; marks ascending
    bool in_commit_ = false;
    std::uint64_t state_mark_ = 0;             // the last decision record of a call that may have changed grant state
    std::unique_ptr<RequestBroker> requests_;  // provider mediation (Request, RequestOutcome)
    ingest::ScanClient* scan_client_ = nullptr;
    inject::InjectionService* injections_ = nullptr;
    std::vector<PendingCall> deferred_;  // acted on, their action not yet complete (no outcome record yet)
    std::uint64_t next_deferred_ = 1;
    std::array<std::uint8_t, 512> seed_pool_{};
    std::size_t seed_pool_used_ = 512;  // empty: filled at the first draw
};

}  // namespace codexvault::daemon
