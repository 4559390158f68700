// The daemon's runtime hardening, one call, made once start-up is over (state open, keys loaded,
// bus connected and the name taken) and before READY=1 -- docs/hardening.md:
//
//   1. drop every capability (capabilities.hpp)
//   2. RLIMIT_CORE 0, PR_SET_DUMPABLE 0, PR_SET_NO_NEW_PRIVS 1 (process_limits.hpp)
//   3. the seccomp allowlist (syscall_filter.hpp)
//
// There is no way to skip it: no flag, no environment variable, no build option.
#pragma once

namespace codexvault::harden {

// Throws std::system_error / std::runtime_error "hardening: <step>: <error>"; the daemon then
// refuses to start. After it returns, only the allowlist's system calls remain.
void apply_runtime_hardening();

}  // namespace codexvault::harden
