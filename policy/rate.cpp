#include "policy/rate.hpp"

#include <array>

#include "policy/policy_limits.hpp"
#include "policy/text.hpp"
#include "policy/time_units.hpp"

namespace codexvault::policy {

namespace {

struct PeriodName {
    std::string_view name;
    std::uint64_t usec;
};
constexpr std::array<PeriodName, 10> kPeriods{{
    {"s", kUsecPerSecond},
    {"sec", kUsecPerSecond},
    {"second", kUsecPerSecond},
    {"min", kUsecPerMinute},
    {"minute", kUsecPerMinute},
    {"h", kUsecPerHour},
    {"hour", kUsecPerHour},
    {"d", kUsecPerDay},
    {"day", kUsecPerDay},
    {"m", 0},  // ambiguous (minute or month): refused with a hint
}};

std::uint64_t interval(const Rate& rate) noexcept
{
    const std::uint64_t t = rate.period_usec / rate.count;
    return t == 0 ? 1 : t;
}

}  // namespace

Result<Rate> parse_rate(std::string_view text)
{
    const std::string shown = quote(text, 32);
    const std::size_t slash = text.find('/');
    if (slash == std::string_view::npos) {
        return make_error("invalid rate " + shown + ": expected <count>/<unit>, e.g. \"60/min\"");
    }
    const auto count = parse_decimal(text.substr(0, slash), limits::kMaxRateCount);
    if (!count || *count == 0) {
        return make_error("invalid rate " + shown + ": count must be a whole number from 1 to 1000000");
    }
    const std::string_view unit = text.substr(slash + 1);
    for (const auto& period : kPeriods) {
        if (period.name == unit) {
            if (period.usec == 0) {
                return make_error("invalid rate " + shown + ": \"m\" is ambiguous, write \"min\"");
            }
            return Rate{static_cast<std::uint32_t>(*count), period.usec};
        }
    }
    return make_error("invalid rate " + shown + ": unit must be one of s, min, h, d");
}

std::string format_rate(const Rate& rate)
{
    const char* unit = "s";
    if (rate.period_usec == kUsecPerMinute) {
        unit = "min";
    } else if (rate.period_usec == kUsecPerHour) {
        unit = "h";
    } else if (rate.period_usec == kUsecPerDay) {
        unit = "d";
    }
    return std::to_string(rate.count) + "/" + unit;
}

bool rate_allows(const Rate& rate, std::uint64_t tat_usec, std::uint64_t now_usec) noexcept
{
    const std::uint64_t t = interval(rate);
    const std::uint64_t tolerance = rate.period_usec > t ? rate.period_usec - t : 0;
    const std::uint64_t tat = tat_usec > now_usec ? tat_usec : now_usec;
    return tat - now_usec <= tolerance;
}

std::uint64_t rate_after_use(const Rate& rate, std::uint64_t tat_usec, std::uint64_t now_usec) noexcept
{
    const std::uint64_t tat = tat_usec > now_usec ? tat_usec : now_usec;
    return saturating_add(tat, interval(rate));
}

}  // namespace codexvault::policy
