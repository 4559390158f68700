// Error vocabulary of the bus contract: stable D-Bus error names and vaultctl exit codes.
#pragma once

#include <array>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace codexvault {

enum class ErrorCode {
    PermissionDenied,
    Locked,
    InvalidArgument,
    NotFound,
    ApprovalRequired,
    Expired,
    Unavailable,
    IntegrityFailure,
};

struct ErrorInfo {
    ErrorCode code;
    const char* bus_name;
    int exit_code;  // vaultctl's documented exit status for this error
};

// vaultctl exits 1 for errors that are not vault errors (bus unreachable, bad local input)
// and 2 for command-line usage errors; vault errors start at 3.
inline constexpr std::array<ErrorInfo, 8> kErrors{{
    {ErrorCode::PermissionDenied, "org.codexvault.Vault1.Error.PermissionDenied", 3},
    {ErrorCode::Locked, "org.codexvault.Vault1.Error.Locked", 4},
    {ErrorCode::ApprovalRequired, "org.codexvault.Vault1.Error.ApprovalRequired", 5},
    {ErrorCode::NotFound, "org.codexvault.Vault1.Error.NotFound", 6},
    {ErrorCode::InvalidArgument, "org.codexvault.Vault1.Error.InvalidArgument", 7},
    {ErrorCode::Unavailable, "org.codexvault.Vault1.Error.Unavailable", 8},
    {ErrorCode::IntegrityFailure, "org.codexvault.Vault1.Error.IntegrityFailure", 9},
    {ErrorCode::Expired, "org.codexvault.Vault1.Error.Expired", 10},
}};

inline const ErrorInfo& error_info(ErrorCode code)
{
    for (const auto& info : kErrors) {
        if (info.code == code) {
            return info;
        }
    }
    return kErrors[0];  // unreachable: every enumerator is in the table
}

inline std::optional<ErrorCode> error_from_bus_name(std::string_view name)
{
    for (const auto& info : kErrors) {
        if (name == info.bus_name) {
            return info.code;
        }
    }
    return std::nullopt;
}

// The one exception type that carries a vault error to the bus reply. Its message is sent to
// the caller, so it must never contain secret bytes.
class VaultError : public std::runtime_error {
public:
    VaultError(ErrorCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
    [[nodiscard]] ErrorCode code() const noexcept { return code_; }

private:
    ErrorCode code_;
};

}  // namespace codexvault
