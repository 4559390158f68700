// Hostile input: random bytes, NULs, invalid UTF-8, one 64 MiB line, inputs dense with hits
// and near-misses. The scan must not crash, must keep offsets inside the input, must keep its
// caps, and must say when it stopped early.
#include <criterion/criterion.h>

#include <string>
#include <string_view>

#include "tests/unit/scan/scan_support.hpp"

using namespace scan_test;

namespace {

void expect_sane(const ScanResult& result, std::string_view content)
{
    std::size_t previous = 0;
    for (const Finding& finding : result.findings) {
        cr_expect_leq(finding.offset + finding.length, content.size(), "finding %s past the end",
                      finding.rule_id.c_str());
        cr_expect_gt(finding.length, 0u);
        cr_expect_geq(finding.offset, previous, "findings out of order");
        cr_expect_geq(finding.line, 1u);
        cr_expect_geq(finding.column, 1u);
        cr_expect_eq(finding.fingerprint.size(), 2 * kFingerprintBytes);
        previous = finding.offset;
    }
    cr_expect_leq(result.findings.size(), kDefaultMaxFindings);
}

// What bounds a hostile input's cost (tests do not time anything): the second stage's charges
// stay within the scan's budget, and each search within its own PCRE2 limit.
void expect_within_budget(const ScanResult& result, std::string_view content, const ScanOptions& options)
{
    cr_expect_leq(result.stats.budget_spent, options.budget_floor + options.budget_per_byte * content.size(),
                  "charged %llu", static_cast<unsigned long long>(result.stats.budget_spent));
}

}  // namespace

Test(scan_hostile, empty_input)
{
    const ScanResult result = scan("", "");
    cr_expect(result.findings.empty());
    cr_expect(!result.truncated());
}

Test(scan_hostile, random_bytes)
{
    Random random(31);
    std::string content(16 * 1024 * 1024, '\0');
    for (std::size_t i = 0; i < content.size(); i += 8) {
        const std::uint64_t word = random.next();
        for (std::size_t k = 0; k < 8 && i + k < content.size(); ++k) {
            content[i + k] = static_cast<char>(word >> (8 * k));
        }
    }
    expect_sane(scan(content, "blob.bin"), content);
}

Test(scan_hostile, nuls_and_invalid_utf8_around_a_secret)
{
    Random random(32);
    const std::string token = "ghp_" + random.chars(kAlnum, 36);
    std::string content("\0\0\xff\xfe\xc0\x80\xed\xa0\x80\xf8\x88\x80\x80\x80 key=", 20);
    content += token;
    content += std::string("\0\xc3\x28\n\x80\x80", 6);
    const ScanResult result = scan(content, "weird.bin");
    expect_sane(result, content);
    const Finding* finding = find_rule(result, "github-pat");
    cr_assert_not_null(finding);
    cr_expect_eq(finding->offset, 20u);
    cr_expect_eq(finding->length, 40u);
}

Test(scan_hostile, one_line_of_64_mib)
{
    Random random(33);
    const std::string token = "npm_" + random.chars(kAlnum, 36);
    std::string content(64 * 1024 * 1024, 'a');
    // Spaces now and then, a secret near the end, no newline at all.
    for (std::size_t i = 100; i < content.size(); i += 4096) {
        content[i] = ' ';
    }
    const std::size_t at = content.size() - 1000;
    content.replace(at - 1, token.size() + 2, " " + token + " ");
    const ScanResult result = scan(content, "huge.min.js");
    expect_sane(result, content);
    const Finding* finding = find_rule(result, "npm-token");
    cr_assert_not_null(finding);
    cr_expect_eq(finding->line, 1u);
    cr_expect_eq(finding->column, at + 1);
    cr_expect(!result.truncated());
}

Test(scan_hostile, a_64_mib_line_of_keywords_and_quotes_stays_bounded)
{
    // Every byte a trigger or a near-miss: keywords, quotes and prefixes without a valid secret.
    const std::string unit = "token=\"ghp_\"'AKIA'sk-ant-api03-\"password:'";
    std::string content;
    content.reserve(64 * 1024 * 1024 + unit.size());
    while (content.size() < 64 * 1024 * 1024) {
        content += unit;
    }
    const ScanResult result = scan(content, "dense.txt");
    expect_sane(result, content);
    cr_expect(result.findings.empty(), "%zu findings", result.findings.size());
    expect_within_budget(result, content, ScanOptions{});
}

