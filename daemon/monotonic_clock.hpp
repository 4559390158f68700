// The daemon's clocks in microseconds; the pure core takes these as parameters.
#pragma once

#include <time.h>

#include <cstdint>

namespace codexvault::daemon::clock {

inline std::uint64_t read_usec(clockid_t id) noexcept
{
    struct timespec ts {};
    ::clock_gettime(id, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000000ULL + static_cast<std::uint64_t>(ts.tv_nsec) / 1000ULL;
}

inline std::uint64_t monotonic_usec() noexcept
{
    return read_usec(CLOCK_MONOTONIC);
}

inline std::uint64_t realtime_usec() noexcept
{
    return read_usec(CLOCK_REALTIME);
}

}  // namespace codexvault::daemon::clock
