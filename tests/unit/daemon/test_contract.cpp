// The bus contract's pure pieces: the dispatch table's invariants, the signed payload encoding,
// name rules, error vocabulary and audit-line escaping.
#include <criterion/criterion.h>

#include <algorithm>
#include <functional>
#include <iterator>
#include <set>
#include <string>

#include "common/founder_proof.hpp"
#include "common/limits.hpp"
#include "common/vault_error.hpp"
#include "daemon/audit/journal_mirror.hpp"
#include "daemon/pipeline/method_table.hpp"

using namespace codexvault;

namespace {
// Holds the value: Criterion's string macros would otherwise keep a dangling c_str().
void expect_text(const std::string& actual, const std::string& expected)
{
    cr_expect(actual == expected, "got \"%s\", expected \"%s\"", actual.c_str(), expected.c_str());
}
}  // namespace

Test(method_table, every_method_declares_an_action_access_and_decoder)
{
    std::set<std::string> names;
    for (const auto& spec : daemon::method_table()) {
        cr_expect(spec.action != nullptr && spec.action[0] != '\0', "%s has no action", spec.name);
        cr_expect(spec.decode != nullptr, "%s has no decoder", spec.name);
        cr_expect(names.insert(spec.name).second, "%s declared twice", spec.name);
        const std::string in = spec.in_signature;
        if (spec.access == daemon::Access::Founder || spec.access == daemon::Access::Enrollment) {
            // A founder method must carry the proof, last, so the pipeline can verify it.
            cr_expect(in.size() >= 7 && in.substr(in.size() - 7) == "(aytay)", "%s lacks a founder proof", spec.name);
        }
        // Values enter (PutSecret) or leave (Inject, over the socket it is given) by descriptor
        // only, and such methods are flagged sensitive.
        cr_expect_eq(in.find('h') != std::string::npos, spec.has(daemon::MethodFlag::Sensitive), "%s sensitive flag",
                     spec.name);
        // No method may return bytes that could be a secret value except the nonce.
        if (std::string(spec.name) != "GetNonce") {
            cr_expect(std::string(spec.out_signature).find("ay") == std::string::npos, "%s returns bytes", spec.name);
        }
    }
}

Test(method_table, only_informational_methods_are_public)
{
    for (const auto& spec : daemon::method_table()) {
        if (spec.access == daemon::Access::Anyone) {
            const std::string name = spec.name;
            // Informational only: state, identity, the caller's own capabilities, the audit public key,
            // how the caller's own provider request ended.
            cr_expect(name == "Status" || name == "WhoAmI" || name == "Check" || name == "AuditPublicKey" ||
                          name == "RequestOutcome",
                      "%s is open to anyone", spec.name);
        }
        if (spec.has(daemon::MethodFlag::Sensitive)) {
            cr_expect(!spec.has(daemon::MethodFlag::AllowedWhenLocked), "%s carries secrets yet is allowed when locked",
                      spec.name);
        }
    }
    cr_expect_eq(daemon::find_method("NoSuchMethod"), nullptr);
}

namespace {
using Names = std::set<std::string>;

Names rows_where(const std::function<bool(const daemon::MethodSpec&)>& predicate)
{
    Names names;
    for (const auto& spec : daemon::method_table()) {
        if (predicate(spec)) {
            names.insert(spec.name);
        }
    }
    return names;
}

Names rows_with(daemon::MethodFlag flag)
{
    return rows_where([flag](const daemon::MethodSpec& spec) { return spec.has(flag); });
}

Names rows_with_access(daemon::Access access)
{
    return rows_where([access](const daemon::MethodSpec& spec) { return spec.access == access; });
}

std::string joined(const Names& names)
{
    std::string out;
    for (const auto& name : names) {
        out += (out.empty() ? "" : " ") + name;
    }
    return out.empty() ? "(none)" : out;
}

void expect_rows(const char* flag, const Names& actual, const Names& expected)
{
    cr_expect(actual == expected, "%s is on {%s}, expected {%s}", flag, joined(actual).c_str(),
              joined(expected).c_str());
}
}  // namespace

