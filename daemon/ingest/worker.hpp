// One scan's worker: a process forked by the ingest helper for one directory. It confines itself
// before it reads a byte (rlimits, Landlock to reading beneath the directory, a seccomp filter
// with no execve, no socket and no write but to its result pipe), scans, streams its records
// (protocol.hpp) to the pipe and exits. docs/ingest.md, "The worker", says what each step stops.
#pragma once

#include <memory>

#include "daemon/ingest/protocol.hpp"
#include "lib/scan/matcher.hpp"

namespace codexvault::ingest {

// Landlock: the ABI version the kernel offers (> 0), or -errno when it offers none.
int landlock_abi() noexcept;

// Confines the calling process for good, in this order: no_new_privs, not dumpable, rlimits,
// Landlock (reading beneath dir_fd only), then the seccomp filter (no execve, no socket, no fork,
// no write but to result_fd, no executable memory). Returns the Landlock ABI in force, or -errno
// when the kernel offers none. Throws std::runtime_error naming the step that failed (a kernel
// that offers Landlock but refuses the ruleset is such a failure). Irreversible: call it in a
// child process.
int confine_worker(int dir_fd, int result_fd, const ScanLimits& limits);

// In the forked child only: never returns (exits with 0 or one of the kExit* codes). dir_fd and
// result_fd are the only descriptors it keeps.
[[noreturn]] void run_worker(int dir_fd, int result_fd, const ScanRequest& request,
                             const std::shared_ptr<const scan::Matcher>& matcher) noexcept;

}  // namespace codexvault::ingest
