// The connect-time rule for a caller's executable: a caller is judged by the exe its process ran
// when it made its bus connection. The resolver reads the exe at the caller's first pin; the
// kernel then says (monitor::PeerCheck) whether the process still holds the struct cred it
// connected with. Every execve installs a new one, so "same" proves that no exec came between
// the connect and that read, whenever the daemon got round to noticing the connection. Pure:
// the kernel's answer in, the decision out.
#pragma once

#include <optional>
#include <string>

#include "daemon/identity/subject.hpp"
#include "daemon/monitor/monitor.hpp"

namespace codexvault::identity {

// At the first pin of `subject` (whose exe fields hold what was read just before the check).
// Returns a refusal when its credentials changed since it connected or the connector is gone;
// otherwise records the verdict in subject.connect_check and, when the check could not vouch
// (not loaded, failed, or no connection found in the daemon's network namespace), forgets the
// exe so that exe and exe_sha256 conditions fail closed.
std::optional<std::string> apply_connect_check(const monitor::PeerCheck& check, Subject& subject);

}  // namespace codexvault::identity
