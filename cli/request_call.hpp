// The client side of provider mediation (docs/bus-api.md, Request, RequestEnded and
// RequestOutcome): send a Request, read the response body from the stream the daemon hands back,
// then learn whether that body was whole. Shared by `vaultctl request` and `vaultctl proxy`/`run`.
//
// A stream reaches EOF however the exchange ended (complete, upstream reset, lock, limit), so EOF
// alone never means complete: only the end "complete" does. The daemon sends it in a RequestEnded
// signal addressed to the connection that made the Request, before the stream's EOF; a caller
// that does not see that signal asks RequestOutcome on the same connection (the daemon answers
// NotFound to any other).
#pragma once

#include <systemd/sd-bus.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cli/vault_client.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::cli {

using HeaderList = std::vector<std::pair<std::string, std::string>>;

struct ProviderRequest {
    std::string provider;        // "openai"
    std::string method;          // "POST"
    std::string path_and_query;  // "/v1/chat/completions?stream=true"
    HeaderList headers;          // passed as given; the daemon drops what must not go upstream
    UniqueFd body;               // invalid: no body; else a memfd, a regular file or a complete pipe
    std::string approval_id;     // "" or the id an ApprovalRequired error named, for the retry
};

struct ProviderResponse {
    std::uint64_t request_id = 0;
    std::string vault;  // the unique bus name that answered: only its RequestEnded is believed
    std::uint16_t status = 0;
    HeaderList headers;  // filtered and redacted by the daemon
    UniqueFd stream;     // the body, to EOF
};

struct ProviderOutcome {
    std::string end;  // "complete", "truncated" or "pending" (asked before the stream ended)
    std::string reason;
    std::uint64_t bytes_delivered = 0;
    std::uint64_t redactions = 0;
    [[nodiscard]] bool complete() const noexcept { return end == "complete"; }
};

// How long a Request may wait for the upstream's response head (the daemon's own timeouts cut
// it sooner: connect, idle, total).
inline constexpr std::uint64_t kRequestCallTimeoutUsec = 3600ULL * 1'000'000;

// The Request message for `request` on `bus` (the body descriptor is duplicated into it), for a
// caller that sends it itself (sd_bus_call_async on its own loop).
bus::MessagePtr new_request_message(sd_bus* bus, const ProviderRequest& request);
// Reads a Request reply. Throws CallError on a malformed one.
ProviderResponse read_request_reply(sd_bus_message* reply);
// Sends Request and waits for the reply. Throws CallError (the vault's error and exit code:
// PermissionDenied, ApprovalRequired, Locked, InvalidArgument, Unavailable...).
ProviderResponse send_request(sd_bus* bus, const ProviderRequest& request,
                              std::uint64_t timeout_usec = kRequestCallTimeoutUsec);

bus::MessagePtr new_outcome_message(sd_bus* bus, std::uint64_t request_id);
ProviderOutcome read_outcome_reply(sd_bus_message* reply);
// Asks RequestOutcome (same connection as the Request). Throws CallError.
ProviderOutcome request_outcome(sd_bus* bus, std::uint64_t request_id);

// How long a caller at EOF waits for RequestEnded before it asks RequestOutcome instead. The
// daemon sends the signal before the stream's EOF, so it is normally there already or in flight
// through the bus.
inline constexpr std::uint64_t kRequestEndedWaitUsec = 1'000'000;

// The RequestEnded signals one connection receives (VaultClient::request_ends()): a bus filter
// that keeps the ends addressed to it by the vault that answered each Request, so several
// Requests in flight on one connection each find their own. Create it before the connection is
// processed (sd_bus_process) while Requests are in flight: a signal dispatched without it is
// gone, and its caller then waits kRequestEndedWaitUsec and asks RequestOutcome.
class RequestEnds {
public:
    explicit RequestEnds(sd_bus* bus);
    ~RequestEnds();
    RequestEnds(const RequestEnds&) = delete;
    RequestEnds& operator=(const RequestEnds&) = delete;

    // The end of `response`'s request: from its RequestEnded signal, waited for up to `wait_usec`;
    // without one, from RequestOutcome. Throws CallError when RequestOutcome fails.
    ProviderOutcome await(std::uint64_t request_id, const std::string& vault,
                          std::uint64_t wait_usec = kRequestEndedWaitUsec);
    // The same without the RequestOutcome fallback: nullopt when no signal came in time.
    std::optional<ProviderOutcome> wait_for(std::uint64_t request_id, const std::string& vault,
                                            std::uint64_t wait_usec = kRequestEndedWaitUsec);

private:
    struct Ended {
        std::string vault;
        std::uint64_t id = 0;
        ProviderOutcome outcome;
    };
    static int on_message(sd_bus_message* message, void* userdata, sd_bus_error* error) noexcept;
    bool take(std::uint64_t request_id, const std::string& vault, ProviderOutcome& outcome);

    sd_bus* bus_;
    bus::SlotPtr filter_;
    std::vector<Ended> ended_;  // at most bus::request::kMaxOutcomesPerConnection, oldest first
};

// Reads `response.stream` to EOF, handing each chunk to `sink` as it arrives (sink returns false
// to stop: the stream is closed, which cuts the exchange), then learns the end: at EOF from
// RequestEnded (client.request_ends()), after an early stop from RequestOutcome. Throws CallError
// when the stream cannot be read or the outcome cannot be fetched.
// `on_eof` (optional) runs when the stream has ended, before the outcome is learnt (benchmarks
// time the two apart).
ProviderOutcome relay_response(VaultClient& client, ProviderResponse& response,
                               const std::function<bool(std::span<const char>)>& sink,
                               const std::function<void()>& on_eof = {});

// A sealed memfd holding `bytes`: the body descriptor for a Request (the daemon reads it from
// offset 0 and cannot be raced by later writes). Throws CallError.
UniqueFd body_memfd(std::span<const std::uint8_t> bytes);

}  // namespace codexvault::cli
