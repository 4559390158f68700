// sd-bus pieces shared by the bus benchmark programs: the no-op baseline server's names (served by
// noop_server, called by bus_bench) and owning pointers for sd-bus objects.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <memory>

namespace codexvault::bench {

inline constexpr const char* kNoopName = "org.codexvault.BenchNoop";
inline constexpr const char* kNoopPath = "/org/codexvault/BenchNoop";
inline constexpr const char* kNoopInterface = "org.codexvault.BenchNoop";
inline constexpr const char* kNoopMethod = "Nop";
inline constexpr const char* kPeerInterface = "org.freedesktop.DBus.Peer";

struct BusUnref {
    void operator()(sd_bus* bus) const noexcept { sd_bus_flush_close_unref(bus); }
};
struct MessageUnref {
    void operator()(sd_bus_message* message) const noexcept { sd_bus_message_unref(message); }
};
struct EventUnref {
    void operator()(sd_event* event) const noexcept { sd_event_unref(event); }
};
struct SlotUnref {
    void operator()(sd_bus_slot* slot) const noexcept { sd_bus_slot_unref(slot); }
};
struct SourceUnref {
    void operator()(sd_event_source* source) const noexcept { sd_event_source_disable_unref(source); }
};
using BusPtr = std::unique_ptr<sd_bus, BusUnref>;
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;
using EventPtr = std::unique_ptr<sd_event, EventUnref>;
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;
using SourcePtr = std::unique_ptr<sd_event_source, SourceUnref>;

// An sd_bus_error that frees itself.
class BusError {
public:
    BusError() = default;
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    ~BusError() { sd_bus_error_free(&error_); }
    sd_bus_error* get() noexcept { return &error_; }
    [[nodiscard]] bool is_set() const noexcept { return sd_bus_error_is_set(&error_) != 0; }
    [[nodiscard]] const char* name() const noexcept { return error_.name ? error_.name : ""; }
    [[nodiscard]] const char* message() const noexcept { return error_.message ? error_.message : ""; }

private:
    sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

}  // namespace codexvault::bench
