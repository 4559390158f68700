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

#include "cli/founder_key.hpp"
#include "cli/vault_client.hpp"
#include "common/bus_contract.hpp"
#include "common/limits.hpp"
#include "common/unique_fd.hpp"
#include "policy/policy_parser.hpp"

namespace codexvault::cli {
namespace {

constexpr int kExitLocalError = 1;
constexpr int kExitUsage = 2;

struct GlobalOptions {
    std::string bus;
    bool json = false;
    std::string founder_key;
    int passphrase_fd = -1;
};

std::string default_founder_key_path()
{
    if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && xdg[0] == '/') {
        return std::string(xdg) + "/codex-vault/founder.key";
    }
    if (const char* home = std::getenv("HOME"); home != nullptr && home[0] == '/') {
        return std::string(home) + "/.config/codex-vault/founder.key";
    }
    return "founder.key";
}

SensitiveBytes read_passphrase(const GlobalOptions& options, bool confirm)
{
    if (options.passphrase_fd >= 0) {
        return read_passphrase_from_fd(options.passphrase_fd);
    }
    return read_passphrase_from_terminal("Founder key passphrase: ", confirm);
}

FounderKeyPair load_founder_key(const GlobalOptions& options)
{
    const SensitiveBytes passphrase = read_passphrase(options, false);
    return load_founder_key_file(options.founder_key, passphrase.span());
}

std::string format_time(std::uint64_t usec)
{
    const auto seconds = static_cast<std::time_t>(usec / 1000000);
    struct tm utc {};
    gmtime_r(&seconds, &utc);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &utc);
    return text;
}

// Reads an a{sv} of the value types the daemon sends (s, b, u, t, au) into JSON.
nlohmann::json read_dictionary(sd_bus_message* message)
{
    nlohmann::json out = nlohmann::json::object();
    check_local(sd_bus_message_enter_container(message, 'a', "{sv}"), "read dictionary");
    for (;;) {
        int r = sd_bus_message_enter_container(message, 'e', "sv");
        check_local(r, "read entry");
        if (r == 0) {
            break;
        }
        const char* key = nullptr;
        check_local(sd_bus_message_read(message, "s", &key), "read key");
        char type = 0;
        const char* contents = nullptr;
        check_local(sd_bus_message_peek_type(message, &type, &contents), "peek value");
        const std::string signature = contents != nullptr ? contents : "";
        check_local(sd_bus_message_enter_container(message, 'v', contents), "read variant");
        if (signature == "s") {
            const char* value = nullptr;
            check_local(sd_bus_message_read(message, "s", &value), "read string");
            out[key] = value;
        } else if (signature == "b") {
            int value = 0;
            check_local(sd_bus_message_read(message, "b", &value), "read bool");
            out[key] = value != 0;
        } else if (signature == "u") {
            std::uint32_t value = 0;
            check_local(sd_bus_message_read(message, "u", &value), "read uint32");
            out[key] = value;
        } else if (signature == "t") {
            std::uint64_t value = 0;
            check_local(sd_bus_message_read(message, "t", &value), "read uint64");
            out[key] = value;
        } else if (signature == "au") {
            const void* data = nullptr;
            std::size_t size = 0;
            check_local(sd_bus_message_read_array(message, 'u', &data, &size), "read array");
            const auto* values = static_cast<const std::uint32_t*>(data);
            out[key] = std::vector<std::uint32_t>(values, values + size / sizeof(std::uint32_t));
        } else {
            check_local(sd_bus_message_skip(message, contents), "skip value");
        }
        check_local(sd_bus_message_exit_container(message), "close variant");
        check_local(sd_bus_message_exit_container(message), "close entry");
    }
    check_local(sd_bus_message_exit_container(message), "close dictionary");
    return out;
}

void print_dictionary(const nlohmann::json& dict, bool json)
{
    if (json) {
        std::cout << dict.dump(2) << '\n';
        return;
    }
    for (const auto& [key, value] : dict.items()) {
        std::cout << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << '\n';
    }
}

// The value travels in a pipe whose write end is closed before the call, so the daemon reads
// a complete value without blocking; it never appears in argv, the environment or a message.
UniqueFd value_pipe_from_stdin()
{
    SensitiveBytes value(limits::kMaxSecretBytes + 1);
    if (::isatty(STDIN_FILENO) != 0) {
        SensitiveBytes typed = read_passphrase_from_terminal("Secret value: ", false);
        value.resize(typed.size());
        std::memcpy(value.data(), typed.data(), typed.size());
    } else {
        std::size_t size = 0;
        while (size < value.capacity()) {
            const ssize_t n = ::read(STDIN_FILENO, value.data() + size, value.capacity() - size);
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                throw CallError(std::nullopt, kExitLocalError,
                                std::string("read secret from stdin: ") + std::strerror(errno));
            }
            if (n == 0) {
                break;
            }
            size += static_cast<std::size_t>(n);
        }
        value.resize(size);
    }
    const int invalid = error_info(ErrorCode::InvalidArgument).exit_code;
    if (value.size() == 0) {
        throw CallError(ErrorCode::InvalidArgument, invalid, "secret value is empty");
    }
    if (value.size() > limits::kMaxSecretBytes) {
        throw CallError(ErrorCode::InvalidArgument, invalid, "secret value exceeds 65536 bytes");
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        throw CallError(std::nullopt, kExitLocalError, std::string("pipe: ") + std::strerror(errno));
    }
    UniqueFd read_end(fds[0]);
    UniqueFd write_end(fds[1]);
    if (::fcntl(write_end.get(), F_SETPIPE_SZ, static_cast<int>(limits::kMaxSecretBytes)) < 0) {
        throw CallError(std::nullopt, kExitLocalError, std::string("size pipe: ") + std::strerror(errno));
    }
    std::size_t written = 0;
    while (written < value.size()) {
        const ssize_t n = ::write(write_end.get(), value.data() + written, value.size() - written);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            throw CallError(std::nullopt, kExitLocalError, std::string("write pipe: ") + std::strerror(errno));
        }
        written += static_cast<std::size_t>(n);
    }
    return read_end;
}

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
    check_local(sd_bus_message_skip(reply.get(), "aa{sv}"), "read grants");
    subject["grants"] = nlohmann::json::array();
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
    if (!options.json) {
        std::cout << (existing ? "enrolled the existing founder key " : "created and enrolled the founder key ")
                  << options.founder_key << '\n';
    } else {
        std::cout << nlohmann::json{{"founder_key", options.founder_key}, {"created", !existing}}.dump(2) << '\n';
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
    UniqueFd value = value_pipe_from_stdin();
    VaultClient client(options.bus);
    const FounderKeyPair key = load_founder_key(options);
    const std::uint32_t version = client.put_secret(key, name, value.get(), rotate);
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
                           {"integrity", s.integrity_ok ? "ok" : "failed"}});
        }
        std::cout << out.dump(2) << '\n';
        return 0;
    }
    std::printf("%-32s %7s  %-20s  %-20s  %s\n", "NAME", "VERSION", "CREATED", "ROTATED", "INTEGRITY");
    for (const auto& s : secrets) {
        std::printf("%-32s %7u  %-20s  %-20s  %s\n", s.name.c_str(), s.version, format_time(s.created_usec).c_str(),
                    format_time(s.rotated_usec).c_str(), s.integrity_ok ? "ok" : "FAILED");
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
