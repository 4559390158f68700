// The eBPF monitor in the running daemon: loaded before the capability drop (it needs CAP_BPF and
// CAP_PERFMON, and maps cannot be created afterwards), drained on the event loop, its records
// written to the audit log, its state reported by Status.
//
// Fails soft: a kernel, unit or user that refuses BPF leaves the monitor `unavailable` with the
// reason the loader found (it asks before calling bpf(2), so a filtered bpf(2) cannot kill the
// daemon), and everything that does not need the monitor keeps working.
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "daemon/identity/exec_records.hpp"
#include "daemon/monitor/monitor.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::audit {
class AuditTrail;
}

namespace codexvault::daemon {

class MonitorService final : public identity::ExecRecords {
public:
    enum class Mode { off, unavailable, recording };

    // Loads and attaches unless `enabled` is false, and records the outcome in the audit log
    // (a `monitor.start` record; the caller syncs it). Throws only when the event loop refuses a
    // source, with the step named.
    // `syscall_hooks`: attach the per-syscall hooks injections need (they cost every syscall on
    // the host while attached, and cannot be attached after the capability drop).
    // `bus`: the daemon's bus connection, asked for the bus daemon's pid (the connect-time
    // credential check walks that process's descriptors); may be null.
    MonitorService(sd_event* event, sd_bus* bus, audit::AuditTrail& audit, bool enabled, bool syscall_hooks);
    MonitorService(const MonitorService&) = delete;
    MonitorService& operator=(const MonitorService&) = delete;
    ~MonitorService() override;

    [[nodiscard]] Mode mode() const noexcept { return mode_; }
    // "off: ...", "unavailable: REASON" or "recording (programs; BPF LSM ...; existing processes N)",
    // and while recording with the per-syscall hooks, whether they are attached now:
    // "; syscall hooks detached (nothing tracked or marked)" or "; syscall hooks attached (N
    // tracked or marked)".
    [[nodiscard]] std::string state_line() const;
    // Null unless recording.
    [[nodiscard]] monitor::Monitor* monitor() noexcept { return monitor_.get(); }

    // identity::ExecRecords: drains the ring first, so every exec before the caller's message is
    // in the cache. Nothing is known (an empty history) unless recording.
    monitor::ExeHistory exe_history(pid_t pid, std::uint64_t start_ticks, std::uint64_t at_ns) override;
    // identity::ExecRecords: the connect-time credential check; unavailable (with the state) unless
    // recording.
    monitor::PeerCheck connection_credentials(pid_t pid, std::uint64_t listener_dev,
                                              std::uint64_t listener_ino) override;

    // Injections (daemon/inject) see each record after it is written to the log, and every exec
    // record (which is not written); it must not throw or drain the monitor again.
    void set_observer(std::function<void(const monitor::Event&)> observer) { observer_ = std::move(observer); }

    // Reads every waiting record into the audit log. Also run by the event loop; an exe lookup
    // that needs the latest exec records may call it first.
    void drain() noexcept;

private:
    static int on_ring(sd_event_source* source, int fd, std::uint32_t revents, void* userdata) noexcept;
    static int on_timer(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    void record(const monitor::Event& event);
    void record_losses();

    audit::AuditTrail& audit_;
    Mode mode_ = Mode::off;
    std::string state_line_;
    bool has_syscall_hooks_ = false;
    std::unique_ptr<monitor::Monitor> monitor_;
    std::uint64_t lost_reported_ = 0;
    bus::EventSourcePtr ring_source_;
    bus::EventSourcePtr timer_;
    std::function<void(const monitor::Event&)> observer_;
};

}  // namespace codexvault::daemon
