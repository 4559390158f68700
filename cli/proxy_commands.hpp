// `vaultctl proxy` and `vaultctl run`: a local HTTP endpoint for unmodified SDKs and agent CLIs,
// and the one-command recipe that starts one for a program (docs/proxy.md).
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "cli/cli_support.hpp"
#include "cli/proxy_core.hpp"

namespace codexvault::cli {

void add_proxy_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected);
void add_run_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected);

namespace proxy {
// A fresh token from the kernel's random source (libsodium).
std::string generate_token();
// The token from --token-file: a regular file owned by this uid and readable by nobody else,
// its content trimmed of surrounding whitespace and acceptable (is_acceptable_token).
std::string read_token_file(const std::string& path);
// The `client` settings of `names` from the policy folder the daemon reads, with the same
// parser and the same root-ownership rule; throws CallError naming what is missing.
std::vector<ClientVariables> client_settings_from_policy(const std::string& policy_dir,
                                                         const std::vector<std::string>& names);
}  // namespace proxy

}  // namespace codexvault::cli
