// Resolves the sender of a bus message to a Subject, pinned by a pidfd.
//
// The bus driver's peer credentials (uid, pid; ProcessFD where the bus offers it) are fixed for
// a connection's life, so they are fetched once per unique name, confirmed against /proc when
// the pid is pinned, and cached with the rest of the subject until the name disappears.
//
// At the first pin the kernel is asked whether the process still holds the credentials it made
// its bus connection with (connect_check.hpp): an exec since connecting refuses the name for good,
// however late the daemon noticed the connection; when the kernel cannot say, the exe is unknown.
//
// A unique name is pinned at most once. The resolver records when each unique name appeared on
// the bus (NameOwnerChanged; names already there when it subscribed get the subscription time),
// and a process that started after that moment cannot be the one that connected: its pid was
// reused, and the name is refused. A name whose pinned process has died is remembered as dead
// and refused until the bus says it is gone, so a reused pid never inherits a connection.
//
// Every call checks that the pinned process is still alive. A call that authorizes on identity
// (Freshness::Reread) re-reads uid, exe and cgroup through the pinned /proc entry, so a process
// that changed uid since it connected is refused and the unit is current; a process whose
// executable (device, inode) differs from the one seen at its first pin is refused too (it
// exec'd another program on a connection it kept). Public informational calls, which grant
// nothing, are answered from the subject confirmed at pin time.
//
// Each pinned caller holds four descriptors (pidfd, /proc/PID, its status and cgroup: kept open
// because re-reading them from offset 0 is fresh and cheaper than opening them per call, see
// proc_entry.hpp). Their number is bounded well
// below RLIMIT_NOFILE; when the bound is reached, a new caller's authorizing calls are refused
// (CallerLimitError) and its informational calls are answered from a pin released at once.
#pragma once

#include <sys/resource.h>
#include <systemd/sd-bus.h>

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <unordered_map>

#include "daemon/identity/exe_digest.hpp"
#include "daemon/identity/exec_records.hpp"
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

// The daemon has no room to pin another caller now (the pinned-caller bound, or the descriptor
// limit, is reached). Not a verdict on the caller: the request is refused as unavailable.
class CallerLimitError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// How many callers may be pinned under a soft RLIMIT_NOFILE of `soft_limit`: each takes
// kFdsPerPeer descriptors, and a reserve (a quarter of the limit, at least kMinReservedFds) is
// kept for the audit log, state writes, the bus, the event loop and the transient reads of
// /proc and of executables.
struct PinCapacity {
    static constexpr std::size_t kFdsPerPeer = 1 + ProcEntry::kDescriptors;  // the pidfd and the entry
    static constexpr std::size_t kMinReservedFds = 128;
    static constexpr std::size_t kMaxPinnedPeers = 4096;  // bounds memory whatever the limit
    std::size_t reserved_fds = 0;
    std::size_t max_pinned = 0;
};
PinCapacity pin_capacity(rlim_t soft_limit) noexcept;

// Whether read_process reads the executable, or leaves the subject's exe fields as they are.
enum class ExeRead { Read, Skip };
// Whether read_process reads the cgroup, or keeps the subject's (the process is known to be in
// the cgroup that path names).
enum class CgroupRead { Read, Keep };
// Whether a re-read reads the caller's supplementary groups (its /proc status), or keeps the ones
// read before and takes uid and gid from PIDFD_GET_INFO. Keep only while no grant has a gid
// condition (policy::Engine::matches_groups): then no decision looks at the groups.
enum class GroupsRead { Read, Keep };

class IdentityResolver {
public:
    // Unique names the resolver tracks at once; the bus's own connection limit (2,048 on a
    // default system bus) keeps it far below this.
    static constexpr std::size_t kMaxTrackedNames = 65536;

    // Subscribes to NameOwnerChanged on `bus` and lists the names already on it (a synchronous
    // call: construct before the event loop runs). The pin bound comes from RLIMIT_NOFILE now:
    // construct before the syscall filter, which does not allow reading it later.
    // `exec_records` (the eBPF monitor, or null when it is not recording) supplies the exe of a
    // caller whose /proc/PID/exe is closed to the daemon, and judges every caller by the exe its
    // process had when its connection appeared (exe_from_records.hpp). Must outlive the resolver.
    explicit IdentityResolver(sd_bus* bus, ExecRecords* exec_records = nullptr);
    IdentityResolver(const IdentityResolver&) = delete;
    IdentityResolver& operator=(const IdentityResolver&) = delete;

