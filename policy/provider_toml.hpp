// The TOML side of a provider's transport keys (ca_file, pins, allow_private_address, timeouts,
// max_request_bytes, max_response_bytes, client), kept out of policy_parser.cpp so that file
// keeps one job. Internal to policy/: only the parser includes it.
#pragma once

#include <toml++/toml.h>

#include <string>
#include <string_view>
#include <vector>

#include "policy/provider.hpp"

namespace codexvault::policy {

struct FieldError {
    toml::source_region where;
    std::string message;
};

enum class FieldStatus { NotTransport, Ok, Failed };

// Parses `key = node` into `out` when key is a transport key; `owner` ("provider \"x\"") starts
// every message. On Failed, `errors` has at least one entry.
FieldStatus parse_transport_field(std::string_view key, const toml::node& node, const std::string& owner, Provider& out,
                                  std::vector<FieldError>& errors);

// Checks between keys, once the whole table is read (e.g. connect longer than total).
void check_transport(const Provider& provider, const toml::source_region& where, const std::string& owner,
                     std::vector<FieldError>& errors);

// The keys a provider table may hold, for "unknown key" messages.
inline constexpr std::string_view kProviderKeys =
    "origin, allow, secret, inject, ca_file, pins, allow_private_address, timeouts, max_request_bytes, "
    "max_response_bytes, client, description";

}  // namespace codexvault::policy
