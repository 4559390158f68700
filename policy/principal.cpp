#include "policy/principal.hpp"

#include <algorithm>
#include <array>

#include "policy/policy_limits.hpp"
#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

constexpr std::array<std::string_view, kConditionKinds> kNames{"uid", "gid", "unit", "cgroup", "exe", "exe_sha256"};
constexpr std::uint32_t kMaxId = 4'294'967'294U;  // (uid_t)-1 means "no id" to the kernel

constexpr std::array<std::string_view, 11> kUnitSuffixes{".service",   ".socket", ".device", ".mount",
                                                         ".automount", ".swap",   ".target", ".path",
                                                         ".timer",     ".slice",  ".scope"};

bool valid_unit_name(std::string_view unit) noexcept
{
    if (unit.empty() || unit.size() > limits::kMaxUnitLength) {
        return false;
    }
    for (char c : unit) {
        const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == ':' ||
                        c == '_' || c == '.' || c == '-' || c == '@' || c == '\\';
        if (!ok) {
            return false;
        }
    }
    return std::any_of(kUnitSuffixes.begin(), kUnitSuffixes.end(), [unit](std::string_view suffix) {
        return unit.size() > suffix.size() && unit.ends_with(suffix);
    });
}

bool cgroup_matches(std::string_view wanted, std::string_view actual) noexcept
{
    if (actual.size() < wanted.size() || actual.substr(0, wanted.size()) != wanted) {
        return false;
    }
    return actual.size() == wanted.size() || actual[wanted.size()] == '/';
}

bool gid_matches(std::uint32_t wanted, const SubjectView& subject) noexcept
{
    return subject.gid == wanted ||
           std::find(subject.groups.begin(), subject.groups.end(), wanted) != subject.groups.end();
}

// Whether one condition holds; exe conditions against an unknown exe are reported separately.
enum class One { Holds, Fails, Unknown };

One check(const Conditions& c, Condition which, const SubjectView& s) noexcept
{
    auto result = [](bool holds) {
        return holds ? One::Holds : One::Fails;
    };
    switch (which) {
    case Condition::Uid:
        return result(s.uid == *c.uid);
    case Condition::Gid:
        return result(gid_matches(*c.gid, s));
    case Condition::Unit:
        return result(!s.unit.empty() && s.unit == *c.unit);
    case Condition::Cgroup:
        return result(!s.cgroup.empty() && cgroup_matches(*c.cgroup, s.cgroup));
    case Condition::Exe:
        if (!s.exe) {
            return One::Unknown;
        }
        return result(*s.exe == *c.exe);
    case Condition::ExeSha256:
        if (!s.exe) {
            return One::Unknown;
        }
        return result(s.exe_sha256.has_value() && *s.exe_sha256 == *c.exe_sha256);
    }
    return One::Fails;
}

constexpr std::array<Condition, kConditionKinds> kOrder{Condition::Uid,    Condition::Gid, Condition::Unit,
                                                        Condition::Cgroup, Condition::Exe, Condition::ExeSha256};

std::string shown(std::string_view value)
{
    return value.empty() ? std::string("(none)") : quote(value);
}

}  // namespace

std::string_view condition_name(Condition condition) noexcept
{
    return kNames[static_cast<std::size_t>(condition)];
}

bool Conditions::has(Condition condition) const noexcept
{
    switch (condition) {
    case Condition::Uid:
        return uid.has_value();
    case Condition::Gid:
        return gid.has_value();
    case Condition::Unit:
        return unit.has_value();
    case Condition::Cgroup:
        return cgroup.has_value();
    case Condition::Exe:
        return exe.has_value();
    case Condition::ExeSha256:
        return exe_sha256.has_value();
    }
    return false;
}

bool Conditions::empty() const noexcept
{
    return std::none_of(kOrder.begin(), kOrder.end(), [this](Condition c) { return has(c); });
}

std::string Conditions::to_spec() const
{
    std::string spec;
    auto add = [&spec](std::string_view key, std::string_view value) {
        if (!spec.empty()) {
            spec.push_back(',');
        }
        spec += key;
        spec.push_back('=');
        spec += value;
    };
    if (uid) {
        add("uid", std::to_string(*uid));
    }
    if (gid) {
        add("gid", std::to_string(*gid));
    }
    if (unit) {
        add("unit", *unit);
    }
    if (cgroup) {
        add("cgroup", *cgroup);
    }
    if (exe) {
        add("exe", *exe);
    }
    if (exe_sha256) {
        add("exe_sha256", *exe_sha256);
    }
    return spec;
}

MatchResult match(const Conditions& conditions, const SubjectView& subject) noexcept
{
    bool unknown = false;
    Condition first_unknown = Condition::Exe;
    for (Condition which : kOrder) {
        if (!conditions.has(which)) {
            continue;
        }
        switch (check(conditions, which, subject)) {
        case One::Holds:
            break;
        case One::Fails:
            return {MatchStatus::Mismatch, which};
        case One::Unknown:
            if (!unknown) {
                first_unknown = which;
            }
            unknown = true;
            break;
        }
    }
    if (unknown) {
        return {MatchStatus::ExeUnknown, first_unknown};
    }
    return {MatchStatus::Match, Condition::Uid};
}

