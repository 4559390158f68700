// A provider's ca_file, read with the rules policy files follow: a regular file (no symlink),
// owned by root, not writable by group or others, at most 1 MiB. The bytes go to libcurl as a
// blob, so the file is opened once, by the daemon, and not again by path.
#pragma once

#include <string>

#include "policy/result.hpp"

namespace codexvault::egress {

inline constexpr std::size_t kMaxCaBundleBytes = 1024 * 1024;

policy::Result<std::string> read_ca_bundle(const std::string& path);

}  // namespace codexvault::egress
