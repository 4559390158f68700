// The daemon's own seccomp allowlist (libseccomp), installed last at start-up: after it only the
// system calls the running daemon needs remain; anything else kills the whole process (SIGSYS).
// The table, with the reason for each group, is in syscall_filter.cpp; docs/hardening.md
// explains how it was derived and how to find a missing call.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

namespace codexvault::harden {

// One row of the allowlist: every syscall of the group gets `action`, unconditionally or only
// when the arguments match `only_if` (all of them).
struct ArgCheck {
    unsigned index;        // argument number, 0-5
    std::uint64_t mask;    // the argument is masked with this first (~0 = compare all bits)
    std::uint64_t value;   // ...and must then equal this
    bool differs = false;  // instead: the whole argument must differ from `value` (mask unused)
};

enum class FilterAction {
    Allow,
    Errno,  // fail with `error` without reaching the kernel: for harmless probes
};

struct SyscallGroup {
    std::string_view group;
    std::span<const std::string_view> syscalls;
    std::span<const ArgCheck> only_if;
    FilterAction action;
    int error;  // for FilterAction::Errno
    std::string_view reason;
};

// The allowlist, in the order it is installed.
std::span<const SyscallGroup> syscall_allowlist();

// Builds and loads the filter for the native architecture only (any other architecture, and
// x32 calls, kill the process), default action KILL_PROCESS, synchronised to all threads.
// Sets PR_SET_NO_NEW_PRIVS itself if it is not set yet (libseccomp's default). Throws
// std::system_error "hardening: install seccomp filter: <what>: <error>". Irreversible: tests
// call it in a child process.
void install_syscall_filter();

}  // namespace codexvault::harden
