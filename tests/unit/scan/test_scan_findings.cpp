// What a finding says: where (offset, length, line, column), what (rule, family, provider,
// confidence), a preview that shows no more than the public prefix, and a keyed fingerprint;
// and that it never carries the secret.
#include <sodium.h>

#include <criterion/criterion.h>

#include <array>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "lib/scan/finding_details.hpp"
#include "tests/unit/scan/scan_support.hpp"

using namespace scan_test;

namespace {

std::string github_token(Random& random)
{
    return "ghp_" + random.chars(kAlnum, 36);
}

bool holds(const Finding& finding, std::string_view secret)
{
    // No text field holds the secret or more than its first 16 bytes.
    const std::string_view tail = secret.substr(std::min<std::size_t>(secret.size(), 16));
    for (const std::string* field :
         {&finding.rule_id, &finding.family, &finding.provider, &finding.preview, &finding.fingerprint}) {
        if (field->find(secret) != std::string::npos || (!tail.empty() && field->find(tail) != std::string::npos)) {
            return true;
        }
    }
    return false;
}

}  // namespace

Test(scan_findings, position_line_column_and_span)
{
    Random random(11);
    const std::string token = github_token(random);
    const std::string text = "first line\r\nsecond\n\n    token: \"" + token + "\"\n";
    const ScanResult result = scan(text, "config.yml");
    const Finding* finding = find_rule(result, "github-pat");
    cr_assert_not_null(finding);
    cr_expect_eq(finding->offset, text.find(token));
    cr_expect_eq(finding->length, token.size());
    cr_expect_eq(finding->line, 4u);
    cr_expect_eq(finding->column, 13u);  // 1-based bytes: 4 spaces, "token:", space, quote
    cr_expect_str_eq(finding->family.c_str(), "github");
    cr_expect_str_eq(finding->provider.c_str(), "github");
    cr_expect(finding->confidence == Confidence::High);
    cr_expect_gt(finding->entropy, 4.0);
}

Test(scan_findings, columns_count_bytes_not_characters)
{
    Random random(12);
    const std::string token = github_token(random);
    const std::string text = "\xC3\xA9t\xC3\xA9 = " + token;  // "été = " is 6 characters, 8 bytes
    const Finding* finding = find_rule(scan(text), "github-pat");
    cr_assert_not_null(finding);
    cr_expect_eq(finding->line, 1u);
    cr_expect_eq(finding->column, 9u);
}

Test(scan_findings, many_findings_have_increasing_positions)
{
    Random random(13);
    std::string text;
    std::vector<std::size_t> lines;
    for (int i = 0; i < 50; ++i) {
        text += "# filler line " + std::to_string(i) + "\n";
        if (i % 3 == 0) {
            lines.push_back(static_cast<std::size_t>(i) + 2 + lines.size());
            text += "NPM_TOKEN=npm_" + random.chars(kAlnum, 36) + "\n";
        }
    }
    const ScanResult result = scan(text, "notes.txt");
    cr_assert_eq(result.findings.size(), lines.size());
    for (std::size_t i = 0; i < lines.size(); ++i) {
        cr_expect_eq(result.findings[i].line, lines[i], "finding %zu on line %zu, expected %zu", i,
                     result.findings[i].line, lines[i]);
        cr_expect_eq(result.findings[i].column, 11u);
    }
}

Test(scan_findings, preview_shows_only_the_public_prefix)
{
    Random random(14);
    const std::string anthropic = "sk-ant-api03-" + random.chars(kAlnum, 93) + "AA";
    const std::string db_password = random.chars(kAlnum, 20);
    const std::string text =
        "ANTHROPIC_API_KEY=" + anthropic + "\nDATABASE_URL=postgres://app:" + db_password + "@db.internal/app\n";
    const ScanResult result = scan(text, "settings.py");
    const Finding* key = find_rule(result, "anthropic-api-key");
    const Finding* uri = find_rule(result, "database-uri-password");
    cr_assert_not_null(key);
    cr_assert_not_null(uri);
    cr_expect_str_eq(key->preview.c_str(), "sk-ant-api03-\xE2\x80\xA6(108)");
    cr_expect_str_eq(uri->preview.c_str(), "\xE2\x80\xA6(20)");  // no public prefix: nothing shown
    cr_expect_str_eq(redacted_preview("ghp_abcdefghijkl", 4).c_str(), "ghp_\xE2\x80\xA6(16)");
    cr_expect_str_eq(redacted_preview("ghp_abc", 4).c_str(), "gh\xE2\x80\xA6(7)");   // short: at most a third
    cr_expect_str_eq(redacted_preview("abcdefgh", 8).c_str(), "ab\xE2\x80\xA6(8)");  // at most a third
    cr_expect_str_eq(redacted_preview("", 4).c_str(), "\xE2\x80\xA6(0)");
}

