// What the daemon is told at start: command line first, then the optional TOML config file.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>

namespace codexvault::daemon {

inline constexpr const char* kDefaultStateDir = "/var/lib/codex-vault";
inline constexpr const char* kDefaultConfigFile = "/etc/codex-vault/codex-vaultd.toml";

struct DaemonConfig {
    std::optional<std::string> bus_address;  // nullopt: the system bus
    std::filesystem::path state_dir = kDefaultStateDir;
    std::filesystem::path config_file = kDefaultConfigFile;
    bool config_file_explicit = false;  // an explicit --config must exist; the default may not
    std::filesystem::path policy_dir = "/etc/codex-vault/policy.d";
    uid_t founder_uid = 0;
    // How long an approval stays valid after it was requested (approval_ttl, in seconds).
    std::uint64_t approval_ttl_usec = 120ULL * 1000 * 1000;
    // Load the eBPF monitor at start (`monitor`); false leaves it off.
    bool monitor = true;
    // Serve Inject (`inject`). Injections need the monitor's per-syscall hooks, which cost every
    // syscall on the host while attached; false leaves them out and refuses Inject.
    bool inject = true;
};

// Throws std::runtime_error with a message fit for stderr; `exit_code` set for --help/--version.
struct CommandLineExit {
    int exit_code;
};
DaemonConfig parse_command_line(int argc, char** argv);

// Reads config_file (TOML). Unknown keys and bad values are errors naming the file and line:
// a security daemon does not guess what a misspelt setting meant.
void load_config_file(DaemonConfig& config);

}  // namespace codexvault::daemon
