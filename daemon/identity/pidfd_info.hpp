// PIDFD_GET_INFO (Linux 6.13): what the kernel knows about a pinned process, asked through its
// pidfd with one ioctl instead of rendering a /proc file. Used for the process's cgroup id, which
// lets a re-read skip /proc/PID/cgroup while the process stays in the cgroup whose path it already
// holds, and for its uids and gids, which let a re-read skip /proc/PID/status while no grant looks
// at supplementary groups (docs/architecture.md, "Where a call's CPU goes"). On an older kernel,
// or where the daemon's seccomp filter answers ENOTTY, the answer is "unknown" and the caller
// reads /proc.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>

namespace codexvault::identity {

// The cgroup (v2, the default hierarchy) the process behind `pidfd` is in now: the id of that
// cgroup's directory, never reused while the system runs. nullopt when the kernel cannot say
// (no PIDFD_GET_INFO, no cgroup support, the process was reaped).
std::optional<std::uint64_t> cgroup_id_of(int pidfd) noexcept;

// What one PIDFD_GET_INFO says about a live process: its credentials now (as /proc/PID/status's
// Uid and Gid lines would show them, without the supplementary groups, which the ioctl does not
// report) and its cgroup id. nullopt when the kernel cannot say (no PIDFD_GET_INFO, the process
// was reaped): the caller reads /proc instead.
struct PidfdFacts {
    uid_t real_uid = 0;
    uid_t effective_uid = 0;
    gid_t effective_gid = 0;
    std::optional<std::uint64_t> cgroup_id;  // nullopt: no cgroup support
};
std::optional<PidfdFacts> pidfd_facts(int pidfd) noexcept;

// The ioctl request number, for the seccomp filter's row (argument-checked to exactly this).
inline constexpr std::uint32_t kPidfdGetInfoRequest = 0xc040ff0bU;  // _IOWR(0xFF, 11, 64-byte struct)

}  // namespace codexvault::identity
