#include "daemon/pipeline/method_table.hpp"

#include <array>
#include <string_view>

#include "common/bus_contract.hpp"
#include "daemon/pipeline/methods.hpp"

namespace codexvault::daemon {
namespace {

using namespace codexvault::bus::method;
using enum MethodFlag;

// Two lines a method: what the pipeline does with it, then its D-Bus shape.
// clang-format off
constexpr std::array<MethodSpec, 26> kMethods{{
    // name             access               action              decoder                             flags
    //                  in signature         out signature       argument names (in, then out)
    {kStatus,           Access::Anyone,      "status.read",      &methods::decode_status,            AllowedWhenLocked | Informational | PinnedIdentity | ServedWhenAuditFailed,
                        "",                  "a{sv}",            "status\0"},
    {kWhoAmI,           Access::Anyone,      "identity.read",    &methods::decode_who_am_i,          AllowedWhenLocked | Informational | PinnedIdentity,
                        "",                  "a{sv}aa{sv}",      "subject\0grants\0"},
    {kGetNonce,         Access::FounderUid,  "founder.nonce",    &methods::decode_get_nonce,         AllowedWhenLocked,
                        "",                  "ay",               "nonce\0"},
    {kEnroll,           Access::Enrollment,  "founder.enroll",   &methods::decode_enroll,            MethodFlags{},
                        "ay(aytay)",         "",                 "public_key\0proof\0"},
    {kPutSecret,        Access::Founder,     "secret.put",       &methods::decode_put_secret,        NeedsEnrolledFounder | Sensitive,
                        "sh(aytay)",         "u",                "name\0value\0proof\0version\0"},
    {kRotateSecret,     Access::Founder,     "secret.rotate",    &methods::decode_rotate_secret,     NeedsEnrolledFounder | Sensitive,
                        "sh(aytay)",         "u",                "name\0value\0proof\0version\0"},
    {kDeleteSecret,     Access::Founder,     "secret.delete",    &methods::decode_delete_secret,     NeedsEnrolledFounder,
                        "s(aytay)",          "",                 "name\0proof\0"},
    {kListSecrets,      Access::Founder,     "secret.list",      &methods::decode_list_secrets,      NeedsEnrolledFounder,
                        "(aytay)",           "a(suttbb)",        "proof\0secrets\0"},
    {kReloadPolicy,     Access::Founder,     "policy.reload",    &methods::decode_reload_policy,     NeedsEnrolledFounder,
                        "(aytay)",           "s",                "proof\0status\0"},
    {kCheck,            Access::Anyone,      "grant.check",      &methods::decode_check,             Informational,
                        "sa{sv}",            "bsss",             "capability\0request\0allowed\0verdict\0reason\0grant_id\0"},
    {kUse,              Access::Grant,       "grant.use",        &methods::decode_use,               OneRoundCommit,
                        "sa{sv}",            "ss",               "capability\0request\0grant_id\0approval_id\0"},
    {kExplain,          Access::Founder,     "policy.explain",   &methods::decode_explain,           NeedsEnrolledFounder,
                        "sa{sv}(aytay)",     "ss",               "capability\0subject\0proof\0verdict\0explanation\0"},
    {kIssueGrant,       Access::Founder,     "grant.issue",      &methods::decode_issue_grant,       NeedsEnrolledFounder,
                        "ssstssass(aytay)",  "s",                "principal\0capability\0ttl\0max_uses\0rate\0approval\0requests\0description\0proof\0grant_id\0"},
    {kListGrants,       Access::Founder,     "grant.list",       &methods::decode_list_grants,       NeedsEnrolledFounder,
                        "(aytay)",           "aa{sv}",           "proof\0grants\0"},
    {kRevokeGrant,      Access::Founder,     "grant.revoke",     &methods::decode_revoke_grant,      NeedsEnrolledFounder,
                        "s(aytay)",          "",                 "grant_id\0proof\0"},
    {kRevokeAllGrants,  Access::Founder,     "grant.revoke-all", &methods::decode_revoke_all_grants, NeedsEnrolledFounder,
                        "(aytay)",           "u",                "proof\0revoked\0"},
    {kListApprovals,    Access::Founder,     "approval.list",    &methods::decode_list_approvals,    NeedsEnrolledFounder,
                        "(aytay)",           "aa{sv}",           "proof\0approvals\0"},
    {kApprove,          Access::Founder,     "approval.approve", &methods::decode_approve,           NeedsEnrolledFounder,
                        "s(aytay)",          "",                 "approval_id\0proof\0"},
    {kLock,             Access::Founder,     "vault.lock",       &methods::decode_lock,              AllowedWhenLocked | NeedsEnrolledFounder,
                        "s(aytay)",          "",                 "reason\0proof\0"},
    {kUnlock,           Access::Founder,     "vault.unlock",     &methods::decode_unlock,            AllowedWhenLocked | NeedsEnrolledFounder,
                        "s(aytay)",          "",                 "reason\0proof\0"},
    {kIncident,         Access::Founder,     "vault.incident",   &methods::decode_incident,          AllowedWhenLocked | NeedsEnrolledFounder,
                        "s(aytay)",          "u",                "reason\0proof\0revoked\0"},
    {kAuditTail,        Access::AuditReader, "audit.read",       &methods::decode_audit_tail,        AllowedWhenLocked,
                        "a{sv}(aytay)",      "astb",             "query\0proof\0records\0last_seq\0complete\0"},
    {kAuditPublicKey,   Access::Anyone,      "audit.pubkey",     &methods::decode_audit_public_key,  AllowedWhenLocked | Informational | PinnedIdentity,
                        "",                  "s",                "public_key\0"},
    {kDeny,             Access::Founder,     "approval.deny",    &methods::decode_deny,              NeedsEnrolledFounder,
                        "s(aytay)",          "",                 "approval_id\0proof\0"},
    {kRequest,          Access::Grant,       "provider.request", &methods::decode_request,           Sensitive | RepliesLater,
                        "sssa(ss)ah",        "tqa(ss)h",         "provider\0method\0path_and_query\0headers\0body\0request_id\0status\0response_headers\0stream\0"},
    {kRequestOutcome,   Access::Anyone,      "provider.outcome", &methods::decode_request_outcome,   AllowedWhenLocked | Informational | PinnedIdentity,
                        "t",                 "sstt",             "request_id\0end\0reason\0bytes_delivered\0redactions\0"},
}};
// clang-format on

// The combinations that would break a guarantee of the pipeline (vault_object.cpp) do not compile.
// Which rows carry which flag is pinned by tests/unit/daemon/test_contract.cpp.
constexpr bool implies(bool a, bool b)
{
    return !a || b;
}

constexpr bool flags_are_coherent(const MethodSpec& spec)
{
    const bool open = spec.access == Access::Anyone;
    // Acted on before its decision is durable: only a call that authorizes nothing.
    return implies(spec.has(Informational), open) &&
           // Authorizing on the pin-time subject would miss a uid, exe or unit changed since.
           implies(spec.has(PinnedIdentity), spec.has(Informational)) &&
           // No record, no action: only a call that changes nothing survives a failed log.
           implies(spec.has(ServedWhenAuditFailed), spec.has(Informational)) &&
           // Acting in the decision's round is safe only for an action that is its reply.
           implies(spec.has(OneRoundCommit), spec.access == Access::Grant) &&
           // A locked vault hands out no secret material.
           implies(spec.has(Sensitive), !spec.has(AllowedWhenLocked)) &&
           // Work that outlives the call starts only from a real use, never while locked.
           implies(spec.has(RepliesLater),
                   spec.access == Access::Grant && !spec.has(AllowedWhenLocked) && !spec.has(OneRoundCommit));
}

constexpr bool table_is_coherent()
{
    for (const auto& spec : kMethods) {
        if (!flags_are_coherent(spec)) {
            return false;
        }
    }
    return true;
}
static_assert(table_is_coherent(), "a method's flags contradict its access (see MethodFlag in method_table.hpp)");

}  // namespace

const char* to_string(Access access) noexcept
{
    switch (access) {
    case Access::Anyone:
        return "anyone";
    case Access::FounderUid:
        return "founder-uid";
    case Access::Founder:
        return "founder";
    case Access::Enrollment:
        return "enrollment";
    case Access::Grant:
        return "grant";
    case Access::AuditReader:
        return "founder or audit:read";
    }
    return "founder";
}

std::span<const MethodSpec> method_table() noexcept
{
    return kMethods;
}

const MethodSpec* find_method(std::string_view name) noexcept
{
    for (const auto& spec : kMethods) {
        if (name == spec.name) {
            return &spec;
        }
    }
    return nullptr;
}

}  // namespace codexvault::daemon
