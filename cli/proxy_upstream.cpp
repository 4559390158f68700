#include "cli/proxy_upstream.hpp"

#include <poll.h>
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <utility>

#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::cli::proxy {

namespace {

struct PendingReply {
    bool done = false;
    bus::MessagePtr reply;
};

int on_reply(sd_bus_message* reply, void* userdata, sd_bus_error* /*error*/) noexcept
{
    auto* pending = static_cast<PendingReply*>(userdata);
    pending->done = true;
    pending->reply.reset(sd_bus_message_ref(reply));
    return 0;
}

}  // namespace

ProviderResponse UpstreamBus::request(const ProviderRequest& request, std::uint64_t timeout_usec, int client)
{
    sd_bus* bus = client_.bus();
    if (client < 0) {
        return send_request(bus, request, timeout_usec);
    }
    bus::MessagePtr message = new_request_message(bus, request);
    PendingReply pending;
    sd_bus_slot* raw_slot = nullptr;
    check_local(sd_bus_call_async(bus, &raw_slot, message.get(), on_reply, &pending, timeout_usec), "send the request");
    const bus::SlotPtr slot(raw_slot);  // dropped first: no callback into `pending` after return
    while (!pending.done) {
        const int processed = sd_bus_process(bus, nullptr);
        check_local(processed, "read the bus");
        if (processed > 0) {
            continue;
        }
        const int events = sd_bus_get_events(bus);
        check_local(events, "poll the bus");
        std::uint64_t until = 0;
        check_local(sd_bus_get_timeout(bus, &until), "poll the bus");
        int wait_ms = -1;
        if (until != UINT64_MAX) {
            struct timespec now {};
            (void)::clock_gettime(CLOCK_MONOTONIC, &now);
            const std::uint64_t now_usec =
                static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(now.tv_nsec) / 1000;
            wait_ms = until > now_usec
                          ? static_cast<int>(std::min<std::uint64_t>((until - now_usec + 999) / 1000, 60'000))
                          : 0;
        }
        // POLLRDHUP: the client closed its end. Bytes it sends meanwhile (a pipelined request)
        // stay queued for the HTTP server and wake nothing here.
        struct pollfd fds[2] = {{sd_bus_get_fd(bus), static_cast<short>(events), 0}, {client, POLLRDHUP, 0}};
        const int ready = ::poll(fds, 2, wait_ms);
        if (ready < 0 && errno != EINTR) {
            check_local(-errno, "poll the bus");
        }
        if (ready > 0 && (fds[1].revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0) {
            throw ClientGone();
        }
    }
    if (sd_bus_message_is_method_error(pending.reply.get(), nullptr)) {
        throw error_from_reply(*sd_bus_message_get_error(pending.reply.get()), -EIO);
    }
    return read_request_reply(pending.reply.get());
}

ProviderOutcome UpstreamBus::outcome(std::uint64_t request_id, const std::string& vault)
{
    if (auto ended = client_.request_ends().wait_for(request_id, vault)) {
        return std::move(*ended);
    }
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
