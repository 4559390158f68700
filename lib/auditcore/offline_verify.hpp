// `vaultctl audit verify [--dir DIR] [--pubkey FILE] [--json]`: offline verification of an audit
// folder (the live log, or a quarantined audit.tampered-* folder), without the daemon.
#pragma once

#include <ostream>
#include <string>

namespace codexvault::audit {

inline constexpr char kDefaultAuditDir[] = "/var/lib/codex-vault/audit";

// Verifies every segment of `dir` (empty: kDefaultAuditDir) in order, with its head file, against
// the public key in `pubkey_file` (empty: DIR/audit.pub, with a warning: a key taken from the
// place being checked proves nothing against whoever controls that place). Prints a report to
// `out`: the counts, notes such as recovered torn tails, the unsigned tail, and on failure the
// first bad position and what is wrong there; with `json`, one JSON object (report_to_json plus
// "dir", "pubkey_file", "pubkey_from_log_dir", "key_id", "head_present"; on a local error
// {"ok":false,"error":...}).
//
// Returns the exit status: 0 the log verifies, 9 (IntegrityFailure's exit code) it does not,
// 1 a local error (folder or key file unreadable, key file malformed).
int run_audit_verify(const std::string& dir, const std::string& pubkey_file, bool json, std::ostream& out);

}  // namespace codexvault::audit
