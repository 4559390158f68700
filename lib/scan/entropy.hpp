// Shannon entropy of a byte string, in bits per byte (0 for an empty string, at most 8).
#pragma once

#include <string_view>

namespace codexvault::scan {

double shannon_entropy(std::string_view bytes) noexcept;

}  // namespace codexvault::scan
