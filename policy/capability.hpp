// Capabilities: typed strings with a fixed grammar.
//
//   secret:NAME:inject      hand secret NAME to one approved process (inject grants only)
//   provider:NAME:request   have the daemon make a request to provider NAME with its secret
//   ingest:scan             run the ingest scanner on a directory the caller passes
//   audit:read              read the audit log
//   status:read             read daemon status
//
// NAME follows the secret-name grammar [A-Za-z0-9][A-Za-z0-9._-]{0,63}. Nothing else parses.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/result.hpp"

namespace codexvault::policy {

enum class CapabilityKind : std::uint8_t {
    SecretInject,
    ProviderRequest,
    IngestScan,
    AuditRead,
    StatusRead,
};
inline constexpr std::size_t kCapabilityKinds = 5;

// True for the kinds that carry a NAME.
constexpr bool takes_name(CapabilityKind kind) noexcept
{
    return kind == CapabilityKind::SecretInject || kind == CapabilityKind::ProviderRequest;
}

struct Capability {
    CapabilityKind kind = CapabilityKind::StatusRead;
    std::string name;  // secret or provider name; empty for the kinds without one

    static Capability secret_inject(std::string_view secret)
    {
        return {CapabilityKind::SecretInject, std::string(secret)};
    }
    static Capability provider_request(std::string_view provider)
    {
        return {CapabilityKind::ProviderRequest, std::string(provider)};
    }
    static Capability of(CapabilityKind kind) { return {kind, {}}; }

    [[nodiscard]] std::string to_string() const;
    friend bool operator==(const Capability&, const Capability&) = default;
};

Result<Capability> parse_capability(std::string_view text);

}  // namespace codexvault::policy
