// The placeholder policy: values that look like a credential's shape but are documentation,
// templates or code that fetches the real value elsewhere are not findings. See README.md
// ("Placeholders") for the full list and the reasoning behind each threshold.
#pragma once

#include <cstddef>
#include <string_view>

namespace codexvault::scan {

// value: the candidate secret; public_prefix: how many leading bytes are the format's fixed
// prefix (skipped by the repetition and sequence checks, which look at the random part).
bool is_placeholder(std::string_view value, std::size_t public_prefix) noexcept;

}  // namespace codexvault::scan
