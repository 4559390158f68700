#include "cli/proxy_upstream.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>

#include "common/bus_contract.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::cli::proxy {
namespace {

CallError call_failed(bus::BusError& error, int r)
{
    if (!error.is_set()) {
        return CallError(std::nullopt, 1, std::string("bus call failed: ") + std::strerror(-r));
    }
    if (auto code = error_from_bus_name(error.name())) {
        return CallError(code, error_info(*code).exit_code, error.message());
    }
    const std::string_view name(error.name());
    if (name == "org.freedesktop.DBus.Error.ServiceUnknown" || name == "org.freedesktop.DBus.Error.NameHasNoOwner") {
        return CallError(ErrorCode::Unavailable, error_info(ErrorCode::Unavailable).exit_code,
                         "codex-vaultd is not running on this bus");
    }
    if (name == "org.freedesktop.DBus.Error.UnknownMethod") {
        return CallError(ErrorCode::Unavailable, error_info(ErrorCode::Unavailable).exit_code,
                         "this codex-vaultd does not mediate requests (no Request method)");
    }
    return CallError(std::nullopt, 1, std::string(error.name()) + ": " + error.message());
}

bus::MessagePtr new_call(sd_bus* bus, const char* method)
{
    sd_bus_message* raw = nullptr;
    check_local(sd_bus_message_new_method_call(bus, &raw, bus::kBusName, bus::kObjectPath, bus::kInterface, method),
                "create method call");
    return bus::MessagePtr(raw);
}

bus::MessagePtr call(sd_bus* bus, sd_bus_message* request, std::uint64_t timeout_usec)
{
    bus::BusError error;
    sd_bus_message* raw_reply = nullptr;
    const int r = sd_bus_call(bus, request, timeout_usec, error.get(), &raw_reply);
    bus::MessagePtr reply(raw_reply);
    if (r < 0) {
        throw call_failed(error, r);
    }
    return reply;
}

}  // namespace

UpstreamResponse UpstreamBus::request(const std::string& provider, const std::string& method,
                                      const std::string& path_and_query, const HeaderList& headers, int body,
                                      std::uint64_t timeout_usec)
{
    sd_bus* bus = client_.bus();
    bus::MessagePtr m = new_call(bus, kRequestMethod);
    check_local(sd_bus_message_append(m.get(), "sss", provider.c_str(), method.c_str(), path_and_query.c_str()),
                "append request");
    check_local(sd_bus_message_open_container(m.get(), 'a', "(ss)"), "append headers");
    for (const auto& [name, value] : headers) {
        check_local(sd_bus_message_append(m.get(), "(ss)", name.c_str(), value.c_str()), "append header");
    }
    check_local(sd_bus_message_close_container(m.get()), "append headers");
    check_local(sd_bus_message_open_container(m.get(), 'a', "h"), "append body");
    if (body >= 0) {
        check_local(sd_bus_message_append(m.get(), "h", body), "append body");  // sd-bus duplicates it
    }
    check_local(sd_bus_message_close_container(m.get()), "append body");

    bus::MessagePtr reply = call(bus, m.get(), timeout_usec);
    UpstreamResponse out;
    check_local(sd_bus_message_read(reply.get(), "tq", &out.request_id, &out.status), "read request reply");
    check_local(sd_bus_message_enter_container(reply.get(), 'a', "(ss)"), "read response headers");
    for (;;) {
        const char* name = nullptr;
        const char* value = nullptr;
        const int r = sd_bus_message_read(reply.get(), "(ss)", &name, &value);
        check_local(r, "read response header");
        if (r == 0) {
            break;
        }
        out.headers.emplace_back(name, value);
    }
    check_local(sd_bus_message_exit_container(reply.get()), "read response headers");
    int stream = -1;
    check_local(sd_bus_message_read(reply.get(), "h", &stream), "read response stream");
    // The message owns its descriptor; the body outlives it.
    out.stream = UniqueFd(::fcntl(stream, F_DUPFD_CLOEXEC, 3));
    if (!out.stream) {
        throw CallError(std::nullopt, 1, std::string("duplicate response stream: ") + std::strerror(errno));
    }
    return out;
}

UpstreamOutcome UpstreamBus::outcome(std::uint64_t request_id)
{
    bus::MessagePtr m = new_call(client_.bus(), kRequestOutcomeMethod);
    check_local(sd_bus_message_append(m.get(), "t", request_id), "append request id");
    bus::MessagePtr reply = call(client_.bus(), m.get(), 0);
    const char* end = nullptr;
    const char* reason = nullptr;
    UpstreamOutcome out;
    check_local(sd_bus_message_read(reply.get(), "sstt", &end, &reason, &out.bytes_delivered, &out.redactions),
                "read request outcome");
    out.end = end;
    out.reason = reason;
    return out;
}

}  // namespace codexvault::cli::proxy
