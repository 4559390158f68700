// Helpers for the monitor's real-kernel tests: load or skip with the reason, drain until a record
// shows up, fork children that run a body and _exit, and pipes to step them.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "daemon/monitor/monitor.hpp"

namespace cvtest {

using codexvault::monitor::Event;
using codexvault::monitor::Monitor;

// Loads the monitor, or ends the test with cr_skip_test naming why it cannot run here.
std::unique_ptr<Monitor> load_or_skip(const codexvault::monitor::Options& options = {});

// Drains (collecting every record) until `done` holds for one record or `timeout` passes.
std::vector<Event> drain_until(Monitor& monitor, const std::function<bool(const Event&)>& done,
                               std::chrono::milliseconds timeout = std::chrono::milliseconds(3000));
// Drains everything that arrives within `settle`.
std::vector<Event> drain_for(Monitor& monitor, std::chrono::milliseconds settle);

template <class T>
std::vector<T> only(const std::vector<Event>& events)
{
    std::vector<T> out;
    for (const auto& e : events) {
        if (const auto* x = std::get_if<T>(&e)) {
            out.push_back(*x);
        }
    }
    return out;
}

// A one-shot signal between processes: wait() returns once release() ran (or the other side
// closed its end).
class Latch {
public:
    Latch();
    Latch(const Latch&) = delete;
    Latch& operator=(const Latch&) = delete;
    ~Latch();
    void release();
    void wait();

private:
    int fds_[2];
};

// Forks; the child runs `body` and _exits with its return value (127 when it throws).
pid_t spawn(const std::function<int()>& body);
// Waits for `pid`; returns the raw wait status.
int reap(pid_t pid);
// /proc/PID/stat field 22 (start time in clock ticks), 0 when unreadable.
std::uint64_t stat_start_ticks(pid_t pid);

// A memfd holding `content`; its (st_dev, st_ino).
struct MemFd {
    int fd = -1;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
};
MemFd make_memfd(const std::string& content);

// The kernel's raw tracepoint links (BPF_LINK_GET_NEXT_ID, so root) whose program is one this
// process holds a descriptor of, by tracepoint name ("sys_enter", "sys_exit", ...). Programs of
// other processes (another test, another engineer's monitor) are not counted.
std::vector<std::string> own_tracepoint_links();

// (st_dev, st_ino) of a path (following symlinks); {0, 0} when it cannot be stat'ed.
std::pair<std::uint64_t, std::uint64_t> inode_of(const char* path);

}  // namespace cvtest
