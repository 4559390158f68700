// Where the resolver learns a caller's executable when /proc/PID/exe is closed to it (the
// packaged daemon holds no capability, so every other user's process is): the eBPF monitor's
// exec records, keyed by pid and start time. The daemon's monitor service implements this; the
// resolver only asks.
#pragma once

#include <sys/types.h>

#include <cstdint>

#include "daemon/monitor/exec_cache.hpp"
#include "daemon/monitor/monitor.hpp"

namespace codexvault::identity {

class ExecRecords {
public:
    ExecRecords() = default;
    ExecRecords(const ExecRecords&) = delete;
    ExecRecords& operator=(const ExecRecords&) = delete;
    virtual ~ExecRecords() = default;

    // What the records say about process (pid, start ticks) around CLOCK_BOOTTIME `at_ns`,
    // after reading every record the kernel has written so far (an exec is recorded before the
    // process runs the new program, so no message it sent can be newer than its record).
    virtual monitor::ExeHistory exe_history(pid_t pid, std::uint64_t start_ticks, std::uint64_t at_ns) = 0;

    // Whether the process `pid` still holds the credentials it made its bus connections with:
    // the kernel's verdict on the sockets accepted from the bus's listening socket (st_dev,
    // st_ino), monitor::Monitor::check_peer_credentials. Unavailable unless recording.
    virtual monitor::PeerCheck connection_credentials(pid_t pid, std::uint64_t listener_dev,
                                                      std::uint64_t listener_ino) = 0;
};

}  // namespace codexvault::identity
