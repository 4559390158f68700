#include "daemon/identity/identity_resolver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <system_error>
#include <vector>

#include "daemon/identity/connect_check.hpp"
#include "daemon/identity/exe_from_records.hpp"
#include "daemon/identity/pidfd_info.hpp"
#include "lib/log/log.hpp"

namespace codexvault::identity {
namespace {

struct BusCredentials {
    uid_t uid = 0;
    pid_t pid = 0;
    bool have_uid = false;
    bool have_pid = false;
    UniqueFd process_fd;  // only from buses that offer ProcessFD
};

BusCredentials query_bus_credentials(sd_bus* bus, const std::string& unique_name)
{
    bus::BusError error;
    sd_bus_message* raw_reply = nullptr;
    int r = sd_bus_call_method(bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "GetConnectionCredentials", error.get(), &raw_reply, "s", unique_name.c_str());
    bus::MessagePtr reply(raw_reply);
    if (r < 0) {
        throw IdentityError("bus driver did not report credentials for " + unique_name + ": " +
                            (error.is_set() ? error.message() : std::strerror(-r)));
    }
    BusCredentials creds;
    auto fail = [&](int code) {
        return IdentityError("malformed credentials reply for " + unique_name + ": " + std::strerror(-code));
    };
    if ((r = sd_bus_message_enter_container(reply.get(), 'a', "{sv}")) < 0) {
        throw fail(r);
    }
    while ((r = sd_bus_message_enter_container(reply.get(), 'e', "sv")) > 0) {
        const char* key = nullptr;
        if ((r = sd_bus_message_read(reply.get(), "s", &key)) < 0) {
            throw fail(r);
        }
        const std::string_view name(key);
        if (name == "UnixUserID") {
            std::uint32_t uid = 0;
            if ((r = sd_bus_message_read(reply.get(), "v", "u", &uid)) < 0) {
                throw fail(r);
            }
            creds.uid = uid;
            creds.have_uid = true;
        } else if (name == "ProcessID") {
            std::uint32_t pid = 0;
            if ((r = sd_bus_message_read(reply.get(), "v", "u", &pid)) < 0) {
                throw fail(r);
            }
            creds.pid = static_cast<pid_t>(pid);
            creds.have_pid = pid > 0;
        } else if (name == "ProcessFD") {
            int fd = -1;
            if ((r = sd_bus_message_read(reply.get(), "v", "h", &fd)) < 0) {
                throw fail(r);
            }
            creds.process_fd.reset(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
        } else if ((r = sd_bus_message_skip(reply.get(), "v")) < 0) {
            throw fail(r);
        }
        if ((r = sd_bus_message_exit_container(reply.get())) < 0) {
            throw fail(r);
        }
    }
    if (r < 0) {
        throw fail(r);
    }
    if (!creds.have_uid || !creds.have_pid) {
        throw IdentityError("bus driver reported no uid or pid for " + unique_name);
    }
    return creds;
}

// A pidfd polls readable once its process has exited.
bool process_alive(int pidfd)
{
    struct pollfd pfd {
        pidfd, POLLIN, 0
    };
    for (;;) {
        const int r = ::poll(&pfd, 1, 0);
        if (r < 0 && errno == EINTR) {
            continue;
        }
        return r == 0;
    }
}

// The bus recorded the uid at connect time; a process whose effective uid differs now is no
// longer the peer the bus vouched for.
void require_bus_uid(const ProcStatus& status, uid_t bus_uid, pid_t pid)
{
    if (status.effective_uid != bus_uid) {
        throw IdentityError("caller pid " + std::to_string(pid) + " runs as uid " +
                            std::to_string(status.effective_uid) + " but connected as uid " + std::to_string(bus_uid));
    }
}

bool out_of_descriptors(int error) noexcept
{
    return error == EMFILE || error == ENFILE;
}

CallerLimitError no_descriptor_left(pid_t pid)
{
    return CallerLimitError("too many callers: no file descriptor left to pin caller pid " + std::to_string(pid) +
                            "; try again later");
}

std::string describe(pid_t pid, const std::string& unique_name)
{
    return "caller pid " + std::to_string(pid) + " (connection " + unique_name + ")";
}

// The executable seen at the first pin is the caller's for the connection's life: a process
// that exec'd another program kept a connection made by the previous one (sd-bus connections
// are close-on-exec, so that takes intent), and must not be judged by the program it runs now.
// An exe that was unknown at the pin stays unknown: exe conditions keep failing closed.
void keep_pinned_exe(const Subject& pinned, Subject& fresh)
{
    if (!pinned.exe_known) {
        forget_exe(fresh);
        return;
    }
    if (!fresh.exe_known || fresh.exe_device != pinned.exe_device || fresh.exe_inode != pinned.exe_inode) {
        throw IdentityError(describe(pinned.pid, pinned.bus_name) + " runs another executable (" +
                            (fresh.exe_known ? fresh.exe : std::string("unreadable")) + ") than when it was pinned (" +
                            pinned.exe + "): a connection kept across exec is not trusted; reconnect");
    }
}

}  // namespace

PinCapacity pin_capacity(rlim_t soft_limit) noexcept
{
    PinCapacity capacity;
    const rlim_t reserved = std::max<rlim_t>(PinCapacity::kMinReservedFds, soft_limit / 4);
    capacity.reserved_fds = static_cast<std::size_t>(reserved);
    if (soft_limit > reserved) {
        capacity.max_pinned = static_cast<std::size_t>(
            std::min<rlim_t>(PinCapacity::kMaxPinnedPeers, (soft_limit - reserved) / PinCapacity::kFdsPerPeer));
    }
    return capacity;
}

std::uint64_t boottime_ticks_now()
{
    struct timespec ts {};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    static const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
    return static_cast<std::uint64_t>(ts.tv_sec) * static_cast<std::uint64_t>(ticks_per_second) +
           static_cast<std::uint64_t>(ts.tv_nsec) / (1000000000ULL / static_cast<std::uint64_t>(ticks_per_second));
}

std::uint64_t boottime_ns_now()
{
    struct timespec ts {};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000000ULL + static_cast<std::uint64_t>(ts.tv_nsec);
}

std::uint64_t boottime_ns_to_ticks(std::uint64_t ns)
{
    static const auto ticks_per_second = static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK));
    return ns / (1000000000ULL / ticks_per_second);
}

