// libFuzzer target for lib/scan. The first byte picks what the rest is:
//   'R'  a regex: compiled by the second stage (PCRE2) and, when it compiles, searched over its
//        own text, whole and through a window, under a small budget (the wrapper's window and
//        limit handling; PCRE2 itself is fuzzed upstream);
//   'T'  a rules file: parsed and validated (no Vectorscan compile, to keep runs fast);
//   else content: scanned with the built-in rules under a file name chosen by the first byte,
//        once with the default options and once with tiny caps and budget; the env helpers
//        run on it too.
// Invariants checked (abort on violation): findings lie inside the input, in order, with a
// non-empty span; line and column agree with the bytes; previews and fingerprints have their
// documented shape and never hold the secret; caps hold; env names are names.
//
//   make fuzz-scan FUZZ_SECONDS=300      (clang, libFuzzer, ASan and UBSan; lib/scan/scan.mk)
//
// With g++ and no libFuzzer, tests/fuzz/replay_main.cpp replays the corpus through this target
// (`make fuzz-replay`, part of `make check`).
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lib/scan/builtin_rules.hpp"
#include "lib/scan/env_files.hpp"
#include "lib/scan/env_reads.hpp"
#include "lib/scan/matcher.hpp"
#include "lib/scan/rules.hpp"
#include "lib/scan/second_stage.hpp"

namespace {

using namespace codexvault::scan;

void require(bool condition)
{
    if (!condition) {
        std::abort();
    }
}

Scanner& scanner()
{
    static Scanner instance = [] {
        auto matcher = Matcher::create(builtin_rules_text(), "rules.toml");
        require(matcher.ok());
        return Scanner(matcher.value());
    }();
    return instance;
}

constexpr std::array<std::uint8_t, kFingerprintKeyBytes> kKey = {7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7,
                                                                 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7};

bool is_name(std::string_view name, bool allow_dot)
{
    if (name.empty()) {
        return false;
    }
    for (const char c : name) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
                        (allow_dot && c == '.');
        if (!ok) {
            return false;
        }
    }
    return true;
}

void check(const ScanResult& result, std::string_view content, std::size_t max_findings)
{
    require(result.findings.size() <= max_findings);
    std::size_t previous = 0;
    // Line and column recounted from the bytes, incrementally (findings are in input order).
    std::size_t line = 1;
    std::size_t line_start = 0;
    for (const Finding& f : result.findings) {
        require(f.length > 0);
        require(f.offset >= previous);
        require(f.offset <= content.size() && f.length <= content.size() - f.offset);
        for (std::size_t i = previous; i < f.offset; ++i) {
            if (content[i] == '\n') {
                ++line;
                line_start = i + 1;
            }
        }
        previous = f.offset;
        require(f.line == line);
        require(f.column == f.offset - line_start + 1);
        require(f.fingerprint.size() == 2 * kFingerprintBytes);
        for (const char c : f.fingerprint) {
            require((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'));
        }
        const std::string suffix = "(" + std::to_string(f.length) + ")";
        require(f.preview.size() >= suffix.size() &&
                f.preview.compare(f.preview.size() - suffix.size(), suffix.size(), suffix) == 0);
        require(f.preview.size() <= 16 + 3 + suffix.size());
        const std::string_view secret = content.substr(f.offset, f.length);
        require(secret.size() < 8 || f.preview.find(secret) == std::string::npos);
        require(f.entropy >= 0.0 && f.entropy <= 8.0);
    }
}

void fuzz_regex(std::string_view pattern)
{
    auto compiled = re::Regex::compile(pattern);
    if (!std::holds_alternative<re::Regex>(compiled)) {
        return;
    }
    const auto& regex = std::get<re::Regex>(compiled);
    static re::Scratch scratch;
    re::Budget budget{100000};
    std::vector<re::Span> spans;
    // The pattern searched over its own text, whole and through a window of its middle.
    const std::size_t size = pattern.size();
    for (const auto& [from, start_end, to] : {std::array<std::size_t, 3>{0, size, size},
                                              std::array<std::size_t, 3>{size / 4, size / 2 + 1, 3 * size / 4}}) {
        const re::Outcome outcome = regex.search(pattern, from, start_end, to, spans, budget, scratch);
        require(spans.size() == 2);
        if (outcome == re::Outcome::Found) {
            require(spans[0].begin >= from && spans[0].begin < start_end);
            require(spans[0].begin <= spans[0].end && spans[0].end <= to);
            require(spans[1].begin == re::kUnset || (spans[1].begin <= spans[1].end && spans[1].end <= to));
        }
    }
    (void)regex.contains(pattern, budget, scratch);
    (void)re::single_byte_class(pattern);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0) {
        return 0;
    }
    const std::string_view input(reinterpret_cast<const char*>(data), size);
    const char mode = input.front();
    const std::string_view rest = input.substr(1);
    if (mode == 'R') {
        fuzz_regex(rest);
        return 0;
    }
    if (mode == 'T') {
        (void)RuleSet::parse(rest, "fuzz.toml");
        return 0;
    }
    static constexpr std::array<std::string_view, 6> kNames = {"src/app.py", ".env", "deploy/.env.production",
                                                               "config.yml", "",     "kube/config"};
    const std::string_view name = kNames[static_cast<unsigned char>(mode) % kNames.size()];

    const ScanResult full = scanner().scan(rest, name, kKey);
    check(full, rest, kDefaultMaxFindings);

    ScanOptions tight;
    tight.max_findings = 3;
    tight.budget_per_byte = 1;
    tight.budget_floor = 64;
    const ScanResult capped = scanner().scan(rest, name, kKey, tight);
    check(capped, rest, 3);

    for (const auto& variable : env_file_variable_names(rest)) {
        require(is_name(variable, true) && variable.size() <= 256);
    }
    for (const auto& variable : env_var_reads(rest)) {
        require(is_name(variable, false) && variable.size() <= 128);
    }
    (void)env_file_kind(rest);
    return 0;
}
