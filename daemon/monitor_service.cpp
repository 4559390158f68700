#include "daemon/monitor_service.hpp"

#include <sys/epoll.h>
#include <systemd/sd-bus.h>

#include <string>
#include <system_error>
#include <type_traits>
#include <variant>

#include "daemon/audit/audit_trail.hpp"
#include "daemon/identity/subject.hpp"
#include "lib/log/log.hpp"

namespace codexvault::daemon {
namespace {

// Routine records (execs) never wake the ring's fd; this timer drains them. Alerts wake it at
// once. 2 MiB of ring holds about 13,000 exec records, so 200 ms keeps up with 65,000 execs/s.
constexpr std::uint64_t kDrainIntervalUsec = 200'000;
constexpr std::uint64_t kDrainAccuracyUsec = 50'000;

void check(int r, const char* step)
{
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), step);
    }
}

std::string task_text(const monitor::Task& t)
{
    std::string text = "pid " + std::to_string(t.tgid);
    if (t.ns_tgid != t.tgid) {
        text += " (" + std::to_string(t.ns_tgid) + " in its pid namespace)";
    }
    text += ", parent " + std::to_string(t.ppid) + ", uid " + std::to_string(t.uid) + ", euid " +
            std::to_string(t.euid) + ", comm '" + t.comm + "'";
    return text;
}

// Who did it, as an audit subject: the uid is what folding keys on, so one user's exec storm
// folds into one record per window while another user's execs still show.
identity::Subject subject_of(const monitor::Task& t, const std::string& exe)
{
    identity::Subject s;
    s.uid = t.euid;
    s.pid = static_cast<pid_t>(t.tgid);
    s.start_time_ticks = t.start_ticks();
    s.exe = exe;
    s.exe_known = t.has_exe && !exe.empty();
    s.exe_device = t.exe_dev;
    s.exe_inode = t.exe_ino;
    return s;
}

// The bus daemon's own pid, which its driver reports for its own name; 0 when it does not (the
// connect-time check then walks this network namespace's unix sockets instead). A wrong answer
// can only make the check find nothing, which leaves exes unverified: the identity resolver
// confirms the choice by finding the daemon's own connection.
pid_t bus_daemon_pid(sd_bus* bus)
{
    if (bus == nullptr) {
        return 0;
    }
    bus::BusError error;
    sd_bus_message* raw = nullptr;
    const int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                     "GetConnectionUnixProcessID", error.get(), &raw, "s", "org.freedesktop.DBus");
    bus::MessagePtr reply(raw);
    std::uint32_t pid = 0;
    if (r < 0 || sd_bus_message_read(reply.get(), "u", &pid) < 0 || pid == 0) {
        log::info("eBPF monitor: the bus does not report its own pid (" +
                  (error.is_set() ? error.message() : std::string("no answer")) +
                  "): connections are checked among this network namespace's unix sockets");
        return 0;
    }
    return static_cast<pid_t>(pid);
}

}  // namespace

