// Reads a pinned process's /proc entry through a directory descriptor, so that every read
// refers to the process the pidfd pins even if its pid is reused afterwards.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>
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
};

// Parsers, pure so they can be tested on captured text.
std::optional<ProcStatus> parse_proc_status(const std::string& text);
std::optional<std::uint64_t> parse_start_time(const std::string& stat_text);
std::string parse_unified_cgroup(const std::string& cgroup_text);

class ProcEntry {
public:
    // Throws std::system_error when /proc/PID cannot be opened.
    explicit ProcEntry(pid_t pid);

    [[nodiscard]] ProcStatus status() const;         // throws when unreadable or malformed
    [[nodiscard]] std::uint64_t start_time() const;  // throws when unreadable or malformed
    [[nodiscard]] std::string cgroup() const;        // empty when unreadable
    // nullopt when the daemon may not read the link (another user's process and no ptrace
    // access): callers treat the exe as unknown and exe-based rules fail closed.
    [[nodiscard]] std::optional<ProcExe> exe() const;
    // The running executable opened read-only (for its digest); an invalid fd when not permitted.
    [[nodiscard]] UniqueFd open_exe() const;

private:
    [[nodiscard]] std::string read_file(const char* name) const;
    UniqueFd dir_;
};

}  // namespace codexvault::identity