Test(scan_hostile, extremely_many_hits_keep_the_cap)
{
    Random random(34);
    std::string content;
    const int tokens = 200000;  // 200,000 distinct valid-looking tokens, about 8 MiB
    content.reserve(static_cast<std::size_t>(tokens) * 42);
    for (int i = 0; i < tokens; ++i) {
        content += "ghp_" + random.chars(kAlnum, 36) + "\n";
    }
    const ScanResult result = scan(content, "dump.txt");
    expect_sane(result, content);
    cr_expect_eq(result.findings.size(), kDefaultMaxFindings);
    cr_expect(result.truncation == Truncation::FindingCap);
    cr_expect_eq(result.findings.front().line, 1u);
    cr_expect_eq(result.findings.back().line, kDefaultMaxFindings);

    ScanOptions options;
    options.max_findings = 5000000;  // clamped to kMaxFindingsLimit
    const ScanResult most = scan(content, "dump.txt", options);
    cr_expect_eq(most.findings.size(), kMaxFindingsLimit);
    cr_expect(most.truncated());
}

Test(scan_hostile, many_placeholders_then_a_real_secret)
{
    // Placeholders are not findings and do not count toward the cap; the real one is still found.
    Random random(35);
    std::string content;
    for (int i = 0; i < 100000; ++i) {
        content += "GITHUB_TOKEN=ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n";
    }
    const std::string token = "ghp_" + random.chars(kAlnum, 36);
    content += "REAL=" + token + "\n";
    const ScanResult result = scan(content, "a.txt");
    expect_sane(result, content);
    cr_assert_eq(result.findings.size(), 1u);
    cr_expect_eq(result.findings[0].line, 100001u);
    // Each is dropped by the entropy floor or the placeholder policy.
    cr_expect_geq(result.stats.placeholders + result.stats.low_entropy, 100000u);
}

Test(scan_hostile, exhausted_budget_is_reported)
{
    Random random(36);
    std::string content;
    for (int i = 0; i < 2000; ++i) {
        content += "password = \"" + random.chars(kAlnum, 16) + "\"\n";
    }
    ScanOptions options;
    options.budget_per_byte = 0;
    options.budget_floor = 500;
    const ScanResult result = scan(content, "a.py", options);
    expect_sane(result, content);
    cr_expect(result.truncation == Truncation::Budget);
    cr_expect_lt(result.findings.size(), 2000u);
    const ScanResult full = scan(content, "a.py");
    cr_expect_eq(full.findings.size(), 1000u);  // the default cap
}

Test(scan_hostile, huge_env_file_is_bounded)
{
    // The env-only rule searches a whole env file in the second stage: the budget bounds it.
    std::string content;
    while (content.size() < 8 * 1024 * 1024) {
        content += "SOME_KEY_NAME_PASSWORD_TOKEN_SECRET_AUTH=\n";
    }
    const ScanResult result = scan(content, ".env");
    expect_sane(result, content);
    expect_within_budget(result, content, ScanOptions{});
}

Test(scan_hostile, a_rule_that_backtracks_gives_up_per_window_and_the_scan_goes_on)
{
    // A pathological pattern (nested repeats) on input made to trigger it: each window stops at
    // its PCRE2 limit, the result says it is incomplete, and the total stays within the budget.
    constexpr std::string_view kRules = R"(version = 1
[[rule]]
id = "slow"
family = "slow"
name = "Backtracks"
confidence = "low"
keywords = ["zz"]
window = 4096
pattern = '''zz(?:(?:a+)+)+b'''
examples = ["zzaab"]
negative_examples = ["zz"]
)";
    auto matcher = Matcher::create(kRules, "slow.toml");
    cr_assert(matcher.ok(), "%s", matcher.ok() ? "" : matcher.message().c_str());
    Scanner scanner(matcher.value());
    std::string content;
    for (int i = 0; i < 64; ++i) {
        // The b is there (PCRE2 gives up at once on a window without one), just not after the a's.
        content += "zz" + std::string(200, 'a') + "cb\n";
    }
    content += "zzaaab\n";
    const ScanResult result = scanner.scan(content, "a.txt", kKey);
    expect_sane(result, content);
    cr_expect(result.truncation == Truncation::SearchLimit);
    cr_expect_eq(result.stats.limit_hits, 64u);
    cr_assert_eq(result.findings.size(), 1u, "the window after the slow ones is still searched");
    cr_expect_eq(result.findings[0].line, 65u);
    expect_within_budget(result, content, ScanOptions{});
}
