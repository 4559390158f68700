// Reading the policy folder for the pure policy library, with the file-system rules that make
// a policy trustworthy: a file anyone but root could have written is refused, not parsed.
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "policy/policy_parser.hpp"

namespace codexvault::daemon {

inline constexpr const char* kDefaultPolicyDir = "/etc/codex-vault/policy.d";

struct PolicyLoad {
    policy::LoadResult result;  // result.ok(): a policy to swap in
    std::string summary;        // for Status and the log: what was loaded, or why nothing was
};

// Reads DIR/*.toml in name order and parses them. The folder and every file must be owned by
// root and not writable by group or others, files must be regular (no symlinks) and at most
// 1 MiB; any violation fails the whole load, naming the path. A missing folder is an empty
// policy (nothing granted).
PolicyLoad load_policy_directory(const std::filesystem::path& dir);

}  // namespace codexvault::daemon