Test(scan_findings, fingerprint_is_keyed_blake2b)
{
    Random random(15);
    const std::string token = github_token(random);
    const std::string other = github_token(random);
    const std::string text = "a=" + token + "\nb=" + token + "\nc=" + other + "\n";
    const ScanResult result = scan(text, "a.txt");
    cr_assert_eq(result.findings.size(), 3u);
    const auto& fp = result.findings;
    cr_expect_eq(fp[0].fingerprint.size(), 2 * kFingerprintBytes);
    cr_expect(fp[0].fingerprint == fp[1].fingerprint, "same value, same key: same fingerprint");
    cr_expect(fp[0].fingerprint != fp[2].fingerprint, "different values: different fingerprints");

    // It is BLAKE2b-256 under the caller's key, truncated to 16 bytes, as lowercase hex.
    std::array<unsigned char, crypto_generichash_BYTES> hash{};
    crypto_generichash(hash.data(), hash.size(), reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                       kKey.data(), kKey.size());
    std::string hex;
    for (std::size_t i = 0; i < kFingerprintBytes; ++i) {
        static constexpr char kHex[] = "0123456789abcdef";
        hex.push_back(kHex[hash[i] >> 4]);
        hex.push_back(kHex[hash[i] & 15]);
    }
    cr_expect_str_eq(fp[0].fingerprint.c_str(), hex.c_str());

    std::array<std::uint8_t, kFingerprintKeyBytes> other_key = kKey;
    other_key[0] ^= 1;
    Scanner scanner(builtin_matcher());
    const ScanResult rekeyed = scanner.scan(text, "a.txt", other_key);
    cr_assert_eq(rekeyed.findings.size(), 3u);
    cr_expect(rekeyed.findings[0].fingerprint != fp[0].fingerprint, "different key: different fingerprint");
}

Test(scan_findings, findings_never_hold_the_secret)
{
    Random random(16);
    const std::string secrets[] = {github_token(random), "sk-ant-api03-" + random.chars(kAlnum, 93) + "AA",
                                   "AKIA" + random.chars("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16),
                                   random.chars(kAlnum, 24)};
    const std::string text = "GITHUB_TOKEN=" + secrets[0] + "\nANTHROPIC_API_KEY=" + secrets[1] +
                             "\naws_access_key_id = " + secrets[2] + "\npassword = \"" + secrets[3] + "\"\n";
    const ScanResult result = scan(text, "app.py");
    cr_assert_eq(result.findings.size(), 4u);
    for (const Finding& finding : result.findings) {
        for (const std::string& secret : secrets) {
            cr_expect(!holds(finding, secret), "finding %s holds a secret", finding.rule_id.c_str());
        }
    }
}

Test(scan_findings, overlapping_findings_keep_the_most_confident)
{
    Random random(17);
    // The GitHub token is also a quoted high-entropy string and a generic assignment.
    const std::string token = github_token(random);
    const ScanResult result = scan("api_key = \"" + token + "\"\n", "app.py");
    cr_assert_eq(result.findings.size(), 1u);
    cr_expect_str_eq(result.findings[0].rule_id.c_str(), "github-pat");
    cr_expect_geq(result.stats.overlapped, 1u);
}

Test(scan_findings, keyword_rules_need_their_keyword)
{
    Random random(18);
    const std::string value = random.chars(kAlnum, 32);
    cr_expect_not_null(find_rule(scan("MISTRAL_API_KEY=" + value + "\n", "a.txt"), "mistral-api-key"));
    cr_expect_null(find_rule(scan("SOME_VALUE " + value + "\n", "a.txt"), "mistral-api-key"));
}

Test(scan_findings, env_only_rule_applies_to_env_files_only)
{
    Random random(19);
    const std::string line = "DB_PASSWORD=" + random.chars(kAlnum, 16) + "\n";
    cr_expect_not_null(find_rule(scan(line, "deploy/.env.production"), "dotenv-secret"));
    cr_expect_null(find_rule(scan(line, "deploy/run.sh"), "dotenv-secret"));
}

Test(scan_findings, finding_cap_holds_and_is_reported)
{
    Random random(20);
    std::string text;
    for (int i = 0; i < 50; ++i) {
        text += "t" + std::to_string(i) + " = " + github_token(random) + "\n";
    }
    ScanOptions options;
    options.max_findings = 10;
    const ScanResult capped = scan(text, "a.txt", options);
    cr_expect_eq(capped.findings.size(), 10u);
    cr_expect(capped.truncation == Truncation::FindingCap);
    cr_expect_eq(capped.findings.back().line, 10u, "the first findings in input order are kept");
    const ScanResult all = scan(text, "a.txt");
    cr_expect_eq(all.findings.size(), 50u);
    cr_expect(!all.truncated());
}

Test(scan_findings, scanners_on_two_threads_share_one_matcher)
{
    Random random(21);
    std::string text;
    for (int i = 0; i < 200; ++i) {
        text += "x" + std::to_string(i) + " = " + github_token(random) + " # filler filler filler\n";
    }
    std::vector<std::vector<std::string>> fingerprints(2);
    std::vector<std::thread> threads;
    for (std::size_t t = 0; t < 2; ++t) {
        threads.emplace_back([&, t] {
            Scanner scanner(builtin_matcher());  // one scratch per thread
            for (int round = 0; round < 20; ++round) {
                const ScanResult result = scanner.scan(text, "a.txt", kKey);
                fingerprints[t].clear();
                for (const auto& f : result.findings) {
                    fingerprints[t].push_back(f.fingerprint);
                }
            }
        });
    }
    for (auto& thread : threads) {
        thread.join();
    }
    cr_expect_eq(fingerprints[0].size(), 200u);
    cr_expect(fingerprints[0] == fingerprints[1]);
}

Test(scan_findings, line_positions_for_increasing_offsets)
{
    const std::string text = "a\nbb\n\nccc\n";
    LinePositions positions(text);
    const auto first = positions.locate(0);
    cr_expect(first.first == 1 && first.second == 1);
    const auto second = positions.locate(3);
    cr_expect(second.first == 2 && second.second == 2);
    const auto third = positions.locate(6);
    cr_expect(third.first == 4 && third.second == 1);
    const auto end = positions.locate(100);  // clamped to the end
    cr_expect(end.first == 5 && end.second == 1);
}
