#include "daemon/pipeline/method_table.hpp"

#include <array>
#include <string_view>

#include "common/bus_contract.hpp"
#include "daemon/pipeline/methods.hpp"

namespace codexvault::daemon {
namespace {

using namespace codexvault::bus::method;

// clang-format off
const std::array<MethodSpec, 24> kMethods{{
    // name           in            out         argument names (in, then out)               action            access               locked  founder sensitive decode
    {kStatus,        "",           "a{sv}",    "status\0",                                 "status.read",    Access::Anyone,      true,   false,  false,    &methods::decode_status},
    {kWhoAmI,        "",           "a{sv}aa{sv}", "subject\0grants\0",                     "identity.read",  Access::Anyone,      true,   false,  false,    &methods::decode_who_am_i},
    {kGetNonce,      "",           "ay",       "nonce\0",                                  "founder.nonce",  Access::FounderUid,  true,   false,  false,    &methods::decode_get_nonce},
    {kEnroll,        "ay(aytay)",  "",         "public_key\0proof\0",                      "founder.enroll", Access::Enrollment,  false,  false,  false,    &methods::decode_enroll},
    {kPutSecret,     "sh(aytay)",  "u",        "name\0value\0proof\0version\0",            "secret.put",     Access::Founder,     false,  true,   true,     &methods::decode_put_secret},
    {kRotateSecret,  "sh(aytay)",  "u",        "name\0value\0proof\0version\0",            "secret.rotate",  Access::Founder,     false,  true,   true,     &methods::decode_rotate_secret},
    {kDeleteSecret,  "s(aytay)",   "",         "name\0proof\0",                            "secret.delete",  Access::Founder,     false,  true,   false,    &methods::decode_delete_secret},
    {kListSecrets,   "(aytay)",    "a(suttbb)", "proof\0secrets\0",                        "secret.list",    Access::Founder,     false,  true,   false,    &methods::decode_list_secrets},
    {kReloadPolicy,  "(aytay)",    "s",        "proof\0status\0",                          "policy.reload",  Access::Founder,     false,  true,   false,    &methods::decode_reload_policy},
    {kCheck,         "sa{sv}",     "bsss",     "capability\0request\0allowed\0verdict\0reason\0grant_id\0", "grant.check", Access::Anyone,   false,  false,  false,    &methods::decode_check},
    {kUse,           "sa{sv}",     "ss",       "capability\0request\0grant_id\0approval_id\0", "grant.use",     Access::Grant,       false,  false,  false,    &methods::decode_use},
    {kExplain,       "sa{sv}(aytay)", "ss",    "capability\0subject\0proof\0verdict\0explanation\0", "policy.explain", Access::Founder, false, true, false,  &methods::decode_explain},
    {kIssueGrant,    "ssstssass(aytay)", "s",  "principal\0capability\0ttl\0max_uses\0rate\0approval\0requests\0description\0proof\0grant_id\0", "grant.issue", Access::Founder, false, true, false, &methods::decode_issue_grant},
    {kListGrants,    "(aytay)",    "aa{sv}",   "proof\0grants\0",                          "grant.list",     Access::Founder,     false,  true,   false,    &methods::decode_list_grants},
    {kRevokeGrant,   "s(aytay)",   "",         "grant_id\0proof\0",                        "grant.revoke",   Access::Founder,     false,  true,   false,    &methods::decode_revoke_grant},
    {kRevokeAllGrants, "(aytay)",  "u",        "proof\0revoked\0",                         "grant.revoke-all", Access::Founder,   false,  true,   false,    &methods::decode_revoke_all_grants},
    {kListApprovals, "(aytay)",    "aa{sv}",   "proof\0approvals\0",                       "approval.list",  Access::Founder,     false,  true,   false,    &methods::decode_list_approvals},
    {kApprove,       "s(aytay)",   "",         "approval_id\0proof\0",                     "approval.approve", Access::Founder,   false,  true,   false,    &methods::decode_approve},
    {kLock,          "s(aytay)",   "",         "reason\0proof\0",                          "vault.lock",     Access::Founder,     true,   true,   false,    &methods::decode_lock},
    {kUnlock,        "s(aytay)",   "",         "reason\0proof\0",                          "vault.unlock",   Access::Founder,     true,   true,   false,    &methods::decode_unlock},
    {kIncident,      "s(aytay)",   "u",        "reason\0proof\0revoked\0",                "vault.incident", Access::Founder,     true,   true,   false,    &methods::decode_incident},
    {kAuditTail,     "a{sv}(aytay)", "ast",    "query\0proof\0records\0last_seq\0",      "audit.read",     Access::AuditReader, true,   false,  false,    &methods::decode_audit_tail},
    {kAuditPublicKey, "",          "s",        "public_key\0",                              "audit.pubkey",   Access::Anyone,      true,   false,  false,    &methods::decode_audit_public_key},
    {kDeny,          "s(aytay)",   "",         "approval_id\0proof\0",                     "approval.deny",  Access::Founder,     false,  true,   false,    &methods::decode_deny},
}};
// clang-format on

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
