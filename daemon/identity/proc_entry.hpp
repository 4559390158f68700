// Reads a pinned process's /proc entry through a directory descriptor, so that every read
// refers to the process the pidfd pins even if its pid is reused afterwards.
//
// `status` and `cgroup`, read on every authorizing call, are opened once with the entry and
// re-read from offset 0 each time: they are seq_files, which the kernel renders anew from the
// task's current credentials and cgroup on every read that starts at 0. A kept descriptor gives
// the same fresh values as opening the file again, without the path walk, open and close that
// made up about a third of each re-read (see "Where a call's CPU goes" in docs/architecture.md).
#pragma once

#include <sys/stat.h>
#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::identity {

struct ProcStatus {
    uid_t real_uid = 0;
    uid_t effective_uid = 0;
    gid_t effective_gid = 0;
    std::vector<gid_t> groups;
};

struct ProcExe {
    std::string path;
    std::uint64_t device = 0;
    std::uint64_t inode = 0;
    struct stat file {};  // the executable itself (through the link), as fstat would see it
};

// Parsers, pure so they can be tested on captured text. A Uid, Gid or Groups line that does not
// end in a newline was cut short and is refused, never read as fewer or different ids.
std::optional<ProcStatus> parse_proc_status(std::string_view text);
std::optional<std::uint64_t> parse_start_time(std::string_view stat_text);
std::string parse_unified_cgroup(std::string_view cgroup_text);

class ProcEntry {
public:
    // Opens /proc/PID, and `status` and `cgroup` in it. Throws std::system_error when /proc/PID
    // or its `status` cannot be opened.
    explicit ProcEntry(pid_t pid);

    [[nodiscard]] ProcStatus status() const;         // throws when unreadable or malformed
    [[nodiscard]] std::uint64_t start_time() const;  // throws when unreadable or malformed
    [[nodiscard]] std::string cgroup() const;        // empty when unreadable
    // nullopt when the daemon may not read the link (another user's process and no ptrace
    // access): callers treat the exe as unknown and exe-based rules fail closed.
    [[nodiscard]] std::optional<ProcExe> exe() const;
    // The running executable opened read-only (for its digest); an invalid fd when not permitted.
    [[nodiscard]] UniqueFd open_exe() const;

    // Descriptors one entry holds open (the directory, `status`, `cgroup`).
    static constexpr std::size_t kDescriptors = 3;

private:
    UniqueFd dir_;
    UniqueFd status_;
    UniqueFd cgroup_;  // invalid when it could not be opened: the cgroup reads as unknown
};

}  // namespace codexvault::identity
