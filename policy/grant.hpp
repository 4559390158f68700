// Grants: a principal bound to a capability, with options. The same definition serves the
// grants written in policy files ("static", id = their name) and those the founder issues at
// runtime (id "g-<16 hex>"); their mutable state (uses, rate, approvals given once) lives in
// the GrantTable.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "policy/capability.hpp"
#include "policy/diagnostic.hpp"
#include "policy/principal.hpp"
#include "policy/rate.hpp"
#include "policy/request_pattern.hpp"

namespace codexvault::policy {

// none: no approval. each: every use needs a founder approval bound to that exact request.
// once: the first use needs one; after it is used, the same principal instance (see
// InstanceKey) uses the grant without asking again.
enum class ApprovalMode : std::uint8_t { None, Each, Once };
std::optional<ApprovalMode> parse_approval_mode(std::string_view text) noexcept;
std::string_view approval_mode_name(ApprovalMode mode) noexcept;

enum class GrantOrigin : std::uint8_t { Policy, Runtime };

// secret:NAME:inject grants only (docs/injection.md). on_touch: what the kernel does to an
// unmarked process that touches the injected secret (record it, or kill it in that syscall and
// revoke the grant). on_expiry: what happens to the marked processes when the injection ends
// (close it in the audit log, or also SIGTERM then SIGKILL them).
enum class InjectOnTouch : std::uint8_t { Record, Kill };
enum class InjectOnExpiry : std::uint8_t { Close, Terminate };
struct InjectOptions {
    InjectOnTouch on_touch = InjectOnTouch::Record;
    InjectOnExpiry on_expiry = InjectOnExpiry::Close;
    friend bool operator==(const InjectOptions&, const InjectOptions&) = default;
};
std::string_view inject_on_touch_name(InjectOnTouch mode) noexcept;
std::string_view inject_on_expiry_name(InjectOnExpiry mode) noexcept;
// One option as IssueGrant carries it in its `requests` list for an inject grant:
// "on_touch=record|kill" or "on_expiry=close|terminate". False when `text` is neither.
bool apply_inject_option(std::string_view text, InjectOptions& options) noexcept;
// The options as that list ("on_touch=kill", ...; the defaults are left out).
std::vector<std::string> inject_option_texts(const InjectOptions& options);

struct GrantDefinition {
    // What the evaluation reads, first and together.
    Conditions principal;  // resolved when the grant was loaded or issued
    std::optional<std::uint64_t> expires_at_usec;
    std::optional<std::uint64_t> max_uses;
    std::optional<Rate> rate;
    ApprovalMode approval = ApprovalMode::None;
    GrantOrigin origin = GrantOrigin::Policy;
    std::uint64_t sequence = 0;  // evaluation order: earlier wins among equally good grants
    // Provider grants only: the requests this grant admits, each within the provider's allowed
    // set. Empty: everything the provider allows.
    std::vector<RequestPattern> requests;
    // Inject grants only.
    InjectOptions inject;

    std::string id;  // static: the name in the policy file; runtime: "g-<16 hex>"
    Capability capability;
    std::string principal_label;       // the principal's name, or "inline:<conditions>"
    std::uint64_t issued_at_usec = 0;  // runtime grants
    std::string description;
    SourceLocation source;  // static grants

    [[nodiscard]] bool admits_request(HttpMethod method, std::string_view path_only) const noexcept;
};

// The principal instance an approval=once approval covers: the grant plus the subject's
// (uid, unit, exe path) when the exe is known. When it is not, the approval is bound to the
// process itself (uid, pid, start time) and lasts only as long as that process.
struct InstanceKey {
    std::uint32_t uid = 0;
    std::string unit;
    std::string exe;
    bool process_scoped = false;
    std::uint32_t pid = 0;
    std::uint64_t start_time = 0;

    static InstanceKey of(const SubjectView& subject);
    [[nodiscard]] bool matches(const SubjectView& subject) const noexcept;
    friend bool operator==(const InstanceKey&, const InstanceKey&) = default;
};

struct GrantUsage {
    std::uint64_t uses = 0;
    std::uint64_t rate_tat_usec = 0;  // GCRA state, see rate.hpp
    std::uint64_t last_used_usec = 0;
    std::vector<InstanceKey> once_approved;
    friend bool operator==(const GrantUsage&, const GrantUsage&) = default;
};

enum class GrantState : std::uint8_t { Active, Expired, Revoked, UsedUp };
std::string_view grant_state_name(GrantState state) noexcept;

GrantState grant_state(const GrantDefinition& grant, const GrantUsage* usage, bool revoked,
                       std::uint64_t now_usec) noexcept;

// One row of a grant listing.
struct GrantInfo {
    GrantDefinition definition;
    GrantState state = GrantState::Active;
    std::uint64_t uses = 0;
    std::optional<std::uint64_t> revoked_at_usec;
};

}  // namespace codexvault::policy
