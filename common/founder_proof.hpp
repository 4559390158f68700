// The exact bytes a founder signs. vaultctl builds them to sign, the daemon to verify; any
// change here is a protocol change and must bump the domain tag.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace codexvault {

struct FounderProof {
    std::vector<std::uint8_t> nonce;        // issued by the daemon's GetNonce, single-use
    std::uint64_t expires_realtime_usec{};  // CLOCK_REALTIME; at most 60 s after signing
    std::vector<std::uint8_t> signature;    // Ed25519 (detached) over founder_signing_payload()
};

inline constexpr std::string_view kFounderProofDomain = "codex-vault/founder-op/v1";

namespace detail {
inline void append_u64_le(std::vector<std::uint8_t>& out, std::uint64_t value)
{
    for (int i = 0; i < 8; ++i) {
        out.push_back(static_cast<std::uint8_t>(value >> (8 * i)));
    }
}
inline void append_field(std::vector<std::uint8_t>& out, std::span<const std::uint8_t> bytes)
{
    append_u64_le(out, bytes.size());
    out.insert(out.end(), bytes.begin(), bytes.end());
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
    detail::append_u64_le(out, arguments.size());
    for (const auto& argument : arguments) {
        detail::append_field(out, argument);
    }
    detail::append_field(out, nonce);
    detail::append_u64_le(out, expires_realtime_usec);
    return out;
}

}  // namespace codexvault
