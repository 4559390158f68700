#include "cli/request_call.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/bus_contract.hpp"

namespace codexvault::cli {
namespace {

[[noreturn]] void throw_errno(const char* what, int error)
{
    throw CallError(std::nullopt, 1, std::string(what) + ": " + std::strerror(error));
}

bus::MessagePtr new_call(sd_bus* bus, const char* method)
{
    sd_bus_message* raw = nullptr;
    check_local(sd_bus_message_new_method_call(bus, &raw, bus::kBusName, bus::kObjectPath, bus::kInterface, method),
                "create method call");
    return bus::MessagePtr(raw);
}

bus::MessagePtr call(sd_bus* bus, sd_bus_message* message, std::uint64_t timeout_usec)
{
    bus::BusError error;
    sd_bus_message* raw_reply = nullptr;
    const int r = sd_bus_call(bus, message, timeout_usec, error.get(), &raw_reply);
    bus::MessagePtr reply(raw_reply);
    if (r < 0) {
        throw error_from_reply(*error.get(), r);
    }
    return reply;
}

HeaderList read_headers(sd_bus_message* message)
{
    HeaderList headers;
    check_local(sd_bus_message_enter_container(message, 'a', "(ss)"), "read headers");
    for (;;) {
        const char* name = nullptr;
        const char* value = nullptr;
        const int r = sd_bus_message_read(message, "(ss)", &name, &value);
        check_local(r, "read header");
        if (r == 0) {
            break;
        }
        headers.emplace_back(name, value);
    }
    check_local(sd_bus_message_exit_container(message), "read headers");
    return headers;
}

}  // namespace

bus::MessagePtr new_request_message(sd_bus* bus, const ProviderRequest& request)
{
    bus::MessagePtr message = new_call(bus, bus::method::kRequest);
    sd_bus_message* m = message.get();
    check_local(sd_bus_message_append(m, "sss", request.provider.c_str(), request.method.c_str(),
                                      request.path_and_query.c_str()),
                "append request");
    check_local(sd_bus_message_open_container(m, 'a', "(ss)"), "append headers");
    for (const auto& [name, value] : request.headers) {
        check_local(sd_bus_message_append(m, "(ss)", name.c_str(), value.c_str()), "append header");
    }
    if (!request.approval_id.empty()) {
        check_local(sd_bus_message_append(m, "(ss)", bus::request::kApprovalHeader, request.approval_id.c_str()),
                    "append approval");
    }
    check_local(sd_bus_message_close_container(m), "append headers");
    check_local(sd_bus_message_open_container(m, 'a', "h"), "append body");
    if (request.body.valid()) {
        // sd-bus duplicates the descriptor into the message.
        check_local(sd_bus_message_append(m, "h", request.body.get()), "append body");
    }
    check_local(sd_bus_message_close_container(m), "append body");
    return message;
}

ProviderResponse read_request_reply(sd_bus_message* reply)
{
    ProviderResponse response;
    const char* vault = sd_bus_message_get_sender(reply);
    response.vault = vault != nullptr ? vault : "";
    check_local(sd_bus_message_read(reply, "tq", &response.request_id, &response.status), "read response");
    response.headers = read_headers(reply);
    int fd = -1;
    check_local(sd_bus_message_read(reply, "h", &fd), "read response stream");
    // The message owns its descriptor; the response keeps its own copy.
    const int own = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
    if (own < 0) {
        throw_errno("duplicate the response stream", errno);
    }
    response.stream.reset(own);
    return response;
}

ProviderResponse send_request(sd_bus* bus, const ProviderRequest& request, std::uint64_t timeout_usec)
{
    bus::MessagePtr message = new_request_message(bus, request);
    bus::MessagePtr reply = call(bus, message.get(), timeout_usec);
    return read_request_reply(reply.get());
}

bus::MessagePtr new_outcome_message(sd_bus* bus, std::uint64_t request_id)
{
    bus::MessagePtr message = new_call(bus, bus::method::kRequestOutcome);
    check_local(sd_bus_message_append(message.get(), "t", request_id), "append request id");
    return message;
}

ProviderOutcome read_outcome_reply(sd_bus_message* reply)
{
    ProviderOutcome outcome;
    const char* end = nullptr;
    const char* reason = nullptr;
    check_local(sd_bus_message_read(reply, "sstt", &end, &reason, &outcome.bytes_delivered, &outcome.redactions),
                "read request outcome");
    outcome.end = end;
    outcome.reason = reason;
    return outcome;
}

ProviderOutcome request_outcome(sd_bus* bus, std::uint64_t request_id)
{
    bus::MessagePtr message = new_outcome_message(bus, request_id);
    bus::MessagePtr reply = call(bus, message.get(), 0);
    return read_outcome_reply(reply.get());
}

RequestEnds::RequestEnds(sd_bus* bus) : bus_(bus)
{
    sd_bus_slot* raw = nullptr;
    check_local(sd_bus_add_filter(bus, &raw, &RequestEnds::on_message, this), "watch for RequestEnded");
    filter_.reset(raw);
}

RequestEnds::~RequestEnds() = default;

int RequestEnds::on_message(sd_bus_message* message, void* userdata, sd_bus_error* /*error*/) noexcept
{
    if (sd_bus_message_is_signal(message, bus::kInterface, bus::signal::kRequestEnded) <= 0) {
        return 0;
    }
    const char* path = sd_bus_message_get_path(message);
    const char* sender = sd_bus_message_get_sender(message);
    if (path == nullptr || std::strcmp(path, bus::kObjectPath) != 0) {
        return 0;
    }
    auto* self = static_cast<RequestEnds*>(userdata);
    Ended ended;
    const char* end = nullptr;
    const char* reason = nullptr;
    if (sd_bus_message_read(message, bus::signal::kRequestEndedSignature, &ended.id, &end, &reason,
                            &ended.outcome.bytes_delivered, &ended.outcome.redactions) < 0) {
        (void)sd_bus_message_rewind(message, 1);
        return 0;
    }
    try {
        // Whoever sent it is checked when it is taken: the vault that answered that Request.
        ended.vault = sender != nullptr ? sender : "";
        ended.outcome.end = end;
        ended.outcome.reason = reason;
        if (self->ended_.size() >= bus::request::kMaxOutcomesPerConnection) {
            self->ended_.erase(self->ended_.begin());
        }
        self->ended_.push_back(std::move(ended));
    } catch (...) {
        return 0;  // not kept: the caller asks RequestOutcome
    }
    return 1;
}

bool RequestEnds::take(std::uint64_t request_id, const std::string& vault, ProviderOutcome& outcome)
{
    for (auto it = ended_.begin(); it != ended_.end(); ++it) {
        if (it->id == request_id && it->vault == vault) {
            outcome = std::move(it->outcome);
            ended_.erase(it);
            return true;
        }
    }
    return false;
}

ProviderOutcome RequestEnds::await(std::uint64_t request_id, const std::string& vault, std::uint64_t wait_usec)
{
    if (auto outcome = wait_for(request_id, vault, wait_usec)) {
        return std::move(*outcome);
    }
    return request_outcome(bus_, request_id);
}

std::optional<ProviderOutcome> RequestEnds::wait_for(std::uint64_t request_id, const std::string& vault,
                                                     std::uint64_t wait_usec)
{
    ProviderOutcome outcome;
    std::uint64_t deadline = 0;
    for (;;) {
        if (take(request_id, vault, outcome)) {
            return outcome;
        }
        const int processed = sd_bus_process(bus_, nullptr);
        if (processed < 0) {
            break;  // RequestOutcome below reports what is wrong with the connection
        }
        if (processed > 0) {
            continue;
        }
        struct timespec now {};
        (void)::clock_gettime(CLOCK_MONOTONIC, &now);
        const std::uint64_t now_usec =
            static_cast<std::uint64_t>(now.tv_sec) * 1'000'000 + static_cast<std::uint64_t>(now.tv_nsec) / 1000;
        if (deadline == 0) {
            deadline = now_usec + wait_usec;
        }
        if (now_usec >= deadline || sd_bus_wait(bus_, deadline - now_usec) < 0) {
            break;
        }
    }
    return std::nullopt;
}

ProviderOutcome relay_response(VaultClient& client, ProviderResponse& response,
                               const std::function<bool(std::span<const char>)>& sink,
                               const std::function<void()>& on_eof)
{
    RequestEnds& ends = client.request_ends();  // before the bus is read for anything else
    bool eof = false;
    char buffer[65536];
    for (;;) {
        const ssize_t got = ::read(response.stream.get(), buffer, sizeof buffer);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN) {
                pollfd pfd{response.stream.get(), POLLIN, 0};
                (void)::poll(&pfd, 1, -1);
                continue;
            }
            throw_errno("read the response stream", errno);
        }
        if (got == 0) {
            eof = true;
            break;
        }
        if (!sink(std::span<const char>(buffer, static_cast<std::size_t>(got)))) {
            break;
        }
    }
    response.stream.reset();  // a stream closed early cuts the exchange (ReaderGone)
    if (on_eof) {
        on_eof();
    }
    // Stopped early, the exchange has not ended yet (its RequestEnded would come only once the
    // daemon notices the closed stream): ask now.
    return eof ? ends.await(response.request_id, response.vault) : request_outcome(client.bus(), response.request_id);
}

UniqueFd body_memfd(std::span<const std::uint8_t> bytes)
{
    UniqueFd fd(::memfd_create("codex-vault-body", MFD_CLOEXEC | MFD_ALLOW_SEALING));
    if (!fd) {
        throw_errno("create the request body", errno);
    }
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t wrote = ::write(fd.get(), bytes.data() + done, bytes.size() - done);
        if (wrote < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno("write the request body", errno);
        }
        done += static_cast<std::size_t>(wrote);
    }
    if (::fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) < 0) {
        throw_errno("seal the request body", errno);
    }
    return fd;
}

}  // namespace codexvault::cli
