#include "daemon/daemon_config.hpp"

#include <CLI/CLI.hpp>
#include <toml++/toml.h>

#include <sstream>
#include <stdexcept>

#include "daemon/version.hpp"

namespace codexvault::daemon {

DaemonConfig parse_command_line(int argc, char** argv)
{
    DaemonConfig config;
    CLI::App app{"codex-vaultd: local secrets authority on D-Bus"};
    std::string bus;
    std::string state_dir = config.state_dir;
    std::string config_file;
    std::string policy_dir;
    app.add_option("--bus", bus, "D-Bus address to serve on (default: the system bus)");
    app.add_option("--policy-dir", policy_dir, "Policy folder (default: /etc/codex-vault/policy.d)");
    app.add_option("--state-dir", state_dir, "State folder (default: /var/lib/codex-vault)");
    app.add_option("--config", config_file, "Configuration file (default: /etc/codex-vault/codex-vaultd.toml)");
    app.set_version_flag("--version", kVersion);
    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        const int code = app.exit(e);
        throw CommandLineExit{code};
    }
    if (!bus.empty()) {
        config.bus_address = bus;
    }
    config.state_dir = state_dir;
    if (!config_file.empty()) {
        config.config_file = config_file;
        config.config_file_explicit = true;
    }
    if (!policy_dir.empty()) {
        config.policy_dir = policy_dir;
    }
    return config;
}

void load_config_file(DaemonConfig& config)
{
    std::error_code ec;
    if (!std::filesystem::exists(config.config_file, ec)) {
        if (config.config_file_explicit) {
            throw std::runtime_error("configuration file " + config.config_file.string() + " does not exist");
        }
        return;
    }
    toml::table table;
    try {
        table = toml::parse_file(config.config_file.string());
    } catch (const toml::parse_error& e) {
        std::ostringstream message;
        message << config.config_file.string() << ":" << e.source().begin.line << ":" << e.source().begin.column << ": "
                << e.description();
        throw std::runtime_error(message.str());
    }
    for (const auto& [key, node] : table) {
        const auto where = config.config_file.string() + ":" + std::to_string(node.source().begin.line);
        if (key == "founder_uid") {
            const auto value = node.value<std::int64_t>();
            if (!value || *value < 0 || *value > 0xfffffffe) {
                throw std::runtime_error(where + ": founder_uid must be a uid (integer)");
            }
            config.founder_uid = static_cast<uid_t>(*value);
        } else if (key == "approval_ttl") {
            const auto value = node.value<std::int64_t>();
            if (!value || *value < 10 || *value > 86400) {
                throw std::runtime_error(where + ": approval_ttl must be a number of seconds from 10 to 86400");
            }
            config.approval_ttl_usec = static_cast<std::uint64_t>(*value) * 1000 * 1000;
        } else if (key == "monitor") {
            const auto value = node.value<bool>();
            if (!value) {
                throw std::runtime_error(where + ": monitor must be true or false");
            }
            config.monitor = *value;
        } else if (key == "inject") {
            const auto value = node.value<bool>();
            if (!value) {
                throw std::runtime_error(where + ": inject must be true or false");
            }
            config.inject = *value;
        } else {
            throw std::runtime_error(where + ": unknown setting '" + std::string(key.str()) + "'");
        }
    }
}

}  // namespace codexvault::daemon