    // `dispatch_boottime_ticks`: CLOCK_BOOTTIME in clock ticks, taken when dispatch of this
    // message began; a process that started later cannot have sent it (pid reuse).
    enum class Freshness { Pinned, Reread };
    // With Freshness::Reread, `groups` says whether the supplementary groups are read again (the
    // uid check, the exe and the cgroup are fresh either way). The first pin always reads them.
    Subject resolve(sd_bus_message* message, std::uint64_t dispatch_boottime_ticks, Freshness freshness,
                    GroupsRead groups = GroupsRead::Read);

    // NameOwnerChanged: a unique name appeared (at CLOCK_BOOTTIME `boottime_ns`) or is gone.
    void name_appeared(const std::string& unique_name, std::uint64_t boottime_ns);
    void forget(const std::string& unique_name);

    [[nodiscard]] std::size_t cached_peers() const noexcept { return pinned_; }
    [[nodiscard]] std::size_t max_cached_peers() const noexcept { return capacity_.max_pinned; }

private:
    struct Peer {
        uid_t bus_uid = 0;
        pid_t pid = 0;
        UniqueFd pidfd;
        std::unique_ptr<ProcEntry> proc;
        Subject subject;  // as confirmed at pin time or by the last successful re-read
        // The cgroup id (PIDFD_GET_INFO) subject.cgroup was read under: the same id on a later
        // call means the same cgroup, whose path cannot change. 0: unknown, read the file.
        std::uint64_t cgroup_id = 0;
    };
    // One unique name on the bus, from its appearance until NameOwnerChanged removes it.
    struct NameRecord {
        std::uint64_t appeared_ticks = 0;  // a process started later is not the one that connected
        std::uint64_t appeared_ns = 0;     // the same moment in CLOCK_BOOTTIME ns: its exe then counts
        std::unique_ptr<Peer> peer;        // the pinned caller; null until its first call
        std::string refusal;               // non-empty: its process is gone; refused for good
    };

    // Reads uid (which must still be the bus's), gid, groups (unless kept), exe (unless skipped)
    // and cgroup into `subject` (which starts as a copy of peer.subject). Returns the cgroup id to
    // keep with `subject` (Peer::cgroup_id) once it is accepted.
    std::uint64_t read_peer(const Peer& peer, Subject& subject, ExeRead exe_read, GroupsRead groups);
    // Re-reads a pinned peer; its subject changes only if the process still is what was pinned.
    void reread(NameRecord& record, GroupsRead groups);
    Peer pin_peer(const std::string& unique_name, NameRecord& record, std::uint64_t dispatch_boottime_ticks);
    [[noreturn]] void retire(NameRecord& record, const std::string& reason);
    void seed_existing_names();
    // The bus's listening socket (st_dev, st_ino), found through the daemon's own connection, for
    // the connect-time check; on failure listener_error_ says why and every check is unverified.
    void find_bus_listener();
    monitor::PeerCheck check_connection(pid_t pid);
    static int on_name_owner_changed(sd_bus_message* message, void* userdata, sd_bus_error* error) noexcept;

    sd_bus* bus_;
    ExecRecords* exec_records_;
    bus::SlotPtr name_owner_changed_;
    std::uint64_t subscribed_ns_ = 0;
    std::unordered_map<std::string, NameRecord> names_;
    std::size_t pinned_ = 0;  // records holding a Peer (two descriptors each)
    PinCapacity capacity_;
    bool warned_untracked_ = false;
    std::uint64_t listener_dev_ = 0;
    std::uint64_t listener_ino_ = 0;
    std::string listener_error_;
    ExeDigestCache exe_digests_;
};

// What the kernel says about the process behind `proc` (ids from `status`, exe and its digest,
// cgroup, units), read into `subject`. The exe is unknown when the daemon may not read it. The
// units are derived again only when the cgroup differs from `subject.cgroup` (whose units
// `subject` must then hold, as every subject read here does).
void read_process(const ProcEntry& proc, const ProcStatus& status, ExeDigestCache& digests, Subject& subject,
                  ExeRead exe_read = ExeRead::Read, CgroupRead cgroup_read = CgroupRead::Read);
// The executable behind `proc` (path, device, inode, digest) into `subject`; unknown when the
// daemon may not read it. The file is opened only to hash a version not seen before.
void read_exe(const ProcEntry& proc, ExeDigestCache& digests, Subject& subject);

// CLOCK_BOOTTIME in the clock ticks /proc/PID/stat uses.
std::uint64_t boottime_ticks_now();
// CLOCK_BOOTTIME in nanoseconds (the clock of the monitor's records), and in ticks.
std::uint64_t boottime_ns_now();
std::uint64_t boottime_ns_to_ticks(std::uint64_t ns);

}  // namespace codexvault::identity