MonitorService::MonitorService(sd_event* event, sd_bus* bus, audit::AuditTrail& audit, bool enabled, bool syscall_hooks)
    : audit_(audit)
{
    if (!enabled) {
        mode_ = Mode::off;
        state_line_ = "off: monitor = false in the configuration";
    } else {
        monitor::Options options;
        // Injections track inodes and mark processes, which needs the per-syscall hooks. They
        // cost every syscall on the machine while attached (bpf/README.md, Cost), so they are
        // attached only while something is tracked or marked: the first injection attaches them
        // before its descriptor exists, the last one gone detaches them. `inject = false` in the
        // configuration does not even load them.
        options.syscall_hooks = syscall_hooks;
        has_syscall_hooks_ = syscall_hooks;
        // The connect-time credential check walks the bus daemon's descriptors: every connection,
        // from any network namespace (identity_resolver.hpp).
        options.bus_pid = bus_daemon_pid(bus);
        monitor::LoadResult loaded = monitor::Monitor::open_and_load(options);
        state_line_ = loaded.status.describe();
        if (loaded.monitor) {
            mode_ = Mode::recording;
            monitor_ = std::move(loaded.monitor);
        } else {
            mode_ = Mode::unavailable;
        }
    }
    if (monitor_) {
        sd_event_source* raw = nullptr;
        check(sd_event_add_io(event, &raw, monitor_->ring_fd(), EPOLLIN, &MonitorService::on_ring, this),
              "watch the monitor's ring buffer");
        ring_source_.reset(raw);
        raw = nullptr;
        check(sd_event_add_time_relative(event, &raw, CLOCK_MONOTONIC, kDrainIntervalUsec, kDrainAccuracyUsec,
                                         &MonitorService::on_timer, this),
              "arm the monitor's drain timer");
        timer_.reset(raw);
    }
    (void)audit_.record(audit::AuditRecord{.type = audit::EventType::Monitor,
                                           .action = "monitor.start",
                                           .object = "monitor",
                                           .subject = nullptr,
                                           .sender = "start-up",
                                           .decision = audit::Decision::None,
                                           .reason = state_line_,
                                           .grant = {},
                                           .informational = false});
    (mode_ == Mode::unavailable ? log::warning : log::info)("eBPF monitor " + state_line_);
}

MonitorService::~MonitorService() = default;

std::string MonitorService::state_line() const
{
    if (!monitor_ || !has_syscall_hooks_) {
        return state_line_;
    }
    if (!monitor_->syscall_hooks_attached()) {
        return state_line_ + "; syscall hooks detached (nothing tracked or marked)";
    }
    return state_line_ + "; syscall hooks attached (" + std::to_string(monitor_->gate_count()) + " tracked or marked)";
}

monitor::ExeHistory MonitorService::exe_history(pid_t pid, std::uint64_t start_ticks, std::uint64_t at_ns)
{
    if (!monitor_) {
        return {};
    }
    drain();
    return monitor_->exe_history(pid, start_ticks, at_ns);
}

monitor::PeerCheck MonitorService::connection_credentials(pid_t pid, std::uint64_t listener_dev,
                                                          std::uint64_t listener_ino)
{
    if (!monitor_) {
        monitor::PeerCheck check;
        check.detail = "the eBPF monitor is " + state_line_;
        return check;
    }
    return monitor_->check_peer_credentials(pid, listener_dev, listener_ino);
}

int MonitorService::on_ring(sd_event_source* /*source*/, int /*fd*/, std::uint32_t /*revents*/, void* userdata) noexcept
{
    static_cast<MonitorService*>(userdata)->drain();
    return 0;
}

int MonitorService::on_timer(sd_event_source* source, std::uint64_t /*usec*/, void* userdata) noexcept
{
    static_cast<MonitorService*>(userdata)->drain();
    if (sd_event_source_set_time_relative(source, kDrainIntervalUsec) < 0 ||
        sd_event_source_set_enabled(source, SD_EVENT_ONESHOT) < 0) {
        log::error("the eBPF monitor's drain timer could not be re-armed; records wait for an alert");
    }
    return 0;
}

void MonitorService::drain() noexcept
{
    if (!monitor_) {
        return;
    }
    // A record that cannot be written fails the audit log closed (every later call is refused),
    // like any other record the daemon cannot write.
    audit_.run_fail_closed("recording the eBPF monitor's events", [this] {
        monitor_->drain([this](const monitor::Event& event) noexcept {
            audit_.run_fail_closed("recording an eBPF monitor event", [&] { record(event); });
            // Exec records too: the injection service records the execs of marked processes.
            if (observer_) {
                observer_(event);
            }
        });
        record_losses();
    });
}

