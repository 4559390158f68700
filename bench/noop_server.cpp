// Baseline for the bus benchmarks: the smallest sd-bus service that is shaped like a real daemon.
//
//   noop_server --bus ADDRESS [NAME]
//
// Connects to the bus at ADDRESS as a bus client, serves object /org/codexvault/BenchNoop with
// interface org.codexvault.BenchNoop and one method, Nop() -> (), owns NAME (default
// org.codexvault.BenchNoop), and runs a single-threaded sd-event loop until SIGTERM or SIGINT or
// until the bus goes away. Prints "ready" on stdout once it owns the name. Everything the vault
// daemon does beyond this (identity resolution, policy, storage) is what the benchmarks measure
// against it; org.freedesktop.DBus.Peer.Ping is answered by sd-bus itself, as in any sd-bus service.
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>

#include "bench/bench_bus.hpp"

namespace {

using codexvault::bench::BusPtr;
using codexvault::bench::EventPtr;
using codexvault::bench::SlotPtr;
using codexvault::bench::SourcePtr;

constexpr const char* kDefaultName = codexvault::bench::kNoopName;
constexpr const char* kObjectPath = codexvault::bench::kNoopPath;
constexpr const char* kInterface = codexvault::bench::kNoopInterface;

int method_nop(sd_bus_message* call, void* /*userdata*/, sd_bus_error* /*error*/)
{
    return sd_bus_reply_method_return(call, "");
}

const sd_bus_vtable kVtable[] = {
    SD_BUS_VTABLE_START(0),
    SD_BUS_METHOD(codexvault::bench::kNoopMethod, "", "", method_nop, SD_BUS_VTABLE_UNPRIVILEGED),
    SD_BUS_VTABLE_END,
};

int fail(const char* what, int r)
{
    std::fprintf(stderr, "noop_server: %s: %s\n", what, std::strerror(r < 0 ? -r : r));
    return 1;
}

void usage(FILE* out)
{
    std::fprintf(out,
                 "usage: noop_server --bus ADDRESS [NAME]\n"
                 "  Serves %s %s.Nop() on the bus at ADDRESS under NAME (default %s).\n",
                 kObjectPath, kInterface, kDefaultName);
}

}  // namespace

int main(int argc, char** argv)
{
    std::string address;
    std::string name = kDefaultName;
    bool have_name = false;
    for (int i = 1; i < argc; ++i) {
        const std::string_view arg = argv[i];
        if (arg == "-h" || arg == "--help") {
            usage(stdout);
            return 0;
        }
        if (arg == "--bus" && i + 1 < argc) {
            address = argv[++i];
        } else if (arg.starts_with("--bus=")) {
            address = std::string(arg.substr(6));
        } else if (arg == "--name" && i + 1 < argc) {
            name = argv[++i];
            have_name = true;
        } else if (!arg.starts_with("-") && !have_name) {
            name = std::string(arg);
            have_name = true;
        } else {
            std::fprintf(stderr, "noop_server: unexpected argument '%s'\n", argv[i]);
            usage(stderr);
            return 2;
        }
    }
    if (address.empty()) {
        std::fprintf(stderr, "noop_server: --bus ADDRESS is required\n");
        usage(stderr);
        return 2;
    }

    // Signals are delivered through the event loop (signalfd), so they must be blocked first.
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    if (sigprocmask(SIG_BLOCK, &mask, nullptr) < 0)
        return fail("sigprocmask", errno);

    sd_event* raw_event = nullptr;
    int r = sd_event_new(&raw_event);
    if (r < 0)
        return fail("sd_event_new", r);
    const EventPtr event(raw_event);

    // A NULL handler makes sd-event call sd_event_exit(0) on the signal.
    sd_event_source* raw_source = nullptr;
    r = sd_event_add_signal(event.get(), &raw_source, SIGTERM, nullptr, nullptr);
    if (r < 0)
        return fail("sd_event_add_signal(SIGTERM)", r);
    const SourcePtr sigterm_source(raw_source);
    raw_source = nullptr;
    r = sd_event_add_signal(event.get(), &raw_source, SIGINT, nullptr, nullptr);
    if (r < 0)
        return fail("sd_event_add_signal(SIGINT)", r);
    const SourcePtr sigint_source(raw_source);

    sd_bus* raw_bus = nullptr;
    r = sd_bus_new(&raw_bus);
    if (r < 0)
        return fail("sd_bus_new", r);
    const BusPtr bus(raw_bus);
    if ((r = sd_bus_set_address(bus.get(), address.c_str())) < 0)
        return fail("sd_bus_set_address", r);
    if ((r = sd_bus_set_bus_client(bus.get(), 1)) < 0)
        return fail("sd_bus_set_bus_client", r);
    if ((r = sd_bus_set_description(bus.get(), "noop_server")) < 0)
        return fail("sd_bus_set_description", r);
    if ((r = sd_bus_start(bus.get())) < 0)
        return fail("sd_bus_start", r);

    // The object is in place before the name is requested, so no call can arrive before it exists.
    sd_bus_slot* raw_slot = nullptr;
    r = sd_bus_add_object_vtable(bus.get(), &raw_slot, kObjectPath, kInterface, kVtable, nullptr);
    if (r < 0)
        return fail("sd_bus_add_object_vtable", r);
    const SlotPtr vtable_slot(raw_slot);

    if ((r = sd_bus_attach_event(bus.get(), event.get(), SD_EVENT_PRIORITY_NORMAL)) < 0)
        return fail("sd_bus_attach_event", r);
    // If the bus goes away (dbus-daemon torn down first), leave the loop instead of lingering.
    if ((r = sd_bus_set_exit_on_disconnect(bus.get(), 1)) < 0)
        return fail("sd_bus_set_exit_on_disconnect", r);

    if ((r = sd_bus_request_name(bus.get(), name.c_str(), 0)) < 0) {
        std::fprintf(stderr, "noop_server: cannot own %s: %s\n", name.c_str(), std::strerror(-r));
        return 1;
    }

    std::fputs("ready\n", stdout);
    std::fflush(stdout);

    r = sd_event_loop(event.get());
    if (r < 0)
        return fail("sd_event_loop", r);
    return r;
}
