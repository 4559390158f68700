// Injections in the running daemon: a secret handed to one approved process as a descriptor, its
// inode tracked and the process marked by the eBPF monitor, and its life ended (untracked,
// unmarked, recorded) at its expiry, when its grant is revoked or expires, when the vault locks,
// when its recipient exits, or when a touch kills someone under on_touch = "kill".
// docs/injection.md says what this does and does not stop.
//
// Single-threaded, on the daemon's sd-event loop. Every injection, mark, inherited mark, touch,
// alert and close is an audit record whose object names the injection id.
#pragma once

#include <sys/types.h>
#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "daemon/inject/secret_descriptor.hpp"
#include "daemon/monitor/events.hpp"
#include "lib/auditcore/record.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "lib/sdbus/sd_ptr.hpp"
#include "policy/grant.hpp"

namespace codexvault::monitor {
class Monitor;
}
namespace codexvault::audit {
class AuditTrail;
}
namespace codexvault::identity {
struct Subject;
}

namespace codexvault::inject {

// What the daemon around the service answers for it (it knows grants, locks and the bus).
struct Hooks {
    // Why an injection under `grant_id` must end now ("grant revoked", "vault locked"), or nullopt.
    std::function<std::optional<std::string>(const std::string& grant_id)> why_end;
    // Revokes the grant (on_touch = "kill" fired) and records it; never throws.
    std::function<void(const std::string& grant_id, const std::string& reason)> revoke_grant;
    // Reads the monitor's waiting records (so marks inherited a moment ago are known).
    std::function<void()> drain_monitor;
    // Emits InjectionAlert(injection id, grant id, kind); may be empty.
    std::function<void(const std::string& injection_id, const std::string& grant_id, const std::string& kind)> alert;
};

struct InjectRequest {
    std::string secret;
    std::string grant_id;
    policy::InjectOptions options;
    std::optional<std::uint64_t> grant_expires_usec;
    std::optional<std::uint64_t> ttl_usec;  // the caller's shorter lifetime
    const identity::Subject* recipient = nullptr;
    std::string sender;  // bus name, for the records
    // An empty regular file of the recipient's uid on tmpfs, open for writing: the value is
    // written into it too and its inode tracked under the same mark; -1 for none.
    int file_fd = -1;
};

struct Injected {
    std::string id;  // "inj-<16 hex>"
    UniqueFd fd;     // a duplicate for the reply; the service keeps its own until the end
    DescriptorKind kind = DescriptorKind::SecretMemory;
    std::uint64_t expires_usec = 0;  // 0: no expiry (a policy grant without one, no ttl)
    std::uint64_t mark_id = 0;
};

class InjectionService {
public:
    static constexpr std::uint64_t kTerminateGraceUsec = 2'000'000;
    // Below the monitor's 1,024 tracked inodes, and a bounded share of the daemon's descriptors.
    static constexpr std::size_t kMaxInjections = 256;

    InjectionService(sd_event* event, audit::AuditTrail& audit, monitor::Monitor* monitor, Hooks hooks);
    InjectionService(const InjectionService&) = delete;
    InjectionService& operator=(const InjectionService&) = delete;
    ~InjectionService();

    // Null when injection cannot run: the reason ("the eBPF monitor is off: ..."), else nullopt.
    [[nodiscard]] std::optional<std::string> unavailable_reason() const;
    // Refuses every later Inject with `why` (the configuration turned injections off).
    void disable(std::string why) { disabled_ = std::move(why); }

    // Creates the descriptor, writes `value`, tracks its inode, marks the recipient (pinned by a
    // pidfd checked against its start time) and records it. Throws VaultError/system_error.
    Injected inject(const InjectRequest& request, std::span<const std::uint8_t> value);

    // A monitor record (called after MonitorService wrote its own record of it; exec records,
    // which are every exec on the machine, only matter for processes under a mark).
    void observe(const monitor::Event& event) noexcept;

    // Ends every injection (orderly stop, lock): recorded, untracked, unmarked.
    void close_all(const std::string& reason) noexcept;

    [[nodiscard]] std::size_t active() const noexcept { return injections_.size(); }

private:
    struct Injection {
        std::string id;
        std::uint64_t mark_id = 0;
        std::string secret;
        std::string grant_id;
        policy::InjectOptions options;
        SecretDescriptor descriptor;
        std::uint64_t expires_usec = 0;
        std::optional<std::pair<std::uint64_t, std::uint64_t>> file;  // (dev, ino) of a tracked file copy
    };
    // What the records said of one process under a mark: its start (with the pid, it names the
    // process) and the exe it runs now (the parent's at its fork, then each exec's).
    struct Member {
        std::uint64_t start_ticks = 0;
        std::string exe;
    };
    // The processes one recipient's mark reaches: the recipient and what inherited from it.
    struct MarkGroup {
        std::uint64_t id = 0;
        pid_t recipient = 0;
        UniqueFd pidfd;
        std::vector<pid_t> members;     // recipient first, then inherited marks seen
        std::map<pid_t, Member> known;  // the members alive as far as the records tell
        bool kill_on_touch = false;
        std::uint64_t sigkill_at_usec = 0;  // terminating: SIGKILL what is left then
    };

    static int on_tick(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    void tick() noexcept;
    void arm();
    MarkGroup& group_for(const InjectRequest& request, bool kill_on_touch);
    void close(const std::string& id, const std::string& reason, bool terminate) noexcept;
    void release_group(std::uint64_t mark_id) noexcept;
    void signal_group(MarkGroup& group, int signo) noexcept;
    Injection* by_inode(std::uint64_t dev, std::uint64_t ino) noexcept;
    std::vector<Injection*> by_mark(std::uint64_t mark_id) noexcept;
    void record(std::string_view action, std::string_view object, std::string_view reason, std::string_view grant,
                const identity::Subject* subject, bool informational,
                const audit::ProcessLink* process = nullptr) noexcept;
    void observe_mark(const monitor::MarkEvent& mark);
    void observe_exec(const monitor::ExecEvent& exec);

    sd_event* event_;
    audit::AuditTrail& audit_;
    monitor::Monitor* monitor_;
    std::optional<std::string> disabled_;  // set by disable()
    Hooks hooks_;
    std::map<std::string, Injection, std::less<>> injections_;
    std::map<std::uint64_t, MarkGroup> groups_;  // by mark id
    std::vector<MarkGroup> terminating_;         // ended groups waiting for SIGKILL
    struct Pending {
        std::string injection_id;
        std::string grant_id;
        std::string reason;
    };
    std::vector<Pending> pending_;  // kills seen while draining: revoked and closed in tick()
    bus::EventSourcePtr timer_;
};

}  // namespace codexvault::inject
