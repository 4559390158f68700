// sd-bus pieces shared by the bus benchmark programs: the no-op baseline server's names (served by
// noop_server, called by bus_bench) and owning pointers for sd-bus objects.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <memory>

#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::bench {

inline constexpr const char* kNoopName = "org.codexvault.BenchNoop";
inline constexpr const char* kNoopPath = "/org/codexvault/BenchNoop";
inline constexpr const char* kNoopInterface = "org.codexvault.BenchNoop";
inline constexpr const char* kNoopMethod = "Nop";
inline constexpr const char* kPeerInterface = "org.freedesktop.DBus.Peer";

// The project's owning pointers (lib/sdbus), under the names the bench programs use.
using bus::BusPtr;
using bus::EventPtr;
using bus::MessagePtr;
using bus::SlotPtr;
using SourcePtr = bus::EventSourcePtr;

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
