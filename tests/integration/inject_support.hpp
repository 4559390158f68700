// What the injection suites share: skips with the reason where root or the monitor is missing,
// a secret and its inject grant, and reading the audit log until a record shows up.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "tests/support/harness.hpp"

namespace codexvault::test::inject {

void require_root();
// The daemon's monitor must record, or nothing here can run: skipped with the daemon's reason.
void require_monitor();
CommandResult founder(const std::vector<std::string>& args);
// Stores a fresh canary as secret `name`; returns it (never print it).
std::string put_secret(const std::string& name);
std::string issue_inject_grant(const std::string& name, const std::vector<std::string>& extra = {});
// The whole audit log as JSON lines, read offline from the daemon's folder.
std::string audit_text();
bool contains(const std::string& text, const std::string& needle);
// Polls the audit log until `found` says yes (records of the monitor are drained every 200 ms
// and written with the next write); fails after 15 s.
std::string wait_for_audit(const std::function<bool(const std::string&)>& found, const char* what);
// The injection id vaultctl exec printed on stderr.
std::string injection_id_of(const CommandResult& r);
// The canary is nowhere but in the injected process: not in the audit log, the daemon's own log
// (its stderr, where the journal copy of every record goes outside journald), or the state folder.
void expect_canary_contained(const std::string& canary);

}  // namespace codexvault::test::inject
