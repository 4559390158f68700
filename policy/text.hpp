// Small text helpers shared by the parsers: name grammar, UTF-8 validation, hex, and a quoting
// function that makes untrusted text safe to put in an error message or an explanation.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace codexvault::policy {

// Names of principals, providers, grants and secrets: [A-Za-z0-9][A-Za-z0-9._-]{0,63}
// (common/limits.hpp is_valid_secret_name).
bool is_valid_name(std::string_view name) noexcept;

// Offset of the first byte that is not part of well-formed UTF-8 (overlongs, surrogates and
// code points above U+10FFFF are ill-formed), or nullopt when the whole text is valid.
std::optional<std::size_t> find_invalid_utf8(std::string_view text) noexcept;

// "..." around the text; bytes outside printable ASCII become \xNN, '"' and '\' are escaped.
// At most max_bytes of input are shown, then "...".
std::string quote(std::string_view text, std::size_t max_bytes = 80);

std::string to_hex(std::span<const std::uint8_t> bytes);
bool is_lower_hex(std::string_view text) noexcept;

// Decimal without sign or leading zeros (except "0"); nullopt when out of range or malformed.
std::optional<std::uint64_t> parse_decimal(std::string_view text, std::uint64_t max) noexcept;

// Absolute path with no empty, "." or ".." segments, no control bytes, at most max_length.
// "/" alone is accepted only when allow_root is set.
bool is_clean_absolute_path(std::string_view path, std::size_t max_length, bool allow_root) noexcept;

}  // namespace codexvault::policy
