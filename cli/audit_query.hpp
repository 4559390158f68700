// One page of AuditTail, as `vaultctl audit tail` and `vaultctl audit injections` ask for it: the
// founder signs when a founder key is there, anyone else reads under an audit:read grant.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "cli/cli_support.hpp"

namespace codexvault::cli {

struct AuditTailQuery {
    std::string action;
    std::optional<std::uint64_t> after_seq;
    std::string decision;
    std::string event;
    std::uint32_t limit = 20;
    std::optional<std::uint32_t> uid;
};

struct AuditPage {
    std::vector<std::string> records;  // one JSON object per record, oldest first
    std::uint64_t last_seq = 0;
    bool complete = true;  // false: the daemon's scan budget ended the page early
};

// The founder's key when one is configured (a passphrase descriptor or the key file exists).
std::optional<FounderKeyPair> optional_founder_key(const GlobalOptions& options);
AuditPage fetch_audit_page(VaultClient& client, const std::optional<FounderKeyPair>& key, const AuditTailQuery& query);

void add_audit_injections_command(CLI::App& audit, const GlobalOptions& options, SelectedCommand& selected);

}  // namespace codexvault::cli
