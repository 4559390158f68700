// How the daemon talks to a provider: trust (CA bundle, SPKI pins), the private-address guard,
// timeouts and size limits, and what `vaultctl run` tells a provider's clients. Every field has
// a safe default, so a provider file written before these keys existed means: system CA store,
// no pins, public addresses only, connect 10 s, idle 300 s, no total limit, 32 MiB up,
// 256 MiB down. Pure validation here; the daemon's egress module applies them.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/result.hpp"

namespace codexvault::policy {

inline constexpr std::uint64_t kMiB = 1024 * 1024;
inline constexpr std::uint64_t kGiB = 1024 * kMiB;

struct Timeouts {
    std::uint64_t connect_usec = 10 * 1'000'000ULL;  // TCP + TLS handshake
    std::uint64_t idle_usec = 300 * 1'000'000ULL;    // longest pause between bytes either way
    std::optional<std::uint64_t> total_usec;         // whole exchange; none by default
    friend bool operator==(const Timeouts&, const Timeouts&) = default;
};

struct Transport {
    std::string ca_file;            // absolute path of a PEM bundle; empty: the system store
    std::vector<std::string> pins;  // "sha256//BASE64" SPKI pins; empty: no pinning
    bool allow_private_address = false;
    Timeouts timeouts;
    std::uint64_t max_request_bytes = 32 * kMiB;
    std::uint64_t max_response_bytes = 256 * kMiB;
    friend bool operator==(const Transport&, const Transport&) = default;
};

// What `vaultctl run` sets in a client's environment: BASE_URL_ENV = proxy URL + base_path,
// API_KEY_ENV = the proxy's token.
struct ClientSettings {
    std::string base_url_env;  // e.g. OPENAI_BASE_URL
    std::string base_path;     // e.g. "/v1"; empty for none
    std::string api_key_env;   // e.g. OPENAI_API_KEY
    friend bool operator==(const ClientSettings&, const ClientSettings&) = default;
};

inline constexpr std::size_t kMaxPins = 16;
inline constexpr std::uint64_t kMaxRequestBytesLimit = 4 * kGiB;
inline constexpr std::uint64_t kMaxResponseBytesLimit = 64 * kGiB;
inline constexpr std::size_t kMaxEnvNameLength = 64;
inline constexpr std::size_t kMaxBasePathLength = 256;

// "sha256//" + standard base64 (with its '=' padding) of a 32-byte SHA-256 digest.
Result<std::string> parse_pin(std::string_view text);
// An absolute path without empty, "." or ".." segments or control bytes, at most 4096 bytes.
// Who owns the file is checked by the daemon when it reads it.
Result<std::string> parse_ca_file(std::string_view text);
// [A-Z_][A-Z0-9_]* (at most 64), and not one the dynamic loader reads (LD_*).
Result<std::string> parse_env_name(std::string_view text, std::string_view what);
// "" or a clean absolute path without a trailing '/', at most 256 bytes.
Result<std::string> parse_base_path(std::string_view text);
// A byte count: an integer, or a string "<n>", "<n>KiB", "<n>MiB" or "<n>GiB", at most `max`.
Result<std::uint64_t> parse_byte_size(std::string_view text, std::uint64_t max, std::string_view what);
Result<std::uint64_t> check_byte_size(std::int64_t value, std::uint64_t max, std::string_view what);

}  // namespace codexvault::policy
