#include "lib/scan/file_glob.hpp"

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "lib/scan/ascii.hpp"
#include "lib/scan/env_files.hpp"

namespace codexvault::scan {

std::string_view base_name(std::string_view path) noexcept
{
    const auto slash = path.rfind('/');
    return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

bool glob_matches(std::string_view pattern, std::string_view name) noexcept
{
    // Iterative matching with one backtrack point (the last '*'): linear in practice, never
    // exponential.
    std::size_t p = 0;
    std::size_t n = 0;
    std::size_t star = std::string_view::npos;
    std::size_t resume = 0;
    while (n < name.size()) {
        if (p < pattern.size() && (pattern[p] == '?' || ascii::to_lower(pattern[p]) == ascii::to_lower(name[n]))) {
            ++p;
            ++n;
        } else if (p < pattern.size() && pattern[p] == '*') {
            star = p++;
            resume = n;
        } else if (star != std::string_view::npos) {
            p = star + 1;
            n = ++resume;
        } else {
            return false;
        }
    }
    while (p < pattern.size() && pattern[p] == '*') {
        ++p;
    }
    return p == pattern.size();
}

bool file_filter_matches(const std::vector<std::string>& patterns, std::string_view file_name) noexcept
{
    if (patterns.empty()) {
        return true;
    }
    const std::string_view name = base_name(file_name);
    for (const auto& pattern : patterns) {
        if (pattern == "@env" ? env_file_kind(file_name) != EnvFileKind::NotEnv : glob_matches(pattern, name)) {
            return true;
        }
    }
    return false;
}

}  // namespace codexvault::scan
