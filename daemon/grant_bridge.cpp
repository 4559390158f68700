#include "daemon/grant_bridge.hpp"

namespace codexvault::daemon {

policy::SubjectView subject_view(const identity::Subject& subject) noexcept
{
    policy::SubjectView view;
    view.uid = subject.uid;
    view.gid = subject.gid;
    view.groups = std::span<const std::uint32_t>(subject.groups.data(), subject.groups.size());
    view.pid = static_cast<std::uint32_t>(subject.pid);
    view.start_time = subject.start_time_ticks;
    view.unit = subject.unit;
    view.cgroup = subject.cgroup;
    if (subject.exe_known) {
        view.exe = subject.exe;
        if (!subject.exe_sha256.empty()) {
            view.exe_sha256 = subject.exe_sha256;
        }
    }
    return view;
}

policy::Decision caller_decision(const policy::Decision& decision) noexcept
{
    policy::Decision out = decision;
    if (decision.verdict == policy::Verdict::Deny &&
        (decision.reason == policy::Reason::PrincipalMismatch || decision.reason == policy::Reason::NoGrant)) {
        out.reason = policy::Reason::NoGrant;
        out.grant_id = policy::GrantId();
    }
    // "exe unknown" tells the caller what to fix (the daemon cannot read its executable), but
    // not which grant it would have matched.
    if (decision.verdict == policy::Verdict::Deny && decision.reason == policy::Reason::ExeUnknown) {
        out.grant_id = policy::GrantId();
    }
    return out;
}

ErrorCode error_for(const policy::Decision& decision) noexcept
{
    if (decision.verdict == policy::Verdict::ApprovalRequired) {
        return ErrorCode::ApprovalRequired;
    }
    switch (decision.reason) {
    case policy::Reason::GrantExpired:
    case policy::Reason::ApprovalExpired:
        return ErrorCode::Expired;
    case policy::Reason::InvalidRequest:
        return ErrorCode::InvalidArgument;
    case policy::Reason::ApprovalRequired:
    case policy::Reason::ApprovalPending:
        return ErrorCode::ApprovalRequired;
    default:
        return ErrorCode::PermissionDenied;
    }
}

std::string caller_message(const policy::Decision& decision)
{
    const policy::Decision shown = caller_decision(decision);
    if (shown.verdict == policy::Verdict::ApprovalRequired && !shown.approval_id.empty()) {
        const std::string id = shown.approval_id.str();
        return "approval " + id + " required (" + std::string(shown.reason_text()) +
               "): ask the founder to run 'vaultctl approve " + id + "', then retry with that approval id";
    }
    return "denied: " + std::string(shown.reason_text());
}

policy::Capability capability_argument(const std::string& text)
{
    auto parsed = policy::parse_capability(text);
    if (!parsed) {
        throw VaultError(ErrorCode::InvalidArgument, "invalid capability: " + parsed.message());
    }
    return std::move(parsed).value();
}

}  // namespace codexvault::daemon