IdentityResolver::IdentityResolver(sd_bus* bus, ExecRecords* exec_records) : bus_(bus), exec_records_(exec_records)
{
    struct rlimit limit {};
    if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) {
        throw std::system_error(errno, std::generic_category(), "read RLIMIT_NOFILE");
    }
    capacity_ = pin_capacity(limit.rlim_cur);
    const std::string bound = "up to " + std::to_string(capacity_.max_pinned) +
                              " callers pinned at once (RLIMIT_NOFILE soft limit " + std::to_string(limit.rlim_cur) +
                              ", " + std::to_string(capacity_.reserved_fds) + " descriptors reserved)";
    if (capacity_.max_pinned == 0) {
        log::warning("identity: " + bound + ": every authorizing call will be refused; raise LimitNOFILE=");
    } else {
        log::info("identity: " + bound);
    }

    sd_bus_slot* slot = nullptr;
    // Synchronous AddMatch: once it returns, every name that appears is signalled to us, and the
    // bus delivers that signal before any message the new name sends.
    const int r = sd_bus_match_signal(bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", &on_name_owner_changed, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "subscribe to NameOwnerChanged");
    }
    name_owner_changed_.reset(slot);
    subscribed_ns_ = boottime_ns_now();
    seed_existing_names();
    find_bus_listener();
}