std::vector<std::string> describe_mismatches(const Conditions& c, const SubjectView& s)
{
    std::vector<std::string> out;
    for (Condition which : kOrder) {
        if (!c.has(which)) {
            continue;
        }
        const One one = check(c, which, s);
        if (one == One::Holds) {
            continue;
        }
        if (one == One::Unknown) {
            if (which == Condition::Exe || !c.exe) {
                out.emplace_back("exe unknown");
            }
            continue;
        }
        switch (which) {
        case Condition::Uid:
            out.push_back("uid " + std::to_string(s.uid) + " != " + std::to_string(*c.uid));
            break;
        case Condition::Gid:
            out.push_back("gid " + std::to_string(s.gid) + " and its " + std::to_string(s.groups.size()) +
                          " supplementary groups do not include " + std::to_string(*c.gid));
            break;
        case Condition::Unit:
            out.push_back("unit " + shown(s.unit) + " != " + quote(*c.unit));
            break;
        case Condition::Cgroup:
            out.push_back("cgroup " + shown(s.cgroup) + " is not " + quote(*c.cgroup) + " or below it");
            break;
        case Condition::Exe:
            out.push_back("exe " + quote(*s.exe) + " != " + quote(*c.exe));
            break;
        case Condition::ExeSha256:
            out.push_back(s.exe_sha256 ? "exe_sha256 " + quote(*s.exe_sha256) + " != " + quote(*c.exe_sha256)
                                       : std::string("exe_sha256 of the caller's exe is not known"));
            break;
        }
    }
    return out;
}

Result<std::uint32_t> validate_id_condition(Condition condition, std::int64_t value)
{
    if (value < 0 || value > static_cast<std::int64_t>(kMaxId)) {
        return make_error(std::string(condition_name(condition)) + " must be a whole number from 0 to 4294967294");
    }
    return static_cast<std::uint32_t>(value);
}

Result<std::string> validate_text_condition(Condition condition, std::string_view value)
{
    const std::string name(condition_name(condition));
    switch (condition) {
    case Condition::Uid:
    case Condition::Gid: {
        const auto number = parse_decimal(value, kMaxId);
        if (!number) {
            return make_error(name + " " + quote(value) + " must be a whole number from 0 to 4294967294");
        }
        return std::to_string(*number);
    }
    case Condition::Unit:
        if (!valid_unit_name(value)) {
            return make_error("unit " + quote(value) +
                              " is not a systemd unit name (characters [A-Za-z0-9:_.@\\-], a suffix such as "
                              ".service or .scope, at most 256 bytes)");
        }
        return std::string(value);
    case Condition::Cgroup:
        if (!is_clean_absolute_path(value, limits::kMaxPathLength, false)) {
            return make_error("cgroup " + quote(value) +
                              " must be an absolute cgroup path other than \"/\", without empty, \".\" or \"..\" "
                              "segments or a trailing '/'");
        }
        return std::string(value);
    case Condition::Exe:
        if (!is_clean_absolute_path(value, limits::kMaxPathLength, false)) {
            return make_error("exe " + quote(value) +
                              " must be an absolute path without empty, \".\" or \"..\" segments or a trailing '/'");
        }
        return std::string(value);
    case Condition::ExeSha256: {
        std::string lower(value);
        std::transform(lower.begin(), lower.end(), lower.begin(),
                       [](char ch) { return (ch >= 'A' && ch <= 'F') ? static_cast<char>(ch - 'A' + 'a') : ch; });
        if (lower.size() != 64 || !is_lower_hex(lower)) {
            return make_error("exe_sha256 " + quote(value) + " must be 64 hexadecimal digits");
        }
        return lower;
    }
    }
    return make_error("unknown condition");
}

Result<Conditions> parse_inline_conditions(std::string_view spec)
{
    if (spec.size() > limits::kMaxPrincipalSpecLength) {
        return make_error("principal spec is longer than 8192 bytes");
    }
    if (spec.empty()) {
        return make_error(
            "principal spec is empty: give a principal name or conditions such as uid=1000,exe=/usr/bin/x");
    }
    Conditions conditions;
    std::size_t start = 0;
    while (start <= spec.size()) {
        const std::size_t end = std::min(spec.find(',', start), spec.size());
        const std::string_view item = spec.substr(start, end - start);
        start = end + 1;
        const std::size_t eq = item.find('=');
        if (item.empty() || eq == std::string_view::npos) {
            return make_error("principal spec item " + quote(item) + " is not key=value");
        }
        const std::string_view key = item.substr(0, eq);
        const std::string_view value = item.substr(eq + 1);
        const auto* found = std::find(kNames.begin(), kNames.end(), key);
        if (found == kNames.end()) {
            return make_error("unknown principal condition " + quote(key) +
                              " (expected uid, gid, unit, cgroup, exe, exe_sha256)");
        }
        const auto which = static_cast<Condition>(found - kNames.begin());
        if (conditions.has(which)) {
            return make_error("principal condition " + std::string(key) + " given twice");
        }
        auto checked = validate_text_condition(which, value);
        if (!checked) {
            return checked.error();
        }
        std::string& text = checked.value();
        switch (which) {
        case Condition::Uid:
            conditions.uid = static_cast<std::uint32_t>(parse_decimal(text, kMaxId).value_or(0));
            break;
        case Condition::Gid:
            conditions.gid = static_cast<std::uint32_t>(parse_decimal(text, kMaxId).value_or(0));
            break;
        case Condition::Unit:
            conditions.unit = std::move(text);
            break;
        case Condition::Cgroup:
            conditions.cgroup = std::move(text);
            break;
        case Condition::Exe:
            conditions.exe = std::move(text);
            break;
        case Condition::ExeSha256:
            conditions.exe_sha256 = std::move(text);
            break;
        }
        if (end == spec.size()) {
            break;
        }
    }
    return conditions;
}

}  // namespace codexvault::policy
