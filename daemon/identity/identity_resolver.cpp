#include "daemon/identity/identity_resolver.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>
#include <vector>

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

}  // namespace

std::uint64_t boottime_ticks_now()
{
    struct timespec ts {};
    ::clock_gettime(CLOCK_BOOTTIME, &ts);
    static const long ticks_per_second = ::sysconf(_SC_CLK_TCK);
    return static_cast<std::uint64_t>(ts.tv_sec) * static_cast<std::uint64_t>(ticks_per_second) +
           static_cast<std::uint64_t>(ts.tv_nsec) / (1000000000ULL / static_cast<std::uint64_t>(ticks_per_second));
}

IdentityResolver::IdentityResolver(sd_bus* bus) : bus_(bus)
{
    sd_bus_slot* slot = nullptr;
    const int r = sd_bus_match_signal(bus, &slot, "org.freedesktop.DBus", "/org/freedesktop/DBus",
                                      "org.freedesktop.DBus", "NameOwnerChanged", &on_name_owner_changed, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "subscribe to NameOwnerChanged");
    }
    name_owner_changed_.reset(slot);
}

int IdentityResolver::on_name_owner_changed(sd_bus_message* message, void* userdata, sd_bus_error* /*error*/) noexcept
{
    const char* name = nullptr;
    const char* old_owner = nullptr;
    const char* new_owner = nullptr;
    if (sd_bus_message_read(message, "sss", &name, &old_owner, &new_owner) < 0) {
        return 0;  // a malformed signal from the driver changes nothing we hold
    }
    if (name[0] == ':' && new_owner[0] == '\0') {
        try {
            static_cast<IdentityResolver*>(userdata)->forget(name);
        } catch (...) {
            return 0;
        }
    }
    return 0;
}

void IdentityResolver::reread(Peer& peer)
{
    Subject& subject = peer.subject;
    const ProcStatus status = peer.proc->status();
    require_bus_uid(status, peer.bus_uid, peer.pid);
    read_process(*peer.proc, status, exe_digests_, subject);
}

void read_process(const ProcEntry& proc, const ProcStatus& status, ExeDigestCache& digests, Subject& subject)
{
    subject.uid = status.effective_uid;
    subject.gid = status.effective_gid;
    subject.groups = status.groups;
    if (auto exe = proc.exe()) {
        subject.exe = std::move(exe->path);
        subject.exe_known = true;
        subject.exe_device = exe->device;
        subject.exe_inode = exe->inode;
        const UniqueFd exe_file = proc.open_exe();
        subject.exe_sha256 = exe_file
                                 ? digests.digest(exe_file.get(), subject.exe_device, subject.exe_inode).value_or("")
                                 : std::string();
    } else {
        subject.exe_sha256.clear();
        subject.exe.clear();
        subject.exe_known = false;
        subject.exe_device = 0;
        subject.exe_inode = 0;
    }
    subject.cgroup = proc.cgroup();
    subject.unit = unit_from_cgroup(subject.cgroup);
}

IdentityResolver::Peer IdentityResolver::pin_peer(const std::string& unique_name, std::uint64_t dispatch_boottime_ticks)
{
    BusCredentials creds = query_bus_credentials(bus_, unique_name);
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
            throw IdentityError("cannot pin caller pid " + std::to_string(creds.pid) + ": " + std::strerror(errno));
        }
    }
    try {
        peer.proc = std::make_unique<ProcEntry>(creds.pid);
        peer.subject.start_time_ticks = peer.proc->start_time();
        reread(peer);
    } catch (const IdentityError&) {
        throw;
    } catch (const std::exception& e) {
        throw IdentityError("cannot read caller pid " + std::to_string(creds.pid) + ": " + e.what());
    }
    // The /proc entry was opened after the pidfd: if the pinned process is still alive now, the
    // entry is that process's. A process younger than this dispatch cannot be the sender.
    if (!process_alive(peer.pidfd.get())) {
        throw IdentityError("caller pid " + std::to_string(creds.pid) + " exited before it could be pinned");
    }
    if (peer.subject.start_time_ticks > dispatch_boottime_ticks) {
        throw IdentityError("caller pid " + std::to_string(creds.pid) + " was reused by a newer process");
    }
    return peer;
}

Subject IdentityResolver::resolve(sd_bus_message* message, std::uint64_t dispatch_boottime_ticks, Freshness freshness)
{
    const char* sender = sd_bus_message_get_sender(message);
    if (sender == nullptr || sender[0] != ':') {
        throw IdentityError("message carries no unique sender name");
    }
    auto it = peers_.find(sender);
    const bool pinned_now = it == peers_.end();
    if (pinned_now) {
        if (peers_.size() >= kMaxCachedPeers) {
            peers_.erase(peers_.begin());  // cheap to rebuild; bounded so connection floods cannot grow it
        }
        it = peers_.emplace(sender, pin_peer(sender, dispatch_boottime_ticks)).first;
    }
    Peer& peer = it->second;
    try {
        if (freshness == Freshness::Reread && !pinned_now) {
            reread(peer);
        }
    } catch (const IdentityError&) {
        peers_.erase(it);
        throw;
    } catch (const std::exception& e) {
        const pid_t pid = peer.pid;
        peers_.erase(it);
        throw IdentityError("cannot read caller pid " + std::to_string(pid) + ": " + e.what());
    }
    // Checked after the reads: every value above belongs to a process that was alive throughout.
    if (!process_alive(peer.pidfd.get())) {
        const pid_t pid = peer.pid;
        peers_.erase(it);
        throw IdentityError("caller pid " + std::to_string(pid) + " has exited");
    }
    return peer.subject;
}

}  // namespace codexvault::identity