// The daemon's own connection's peer is a socket the bus accepted, which shares the listener's
// path; the inode that path names is what the connect-time check picks the bus's connections by.
// The daemon's own connection must then be among them, which proves the inode is the listener's
// (a path that means another file in this mount namespace would find nothing).
void IdentityResolver::find_bus_listener()
{
    if (exec_records_ == nullptr) {
        listener_error_ = "the eBPF monitor is not recording";
        return;
    }
    const int fd = sd_bus_get_fd(bus_);
    sockaddr_un addr{};
    socklen_t len = sizeof(addr);
    if (fd < 0 || ::getpeername(fd, reinterpret_cast<sockaddr*>(&addr), &len) != 0 || addr.sun_family != AF_UNIX) {
        listener_error_ = "the bus connection is not a unix socket with a peer address";
    } else if (len <= offsetof(sockaddr_un, sun_path) || addr.sun_path[0] == '\0') {
        listener_error_ = "the bus listens on an abstract or unnamed socket: no inode to find its connections by";
    } else {
        const std::string path(addr.sun_path, strnlen(addr.sun_path, sizeof(addr.sun_path)));
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0 || !S_ISSOCK(st.st_mode)) {
            listener_error_ = "the bus socket " + path + " cannot be stat'ed as a socket here";
        } else {
            listener_dev_ = st.st_dev;
            listener_ino_ = st.st_ino;
            const monitor::PeerCheck self = exec_records_->connection_credentials(::getpid(), st.st_dev, st.st_ino);
            if (self.verdict == monitor::PeerCredentials::unavailable) {
                listener_error_ = self.detail;
            } else if (self.connections == 0) {
                listener_error_ = "the daemon's own bus connection is not among the sockets accepted from " + path;
            }
        }
    }
    if (listener_error_.empty()) {
        log::info("identity: connect-time credentials checked by the kernel at each caller's first pin");
    } else {
        log::warning("identity: connect-time credentials cannot be checked (" + listener_error_ +
                     "): every caller's exe is unknown, and exe principals fail closed");
    }
}

monitor::PeerCheck IdentityResolver::check_connection(pid_t pid)
{
    if (!listener_error_.empty()) {
        monitor::PeerCheck check;
        check.detail = listener_error_;
        return check;
    }
    return exec_records_->connection_credentials(pid, listener_dev_, listener_ino_);
}

// Names already on the bus appeared at some unknown moment before the subscription; the
// subscription time is the tightest bound the daemon can vouch for.
void IdentityResolver::seed_existing_names()
{
    bus::BusError error;
    sd_bus_message* raw_reply = nullptr;
    int r = sd_bus_call_method(bus_, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                               "ListNames", error.get(), &raw_reply, "");
    bus::MessagePtr reply(raw_reply);
    if (r < 0) {
        const std::string detail = error.is_set() ? std::string(": ") + error.message() : std::string();
        throw std::system_error(-r, std::generic_category(), "list the names on the bus" + detail);
    }
    if ((r = sd_bus_message_enter_container(reply.get(), 'a', "s")) < 0) {
        throw std::system_error(-r, std::generic_category(), "read the names on the bus");
    }
    const char* name = nullptr;
    while ((r = sd_bus_message_read(reply.get(), "s", &name)) > 0) {
        if (name[0] == ':') {
            name_appeared(name, subscribed_ns_);
        }
    }
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "read the names on the bus");
    }
}

int IdentityResolver::on_name_owner_changed(sd_bus_message* message, void* userdata, sd_bus_error* /*error*/) noexcept
{
    const char* name = nullptr;
    const char* old_owner = nullptr;
    const char* new_owner = nullptr;
    if (sd_bus_message_read(message, "sss", &name, &old_owner, &new_owner) < 0) {
        return 0;  // a malformed signal from the driver changes nothing we hold
    }
    if (name[0] != ':') {
        return 0;  // well-known names are not callers
    }
    auto* self = static_cast<IdentityResolver*>(userdata);
    try {
        if (new_owner[0] == '\0') {
            self->forget(name);
        } else if (old_owner[0] == '\0') {
            self->name_appeared(name, boottime_ns_now());
        }
    } catch (...) {
        // Out of memory: a name not recorded is refused when it calls (fail closed).
        return 0;
    }
    return 0;
}

