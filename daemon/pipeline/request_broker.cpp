#include "daemon/pipeline/request_broker.hpp"

#include <cstring>
#include <stdexcept>
#include <system_error>

#include "common/bus_contract.hpp"
#include "common/vault_error.hpp"
#include "daemon/monotonic_clock.hpp"
#include "daemon/vault_service.hpp"
#include "lib/log/log.hpp"

namespace codexvault::daemon {

struct RequestBroker::Flight {
    std::uint64_t id = 0;
    bus::MessagePtr message;  // unanswered until the head arrives or the exchange ends
    identity::Subject subject;
    std::string sender;
    std::string grant;
    std::string object;
    std::uint64_t started_usec = 0;
};

namespace {

constexpr const char* kAction = "provider.request";

// The error a Request ends with when no response head came.
ErrorCode error_for(egress::End end)
{
    switch (end) {
    case egress::End::Cancelled:
        return ErrorCode::Locked;
    case egress::End::RequestTooLarge:
    case egress::End::BodyReadFailed:
        return ErrorCode::InvalidArgument;
    default:
        return ErrorCode::Unavailable;
    }
}

}  // namespace

std::string RequestBroker::audit_object(std::string_view provider, std::string_view method, std::string_view path)
{
    std::string out(provider);
    out += ' ';
    out += method;
    out += ' ';
    const auto query = path.find('?');
    out += path.substr(0, query);
    if (query == std::string_view::npos) {
        return out;
    }
    // Query keys only: a value may be a token or personal data.
    std::string_view rest = path.substr(query + 1);
    char separator = '?';
    while (!rest.empty()) {
        const auto amp = rest.find('&');
        const std::string_view pair = rest.substr(0, amp);
        out += separator;
        out += pair.substr(0, pair.find('='));
        separator = '&';
        if (amp == std::string_view::npos) {
            break;
        }
        rest.remove_prefix(amp + 1);
    }
    return out;
}

RequestBroker::RequestBroker(sd_bus* bus, sd_event* event, VaultService& vault, audit::AuditTrail& audit)
    : bus_(bus), event_(event), vault_(vault), audit_(audit), engine_(event)
{
    sd_bus_slot* slot = nullptr;
    const int r =
        sd_bus_match_signal(bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "NameOwnerChanged", &RequestBroker::on_name_owner_changed, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "watch bus names for request outcomes");
    }
    name_watch_.reset(slot);
}

RequestBroker::~RequestBroker() = default;

int RequestBroker::on_name_owner_changed(sd_bus_message* message, void* userdata, sd_bus_error* /*error*/) noexcept
{
    const char* name = nullptr;
    const char* old_owner = nullptr;
    const char* new_owner = nullptr;
    if (sd_bus_message_read(message, "sss", &name, &old_owner, &new_owner) < 0 || name == nullptr ||
        new_owner == nullptr) {
        return 0;
    }
    if (name[0] == ':' && new_owner[0] == '\0') {
        auto* broker = static_cast<RequestBroker*>(userdata);
        try {
            broker->outcomes_.erase(name);
            // A caller that left before its response head arrived (a proxy whose client hung up,
            // a killed vaultctl) can never be answered: its exchange is cut rather than left to
            // wait upstream, perhaps for minutes. An answered stream is not touched: its reader
            // may live on without the connection.
            for (const auto& [id, flight] : broker->flights_) {
                if (flight->message && flight->sender == name) {
                    broker->engine_.cancel(id, "the caller left the bus before the response head arrived");
                }
            }
        } catch (const std::exception& e) {
            log::error(std::string("could not cut the requests of a caller that left: ") + e.what());
        }
    }
    return 0;
}