void MonitorService::record(const monitor::Event& event)
{
    // Exec records only feed the exe cache (Monitor::drain did that already). Written to the log
    // they would be every exec on the machine: even folded, one record and one count per user
    // per second of anyone's activity, mixed into the records of the vault's own decisions (the
    // audit tests that account for every record of a quiet vault fail with them). The log gets
    // them where they matter: as the exe of a caller's subject.
    if (std::holds_alternative<monitor::ExecEvent>(event)) {
        return;
    }
    std::visit(
        [this](const auto& e) {
            using T = std::decay_t<decltype(e)>;
            std::string action;
            std::string object;
            std::string reason;
            std::string exe;
            const monitor::Task* task = nullptr;
            if constexpr (std::is_same_v<T, monitor::ExecEvent>) {
                return;  // filtered above; kept so the visit stays exhaustive
            } else if constexpr (std::is_same_v<T, monitor::MarkEvent>) {
                task = &e.task;
                // A full marks map (overflow) is an alert: a child went unmarked.
                action = std::string(e.alert ? "monitor.alert.mark." : "monitor.mark.") +
                         std::string(monitor::to_string(e.change));
                object = "mark " + std::to_string(e.mark_id);
                reason = std::string(e.alert ? "ALERT " : "") + "mark " + std::string(monitor::to_string(e.change)) +
                         ": " + task_text(e.task) + ", parent " + std::to_string(e.parent_tgid);
            } else {
                task = &e.actor;
                // touch: a tracked inode was read or mapped; attempt: another process reached for a
                // marked one. Alerts (not the injection's own process) get their own prefix.
                action = std::string(e.alert ? "monitor.alert." : "monitor.") +
                         (e.is_attempt() ? "attempt." : "touch.") + std::string(monitor::to_string(e.kind));
                object = e.is_attempt() ? "process " + std::to_string(e.target_tgid)
                                        : "inode " + std::to_string(e.dev) + ":" + std::to_string(e.ino);
                reason = std::string(e.alert ? "ALERT " : "") + std::string(monitor::to_string(e.kind)) + " by " +
                         task_text(e.actor) + ", id " + std::to_string(e.id) + ", actor mark " +
                         std::to_string(e.actor_mark) + (e.killed ? ", killed" : "");
            }
            if (const auto known = monitor_->exe_of(static_cast<pid_t>(task->tgid), task->start_ticks())) {
                exe = known->path;
            }
            const identity::Subject subject = subject_of(*task, exe);
            // Every monitor record may fold: the kernel reports what any process on the machine
            // does, so one process must not be able to grow the log at the rate it makes syscalls.
            (void)audit_.record(audit::AuditRecord{.type = audit::EventType::Monitor,
                                                   .action = action,
                                                   .object = object,
                                                   .subject = &subject,
                                                   .sender = "monitor",
                                                   .decision = audit::Decision::None,
                                                   .reason = reason,
                                                   .grant = {},
                                                   .informational = true});
        },
        event);
}

void MonitorService::record_losses()
{
    const std::uint64_t lost = monitor_->lost_events();
    if (lost <= lost_reported_) {
        return;
    }
    // Recorded whether or not anything is tracked: a lost exec record makes the exe of every
    // process started before now unvouched for (identity treats it as unknown) until it execs
    // again. At most one record per drain, so a flood of losses cannot flood the log.
    const std::uint64_t tracked = monitor_->gate_count();
    const std::string reason =
        std::to_string(lost - lost_reported_) + " record(s) lost (ring buffer full), " + std::to_string(lost) +
        " since the monitor started; " +
        (tracked > 0 ? std::to_string(tracked) + " marks and tracked inodes live: touches and attempts may be missing"
                     : std::string("nothing tracked: exec records lost")) +
        "; exes of processes that have not exec'd since are unknown to identity";
    lost_reported_ = lost;
    (void)audit_.record(audit::AuditRecord{.type = audit::EventType::Monitor,
                                           .action = "monitor.lost",
                                           .object = "monitor",
                                           .subject = nullptr,
                                           .sender = "monitor",
                                           .decision = audit::Decision::None,
                                           .reason = reason,
                                           .grant = {},
                                           .informational = false});
}

}  // namespace codexvault::daemon