void IdentityResolver::name_appeared(const std::string& unique_name, std::uint64_t boottime_ns)
{
    if (names_.size() >= kMaxTrackedNames && names_.find(unique_name) == names_.end()) {
        if (!warned_untracked_) {
            log::warning("identity: more than " + std::to_string(kMaxTrackedNames) +
                         " connections on the bus; callers not tracked are refused");
            warned_untracked_ = true;
        }
        return;
    }
    // A name listed at start-up and then signalled keeps the earlier (stricter) bound.
    const auto [it, inserted] = names_.try_emplace(unique_name);
    if (inserted) {
        it->second.appeared_ticks = boottime_ns_to_ticks(boottime_ns);
        it->second.appeared_ns = boottime_ns;
    }
}

void IdentityResolver::forget(const std::string& unique_name)
{
    const auto it = names_.find(unique_name);
    if (it == names_.end()) {
        return;
    }
    if (it->second.peer) {
        --pinned_;
    }
    names_.erase(it);
}

void IdentityResolver::retire(NameRecord& record, const std::string& reason)
{
    if (record.peer) {
        record.peer.reset();  // closes its descriptors
        --pinned_;
    }
    record.refusal = reason + "; the connection is refused until it disconnects";
    throw IdentityError(record.refusal);
}

// The cgroup file is the dearer half of a re-read (the kernel renders the path under a global
// lock); the cgroup id from PIDFD_GET_INFO is cheap. cgroup v2 directories cannot be renamed and
// their ids are not reused, so while the id is the one the kept path was read under, the path is
// current and the file is not read. A path is kept with an id only when the same id was seen
// before and after reading it. (Should the process have been moved out and back in between, the
// path kept is one of a cgroup the process was in a moment ago: moving it there took the same
// rights as leaving it there, so no identity is gained that could not be had anyway.)
//
// The same ioctl reports the uids and gids, but not the supplementary groups. While no grant has a
// gid condition (GroupsRead::Keep) no decision looks at the groups, so `status` (rendered whole by
// the kernel on every read: the dearest part of a re-read) is skipped and the groups read before
// are kept; the uid check is made on the ioctl's effective uid, as fresh as the file's.
std::uint64_t IdentityResolver::read_peer(const Peer& peer, Subject& subject, ExeRead exe_read, GroupsRead groups)
{
    const std::optional<PidfdFacts> facts = pidfd_facts(peer.pidfd.get());
    ProcStatus status;
    if (groups == GroupsRead::Keep && facts) {
        status.real_uid = facts->real_uid;
        status.effective_uid = facts->effective_uid;
        status.effective_gid = facts->effective_gid;
        status.groups = subject.groups;
    } else {
        status = peer.proc->status();
    }
    require_bus_uid(status, peer.bus_uid, peer.pid);
    // 0: unknown (cgroup ids start at 1), so the file is read.
    const std::uint64_t before = facts ? facts->cgroup_id.value_or(0) : 0;
    const bool same_cgroup = before != 0 && before == peer.cgroup_id && !subject.cgroup.empty();
    read_process(*peer.proc, status, exe_digests_, subject, exe_read,
                 same_cgroup ? CgroupRead::Keep : CgroupRead::Read);
    if (same_cgroup) {
        return peer.cgroup_id;
    }
    if (before == 0 || subject.cgroup.empty()) {
        return 0;
    }
    return cgroup_id_of(peer.pidfd.get()) == before ? before : 0;
}

