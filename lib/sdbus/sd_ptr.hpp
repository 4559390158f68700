// Owning pointers for sd-bus and sd-event objects: every reference taken is dropped here.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <memory>

namespace codexvault::bus {

struct BusUnref {
    void operator()(sd_bus* bus) const noexcept { sd_bus_flush_close_unref(bus); }
};
struct MessageUnref {
    void operator()(sd_bus_message* message) const noexcept { sd_bus_message_unref(message); }
};
struct SlotUnref {
    void operator()(sd_bus_slot* slot) const noexcept { sd_bus_slot_unref(slot); }
};
struct EventUnref {
    void operator()(sd_event* event) const noexcept { sd_event_unref(event); }
};
struct EventSourceUnref {
    void operator()(sd_event_source* source) const noexcept { sd_event_source_disable_unref(source); }
};

using BusPtr = std::unique_ptr<sd_bus, BusUnref>;
using MessagePtr = std::unique_ptr<sd_bus_message, MessageUnref>;
using SlotPtr = std::unique_ptr<sd_bus_slot, SlotUnref>;
using EventPtr = std::unique_ptr<sd_event, EventUnref>;
using EventSourcePtr = std::unique_ptr<sd_event_source, EventSourceUnref>;

// sd_bus_error owns heap strings once set; this frees them on scope exit.
class BusError {
public:
    BusError() = default;
    BusError(const BusError&) = delete;
    BusError& operator=(const BusError&) = delete;
    ~BusError() { sd_bus_error_free(&error_); }
    sd_bus_error* get() noexcept { return &error_; }
    [[nodiscard]] const char* name() const noexcept { return error_.name ? error_.name : ""; }
    [[nodiscard]] const char* message() const noexcept { return error_.message ? error_.message : ""; }
    [[nodiscard]] bool is_set() const noexcept { return sd_bus_error_is_set(&error_) != 0; }

private:
    sd_bus_error error_ = SD_BUS_ERROR_NULL;
};

}  // namespace codexvault::bus