void RequestBroker::start(ProviderCall call, sd_bus_message* message, const identity::Subject& subject,
                          std::string_view sender, std::string_view grant_reference)
{
    if (flights_.size() >= kMaxInFlight) {
        throw VaultError(ErrorCode::Unavailable,
                         "too many provider requests in flight (" + std::to_string(kMaxInFlight) + "); retry later");
    }
    const auto& policy = vault_.engine().policy();
    const policy::Provider* provider = policy ? policy->find_provider(call.provider) : nullptr;
    if (provider == nullptr) {
        throw VaultError(ErrorCode::NotFound, "no provider named " + call.provider);
    }
    if (call.body.size > provider->transport.max_request_bytes) {
        throw VaultError(ErrorCode::InvalidArgument, "request body of " + std::to_string(call.body.size) +
                                                         " bytes is over the provider's limit of " +
                                                         std::to_string(provider->transport.max_request_bytes) +
                                                         " bytes (max_request_bytes)");
    }
    // Refuses a missing secret, one that fails integrity and one marked rotation-required.
    const store::SecureBuffer secret = vault_.secrets().open(provider->secret);

    auto flight = std::make_unique<Flight>();
    flight->message.reset(sd_bus_message_ref(message));
    flight->subject = subject;
    flight->sender = std::string(sender);
    flight->grant = std::string(grant_reference);
    flight->object = audit_object(call.provider, call.method, call.path);
    flight->started_usec = clock::monotonic_usec();

    egress::ExchangeRequest request{*provider, std::move(call.method), std::move(call.path), std::move(call.headers),
                                    std::move(call.body.fd)};
    auto id_holder = std::make_shared<std::uint64_t>(0);
    egress::ExchangeCallbacks callbacks;
    callbacks.on_head = [this, id_holder](const egress::ResponseHead& head, UniqueFd reader) {
        on_head(*id_holder, head, std::move(reader));
    };
    callbacks.on_end = [this, id_holder](const egress::Outcome& outcome) {
        on_end(*id_holder, outcome);
    };
    auto started = engine_.start(std::move(request), secret.span(), std::move(callbacks));
    if (!started) {
        throw VaultError(ErrorCode::InvalidArgument, "request refused: " + started.message());
    }
    *id_holder = started.value();
    flight->id = started.value();
    flights_.emplace(flight->id, std::move(flight));
}

void RequestBroker::on_head(std::uint64_t id, const egress::ResponseHead& head, UniqueFd reader)
{
    const auto found = flights_.find(id);
    if (found == flights_.end() || !found->second->message) {
        return;  // the reader closes; the exchange ends as ReaderGone
    }
    Flight& flight = *found->second;
    bus::MessagePtr call = std::move(flight.message);
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_method_return(call.get(), &raw);
    bus::MessagePtr reply(raw);
    if (r >= 0) {
        r = sd_bus_message_append(reply.get(), "tq", id, static_cast<std::uint16_t>(head.status));
    }
    if (r >= 0) {
        r = sd_bus_message_open_container(reply.get(), 'a', "(ss)");
    }
    for (const auto& header : head.headers) {
        if (r >= 0) {
            r = sd_bus_message_append(reply.get(), "(ss)", header.name.c_str(), header.value.c_str());
        }
    }
    if (r >= 0) {
        r = sd_bus_message_close_container(reply.get());
    }
    if (r >= 0) {
        r = sd_bus_message_append(reply.get(), "h", reader.get());  // sd-bus holds its own copy
    }
    if (r >= 0) {
        r = sd_bus_send(nullptr, reply.get(), nullptr);
    }
    if (r < 0) {
        // The caller is gone or the reply could not be built: our copy of the reader closes
        // below, so the exchange ends (reader-gone) and its outcome is recorded.
        log::notice("could not answer request " + std::to_string(id) + " of " + flight.sender + ": " +
                    std::strerror(-r));
        engine_.cancel(id, "the reply could not be sent");
    }
}

void RequestBroker::on_end(std::uint64_t id, const egress::Outcome& outcome)
{
    const auto found = flights_.find(id);
    if (found == flights_.end()) {
        return;
    }
    std::unique_ptr<Flight> flight = std::move(found->second);
    flights_.erase(found);
    const bool complete = outcome.end == egress::End::Complete;
    const std::string end_name(egress::end_name(outcome.end));
    const std::uint64_t duration = clock::monotonic_usec() - flight->started_usec;

    std::string reason = "request " + std::to_string(id) + " end " + end_name + " status " +
                         std::to_string(outcome.status) + " sent " + std::to_string(outcome.request_bytes) +
                         " received " + std::to_string(outcome.response_bytes) + " delivered " +
                         std::to_string(outcome.delivered_bytes) + " redactions " + std::to_string(outcome.redactions) +
                         " duration_us " + std::to_string(duration);
    if (!outcome.dropped_headers.empty()) {
        reason += " dropped";
        for (const auto& name : outcome.dropped_headers) {
            reason += ' ' + name;
        }
    }
    if (!complete && !outcome.reason.empty()) {
        reason += ": " + outcome.reason;
    }
    const audit::AuditRecord record{.type = audit::EventType::Outcome,
                                    .action = kAction,
                                    .object = flight->object,
                                    .subject = &flight->subject,
                                    .sender = flight->sender,
                                    .decision = complete ? audit::Decision::Allow : audit::Decision::Deny,
                                    .reason = reason,
                                    .grant = flight->grant,
                                    .informational = false};
    if (audit_.record(record) != audit::Appended::Failed) {
        outcome_mark_ = audit_.last_seq();
        (void)audit_.write_pending();  // in the file now; durable with the next flush
        schedule_outcome_flush();
    }

    if (flight->message) {
        // No response head: the Request itself fails, with the reason.
        const std::string message = end_name + ": " + (outcome.reason.empty() ? end_name : outcome.reason);
        const sd_bus_error error =
            SD_BUS_ERROR_MAKE_CONST(error_info(error_for(outcome.end)).bus_name, message.c_str());
        const int r = sd_bus_reply_method_error(flight->message.get(), &error);
        if (r < 0) {
            log::notice("could not answer request " + std::to_string(id) + " of " + flight->sender + ": " +
                        std::strerror(-r));
        }
        return;
    }
    RequestOutcomeView view;
    view.end = complete ? bus::request::kEndComplete : bus::request::kEndTruncated;
    view.reason = complete ? std::string() : end_name + (outcome.reason.empty() ? "" : ": " + outcome.reason);
    view.bytes_delivered = outcome.delivered_bytes;
    view.redactions = outcome.redactions;
    announce_end(flight->sender, id, view);
    keep_outcome(flight->sender, id, std::move(view));
}

