// The walker and the scanner together: findings come back located and redacted, env files give
// variable names only, the code's environment reads are listed, and no secret byte from the
// tree appears anywhere in the report.
#include <criterion/criterion.h>

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "daemon/ingest/ingest_scan.hpp"
#include "lib/scan/builtin_rules.hpp"
#include "tests/unit/ingest/tree.hpp"

using namespace ingest_test;
using namespace codexvault::scan;

namespace {

constexpr std::array<std::uint8_t, kFingerprintKeyBytes> kKey = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2, 3, 4, 5, 6,
                                                                 7, 8, 9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1, 2};

Scanner& scanner()
{
    static Scanner instance = [] {
        auto matcher = Matcher::create(builtin_rules_text(), "rules.toml");
        cr_assert(matcher.ok(), "%s", matcher.ok() ? "" : matcher.message().c_str());
        return Scanner(matcher.value());
    }();
    return instance;
}

// A generated GitHub token shape, different per test run position but never a real one.
std::string canary(char seed)
{
    std::string token = "ghp_";
    const std::string_view alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    std::uint32_t state = static_cast<unsigned char>(seed) * 2654435761u + 1;
    for (int i = 0; i < 36; ++i) {
        state = state * 1664525u + 1013904223u;
        token.push_back(alphabet[(state >> 16) % alphabet.size()]);
    }
    return token;
}

// Every string the report holds, so a test can assert a value is in none of them.
bool report_mentions(const codexvault::ingest::IngestReport& report, std::string_view needle)
{
    const auto has = [&](std::string_view text) {
        return text.find(needle) != std::string_view::npos;
    };
    for (const auto& file : report.files) {
        if (has(file.path)) {
            return true;
        }
        for (const auto& finding : file.findings) {
            if (has(finding.preview) || has(finding.fingerprint) || has(finding.rule_id)) {
                return true;
            }
        }
    }
    for (const auto& env : report.env_files) {
        for (const auto& name : env.names) {
            if (has(name)) {
                return true;
            }
        }
    }
    for (const auto& name : report.env_reads) {
        if (has(name)) {
            return true;
        }
    }
    for (const auto& skip : report.walk.skips) {
        if (has(skip.path)) {
            return true;
        }
    }
    return false;
}

}  // namespace

Test(ingest_scan, findings_are_located_and_redacted_and_never_hold_the_value)
{
    Tree tree;
    const std::string token = canary('a');
    tree.dir("src");
    tree.file("src/app.py", "import os\nkey = os.environ['OPENAI_API_KEY']\nGH = '" + token + "'\n");
    std::string binary("\0\xff\xfe garbage \x80\x81 ", 17);
    tree.file("blob.bin", binary + token + binary);
    tree.file("bad-utf8.txt", "\xc3\x28\xa0\xa1 token: " + token + " \xf0\x28\x8c\x28");
    const auto report = codexvault::ingest::scan_tree(tree.fd(), scanner(), kKey, {});
    cr_assert_eq(report.files.size(), 3u);
    cr_expect_eq(report.findings, 3u);
    const auto& app = report.files[2];
    cr_expect_str_eq(app.path.c_str(), "src/app.py");
    cr_assert_eq(app.findings.size(), 1u);
    cr_expect_str_eq(app.findings[0].rule_id.c_str(), "github-pat");
    cr_expect_eq(app.findings[0].line, 3u);
    // The same value in three files is one fingerprint.
    cr_expect_str_eq(report.files[0].findings[0].fingerprint.c_str(), app.findings[0].fingerprint.c_str());
    cr_expect_str_eq(report.files[1].findings[0].fingerprint.c_str(), app.findings[0].fingerprint.c_str());
    cr_assert_eq(report.env_reads.size(), 1u);
    cr_expect_str_eq(report.env_reads[0].c_str(), "OPENAI_API_KEY");
    cr_expect(!report_mentions(report, token.substr(4)), "the value appears in the report");
    cr_expect(report.complete());
}

Test(ingest_scan, env_files_give_their_variable_names_only)
{
    Tree tree;
    const std::string value = canary('e').substr(4);
    tree.file(".env", "DATABASE_PASSWORD=" + value + "\nexport API_TOKEN=\"" + value + "\"\n");
    tree.file(".env.example", "DATABASE_PASSWORD=changeme\n");
    const auto report = codexvault::ingest::scan_tree(tree.fd(), scanner(), kKey, {});
    cr_assert_eq(report.env_files.size(), 2u);
    cr_expect_str_eq(report.env_files[0].path.c_str(), ".env");
    cr_expect(report.env_files[0].kind == EnvFileKind::Env);
    cr_assert_eq(report.env_files[0].names.size(), 2u);
    cr_expect_str_eq(report.env_files[0].names[0].c_str(), "DATABASE_PASSWORD");
    cr_expect_str_eq(report.env_files[0].names[1].c_str(), "API_TOKEN");
    cr_expect(report.env_files[1].kind == EnvFileKind::Template);
    cr_expect(!report_mentions(report, value), "an env value appears in the report");
}

Test(ingest_scan, findings_in_an_env_file_carry_nothing_computed_from_the_value)
{
    // The same token committed in code and in .env: the code finding has its length, preview,
    // entropy and fingerprint; the .env findings (the token's own rule and dotenv-secret) only
    // where they are and which rule, so no length, equality or fingerprint of an env value leaves.
    Tree tree;
    const std::string token = canary('f');
    tree.file(".env", "GITHUB_TOKEN=" + token + "\nDB_PASSWORD=" + canary('g').substr(4) + "\n");
    tree.file("app.py", "GH = '" + token + "'\n");
    const auto report = codexvault::ingest::scan_tree(tree.fd(), scanner(), kKey, {});
    cr_assert_eq(report.files.size(), 2u);
    const auto& env_file = report.files[0];
    cr_expect_str_eq(env_file.path.c_str(), ".env");
    cr_assert_eq(env_file.findings.size(), 2u);
    for (const auto& f : env_file.findings) {
        cr_expect_eq(f.length, 0u);
        cr_expect_eq(f.entropy, 0.0);
        cr_expect(f.fingerprint.empty());
        cr_expect(f.preview == kWithheldPreview, "%s", f.preview.c_str());
        cr_expect_gt(f.line, 0u);
    }
    cr_expect_str_eq(env_file.findings[0].rule_id.c_str(), "github-pat");
    cr_expect_str_eq(env_file.findings[1].rule_id.c_str(), "dotenv-secret");
    const auto& code = report.files[1].findings.at(0);
    cr_expect_eq(code.length, token.size());
    cr_expect_eq(code.fingerprint.size(), 32u);
}

Test(ingest_scan, a_symlinked_secret_outside_the_tree_is_not_scanned)
{
    Tree outside;
    const std::string token = canary('o');
    outside.file("creds.txt", "token = " + token + "\n");
    Tree tree;
    tree.symlink(outside.at("creds.txt"), "creds.txt");
    tree.symlink(outside.path(), "outside");
    const auto report = codexvault::ingest::scan_tree(tree.fd(), scanner(), kKey, {});
    cr_expect_eq(report.findings, 0u);
    cr_expect_eq(report.walk.skipped, 2u);
    cr_expect(!report.complete());
}
