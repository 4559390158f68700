// Provider mediation on the daemon's side of the bus: the egress engine, the Requests in flight
// and the outcomes their callers may still ask for.
//
// A Request's decision record is durable before the pipeline calls start() (no record, no
// action). start() opens the secret (a secret marked rotation-required is refused), starts the
// exchange, and from then on the call is this class's to answer: the reply (request id, status,
// headers, stream) goes when the upstream's response head arrives, an error reply when the
// exchange ends before one. When the exchange ends an outcome record goes to the audit log
// (request id, provider, method, path with query keys only, status, bytes each way, duration,
// grant and approval ids, redactions, how the stream ended: never a header value or a body byte)
// and the outcome is kept for RequestOutcome: the last kMaxOutcomesPerConnection per bus
// connection, dropped when the connection leaves the bus. The same outcome goes to the caller at
// once in a RequestEnded signal addressed to its connection alone (never a broadcast), sent
// before the stream reaches EOF, so a caller that reads to EOF needs no RequestOutcome call.
//
// The outcome record is written to the log at once but not flushed at once: nothing waits for
// it (the reply went with the head), and a flush started for it alone would hold up the next
// call's decision flush behind it (one flush at a time: measured, a second fdatasync on every
// back-to-back Request). It becomes durable with the next flush any call asks for, or within
// kOutcomeFlushDelayUsec when none does.
//
// A lock (Lock, Incident, an integrity failure) cuts every exchange in flight (cancel_all), and
// each outcome says why.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "daemon/audit/audit_trail.hpp"
#include "daemon/egress/engine.hpp"
#include "daemon/identity/subject.hpp"
#include "daemon/pipeline/request_body.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::daemon {

class VaultService;

// What RequestOutcome answers.
struct RequestOutcomeView {
    std::string end;  // "complete", "truncated" or "pending"
    std::string reason;
    std::uint64_t bytes_delivered = 0;
    std::uint64_t redactions = 0;
};

// A Request as decoded and authorized.
struct ProviderCall {
    std::string provider;
    std::string method;
    std::string path;  // with its query
    std::vector<egress::Header> headers;
    RequestBody body;
};

class RequestBroker {
public:
    // Requests in flight, all callers together: each holds a connection and the stream's socket
    // (two descriptors, plus curl's buffers); beyond this a Request is refused Unavailable.
    static constexpr std::size_t kMaxInFlight = 512;
    // How long an outcome record may wait for a flush another call asks for.
    static constexpr std::uint64_t kOutcomeFlushDelayUsec = 20'000;

    RequestBroker(sd_bus* bus, sd_event* event, VaultService& vault, audit::AuditTrail& audit);
    RequestBroker(const RequestBroker&) = delete;
    RequestBroker& operator=(const RequestBroker&) = delete;
    ~RequestBroker();

    // Starts the exchange for an authorized call. Throws VaultError when it is refused before any
    // connection (the pipeline records and answers that refusal); otherwise the call is answered
    // later, by this class.
    void start(ProviderCall call, sd_bus_message* message, const identity::Subject& subject, std::string_view sender,
               std::string_view grant_reference);

    // RequestOutcome: only for the connection that made the request (NotFound otherwise).
    [[nodiscard]] std::optional<RequestOutcomeView> outcome(std::string_view sender, std::uint64_t id) const;

    // Cuts every exchange in flight (lock, incident), recording `reason`; on the next turn.
    void cancel_all(const std::string& reason);
    // The orderly stop: cuts every exchange now, so each outcome record is written before the
    // audit log closes.
    void stop(const std::string& reason);

    [[nodiscard]] std::size_t active() const noexcept { return flights_.size(); }

    // The object's label in audit records: "openai POST /v1/chat?stream" (query keys only).
    static std::string audit_object(std::string_view provider, std::string_view method, std::string_view path);

private:
    struct Flight;
    static int on_name_owner_changed(sd_bus_message* message, void* userdata, sd_bus_error* error) noexcept;
    static int on_outcome_flush(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    void schedule_outcome_flush();
    void on_head(std::uint64_t id, const egress::ResponseHead& head, UniqueFd reader);
    void on_end(std::uint64_t id, const egress::Outcome& outcome);
    void keep_outcome(const std::string& sender, std::uint64_t id, RequestOutcomeView view);
    void announce_end(const std::string& sender, std::uint64_t id, const RequestOutcomeView& view);

    sd_bus* bus_;
    sd_event* event_;
    VaultService& vault_;
    audit::AuditTrail& audit_;
    egress::Engine engine_;
    bus::SlotPtr name_watch_;
    bus::EventSourcePtr outcome_flush_;  // the deadline for outcome records no call flushed
    std::uint64_t outcome_mark_ = 0;     // the newest outcome record's sequence number
    std::map<std::uint64_t, std::unique_ptr<Flight>> flights_;
    // Per connection: ended requests, oldest first.
    std::unordered_map<std::string, std::deque<std::pair<std::uint64_t, RequestOutcomeView>>> outcomes_;
};

}  // namespace codexvault::daemon
