#include "policy/time_units.hpp"

#include <array>
#include <cstdio>

#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

struct Unit {
    char symbol;
    std::uint64_t usec;
};
constexpr std::array<Unit, 4> kUnits{
    {{'d', kUsecPerDay}, {'h', kUsecPerHour}, {'m', kUsecPerMinute}, {'s', kUsecPerSecond}}};

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept
{
    y -= m <= 2 ? 1 : 0;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const auto yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}

struct Civil {
    std::int64_t year;
    unsigned month;
    unsigned day;
};

Civil civil_from_days(std::int64_t z) noexcept
{
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const auto doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    const std::int64_t y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    const unsigned d = doy - (153 * mp + 2) / 5 + 1;
    const unsigned m = mp < 10 ? mp + 3 : mp - 9;
    return {y + (m <= 2 ? 1 : 0), m, d};
}

unsigned days_in_month(std::int64_t year, unsigned month) noexcept
{
    static constexpr std::array<unsigned, 12> kDays{31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2) {
        const bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        return leap ? 29 : 28;
    }
    return kDays[month - 1];
}

}  // namespace

Result<std::uint64_t> parse_duration(std::string_view text)
{
    const std::string shown = quote(text, 32);
    if (text.size() < 2) {
        return make_error("invalid duration " + shown + ": expected a number and a unit (s, m, h, d), e.g. \"15m\"");
    }
    const char symbol = text.back();
    const Unit* unit = nullptr;
    for (const auto& candidate : kUnits) {
        if (candidate.symbol == symbol) {
            unit = &candidate;
        }
    }
    if (unit == nullptr) {
        return make_error("invalid duration " + shown + ": unit must be one of s, m, h, d");
    }
    const auto count = parse_decimal(text.substr(0, text.size() - 1), kMaxDurationUsec / unit->usec);
    if (!count) {
        return make_error("invalid duration " + shown +
                          ": expected a whole number without sign or leading zeros, at most 3650d");
    }
    if (*count == 0) {
        return make_error("invalid duration " + shown + ": must be at least 1s");
    }
    return *count * unit->usec;
}

std::string format_timestamp(std::uint64_t usec)
{
    const std::uint64_t seconds = usec / kUsecPerSecond;
    const auto micros = static_cast<unsigned>(usec % kUsecPerSecond);
    const auto days = static_cast<std::int64_t>(seconds / 86400);
    const auto in_day = static_cast<unsigned>(seconds % 86400);
    const Civil civil = civil_from_days(days);
    std::array<char, 64> buffer{};
    int written = 0;
    if (micros == 0) {
        written = std::snprintf(buffer.data(), buffer.size(), "%04lld-%02u-%02uT%02u:%02u:%02uZ",
                                static_cast<long long>(civil.year), civil.month, civil.day, in_day / 3600,
                                in_day / 60 % 60, in_day % 60);
    } else {
        written = std::snprintf(buffer.data(), buffer.size(), "%04lld-%02u-%02uT%02u:%02u:%02u.%06uZ",
                                static_cast<long long>(civil.year), civil.month, civil.day, in_day / 3600,
                                in_day / 60 % 60, in_day % 60, micros);
    }
    return std::string(buffer.data(), written > 0 ? static_cast<std::size_t>(written) : 0);
}

std::optional<std::uint64_t> civil_to_usec(const CivilTime& time) noexcept
{
    if (time.year < 1970 || time.year > 9999 || time.month < 1 || time.month > 12 || time.day < 1 ||
        time.day > days_in_month(time.year, time.month) || time.hour > 23 || time.minute > 59 || time.second > 60 ||
        time.nanosecond > 999'999'999 || time.offset_minutes < -24 * 60 || time.offset_minutes > 24 * 60) {
        return std::nullopt;
    }
    const unsigned second = time.second == 60 ? 59 : time.second;
    const std::int64_t days = days_from_civil(time.year, time.month, time.day);
    const std::int64_t seconds = days * 86400 + static_cast<std::int64_t>(time.hour) * 3600 +
                                 static_cast<std::int64_t>(time.minute) * 60 + static_cast<std::int64_t>(second) -
                                 static_cast<std::int64_t>(time.offset_minutes) * 60;
    if (seconds < 0) {
        return std::nullopt;
    }
    return static_cast<std::uint64_t>(seconds) * kUsecPerSecond + time.nanosecond / 1000;
}

}  // namespace codexvault::policy
