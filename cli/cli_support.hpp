// What every vaultctl command shares: global options, the founder key, output helpers, and
// how a command group registers its subcommands.
#pragma once

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <systemd/sd-bus.h>

#include <array>
#include <cstdint>
#include <functional>
#include <string>

#include "cli/founder_key.hpp"
#include "cli/vault_client.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::cli {

inline constexpr int kExitLocalError = 1;
inline constexpr int kExitUsage = 2;

struct GlobalOptions {
    std::string bus;
    bool json = false;
    std::string founder_key;
    int passphrase_fd = -1;
};

std::string default_founder_key_path();
SensitiveBytes read_passphrase(const GlobalOptions& options, bool confirm);
FounderKeyPair load_founder_key(const GlobalOptions& options);
std::string format_time(std::uint64_t usec);  // "2026-11-23T21:15:32Z"
// The founder key's id as the daemon's Status shows it: the first 8 bytes of BLAKE2b-256 of the
// Ed25519 public key, 16 lowercase hex digits (the fingerprint the audit key's id uses too).
std::string founder_key_id(const std::array<std::uint8_t, 32>& public_key);
// Reads an a{sv} of the value types the daemon sends (s, b, u, t, au, as) into JSON.
nlohmann::json read_dictionary(sd_bus_message* message);
// Reads an aa{sv} into a JSON array.
nlohmann::json read_dictionary_array(sd_bus_message* message);
void print_dictionary(const nlohmann::json& dict, bool json);
// The secret value from stdin (prompted for, without echo, on a terminal): 1 to 65,536 bytes.
// vaultctl seals it to the daemon's transport key before it leaves the process (vault_client.hpp).
SensitiveBytes read_value_from_stdin();

// The command the parsed command line selected: a subcommand's callback stores it here.
using SelectedCommand = std::function<int()>;
inline void on_selected(CLI::App* command, SelectedCommand& selected, SelectedCommand run)
{
    command->callback([&selected, run = std::move(run)] { selected = run; });
}

// Command groups, each in its own file.
void add_grant_commands(CLI::App& app, CLI::App& policy, const GlobalOptions& options, SelectedCommand& selected);
void add_integrity_commands(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected);
void add_exec_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected);
void add_ingest_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected);

}  // namespace codexvault::cli
