// `vaultctl request PROVIDER METHOD PATH`: one mediated provider request, its body on stdout.
#pragma once

#include "cli/cli_support.hpp"

namespace codexvault::cli {

// Exit statuses of `vaultctl request` beyond the vault's own (vault_error.hpp: 3-10).
inline constexpr int kExitHttpStatus = 11;  // the provider answered with a status outside 200-299
inline constexpr int kExitTruncated = 12;   // the body on stdout is not the whole response

void add_request_command(CLI::App& app, const GlobalOptions& options, SelectedCommand& selected);

}  // namespace codexvault::cli
