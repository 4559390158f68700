// Hand-written checks that a regular expression cannot express well, named from the rules
// file (`verify = "pem"`). A verifier sees the whole input and the candidate secret's span; it
// returns the span to report (it may grow it, as "pem" does to the END line) or nullopt to drop
// the candidate. Each looks at a bounded stretch of the input.
#pragma once

#include <optional>
#include <span>
#include <string_view>

#include "lib/scan/second_stage.hpp"

namespace codexvault::scan {

using Verifier = std::optional<re::Span> (*)(std::string_view input, re::Span secret);

// nullptr when no verifier has that name.
Verifier find_verifier(std::string_view name) noexcept;
std::span<const std::string_view> verifier_names() noexcept;

// Longest PEM body the "pem" verifier walks before giving up on finding the END line.
inline constexpr std::size_t kMaxPemBytes = 64 * 1024;

}  // namespace codexvault::scan
