// The daemon's runtime hardening, one call, made once start-up is over (state open, keys loaded,
// bus connected and the name taken) and before READY=1 -- docs/hardening.md:
//
//   1. drop every capability (capabilities.hpp)
//   2. RLIMIT_CORE 0, PR_SET_DUMPABLE 0, PR_SET_NO_NEW_PRIVS 1 (process_limits.hpp)
//   3. start the daemon's threads (the caller's hook: the audit flusher)
//   4. the seccomp allowlist (syscall_filter.hpp), synchronised to every thread (TSYNC)
//
// Threads start between 2 and 4 on purpose: capability sets and no_new_privs belong to each
// thread and are inherited when it is created, so a thread started after the drop holds nothing
// and can gain nothing; and the filter, installed after it with TSYNC, covers it as it covers the
// main thread (a thread started after the filter would need clone in the allowlist). The hook
// must return only once its threads are idle, waiting for work, so that none of them is still
// inside glibc's thread set-up when the filter arrives.
//
// There is no way to skip it: no flag, no environment variable, no build option.
#pragma once

#include <functional>

namespace codexvault::harden {

// Throws std::system_error / std::runtime_error "hardening: <step>: <error>"; the daemon then
// refuses to start. After it returns, only the allowlist's system calls remain, in every thread.
void apply_runtime_hardening(const std::function<void()>& start_threads = {});

}  // namespace codexvault::harden
