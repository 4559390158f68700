// Durations ("30s", "15m", "2h", "7d") and timestamps. Time is always the caller's: a uint64
// count of microseconds since the Unix epoch (CLOCK_REALTIME in the daemon, so that expiry
// survives a restart).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "policy/result.hpp"

namespace codexvault::policy {

inline constexpr std::uint64_t kUsecPerSecond = 1'000'000;
inline constexpr std::uint64_t kUsecPerMinute = 60 * kUsecPerSecond;
inline constexpr std::uint64_t kUsecPerHour = 60 * kUsecPerMinute;
inline constexpr std::uint64_t kUsecPerDay = 24 * kUsecPerHour;
inline constexpr std::uint64_t kMaxDurationUsec = 3650 * kUsecPerDay;  // ten years

// <count><unit>, unit one of s m h d, count a decimal without leading zeros, 1s <= d <= 3650d.
// Returns microseconds.
Result<std::uint64_t> parse_duration(std::string_view text);

// UTC, RFC 3339: "2025-06-01T12:00:00Z", with ".ffffff" when the microseconds are not zero.
std::string format_timestamp(std::uint64_t usec);

// A civil UTC date-time plus offset -> microseconds since the epoch; nullopt before 1970 or
// beyond year 9999 or out of range fields.
struct CivilTime {
    int year = 1970;
    unsigned month = 1;  // 1..12
    unsigned day = 1;    // 1..31 (checked against the month)
    unsigned hour = 0;
    unsigned minute = 0;
    unsigned second = 0;  // 0..59 (a leap second 60 is folded onto 59)
    std::uint32_t nanosecond = 0;
    int offset_minutes = 0;  // local time = UTC + offset
};
std::optional<std::uint64_t> civil_to_usec(const CivilTime& time) noexcept;

// a + b, saturating at UINT64_MAX (an expiry far in the future stays far in the future).
constexpr std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) noexcept
{
    return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

}  // namespace codexvault::policy
