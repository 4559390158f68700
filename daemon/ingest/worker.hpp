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

// In the forked child only: never returns (exits with 0 or one of the kExit* codes). dir_fd and
// result_fd are the only descriptors it keeps.
[[noreturn]] void run_worker(int dir_fd, int result_fd, const ScanRequest& request,
                             const std::shared_ptr<const scan::Matcher>& matcher) noexcept;

}  // namespace codexvault::ingest
