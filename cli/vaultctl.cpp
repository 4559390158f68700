// vaultctl: the founder's and the operator's command line for codex-vaultd.
#include <CLI/CLI.hpp>
#include <fcntl.h>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "cli/cli_support.hpp"
#include "cli/founder_key.hpp"
#include "cli/proxy_commands.hpp"
#include "cli/request_command.hpp"
#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "common/bytes.hpp"
#include "common/limits.hpp"
#include "lib/fileio/unique_fd.hpp"
#include "policy/policy_parser.hpp"

namespace codexvault::cli {
namespace {

int cmd_status(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    Message reply = client.call(bus::method::kStatus);
    print_dictionary(read_dictionary(reply.get()), options.json);
    return 0;
}

int cmd_whoami(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    Message reply = client.call(bus::method::kWhoAmI);
    nlohmann::json subject = read_dictionary(reply.get());
    subject["grants"] = read_dictionary_array(reply.get());
    print_dictionary(subject, options.json);
    return 0;
}

int cmd_init(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    std::error_code ec;
    const bool existing = std::filesystem::exists(options.founder_key, ec);
    FounderKeyPair key = existing ? load_founder_key(options)
                                  : create_founder_key_file(options.founder_key, read_passphrase(options, true).span());
    client.enroll(key);
    // What the daemon now holds, read back: the founder compares this id with their own key's
    // (and with `vaultctl status` later); a mismatch means another key was enrolled.
    const std::string id = founder_key_id(key.public_key);
    Message status = client.call(bus::method::kStatus);
    const nlohmann::json state = read_dictionary(status.get());
    const std::string enrolled = state.value("founder_key_id", "");
    if (enrolled != id) {
        throw CallError(std::nullopt, kExitLocalError,
                        "the daemon reports founder key id '" + enrolled + "', not this key's id " + id +
                            ": another key was enrolled; do not use this vault before you have looked");
    }
    // The key secret values will be sealed to, pinned next to the founder key (and signed by it).
    const TransportPublicKey transport = client.transport_key();
    write_transport_pin(options.founder_key, key, transport);
    if (!options.json) {
        std::cout << (existing ? "enrolled the existing founder key " : "created and enrolled the founder key ")
                  << options.founder_key << '\n'
                  << "founder key id " << id << " (vaultctl status shows the enrolled key's id)\n"
                  << "daemon transport key " << bytes::to_hex(transport) << " (vaultctl status: transport_key), "
                  << "pinned in " << transport_pin_path(options.founder_key) << '\n';
    } else {
        std::cout << nlohmann::json{{"founder_key", options.founder_key},
                                    {"created", !existing},
                                    {"founder_key_id", id},
                                    {"transport_key", bytes::to_hex(transport)}}
                         .dump(2)
                  << '\n';
    }
    return 0;
}

// For a vault initialized before transport keys were pinned, or after its master key changed:
// pins what the daemon shows now. The founder checks it out of band first (the daemon's own host).
int cmd_pin_transport_key(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const TransportPublicKey transport = client.transport_key();
    write_transport_pin(options.founder_key, key, transport);
    if (options.json) {
        std::cout << nlohmann::json{{"transport_key", bytes::to_hex(transport)},
                                    {"pin", transport_pin_path(options.founder_key).string()}}
                         .dump(2)
                  << '\n';
    } else {
        std::cout << "pinned the daemon's transport key " << bytes::to_hex(transport) << " in "
                  << transport_pin_path(options.founder_key) << '\n';
    }
    return 0;
}

int cmd_secret_write(const GlobalOptions& options, const std::string& name, bool rotate)
{
    if (!limits::is_valid_secret_name(name)) {
        throw CallError(
            ErrorCode::InvalidArgument, error_info(ErrorCode::InvalidArgument).exit_code,
            "invalid secret name: use 1-64 characters from [A-Za-z0-9._-], starting with a letter or digit");
    }
    const SensitiveBytes value = read_value_from_stdin();
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    // Sealed to the pinned transport key, and only if the daemon shows that key.
    const TransportPublicKey pinned = load_transport_pin(options.founder_key, key);
    const std::uint32_t version = client.write_secret(key, pinned, name, value.span(), rotate);
    if (options.json) {
        std::cout << nlohmann::json{{"name", name}, {"version", version}}.dump(2) << '\n';
    } else {
        std::cout << (rotate ? "rotated " : "stored ") << name << " (version " << version << ")\n";
    }
    return 0;
}

int cmd_secret_rm(const GlobalOptions& options, const std::string& name)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    client.delete_secret(key, name);
    if (!options.json) {
        std::cout << "deleted " << name << '\n';
    }
    return 0;
}

int cmd_secret_ls(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const auto secrets = client.list_secrets(key);
    if (options.json) {
        nlohmann::json out = nlohmann::json::array();
        for (const auto& s : secrets) {
            out.push_back({{"name", s.name},
                           {"version", s.version},
                           {"created", format_time(s.created_usec)},
                           {"rotated", format_time(s.rotated_usec)},
                           {"created_usec", s.created_usec},
                           {"rotated_usec", s.rotated_usec},
                           {"integrity", s.integrity_ok ? "ok" : "failed"},
                           {"rotation_required", s.rotation_required}});
        }
        std::cout << out.dump(2) << '\n';
        return 0;
    }
    std::printf("%-32s %7s  %-20s  %-20s  %-9s %s\n", "NAME", "VERSION", "CREATED", "ROTATED", "INTEGRITY", "ROTATE");
    for (const auto& s : secrets) {
        std::printf("%-32s %7u  %-20s  %-20s  %-9s %s\n", s.name.c_str(), s.version,
                    format_time(s.created_usec).c_str(), format_time(s.rotated_usec).c_str(),
                    s.integrity_ok ? "ok" : "FAILED", s.rotation_required ? "REQUIRED" : "-");
    }
    return 0;
}

// Validates policy files without the daemon: the same parser, the same all-or-nothing rule.
int cmd_policy_check(const GlobalOptions& options, const std::vector<std::string>& paths)
{
    std::vector<std::string> names;
    for (const auto& path : paths) {
        if (std::filesystem::is_directory(path)) {
            std::vector<std::string> found;
            for (const auto& entry : std::filesystem::directory_iterator(path)) {
                const std::string file = entry.path().filename().string();
                if (file.size() > 5 && file.compare(file.size() - 5, 5, ".toml") == 0 && file[0] != '.') {
                    found.push_back(entry.path().string());
                }
            }
            std::sort(found.begin(), found.end());
            names.insert(names.end(), found.begin(), found.end());
        } else {
            names.push_back(path);
        }
    }
    std::vector<std::string> contents;
    for (const auto& name : names) {
        std::ifstream in(name, std::ios::binary);
        if (!in) {
            throw CallError(std::nullopt, kExitLocalError, "cannot read " + name);
        }
        std::ostringstream text;
        text << in.rdbuf();
        contents.push_back(text.str());
    }
    std::vector<policy::PolicyDocument> documents;
    for (std::size_t i = 0; i < names.size(); ++i) {
        documents.push_back({names[i], contents[i]});
    }
    const policy::LoadResult result = policy::load_policy(documents);
    if (options.json) {
        nlohmann::json errors = nlohmann::json::array();
        for (const auto& error : result.errors) {
            errors.push_back(error.to_string());
        }
        std::cout << nlohmann::json{{"ok", result.ok()}, {"files", names}, {"errors", errors}}.dump(2) << '\n';
    } else if (result.ok()) {
        std::cout << "policy OK: " << names.size() << " file(s)\n";
    } else {
        std::cerr << result.error_text() << '\n';
    }
    return result.ok() ? 0 : error_info(ErrorCode::InvalidArgument).exit_code;
}

int cmd_policy_reload(const GlobalOptions& options)
{
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const FounderProof proof = client.prove(key, bus::method::kReloadPolicy, {});
    Message reply = client.call(bus::method::kReloadPolicy, [&](sd_bus_message* m) { append_proof(m, proof); });
    const char* status = nullptr;
    check_local(sd_bus_message_read(reply.get(), "s", &status), "read policy status");
    std::cout << "policy " << status << '\n';
    return 0;
}

void add_global_options(CLI::App& app, GlobalOptions& options)
{
    app.add_option("--bus", options.bus, "D-Bus address (default: $CODEX_VAULT_BUS, else the system bus)");
    app.add_flag("--json", options.json, "Machine-readable output");
    app.add_option("--founder-key", options.founder_key, "Founder key file")->capture_default_str();
    app.add_option("--passphrase-fd", options.passphrase_fd, "Read the founder key passphrase from this descriptor");
}

int run(int argc, char** argv)
{
    GlobalOptions options;
    options.founder_key = default_founder_key_path();
    CLI::App app{"vaultctl: administer and use codex-vaultd"};
    app.require_subcommand(1);
    // Global options are accepted after the subcommand too: unknown options fall through.
    app.fallthrough();
    add_global_options(app, options);

    std::string name;
    auto* status = app.add_subcommand("status", "Show the vault's state");
    auto* whoami = app.add_subcommand("whoami", "Show the identity the daemon resolved for this process");
    auto* init = app.add_subcommand("init", "Create the founder key and enroll it (founder uid only)");
    auto* pin = app.add_subcommand("pin-transport-key",
                                   "Pin the transport key the daemon shows now (init does this; check the key first)");
    auto* secret = app.add_subcommand("secret", "Manage secrets (founder only)");
    secret->require_subcommand(1);
    auto* put = secret->add_subcommand("put", "Store a new secret; the value is read from stdin");
    auto* rotate = secret->add_subcommand("rotate", "Replace a secret's value; read from stdin");
    auto* rm = secret->add_subcommand("rm", "Delete a secret");
    auto* ls = secret->add_subcommand("ls", "List secret names, versions and times (never values)");
    for (auto* sub : {put, rotate, rm}) {
        sub->add_option("NAME", name, "Secret name")->required();
    }
    auto* policy_cmd = app.add_subcommand("policy", "Check and reload the policy files");
    policy_cmd->require_subcommand(1);
    auto* policy_check = policy_cmd->add_subcommand("check", "Validate policy files (no daemon needed)");
    std::vector<std::string> policy_paths;
    policy_check->add_option("PATH", policy_paths, "Policy files or folders")->required();
    auto* policy_reload = policy_cmd->add_subcommand("reload", "Make the daemon re-read its policy folder (founder)");
    SelectedCommand selected;
    add_grant_commands(app, *policy_cmd, options, selected);
    add_integrity_commands(app, options, selected);
    add_proxy_command(app, options, selected);
    add_run_command(app, options, selected);
    add_request_command(app, options, selected);

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        return code == 0 ? 0 : kExitUsage;
    }

