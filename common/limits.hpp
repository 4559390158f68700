// Input limits both sides enforce; the daemon's check is the authoritative one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace codexvault::limits {

inline constexpr std::size_t kMaxSecretNameLength = 64;
inline constexpr std::size_t kMaxSecretBytes = 64 * 1024;
inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::uint64_t kMaxFounderProofLifetimeUsec = 60ULL * 1000 * 1000;

// Names become file names in the store, so the grammar excludes '/', leading dots and
// anything a shell or a log reader could misread: [A-Za-z0-9][A-Za-z0-9._-]{0,63}.
inline bool is_valid_secret_name(std::string_view name) noexcept
{
    if (name.empty() || name.size() > kMaxSecretNameLength) {
        return false;
    }
    auto alnum = [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    };
    if (!alnum(name.front())) {
        return false;
    }
    for (char c : name) {
        if (!alnum(c) && c != '.' && c != '_' && c != '-') {
            return false;
        }
    }
    return true;
}

}  // namespace codexvault::limits
