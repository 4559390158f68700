// The caller as the daemon resolved it. Every field comes from the kernel (through the bus
// driver's peer credentials or the caller's /proc entry), never from the caller's message.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace codexvault::identity {

// Where a subject's exe came from: its /proc/PID/exe link, or the eBPF monitor's exec records
// (when the link is closed to the daemon); none when it is unknown.
enum class ExeSource { none, proc, monitor };
const char* to_string(ExeSource source) noexcept;

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
    ExeSource exe_source = ExeSource::none;
    // Whether the kernel vouched, at the pin, that the process holds the credentials it connected
    // with (so no exec came between its connect and the exe read at the pin): "verified", or
    // "unverified: " and why the check could not run. Unverified leaves the exe unknown.
    std::string connect_check;
    std::string cgroup;  // unified hierarchy path
    // The system unit, as systemd derives it: the first unit below the leading slices
    // ("/user.slice/user-1000.slice/user@1000.service/app.slice/x.service" -> "user@1000.service").
    // Empty if none. Never a name chosen inside a delegated subtree.
    std::string unit;
    // Set when `unit` is a user's service manager (user@UID.service): that UID, and the user unit
    // below it ("x.service" above; empty if none). The user owns that subtree and can give a
    // cgroup any name there, so a user unit is never compared with system unit names.
    std::optional<uid_t> user_manager_uid;
    std::string user_unit;
};

// Units named by a cgroup path, derived like systemd's cg_path_get_unit/cg_path_get_user_unit.
struct CgroupUnits {
    std::string unit;
    std::optional<uid_t> user_manager_uid;
    std::string user_unit;
};
CgroupUnits units_from_cgroup(const std::string& cgroup_path);

// The system unit alone (units_from_cgroup(path).unit).
std::string unit_from_cgroup(const std::string& cgroup_path);

}  // namespace codexvault::identity