// Each flag changes what the pipeline does for a method (method_table.hpp says why each exists);
// these are the rows that need it, and only they. A new method must be added here on purpose.
Test(method_table, each_flag_is_on_exactly_the_rows_that_need_it)
{
    using daemon::Access;
    using daemon::MethodFlag;
    const Names all = rows_where([](const daemon::MethodSpec&) { return true; });
    const Names open = rows_with_access(Access::Anyone);
    cr_expect(open == Names({"Status", "WhoAmI", "Check", "AuditPublicKey", "RequestOutcome"}), "open to anyone: {%s}",
              joined(open).c_str());

    expect_rows("AllowedWhenLocked", rows_with(MethodFlag::AllowedWhenLocked),
                {"Status", "WhoAmI", "GetNonce", "Lock", "Unlock", "Incident", "AuditTail", "AuditPublicKey",
                 "RequestOutcome"});
    // Every method a founder proof authorizes needs the enrolled key, except the enrolment itself.
    expect_rows("NeedsEnrolledFounder", rows_with(MethodFlag::NeedsEnrolledFounder), rows_with_access(Access::Founder));
    cr_expect(rows_with_access(Access::Enrollment) == Names({"Enroll"}));
    expect_rows("Sensitive", rows_with(MethodFlag::Sensitive),
                {"PutSecret", "RotateSecret", "Request", "Inject", "Ingest"});
    // Answered at once, its record not waited for and folded when repeated: exactly the calls
    // that authorize nothing (a nonce is useless without the founder key).
    Names informational = open;
    informational.insert("GetNonce");
    expect_rows("Informational", rows_with(MethodFlag::Informational), informational);
    // Check and every method that authorizes re-read the caller's identity; only the public calls
    // that decide nothing take the subject confirmed at pin time.
    const Names pinned = rows_with(MethodFlag::PinnedIdentity);
    expect_rows("PinnedIdentity", pinned, {"Status", "WhoAmI", "AuditPublicKey", "RequestOutcome"});
    Names fresh;
    std::set_difference(all.begin(), all.end(), pinned.begin(), pinned.end(), std::inserter(fresh, fresh.end()));
    cr_expect(fresh.count("Check") == 1, "Check must re-read the caller's identity");
    for (const auto& spec : daemon::method_table()) {
        if (spec.access != Access::Anyone) {
            cr_expect(fresh.count(spec.name) == 1, "%s authorizes on the pinned identity", spec.name);
        }
    }
    // Only Status says why the log failed; every other call is refused without a record.
    expect_rows("ServedWhenAuditFailed", rows_with(MethodFlag::ServedWhenAuditFailed), {"Status"});
    // Only Use's action is its reply alone; Inject acts (a descriptor, a mark), so it waits for
    // its decision to be durable first. Use, Request and Inject are the grant-decided methods.
    expect_rows("OneRoundCommit", rows_with(MethodFlag::OneRoundCommit), {"Use"});
    cr_expect(rows_with_access(Access::Grant) == Names({"Use", "Request", "Inject"}));
    // Only Request starts work that outlives the call (the stream) and answers it later.
    expect_rows("RepliesLater", rows_with(MethodFlag::RepliesLater), {"Request"});
}

Test(method_table, rows_carry_only_declared_flags)
{
    using daemon::MethodFlag;
    constexpr daemon::MethodFlags kDeclared = MethodFlag::AllowedWhenLocked | MethodFlag::NeedsEnrolledFounder |
                                              MethodFlag::Sensitive | MethodFlag::Informational |
                                              MethodFlag::PinnedIdentity | MethodFlag::ServedWhenAuditFailed |
                                              MethodFlag::OneRoundCommit | MethodFlag::RepliesLater;
    for (const auto& spec : daemon::method_table()) {
        cr_expect_eq(spec.flags.bits() & ~kDeclared.bits(), 0U, "%s has an undeclared flag", spec.name);
        cr_expect(spec.in_signature != nullptr && spec.out_signature != nullptr && spec.argument_names != nullptr,
                  "%s lacks its D-Bus shape", spec.name);
    }
    static_assert((MethodFlag::Sensitive | MethodFlag::Informational).has(MethodFlag::Informational));
    static_assert(!daemon::MethodFlags(MethodFlag::Sensitive).has(MethodFlag::Informational));
    static_assert(!daemon::MethodFlags{}.has(MethodFlag::AllowedWhenLocked));
}

Test(founder_payload, fields_cannot_be_shifted_between_each_other)
{
    const std::vector<std::uint8_t> nonce(32, 7);
    const std::vector<std::string> one{"ab", "c"};
    const std::vector<std::string> two{"a", "bc"};
    const std::vector<std::string> three{"abc"};
    const auto p1 = founder_signing_payload("PutSecret", one, nonce, 5);
    const auto p2 = founder_signing_payload("PutSecret", two, nonce, 5);
    const auto p3 = founder_signing_payload("PutSecret", three, nonce, 5);
    const auto p4 = founder_signing_payload("PutSecre", {std::vector<std::string>{"tab", "c"}}, nonce, 5);
    cr_expect(p1 != p2);
    cr_expect(p1 != p3);
    cr_expect(p1 != p4);
    cr_expect(p1 != founder_signing_payload("PutSecret", one, nonce, 6));
    cr_expect(p1 == founder_signing_payload("PutSecret", one, nonce, 5));
}

Test(limits, secret_names)
{
    cr_expect(limits::is_valid_secret_name("openai"));
    cr_expect(limits::is_valid_secret_name("a.b_c-d9"));
    cr_expect(limits::is_valid_secret_name(std::string(64, 'x')));
    cr_expect(!limits::is_valid_secret_name(std::string(65, 'x')));
    cr_expect(!limits::is_valid_secret_name(""));
    cr_expect(!limits::is_valid_secret_name(".env"));
    cr_expect(!limits::is_valid_secret_name("../x"));
    cr_expect(!limits::is_valid_secret_name("a/b"));
    cr_expect(!limits::is_valid_secret_name("a b"));
    cr_expect(!limits::is_valid_secret_name(std::string("a\0b", 3)));
    cr_expect(!limits::is_valid_secret_name("caf\xc3\xa9"));
}

Test(vault_error, names_and_exit_codes_are_distinct_and_round_trip)
{
    std::set<int> codes;
    for (const auto& info : kErrors) {
        cr_expect(codes.insert(info.exit_code).second);
        cr_expect_gt(info.exit_code, 2);
        const auto back = error_from_bus_name(info.bus_name);
        cr_assert(back.has_value());
        cr_expect(*back == info.code);
        cr_expect(std::string(info.bus_name).rfind("org.codexvault.Vault1.Error.", 0) == 0);
    }
}

Test(audit_line, caller_strings_cannot_forge_records)
{
    expect_text(audit::journal_quote("plain"), "\"plain\"");
    expect_text(audit::journal_quote("a\"b"), "\"a\\\"b\"");
    expect_text(audit::journal_quote("x\ndecision=allow"), "\"x\\x0adecision=allow\"");
    expect_text(audit::journal_quote("\x1b[31m"), "\"\\x1b[31m\"");
}
