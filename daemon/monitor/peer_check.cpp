// Monitor::check_peer_credentials: the user side of bpf/monitor_peer.bpf.h. No capability needed:
// one BPF_ITER_CREATE on the link made at load, then plain reads.
#include <bpf/bpf.h>
#include <errno.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cstring>

#include "bpf/monitor_events.h"
#include "daemon/monitor/monitor.hpp"

namespace codexvault::monitor {

const char* to_string(PeerCredentials verdict) noexcept
{
    switch (verdict) {
    case PeerCredentials::same:
        return "same";
    case PeerCredentials::changed:
        return "changed";
    case PeerCredentials::gone:
        return "gone";
    case PeerCredentials::not_found:
        return "not found";
    case PeerCredentials::unavailable:
        break;
    }
    return "unavailable";
}

PeerCheck Monitor::check_peer_credentials(pid_t pid, std::uint64_t listener_dev, std::uint64_t listener_ino) noexcept
{
    PeerCheck out;
    const int link = bus_link_fd_ >= 0 ? bus_link_fd_ : peer_link_fd_;
    if (link < 0) {
        out.detail = "the connection check program is not loaded" +
                     (status_.connection_check.empty() ? std::string() : ": " + status_.connection_check);
        return out;
    }
    if (pid <= 0) {
        out.detail = "no pid to check";
        return out;
    }
    // Plain stores: this thread is the only writer and the only reader (the program runs inside
    // the read below, in this thread).
    globals_->peer_pid = pid;
    globals_->peer_sock_kdev = static_cast<std::uint32_t>((major(listener_dev) << 20U) | minor(listener_dev));
    globals_->peer_sock_ino = listener_ino;
    const UniqueFd iter(bpf_iter_create(link));
    if (!iter) {
        const int err = errno;
        globals_->peer_pid = 0;
        out.detail = std::string("BPF_ITER_CREATE: ") + std::strerror(err);
        return out;
    }
    // A few verdicts at most (one per bus connection of the pid); a full buffer means more.
    std::uint32_t verdicts[64];
    std::size_t used = 0;
    bool failed = false;
    for (;;) {
        if (used == sizeof(verdicts)) {
            char spill[sizeof(std::uint32_t)];
            const ssize_t more = ::read(iter.get(), spill, sizeof(spill));
            if (more < 0 && errno == EINTR) {
                continue;
            }
            failed = more != 0;  // more connections than fit: cannot vouch for the rest
            break;
        }
        const ssize_t n = ::read(iter.get(), reinterpret_cast<char*>(verdicts) + used, sizeof(verdicts) - used);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            out.detail = std::string("reading the walk: ") + std::strerror(errno);
            failed = true;
            break;
        }
        if (n == 0) {
            break;
        }
        used += static_cast<std::size_t>(n);
    }
    globals_->peer_pid = 0;
    if (failed || used % sizeof(std::uint32_t) != 0) {
        if (out.detail.empty()) {
            out.detail = "the walk returned more or other data than verdicts";
        }
        return out;
    }
    out.connections = used / sizeof(std::uint32_t);
    bool changed = false;
    bool gone = false;
    for (std::size_t i = 0; i < out.connections; ++i) {
        switch (verdicts[i]) {
        case MON_PEER_SAME:
            break;
        case MON_PEER_CHANGED:
            changed = true;
            break;
        case MON_PEER_GONE:
            gone = true;
            break;
        default:
            out.detail = "unknown verdict " + std::to_string(verdicts[i]);
            return out;
        }
    }
    out.verdict = gone                   ? PeerCredentials::gone
                  : changed              ? PeerCredentials::changed
                  : out.connections == 0 ? PeerCredentials::not_found
                                         : PeerCredentials::same;
    return out;
}

}  // namespace codexvault::monitor
