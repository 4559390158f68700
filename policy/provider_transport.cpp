#include "policy/provider_transport.hpp"

#include <algorithm>
#include <array>

#include "policy/policy_limits.hpp"
#include "policy/request_pattern.hpp"
#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

int base64_value(char c) noexcept
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}

struct SizeUnit {
    std::string_view suffix;
    std::uint64_t factor;
};
constexpr std::array<SizeUnit, 3> kSizeUnits{{{"GiB", kGiB}, {"MiB", kMiB}, {"KiB", 1024}}};

}  // namespace

Result<std::string> parse_pin(std::string_view text)
{
    constexpr std::string_view kPrefix = "sha256//";
    // 32 bytes are 43 base64 characters and one '=' of padding.
    constexpr std::size_t kEncoded = 44;
    const std::string shown = quote(text);
    if (!text.starts_with(kPrefix)) {
        return make_error("pin " + shown + " must be sha256//BASE64 (the SHA-256 of the server's public key, SPKI)");
    }
    const std::string_view encoded = text.substr(kPrefix.size());
    if (encoded.size() != kEncoded || encoded.back() != '=' ||
        !std::all_of(encoded.begin(), encoded.end() - 1, [](char c) { return base64_value(c) >= 0; })) {
        return make_error("pin " + shown +
                          " must be sha256// followed by 44 characters of standard base64 (a 32-byte digest)");
    }
    // The last data character carries 2 bits beyond the 256 and they must be zero, so each digest
    // has exactly one spelling and equal pins compare equal.
    if ((base64_value(encoded[kEncoded - 2]) & 0x3) != 0) {
        return make_error("pin " + shown + " is not a canonical base64 encoding of a 32-byte digest");
    }
    return std::string(text);
}

Result<std::string> parse_ca_file(std::string_view text)
{
    if (!is_clean_absolute_path(text, limits::kMaxPathLength, false)) {
        return make_error("ca_file " + quote(text) +
                          " must be an absolute path without empty, '.' or '..' segments or control characters");
    }
    return std::string(text);
}

Result<std::string> parse_env_name(std::string_view text, std::string_view what)
{
    const auto ok_char = [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    };
    if (text.empty() || text.size() > kMaxEnvNameLength || (text.front() >= '0' && text.front() <= '9') ||
        !std::all_of(text.begin(), text.end(), ok_char)) {
        return make_error(std::string(what) + " " + quote(text) +
                          " must be an environment variable name: 1-64 of [A-Z0-9_], not starting with a digit");
    }
    if (text.starts_with("LD_")) {
        return make_error(std::string(what) + " " + quote(text) + " is read by the dynamic loader and cannot be set");
    }
    return std::string(text);
}

Result<std::string> parse_base_path(std::string_view text)
{
    if (text.empty()) {
        return std::string();
    }
    const auto clean = clean_request_path(text);
    if (text.size() > kMaxBasePathLength || text.back() == '/' || !clean || *clean != text) {
        return make_error("client.base_path " + quote(text) +
                          " must be empty or an absolute path like \"/v1\" (no trailing '/', no '.' or '..' "
                          "segments, no query), at most 256 bytes");
    }
    return std::string(text);
}

Result<std::uint64_t> check_byte_size(std::int64_t value, std::uint64_t max, std::string_view what)
{
    if (value < 0 || static_cast<std::uint64_t>(value) > max) {
        return make_error(std::string(what) + " must be from 0 to " + std::to_string(max) + " bytes");
    }
    return static_cast<std::uint64_t>(value);
}

Result<std::uint64_t> parse_byte_size(std::string_view text, std::uint64_t max, std::string_view what)
{
    std::uint64_t factor = 1;
    std::string_view digits = text;
    for (const SizeUnit& unit : kSizeUnits) {
        if (text.ends_with(unit.suffix)) {
            factor = unit.factor;
            digits = text.substr(0, text.size() - unit.suffix.size());
            break;
        }
    }
    const auto count = parse_decimal(digits, max / factor);
    if (!count) {
        return make_error(std::string(what) + " " + quote(text) + " must be a byte count (e.g. 1048576, \"512KiB\", " +
                          "\"32MiB\", \"1GiB\") of at most " + std::to_string(max) + " bytes");
    }
    return *count * factor;
}

}  // namespace codexvault::policy
