// Principals: who a grant is for. A principal is a set of conditions on the subject the daemon
// resolved from kernel credentials; every condition given must hold. Nothing a client says
// about itself is ever compared.
//
//   uid         the effective uid
//   gid         the effective gid OR any supplementary group of the subject
//   unit        the systemd unit, exact name ("agent.service")
//   cgroup      the cgroup path, exactly or as a prefix that ends at a '/' boundary:
//               "/system.slice/agent.service" matches that cgroup and
//               "/system.slice/agent.service/worker", never "/system.slice/agent.service2"
//   exe         the executable's path, exact
//   exe_sha256  the SHA-256 of the executable, 64 hex digits
//
// When the subject's exe is unknown (the daemon could not read it), every exe or exe_sha256
// condition fails closed with the reason "exe unknown".
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "policy/diagnostic.hpp"
#include "policy/result.hpp"

namespace codexvault::policy {

// The subject as the daemon resolved it; a non-owning view, cheap to build per request.
struct SubjectView {
    std::uint32_t uid = 0;
    std::uint32_t gid = 0;                       // effective gid
    std::span<const std::uint32_t> groups;       // supplementary groups
    std::uint32_t pid = 0;                       // with start_time: the process instance
    std::uint64_t start_time = 0;                // /proc/PID/stat start time, pins the pid
    std::string_view unit;                       // empty: not in a systemd unit
    std::string_view cgroup;                     // empty: unknown
    std::optional<std::string_view> exe;         // nullopt: unknown -> exe conditions fail closed
    std::optional<std::string_view> exe_sha256;  // lowercase hex; nullopt: not known
};

enum class Condition : std::uint8_t { Uid, Gid, Unit, Cgroup, Exe, ExeSha256 };
inline constexpr std::size_t kConditionKinds = 6;
std::string_view condition_name(Condition condition) noexcept;  // "uid", "exe_sha256", ...

struct Conditions {
    std::optional<std::uint32_t> uid;
    std::optional<std::uint32_t> gid;
    std::optional<std::string> unit;
    std::optional<std::string> cgroup;
    std::optional<std::string> exe;
    std::optional<std::string> exe_sha256;  // lowercase

    [[nodiscard]] bool empty() const noexcept;
    [[nodiscard]] bool has(Condition condition) const noexcept;
    // Canonical inline form, fields in the order uid, gid, unit, cgroup, exe, exe_sha256:
    // "uid=1000,unit=agent.service". parse_inline_conditions(to_spec()) gives back the same.
    [[nodiscard]] std::string to_spec() const;
    friend bool operator==(const Conditions&, const Conditions&) = default;
};

struct Principal {
    std::string name;
    Conditions conditions;
    std::string description;
    SourceLocation source;  // where it is defined
};

enum class MatchStatus : std::uint8_t {
    Match,
    Mismatch,    // a condition does not hold (see `failed`)
    ExeUnknown,  // everything else holds, but an exe condition cannot be decided: fail closed
};
struct MatchResult {
    MatchStatus status = MatchStatus::Mismatch;
    Condition failed = Condition::Uid;  // the first condition that did not hold
};

// Conditions are checked in the order uid, gid, unit, cgroup, exe, exe_sha256. No allocation.
MatchResult match(const Conditions& conditions, const SubjectView& subject) noexcept;

// Every condition that does not hold, each as "uid 1001 != 1000", "exe unknown", ...
std::vector<std::string> describe_mismatches(const Conditions& conditions, const SubjectView& subject);

// Validation of one condition's value, shared by the TOML and inline parsers. The returned text
// is the canonical value (exe_sha256 lowercased).
Result<std::uint32_t> validate_id_condition(Condition condition, std::int64_t value);
Result<std::string> validate_text_condition(Condition condition, std::string_view value);

// Inline conditions, as given to `vaultctl grant --principal`: "uid=1000,unit=agent.service".
// Comma-separated key=value pairs, every one must hold; keys are the condition names above;
// each key at most once; at least one. Values cannot contain ','.
Result<Conditions> parse_inline_conditions(std::string_view spec);

}  // namespace codexvault::policy
