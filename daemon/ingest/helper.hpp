// The ingest helper: a process the daemon forks at start-up, before it loads keys and long before
// its own seccomp filter (which has no fork and no execve) is installed. It compiles the scan
// rules once, then serves the control socket: for each ScanRequest (with the directory
// descriptor) it forks one worker (worker.hpp), hands the daemon the worker's result pipe and an
// empty memfd for overflow findings, enforces the wall-clock limit, reaps the worker and says how
// it ended. It holds no key but the per-scan fingerprint key it is sent, and no capability.
#pragma once

#include <sys/types.h>

#include <functional>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::ingest {

struct Helper {
    pid_t pid = -1;
    UniqueFd control;  // SOCK_SEQPACKET, close-on-exec; closing it ends the helper and its workers
};

// Forks the helper. `harden` runs first in the child (the daemon passes its capability drop);
// an exception from it ends the child. Throws std::system_error when the socket pair or the fork
// fails.
Helper start_helper(const std::function<void()>& harden);

}  // namespace codexvault::ingest
