// Rate limits ("60/min") and their state. The limiter is GCRA (the generic cell rate
// algorithm, equivalent to a token bucket of `count` tokens refilled at count per period):
// its whole state is one timestamp, the theoretical arrival time, which persists trivially.
// A burst of `count` uses is allowed from idle, and the sustained rate is count per period
// (the emission interval period/count is rounded down to whole microseconds).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "policy/result.hpp"

namespace codexvault::policy {

struct Rate {
    std::uint32_t count = 1;        // 1..1,000,000
    std::uint64_t period_usec = 1;  // one of 1 s, 1 min, 1 h, 1 d
    friend bool operator==(const Rate&, const Rate&) = default;
};

// "<count>/<unit>", unit one of s, min, h, d (also sec, second, minute, hour, day).
Result<Rate> parse_rate(std::string_view text);
std::string format_rate(const Rate& rate);  // canonical: "60/min"

// tat: the stored theoretical arrival time (0 for a grant never used).
bool rate_allows(const Rate& rate, std::uint64_t tat_usec, std::uint64_t now_usec) noexcept;
// The state after one allowed use at now.
std::uint64_t rate_after_use(const Rate& rate, std::uint64_t tat_usec, std::uint64_t now_usec) noexcept;

}  // namespace codexvault::policy
