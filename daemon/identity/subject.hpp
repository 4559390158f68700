// The caller as the daemon resolved it. Every field comes from the kernel (through the bus
// driver's peer credentials or the caller's /proc entry), never from the caller's message.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <string>
#include <vector>

namespace codexvault::identity {

struct Subject {
    std::string bus_name;  // unique connection name, e.g. ":1.42"
    uid_t uid = 0;         // effective uid, as the bus reported it and /proc confirmed it
    gid_t gid = 0;         // effective gid
    std::vector<gid_t> groups;
    pid_t pid = 0;
    std::uint64_t start_time_ticks = 0;  // /proc/PID/stat field 22, pins the pid
    std::string exe;                     // empty when it cannot be read (see exe_known)
    bool exe_known = false;
    std::uint64_t exe_device = 0;
    std::uint64_t exe_inode = 0;
    std::string exe_sha256;  // lowercase hex of the running executable; empty when unknown
    std::string cgroup;      // unified hierarchy path
    std::string unit;        // systemd unit derived from the cgroup, empty if none
};

// The innermost systemd unit named in a cgroup path ("/system.slice/foo.service" -> "foo.service").
std::string unit_from_cgroup(const std::string& cgroup_path);

}  // namespace codexvault::identity
