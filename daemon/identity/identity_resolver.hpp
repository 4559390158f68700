// Resolves the sender of a bus message to a Subject, pinned by a pidfd.
//
// The bus driver's peer credentials (uid, pid; ProcessFD where the bus offers it) are fixed for
// a connection's life, so they are fetched once per unique name, confirmed against /proc when
// the pid is pinned, and cached with the rest of the subject until the name disappears.
//
// Every call checks that the pinned process is still alive. A call that authorizes on identity
// (Freshness::Reread) re-reads uid, exe and cgroup through the pinned /proc entry, so a process
// that changed uid since it connected is refused and exe/unit are current. Public informational
// calls, which grant nothing, are answered from the subject confirmed at pin time.
#pragma once

#include <systemd/sd-bus.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "daemon/identity/exe_digest.hpp"
#include "daemon/identity/proc_entry.hpp"
#include "daemon/identity/subject.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::identity {

// The caller cannot be identified or pinned; the request must be denied.
class IdentityError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

class IdentityResolver {
public:
    static constexpr std::size_t kMaxCachedPeers = 1024;

    // Subscribes to NameOwnerChanged on `bus` to drop departed peers.
    explicit IdentityResolver(sd_bus* bus);
    IdentityResolver(const IdentityResolver&) = delete;
    IdentityResolver& operator=(const IdentityResolver&) = delete;

    // `dispatch_boottime_ticks`: CLOCK_BOOTTIME in clock ticks, taken when dispatch of this
    // message began; a process that started later cannot have sent it (pid reuse).
    enum class Freshness { Pinned, Reread };
    Subject resolve(sd_bus_message* message, std::uint64_t dispatch_boottime_ticks, Freshness freshness);

    void forget(const std::string& unique_name) { peers_.erase(unique_name); }
    [[nodiscard]] std::size_t cached_peers() const noexcept { return peers_.size(); }

private:
    struct Peer {
        uid_t bus_uid = 0;
        pid_t pid = 0;
        UniqueFd pidfd;
        std::unique_ptr<ProcEntry> proc;
        Subject subject;  // as confirmed at pin time or by the last re-read
    };

    // Reads uid (which must still be the bus's), gid, groups, exe and cgroup into peer.subject.
    void reread(Peer& peer);

    Peer pin_peer(const std::string& unique_name, std::uint64_t dispatch_boottime_ticks);
    static int on_name_owner_changed(sd_bus_message* message, void* userdata, sd_bus_error* error) noexcept;

    sd_bus* bus_;
    bus::SlotPtr name_owner_changed_;
    std::unordered_map<std::string, Peer> peers_;
    ExeDigestCache exe_digests_;
};

// What the kernel says about the process behind `proc` (ids from `status`, exe and its digest,
// cgroup, unit), read into `subject`. The exe is unknown when the daemon may not read it.
void read_process(const ProcEntry& proc, const ProcStatus& status, ExeDigestCache& digests, Subject& subject);

// CLOCK_BOOTTIME in the clock ticks /proc/PID/stat uses.
std::uint64_t boottime_ticks_now();

}  // namespace codexvault::identity
