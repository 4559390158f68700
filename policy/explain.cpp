// Engine::explain: the decision and, for every grant that names the capability, why it does or
// does not apply. Slow path (scans every grant); for `vaultctl policy explain`, never for use.
#include <algorithm>

#include "policy/engine.hpp"
#include "policy/evaluation.hpp"
#include "policy/text.hpp"
#include "policy/time_units.hpp"

namespace codexvault::policy {

namespace {

std::string describe_subject(const SubjectView& s)
{
    std::string out = "subject uid=" + std::to_string(s.uid) + " gid=" + std::to_string(s.gid);
    if (!s.groups.empty()) {
        out += " groups=";
        for (std::size_t i = 0; i < s.groups.size(); ++i) {
            out += (i == 0 ? "" : ",") + std::to_string(s.groups[i]);
        }
    }
    out += " pid=" + std::to_string(s.pid);
    out += " unit=" + (s.unit.empty() ? std::string("(none)") : quote(s.unit));
    out += " cgroup=" + (s.cgroup.empty() ? std::string("(unknown)") : quote(s.cgroup));
    out += " exe=" + (s.exe ? quote(*s.exe) : std::string("(unknown)"));
    if (s.exe_sha256) {
        out += " exe_sha256=" + quote(*s.exe_sha256);
    }
    return out;
}

std::string join(const std::vector<std::string>& parts, std::string_view separator)
{
    std::string out;
    for (std::size_t i = 0; i < parts.size(); ++i) {
        if (i != 0) {
            out += separator;
        }
        out += parts[i];
    }
    return out;
}

std::string grant_heading(const GrantDefinition& d)
{
    std::string out = "grant " + d.id + " (principal " + d.principal_label;
    if (d.source.known()) {
        out += ", " + d.source.to_string();
    }
    return out + ")";
}

std::string status_text(const detail::GrantRef& ref, detail::Status status, const SubjectView& subject)
{
    using detail::Status;
    const GrantDefinition& d = *ref.definition;
    const std::uint64_t uses = ref.usage != nullptr ? ref.usage->uses : 0;
    switch (status) {
    case Status::PrincipalMismatch:
    case Status::ExeUnknown:
        return join(describe_mismatches(d.principal, subject), "; ");
    case Status::Revoked:
        return "principal matches; grant revoked";
    case Status::Expired:
        return "principal matches; expired at " + format_timestamp(d.expires_at_usec.value_or(0));
    case Status::UsedUp:
        return "principal matches; used " + std::to_string(uses) + " of " + std::to_string(d.max_uses.value_or(0)) +
               " uses";
    case Status::RequestNotAllowed: {
        std::vector<std::string> patterns;
        for (const auto& pattern : d.requests) {
            patterns.push_back(pattern.to_string());
        }
        return "principal matches; request not within the grant's requests [" + join(patterns, ", ") + "]";
    }
    case Status::RateLimited:
        return "principal matches; rate " + format_rate(d.rate.value_or(Rate{})) + " exceeded";
    case Status::NeedsApproval:
        return d.approval == ApprovalMode::Each
                   ? std::string("principal matches; usable with a founder approval for each use")
                   : std::string("principal matches; usable once this process's first use is approved (approval once)");
    case Status::Usable:
        return d.approval == ApprovalMode::Once ? std::string("principal matches; usable (approved once already)")
                                                : std::string("principal matches; usable");
    }
    return "unknown";
}

}  // namespace

Explanation Engine::explain(const SubjectView& subject, const Capability& capability, const RequestContext& request,
                            std::uint64_t now_usec) const
{
    Explanation out;
    out.decision = check(subject, capability, request, now_usec);
    out.lines.push_back("capability " + capability.to_string());
    out.lines.push_back(describe_subject(subject));
    if (capability.kind == CapabilityKind::ProviderRequest || capability.kind == CapabilityKind::SecretInject) {
        out.lines.push_back("request " + describe_request(capability, request));
    }
    if (!policy_) {
        out.lines.push_back("no valid policy is loaded: every grant-based use is denied");
    } else {
        detail::RequestFacts facts;
        if (capability.kind == CapabilityKind::ProviderRequest) {
            const auto method = parse_method(request.method);
            const auto path = clean_request_path(request.path);
            if (method && path) {
                facts = detail::RequestFacts{true, *method, *path};
            }
        }
        std::vector<detail::GrantRef> candidates;
        for (const auto& d : policy_->grants()) {
            if (d.capability == capability) {
                candidates.push_back(detail::policy_grant_ref(d, grants_));
            }
        }
        for (std::uint32_t slot = 0; slot < grants_.runtime_grants().size(); ++slot) {
            if (grants_.at(slot).definition.capability == capability) {
                candidates.push_back(detail::runtime_grant_ref(grants_, slot));
            }
        }
        if (candidates.empty()) {
            out.lines.push_back("no grant names capability " + capability.to_string());
        }
        for (const auto& ref : candidates) {
            const detail::Status status = detail::classify(ref, subject, facts, now_usec);
            out.lines.push_back(grant_heading(*ref.definition) + ": " + status_text(ref, status, subject));
        }
    }
    std::string verdict = "decision: " + std::string(verdict_name(out.decision.verdict)) + " (" +
                          std::string(out.decision.reason_text()) + ")";
    if (!out.decision.grant_id.empty()) {
        verdict += " grant " + out.decision.grant_id.str();
    }
    if (!out.decision.approval_id.empty()) {
        verdict += " approval " + out.decision.approval_id.str();
    }
    out.lines.push_back(std::move(verdict));
    return out;
}

}  // namespace codexvault::policy
