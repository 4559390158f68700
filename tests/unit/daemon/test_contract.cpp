// The bus contract's pure pieces: the dispatch table's invariants, the signed payload encoding,
// name rules, error vocabulary and audit-line escaping.
#include <criterion/criterion.h>

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
        // Values enter by descriptor only, and such methods are flagged sensitive.
        cr_expect_eq(in.find('h') != std::string::npos, spec.sensitive, "%s sensitive flag", spec.name);
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
            // Informational only: state, identity, the caller's own capabilities, the audit public key.
            cr_expect(name == "Status" || name == "WhoAmI" || name == "Check" || name == "AuditPublicKey",
                      "%s is open to anyone", spec.name);
        }
        if (spec.sensitive) {
            cr_expect(!spec.allowed_when_locked, "%s carries secrets yet is allowed when locked", spec.name);
        }
    }
    cr_expect_eq(daemon::find_method("NoSuchMethod"), nullptr);
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
