#include "cli/proxy_upstream.hpp"

#include <time.h>

#include <utility>

namespace codexvault::cli::proxy {

ProviderResponse UpstreamBus::request(const ProviderRequest& request, std::uint64_t timeout_usec)
{
    return send_request(client_.bus(), request, timeout_usec);
}

ProviderOutcome UpstreamBus::outcome(std::uint64_t request_id)
{
    // The stream's EOF and the recorded end are two events on the daemon's loop; a short wait
    // covers the gap (at most 2 s), and a body is never called whole without "complete".
    constexpr int kTries = 100;
    ProviderOutcome outcome;
    for (int i = 0; i < kTries; ++i) {
        outcome = request_outcome(client_.bus(), request_id);
        if (outcome.end != "pending") {
            break;
        }
        const struct timespec pause {
            0, 20'000'000
        };
        (void)::nanosleep(&pause, nullptr);
    }
    return outcome;
}

}  // namespace codexvault::cli::proxy
