#pragma once

namespace codexvault::daemon {
inline constexpr const char* kVersion = "0.1.0";
}
