#include "daemon/integrity/lock_state.hpp"

#include <array>
#include <charconv>

namespace codexvault::store {
namespace {

constexpr std::string_view kHeaderLine = "codex-vault-lock 1";
constexpr std::array<IncidentStep, 5> kStepOrder{IncidentStep::Locked, IncidentStep::AccessRevoked,
                                                 IncidentStep::SecretsMarked, IncidentStep::AuditSealed,
                                                 IncidentStep::SignalEmitted};

bool is_printable(char c) noexcept
{
    return c >= 0x20 && c <= 0x7e;
}

template <typename T>
std::optional<T> parse_decimal(std::string_view text)
{
    if (text.empty() || (text.size() > 1 && text[0] == '0')) {
        return std::nullopt;
    }
    T value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (error != std::errc() || end != text.data() + text.size()) {
        return std::nullopt;
    }
    return value;
}

// Takes the next line (without '\n') if it starts with `prefix`; nullopt otherwise.
std::optional<std::string_view> take_line(std::string_view& rest, std::string_view prefix)
{
    const std::size_t newline = rest.find('\n');
    if (newline == std::string_view::npos) {
        return std::nullopt;
    }
    const std::string_view line = rest.substr(0, newline);
    if (!line.starts_with(prefix)) {
        return std::nullopt;
    }
    rest.remove_prefix(newline + 1);
    return line.substr(prefix.size());
}

}  // namespace

const char* to_string(IncidentStep step) noexcept
{
    switch (step) {
    case IncidentStep::Locked:
        return "locked";
    case IncidentStep::AccessRevoked:
        return "access-revoked";
    case IncidentStep::SecretsMarked:
        return "secrets-marked";
    case IncidentStep::AuditSealed:
        return "audit-sealed";
    case IncidentStep::SignalEmitted:
        return "signal-emitted";
    }
    return "unknown";
}

std::optional<IncidentStep> next_incomplete_step(const LockState& state) noexcept
{
    const std::uint32_t required = state.incident ? kAllIncidentSteps
                                                  : static_cast<std::uint32_t>(IncidentStep::Locked) |
                                                        static_cast<std::uint32_t>(IncidentStep::SignalEmitted);
    for (const IncidentStep step : kStepOrder) {
        if ((required & static_cast<std::uint32_t>(step)) != 0 && !state.done(step)) {
            return step;
        }
    }
    return std::nullopt;
}

std::string sanitize_lock_reason(std::string_view reason)
{
    std::string clean(reason.substr(0, kMaxLockReasonBytes));
    for (char& c : clean) {
        if (!is_printable(c)) {
            c = '?';
        }
    }
    return clean.empty() ? std::string("unspecified") : clean;
}

std::string encode_lock_state(const LockState& state)
{
    std::string text(kHeaderLine);
    text += "\nsince " + std::to_string(state.locked_since_usec);
    text += std::string("\nincident ") + (state.incident ? "yes" : "no");
    text += "\nsteps " + std::to_string(state.steps_done & kAllIncidentSteps);
    text += "\nreason " + sanitize_lock_reason(state.reason) + "\n";
    return text;
}

std::optional<LockState> decode_lock_state(std::string_view text)
{
    std::string_view rest = text;
    const auto header = take_line(rest, kHeaderLine);
    const auto since = take_line(rest, "since ");
    const auto incident = take_line(rest, "incident ");
    const auto steps = take_line(rest, "steps ");
    const auto reason = take_line(rest, "reason ");
    if (!header || !header->empty() || !since || !incident || !steps || !reason || !rest.empty()) {
        return std::nullopt;
    }
    LockState state;
    const auto since_value = parse_decimal<std::uint64_t>(*since);
    const auto steps_value = parse_decimal<std::uint32_t>(*steps);
    if (!since_value || !steps_value || (*steps_value & ~kAllIncidentSteps) != 0) {
        return std::nullopt;
    }
    if (*incident != "yes" && *incident != "no") {
        return std::nullopt;
    }
    // Only what encode_lock_state() can produce: one canonical text per state.
    if (reason->empty() || sanitize_lock_reason(*reason) != *reason) {
        return std::nullopt;
    }
    state.locked_since_usec = *since_value;
    state.incident = *incident == "yes";
    state.steps_done = *steps_value;
    state.reason = std::string(*reason);
    return state;
}

}  // namespace codexvault::store
