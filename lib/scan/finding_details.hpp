// The parts of a Finding derived from the secret and its position: preview, fingerprint,
// line and column.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "lib/scan/finding.hpp"

namespace codexvault::scan {

// At most min(public_prefix, 16, size / 3) leading bytes (non-printable ones as '?'), then
// "…(N)" with the length in bytes.
std::string redacted_preview(std::string_view secret, std::size_t public_prefix);

// 32 lowercase hex digits (see Finding::fingerprint).
std::string keyed_fingerprint(std::string_view secret, std::span<const std::uint8_t, kFingerprintKeyBytes> key);

// Clears everything derived from the value (length, preview, entropy, fingerprint) and sets the
// preview to kWithheldPreview: what an env file's findings carry (docs/ingest.md, "Env files").
void withhold_value(Finding& finding);

// Line and column of increasing offsets in one pass over the text (counting newlines up to
// the last offset asked, whatever the line lengths).
class LinePositions {
public:
    explicit LinePositions(std::string_view text) : text_(text) {}
    // offset must not be smaller than on the previous call. Returns {line, column}, 1-based.
    std::pair<std::size_t, std::size_t> locate(std::size_t offset);

private:
    std::string_view text_;
    std::size_t pos_ = 0;
    std::size_t line_ = 1;
    std::size_t line_start_ = 0;
};

}  // namespace codexvault::scan
