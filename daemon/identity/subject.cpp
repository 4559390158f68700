#include "daemon/identity/subject.hpp"

#include <array>
#include <charconv>
#include <string_view>
#include <vector>

namespace codexvault::identity {

const char* to_string(ExeSource source) noexcept
{
    switch (source) {
    case ExeSource::proc:
        return "proc";
    case ExeSource::monitor:
        return "monitor";
    case ExeSource::none:
        break;
    }
    return "none";
}
namespace {

// Unit types that own a cgroup of processes (slices are skipped, mounts and swaps run no
// clients worth naming).
constexpr std::array<std::string_view, 3> kUnitSuffixes{".service", ".scope", ".socket"};
constexpr std::size_t kMaxUnitNameBytes = 255;  // systemd's UNIT_NAME_MAX - 1

bool ends_with(std::string_view text, std::string_view suffix)
{
    return text.size() > suffix.size() && text.substr(text.size() - suffix.size()) == suffix;
}

// systemd's unit-name alphabet; anything else in a cgroup name is not a unit.
bool is_unit_character(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' || c == '_' ||
           c == '.' || c == '-' || c == '\\' || c == '@';
}

bool is_unit_name(std::string_view component)
{
    if (component.size() > kMaxUnitNameBytes) {
        return false;
    }
    for (const char c : component) {
        if (!is_unit_character(c)) {
            return false;
        }
    }
    for (const auto suffix : kUnitSuffixes) {
        if (ends_with(component, suffix)) {
            return true;
        }
    }
    return false;
}

std::vector<std::string_view> split_path(std::string_view path)
{
    std::vector<std::string_view> components;
    while (!path.empty()) {
        const auto slash = path.find('/');
        const auto component = path.substr(0, slash);
        if (!component.empty()) {
            components.push_back(component);
        }
        if (slash == std::string_view::npos) {
            break;
        }
        path.remove_prefix(slash + 1);
    }
    return components;
}

// systemd's rule: skip the leading slices; the next component is the unit, or there is none.
// Never look further down: below a unit, a delegated subtree's owner chooses the names.
std::string_view first_unit(const std::vector<std::string_view>& components, std::size_t& index)
{
    while (index < components.size() && ends_with(components[index], ".slice")) {
        ++index;
    }
    if (index == components.size() || !is_unit_name(components[index])) {
        return {};
    }
    return components[index++];
}

// "user@1000.service" -> 1000: a user's service manager, created by the system manager.
std::optional<uid_t> user_manager_uid(std::string_view unit)
{
    constexpr std::string_view kPrefix = "user@";
    constexpr std::string_view kSuffix = ".service";
    if (unit.size() <= kPrefix.size() + kSuffix.size() || unit.substr(0, kPrefix.size()) != kPrefix ||
        !ends_with(unit, kSuffix)) {
        return std::nullopt;
    }
    const auto digits = unit.substr(kPrefix.size(), unit.size() - kPrefix.size() - kSuffix.size());
    uid_t uid = 0;
    const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), uid);
    if (ec != std::errc() || end != digits.data() + digits.size() || (digits.size() > 1 && digits[0] == '0')) {
        return std::nullopt;
    }
    return uid;
}

}  // namespace

CgroupUnits units_from_cgroup(const std::string& cgroup_path)
{
    const auto components = split_path(cgroup_path);
    std::size_t index = 0;
    CgroupUnits units;
    units.unit = std::string(first_unit(components, index));
    units.user_manager_uid = user_manager_uid(units.unit);
    if (units.user_manager_uid) {
        units.user_unit = std::string(first_unit(components, index));
    }
    return units;
}

std::string unit_from_cgroup(const std::string& cgroup_path)
{
    return units_from_cgroup(cgroup_path).unit;
}

}  // namespace codexvault::identity
