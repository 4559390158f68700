// Process-wide protections that cost nothing and must never be skipped: no core dumps, not
// ptrace-attachable by the same uid, no privilege gain through exec. The capability drop and
// the seccomp allowlist join them in this module (issue 5).
#pragma once

namespace codexvault::harden {

// Throws std::system_error naming the step that failed; the daemon then refuses to start.
void apply_process_limits();

}  // namespace codexvault::harden
