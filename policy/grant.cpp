#include "policy/grant.hpp"

#include <algorithm>
#include <array>

namespace codexvault::policy {

namespace {

constexpr std::array<std::string_view, 3> kApprovalModes{"none", "each", "once"};
constexpr std::array<std::string_view, 4> kStates{"active", "expired", "revoked", "used-up"};

constexpr std::array<std::string_view, 2> kOnTouch{"record", "kill"};
constexpr std::array<std::string_view, 2> kOnExpiry{"close", "terminate"};

template <std::size_t N>
std::optional<std::size_t> index_of(const std::array<std::string_view, N>& names, std::string_view text) noexcept
{
    for (std::size_t i = 0; i < N; ++i) {
        if (names[i] == text) {
            return i;
        }
    }
    return std::nullopt;
}

}  // namespace

std::string_view inject_on_touch_name(InjectOnTouch mode) noexcept
{
    return kOnTouch[static_cast<std::size_t>(mode)];
}

std::string_view inject_on_expiry_name(InjectOnExpiry mode) noexcept
{
    return kOnExpiry[static_cast<std::size_t>(mode)];
}

bool apply_inject_option(std::string_view text, InjectOptions& options) noexcept
{
    const auto eq = text.find('=');
    if (eq == std::string_view::npos) {
        return false;
    }
    const std::string_view key = text.substr(0, eq);
    const std::string_view value = text.substr(eq + 1);
    if (key == "on_touch") {
        if (const auto i = index_of(kOnTouch, value)) {
            options.on_touch = static_cast<InjectOnTouch>(*i);
            return true;
        }
    } else if (key == "on_expiry") {
        if (const auto i = index_of(kOnExpiry, value)) {
            options.on_expiry = static_cast<InjectOnExpiry>(*i);
            return true;
        }
    }
    return false;
}

std::vector<std::string> inject_option_texts(const InjectOptions& options)
{
    std::vector<std::string> out;
    if (options.on_touch != InjectOnTouch::Record) {
        out.push_back("on_touch=" + std::string(inject_on_touch_name(options.on_touch)));
    }
    if (options.on_expiry != InjectOnExpiry::Close) {
        out.push_back("on_expiry=" + std::string(inject_on_expiry_name(options.on_expiry)));
    }
    return out;
}

std::optional<ApprovalMode> parse_approval_mode(std::string_view text) noexcept
{
    for (std::size_t i = 0; i < kApprovalModes.size(); ++i) {
        if (kApprovalModes[i] == text) {
            return static_cast<ApprovalMode>(i);
        }
    }
    return std::nullopt;
}

std::string_view approval_mode_name(ApprovalMode mode) noexcept
{
    return kApprovalModes[static_cast<std::size_t>(mode)];
}

std::string_view grant_state_name(GrantState state) noexcept
{
    return kStates[static_cast<std::size_t>(state)];
}

bool GrantDefinition::admits_request(HttpMethod method, std::string_view path_only) const noexcept
{
    return requests.empty() || std::any_of(requests.begin(), requests.end(), [&](const RequestPattern& pattern) {
               return pattern.matches(method, path_only);
           });
}

InstanceKey InstanceKey::of(const SubjectView& subject)
{
    InstanceKey key;
    key.uid = subject.uid;
    if (subject.exe) {
        key.unit = std::string(subject.unit);
        key.exe = std::string(*subject.exe);
    } else {
        key.process_scoped = true;
        key.pid = subject.pid;
        key.start_time = subject.start_time;
    }
    return key;
}

bool InstanceKey::matches(const SubjectView& subject) const noexcept
{
    if (subject.uid != uid) {
        return false;
    }
    if (process_scoped) {
        return subject.pid == pid && subject.start_time == start_time;
    }
    return subject.exe.has_value() && *subject.exe == exe && subject.unit == unit;
}

GrantState grant_state(const GrantDefinition& grant, const GrantUsage* usage, bool revoked,
                       std::uint64_t now_usec) noexcept
{
    if (revoked) {
        return GrantState::Revoked;
    }
    if (grant.expires_at_usec && now_usec >= *grant.expires_at_usec) {
        return GrantState::Expired;
    }
    if (grant.max_uses && usage != nullptr && usage->uses >= *grant.max_uses) {
        return GrantState::UsedUp;
    }
    return GrantState::Active;
}

}  // namespace codexvault::policy
