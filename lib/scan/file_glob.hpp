// The `files` filter of a rule: which file names it applies to.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace codexvault::scan {

// '*' any run of bytes, '?' one byte, ASCII caseless; matched against the base name.
bool glob_matches(std::string_view pattern, std::string_view name) noexcept;

// True for an empty list; "@env" matches env files (env_file_kind), anything else is a glob.
bool file_filter_matches(const std::vector<std::string>& patterns, std::string_view file_name) noexcept;

// The part after the last '/'.
std::string_view base_name(std::string_view path) noexcept;

}  // namespace codexvault::scan