void read_process(const ProcEntry& proc, const ProcStatus& status, ExeDigestCache& digests, Subject& subject,
                  ExeRead exe_read, CgroupRead cgroup_read)
{
    subject.uid = status.effective_uid;
    subject.gid = status.effective_gid;
    subject.groups = status.groups;
    if (exe_read == ExeRead::Read) {
        read_exe(proc, digests, subject);
    }
    if (cgroup_read == CgroupRead::Keep) {
        return;
    }
    std::string cgroup = proc.cgroup();
    // The units are derived from the cgroup alone: the same path names the same units.
    if (cgroup != subject.cgroup || subject.cgroup.empty()) {
        CgroupUnits units = units_from_cgroup(cgroup);
        subject.cgroup = std::move(cgroup);
        subject.unit = std::move(units.unit);
        subject.user_manager_uid = units.user_manager_uid;
        subject.user_unit = std::move(units.user_unit);
    }
}

void read_exe(const ProcEntry& proc, ExeDigestCache& digests, Subject& subject)
{
    auto exe = proc.exe();
    if (!exe) {
        forget_exe(subject);
        return;
    }
    subject.exe = std::move(exe->path);
    subject.exe_known = true;
    subject.exe_source = ExeSource::proc;
    subject.exe_device = exe->device;
    subject.exe_inode = exe->inode;
    if (auto known = digests.cached(exe->file)) {
        subject.exe_sha256 = std::move(*known);
        return;
    }
    const UniqueFd exe_file = proc.open_exe();
    subject.exe_sha256 =
        exe_file ? digests.digest(exe_file.get(), subject.exe_device, subject.exe_inode).value_or("") : std::string();
}

IdentityResolver::Peer IdentityResolver::pin_peer(const std::string& unique_name, NameRecord& record,
                                                  std::uint64_t dispatch_boottime_ticks)
{
    BusCredentials creds = query_bus_credentials(bus_, unique_name);
    const std::string who = describe(creds.pid, unique_name);
    Peer peer;
    peer.bus_uid = creds.uid;
    peer.pid = creds.pid;
    peer.subject.bus_name = unique_name;
    peer.subject.pid = creds.pid;
    if (creds.process_fd) {
        peer.pidfd = std::move(creds.process_fd);
    } else {
        peer.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, creds.pid, 0)));
        if (!peer.pidfd) {
            const int error = errno;
            if (out_of_descriptors(error)) {
                throw no_descriptor_left(creds.pid);
            }
            if (error == ESRCH) {
                retire(record, who + " exited before it could be pinned");  // nothing lives on its pid
            }
            throw IdentityError("cannot pin " + who + ": " + std::strerror(error));
        }
    }
    // The process on the pid now is the one that connected only if it is older than the name;
    // otherwise the connector has died and its pid was reused: the name has lost its process.
    const std::uint64_t bound = std::min(record.appeared_ticks, dispatch_boottime_ticks);
    try {
        peer.proc = std::make_unique<ProcEntry>(creds.pid);
        peer.subject.start_time_ticks = peer.proc->start_time();
        if (peer.subject.start_time_ticks > bound) {
            retire(record, who + " started after the connection appeared on the bus: its pid was reused");
        }
        peer.cgroup_id = read_peer(peer, peer.subject, ExeRead::Read, GroupsRead::Read);
        if (exec_records_ != nullptr) {
            if (auto refusal = exe_at_connection(*exec_records_, exe_digests_, record.appeared_ns, peer.subject)) {
                retire(record, *refusal);
            }
        }
        // After the exe was read: "same" now means no exec came between the connect and that read.
        if (auto refusal = apply_connect_check(check_connection(creds.pid), peer.subject)) {
            retire(record, *refusal);
        }
    } catch (const IdentityError&) {
        throw;
    } catch (const std::system_error& e) {
        if (out_of_descriptors(e.code().value())) {
            throw no_descriptor_left(creds.pid);
        }
        if (!process_alive(peer.pidfd.get())) {
            retire(record, who + " exited before it could be pinned");
        }
        throw IdentityError("cannot read " + who + ": " + e.what());
    } catch (const std::exception& e) {
        if (!process_alive(peer.pidfd.get())) {
            retire(record, who + " exited before it could be pinned");
        }
        throw IdentityError("cannot read " + who + ": " + e.what());
    }
    // The /proc entry was opened after the pidfd: if the pinned process is still alive now, the
    // entry is that process's.
    if (!process_alive(peer.pidfd.get())) {
        retire(record, who + " exited before it could be pinned");
    }
    return peer;
}

