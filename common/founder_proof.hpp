// The exact bytes a founder signs. vaultctl builds them to sign, the daemon to verify; any
// change here is a protocol change and must bump the domain tag.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/bytes.hpp"

namespace codexvault {

struct FounderProof {
    std::vector<std::uint8_t> nonce;        // issued by the daemon's GetNonce, single-use
    std::uint64_t expires_realtime_usec{};  // CLOCK_REALTIME; at most 60 s after signing
    std::vector<std::uint8_t> signature;    // Ed25519 (detached) over founder_signing_payload()
};

inline constexpr std::string_view kFounderProofDomain = "codex-vault/founder-op/v1";

namespace detail {
// A field: its length (u64 little-endian), then its bytes.
inline void append_field(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> field)
{
    bytes::append_le<std::uint64_t>(out, field.size());
    out.insert(out.end(), field.begin(), field.end());
}
inline void append_field(std::vector<std::uint8_t>& out, std::string_view text)
{
    append_field(out, std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()));
}
}  // namespace detail

// Length-prefixed fields, so no two different operations can produce the same bytes:
// domain, operation (bus method name), argument count, each argument, nonce, expiry.
inline std::vector<std::uint8_t> founder_signing_payload(std::string_view operation,
                                                         std::span<const std::string> arguments,
                                                         std::span<const std::uint8_t> nonce,
                                                         std::uint64_t expires_realtime_usec)
{
    std::vector<std::uint8_t> out;
    detail::append_field(out, kFounderProofDomain);
    detail::append_field(out, operation);
    bytes::append_le<std::uint64_t>(out, arguments.size());
    for (const auto& argument : arguments) {
        detail::append_field(out, argument);
    }
    detail::append_field(out, nonce);
    bytes::append_le<std::uint64_t>(out, expires_realtime_usec);
    return out;
}

}  // namespace codexvault
