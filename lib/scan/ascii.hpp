// ASCII byte classes and case folding for the scanner. Bytes, not characters: the scanner runs
// without UTF or locale (README.md, "Dialect"), so these never depend on one.
#pragma once

#include <string_view>

namespace codexvault::scan::ascii {

constexpr bool is_upper(char c) noexcept
{
    return c >= 'A' && c <= 'Z';
}

constexpr bool is_lower(char c) noexcept
{
    return c >= 'a' && c <= 'z';
}

constexpr char to_lower(char c) noexcept
{
    return is_upper(c) ? static_cast<char>(c + ('a' - 'A')) : c;
}

// Whether `text` contains `needle` ignoring ASCII case; `needle` is lower case.
constexpr bool contains_caseless(std::string_view text, std::string_view needle) noexcept
{
    if (needle.size() > text.size()) {
        return false;
    }
    for (std::size_t at = 0; at + needle.size() <= text.size(); ++at) {
        std::size_t i = 0;
        while (i < needle.size() && to_lower(text[at + i]) == needle[i]) {
            ++i;
        }
        if (i == needle.size()) {
            return true;
        }
    }
    return false;
}

}  // namespace codexvault::scan::ascii