void RequestBroker::announce_end(const std::string& sender, std::uint64_t id, const RequestOutcomeView& view)
{
    if (sender.empty()) {
        return;  // a peer-to-peer connection has no name to address; RequestOutcome still answers
    }
    sd_bus_message* raw = nullptr;
    int r = sd_bus_message_new_signal(bus_, &raw, bus::kObjectPath, bus::kInterface, bus::signal::kRequestEnded);
    const bus::MessagePtr signal(raw);
    if (r >= 0) {
        r = sd_bus_message_set_destination(signal.get(), sender.c_str());  // unicast: the caller only
    }
    if (r >= 0) {
        r = sd_bus_message_append(signal.get(), bus::signal::kRequestEndedSignature, id, view.end.c_str(),
                                  view.reason.c_str(), view.bytes_delivered, view.redactions);
    }
    if (r >= 0) {
        r = sd_bus_send(bus_, signal.get(), nullptr);
    }
    if (r < 0) {
        // The caller can still ask RequestOutcome (vaultctl does when the signal does not come).
        log::notice("could not send RequestEnded for request " + std::to_string(id) + " to " + sender + ": " +
                    std::strerror(-r));
    }
}

void RequestBroker::schedule_outcome_flush()
{
    std::uint64_t now = 0;
    (void)sd_event_now(event_, CLOCK_MONOTONIC, &now);
    if (!outcome_flush_) {
        sd_event_source* source = nullptr;
        if (sd_event_add_time(event_, &source, CLOCK_MONOTONIC, now + kOutcomeFlushDelayUsec, 1'000,
                              &RequestBroker::on_outcome_flush, this) < 0) {
            (void)audit_.request_flush();  // no timer: flush now, slower but never later
            return;
        }
        outcome_flush_.reset(source);
        return;
    }
    int enabled = SD_EVENT_OFF;
    (void)sd_event_source_get_enabled(outcome_flush_.get(), &enabled);
    if (enabled != SD_EVENT_OFF) {
        return;  // already due within the delay
    }
    if (sd_event_source_set_time(outcome_flush_.get(), now + kOutcomeFlushDelayUsec) < 0 ||
        sd_event_source_set_enabled(outcome_flush_.get(), SD_EVENT_ONESHOT) < 0) {
        (void)audit_.request_flush();
    }
}

int RequestBroker::on_outcome_flush(sd_event_source* /*source*/, std::uint64_t /*usec*/, void* userdata) noexcept
{
    auto* broker = static_cast<RequestBroker*>(userdata);
    // Another call's flush may have covered it already.
    if (broker->audit_.durable_seq() < broker->outcome_mark_) {
        (void)broker->audit_.request_flush();  // a failure fails the log, and every later call
    }
    return 0;
}

void RequestBroker::keep_outcome(const std::string& sender, std::uint64_t id, RequestOutcomeView view)
{
    auto& kept = outcomes_[sender];
    if (kept.size() >= bus::request::kMaxOutcomesPerConnection) {
        kept.pop_front();
    }
    kept.emplace_back(id, std::move(view));
}

std::optional<RequestOutcomeView> RequestBroker::outcome(std::string_view sender, std::uint64_t id) const
{
    const auto running = flights_.find(id);
    if (running != flights_.end()) {
        if (running->second->sender != sender) {
            return std::nullopt;
        }
        RequestOutcomeView view;
        view.end = bus::request::kEndPending;
        view.reason = "the stream has not ended";
        return view;
    }
    const auto kept = outcomes_.find(std::string(sender));
    if (kept == outcomes_.end()) {
        return std::nullopt;
    }
    for (const auto& [kept_id, view] : kept->second) {
        if (kept_id == id) {
            return view;
        }
    }
    return std::nullopt;
}

void RequestBroker::cancel_all(const std::string& reason)
{
    engine_.cancel_all(reason);
}

void RequestBroker::stop(const std::string& reason)
{
    engine_.cut_all_now(reason);
}

}  // namespace codexvault::daemon