    if (*status) {
        return cmd_status(options);
    }
    if (*whoami) {
        return cmd_whoami(options);
    }
    if (*init) {
        return cmd_init(options);
    }
    if (*pin) {
        return cmd_pin_transport_key(options);
    }
    if (*put) {
        return cmd_secret_write(options, name, false);
    }
    if (*rotate) {
        return cmd_secret_write(options, name, true);
    }
    if (*rm) {
        return cmd_secret_rm(options, name);
    }
    if (*ls) {
        return cmd_secret_ls(options);
    }
    if (*policy_check) {
        return cmd_policy_check(options, policy_paths);
    }
    if (*policy_reload) {
        return cmd_policy_reload(options);
    }
    if (selected) {
        return selected();
    }
    return kExitUsage;
}

const char* error_label(std::optional<ErrorCode> code)
{
    if (!code) {
        return "error";
    }
    switch (*code) {
    case ErrorCode::PermissionDenied:
        return "permission denied";
    case ErrorCode::Locked:
        return "vault locked";
    case ErrorCode::InvalidArgument:
        return "invalid argument";
    case ErrorCode::NotFound:
        return "not found";
    case ErrorCode::ApprovalRequired:
        return "approval required";
    case ErrorCode::Expired:
        return "expired";
    case ErrorCode::Unavailable:
        return "unavailable";
    case ErrorCode::IntegrityFailure:
        return "integrity failure";
    }
    return "error";
}

}  // namespace
}  // namespace codexvault::cli

int main(int argc, char** argv)
{
    using namespace codexvault::cli;
    try {
        return run(argc, argv);
    } catch (const CallError& e) {
        std::fprintf(stderr, "vaultctl: %s: %s\n", error_label(e.code()), e.what());
        return e.exit_code();
    } catch (const FounderKeyError& e) {
        std::fprintf(stderr, "vaultctl: founder key: %s\n", e.what());
        return e.kind() == FounderKeyError::Kind::WrongPassphrase ? 3 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "vaultctl: %s\n", e.what());
        return 1;
    }
}
