// The monitor's records as C++ values, decoded from the fixed-width structs of
// bpf/monitor_events.h. Decoding is pure (no BPF), so it is tested on hand-made bytes too.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>

namespace codexvault::monitor {

// A thread of a process as the kernel saw it when it recorded the event.
struct Task {
    std::uint32_t pid = 0;      // host thread id
    std::uint32_t tgid = 0;     // host process id
    std::uint32_t ns_pid = 0;   // thread id in the task's own pid namespace
    std::uint32_t ns_tgid = 0;  // process id in the task's own pid namespace
    std::uint32_t pidns_inum = 0;
    std::uint32_t ppid = 0;
    std::uint32_t uid = 0;
    std::uint32_t euid = 0;
    std::uint64_t start_time_ns = 0;      // CLOCK_MONOTONIC at fork
    std::uint64_t start_boottime_ns = 0;  // CLOCK_BOOTTIME at fork
    std::uint64_t exe_dev = 0;            // st_dev encoding
    std::uint64_t exe_ino = 0;
    bool has_exe = false;
    std::string comm;

    // /proc/PID/stat field 22 (clock ticks since boot) for this task.
    [[nodiscard]] std::uint64_t start_ticks() const;
};

// An execve (existing = false, time_ns = when) or, from the walk at start, a process that
// already ran (existing = true: exe as it was then, exec time unknown).
struct ExecEvent {
    Task task;
    std::string exe_path;  // "/usr/bin/true"; "" when the task has no exe
    bool existing = false;
    bool path_truncated = false;  // deeper than 32 names or longer than 1,024 bytes: a suffix
    std::uint64_t time_ns = 0;    // CLOCK_BOOTTIME
};

struct MarkEvent {
    enum class Change { inherited, removed, overflow };
    Change change = Change::inherited;
    Task task;  // the child (inherited, overflow) or the exiting process (removed)
    std::uint64_t mark_id = 0;
    std::uint32_t parent_tgid = 0;
    bool alert = false;  // overflow: the child runs unmarked
    std::uint64_t time_ns = 0;
};

struct AccessEvent {
    enum class Kind {
        read,
        mmap,
        send,  // sendfile, splice, copy_file_range
        open,
        receive,  // SCM_RIGHTS
        pidfd_getfd,
        ptrace,
        vm_read,
        vm_write,
        proc_open,  // /proc/PID/{mem,environ,fd,...}
    };
    Kind kind = Kind::read;
    Task actor;
    bool alert = false;            // not a process marked with the same id
    bool killed = false;           // SIGKILL sent in that syscall
    bool compat = false;           // ia32 syscall
    std::uint64_t id = 0;          // tracked inode's id / target's mark id
    std::uint64_t actor_mark = 0;  // the actor's mark id, 0 when unmarked
    std::uint64_t dev = 0;         // inode touched (0 for attempts on a process)
    std::uint64_t ino = 0;
    std::uint32_t target_tgid = 0;  // attempts: the marked process approached
    std::uint32_t syscall_nr = 0;
    std::int32_t fd = -1;
    std::uint32_t detail = 0;  // ptrace request, target fd of pidfd_getfd
    std::uint64_t time_ns = 0;

    [[nodiscard]] bool is_attempt() const { return target_tgid != 0; }
};

using Event = std::variant<ExecEvent, MarkEvent, AccessEvent>;

std::string_view to_string(AccessEvent::Kind kind);
std::string_view to_string(MarkEvent::Change change);

// One record as the kernel wrote it; nullopt when it is malformed (unknown kind, sizes that do
// not add up). May throw std::bad_alloc.
std::optional<Event> decode_event(std::span<const std::byte> record);

// "true\0bin\0usr\0" (leaf first, as the kernel walks) -> "/usr/bin/true".
std::string assemble_path(std::string_view leaf_first);

// CLOCK_BOOTTIME nanoseconds -> clock ticks as /proc/PID/stat counts them (sysconf(_SC_CLK_TCK)).
std::uint64_t boottime_ns_to_ticks(std::uint64_t ns);

}  // namespace codexvault::monitor