void IdentityResolver::reread(NameRecord& record, GroupsRead groups)
{
    Peer& peer = *record.peer;
    auto who = [&] {
        return describe(peer.pid, peer.subject.bus_name);
    };
    // An exe unknown at the pin stays unknown (keep_pinned_exe), so reading it again would be
    // thrown away: the caller's executable is read only when there is a pinned one to compare.
    // One the monitor supplied is checked against the records, not /proc (still closed).
    const bool recorded = peer.subject.exe_source == ExeSource::monitor && exec_records_ != nullptr;
    const ExeRead exe_read = peer.subject.exe_source == ExeSource::proc ? ExeRead::Read : ExeRead::Skip;
    Subject fresh = peer.subject;
    std::uint64_t cgroup_id = 0;
    try {
        cgroup_id = read_peer(peer, fresh, exe_read, groups);
    } catch (const IdentityError&) {
        throw;  // refused; the peer stays pinned, so the name is never pinned again
    } catch (const std::system_error& e) {
        if (out_of_descriptors(e.code().value())) {
            throw no_descriptor_left(peer.pid);
        }
        if (!process_alive(peer.pidfd.get())) {
            retire(record, who() + " has exited");
        }
        throw IdentityError("cannot read " + who() + ": " + e.what());
    } catch (const std::exception& e) {
        if (!process_alive(peer.pidfd.get())) {
            retire(record, who() + " has exited");
        }
        throw IdentityError("cannot read " + who() + ": " + e.what());
    }
    if (recorded) {
        if (auto refusal = recheck_recorded_exe(*exec_records_, exe_digests_, peer.subject, fresh)) {
            throw IdentityError(*refusal);
        }
    } else {
        keep_pinned_exe(peer.subject, fresh);
    }
    peer.subject = std::move(fresh);
    peer.cgroup_id = cgroup_id;
}

Subject IdentityResolver::resolve(sd_bus_message* message, std::uint64_t dispatch_boottime_ticks, Freshness freshness,
                                  GroupsRead groups)
{
    const char* sender = sd_bus_message_get_sender(message);
    if (sender == nullptr || sender[0] != ':') {
        throw IdentityError("message carries no unique sender name");
    }
    const auto it = names_.find(sender);
    if (it == names_.end()) {
        // Every name that connected since the subscription was signalled before its first
        // message; one we never saw cannot be bounded in time, so it is not pinned.
        throw IdentityError(std::string("connection ") + sender + " was not seen to appear on the bus");
    }
    NameRecord& record = it->second;
    if (!record.refusal.empty()) {
        throw IdentityError(record.refusal);
    }
    if (!record.peer) {
        if (pinned_ >= capacity_.max_pinned) {
            if (freshness == Freshness::Reread) {
                throw CallerLimitError("too many callers: " + std::to_string(pinned_) +
                                       " are pinned, the most this daemon's file descriptor limit allows; try "
                                       "again when some have disconnected");
            }
            // Informational calls grant nothing: answered from a pin whose descriptors are
            // released on return, so Status and WhoAmI still answer when the cache is full.
            return pin_peer(sender, record, dispatch_boottime_ticks).subject;
        }
        record.peer = std::make_unique<Peer>(pin_peer(sender, record, dispatch_boottime_ticks));
        ++pinned_;
    } else if (freshness == Freshness::Reread) {
        reread(record, groups);
    }
    // Checked after the reads: every value above belongs to a process that was alive throughout.
    if (!process_alive(record.peer->pidfd.get())) {
        retire(record, describe(record.peer->pid, sender) + " has exited");
    }
    return record.peer->subject;
}

}  // namespace codexvault::identity
