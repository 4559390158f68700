// Shared helpers for the lib/scan tests: the built-in rules compiled once per test process
// (Criterion runs each test in its own process), a fixed fingerprint key, and small queries.
#pragma once

#include <array>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "lib/scan/builtin_rules.hpp"
#include "lib/scan/matcher.hpp"

namespace scan_test {

using namespace codexvault::scan;

inline std::shared_ptr<const Matcher> builtin_matcher()
{
    static const std::shared_ptr<const Matcher> matcher = [] {
        auto created = Matcher::create(builtin_rules_text(), "lib/scan/rules.toml");
        if (!created) {
            std::fprintf(stderr, "built-in rules do not load: %s\n", created.message().c_str());
            std::abort();
        }
        return created.value();
    }();
    return matcher;
}

inline constexpr std::array<std::uint8_t, kFingerprintKeyBytes> kKey = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                                                        12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                                                        23, 24, 25, 26, 27, 28, 29, 30, 31, 32};

inline ScanResult scan(std::string_view content, std::string_view file_name = "src/app.py",
                       const ScanOptions& options = {})
{
    static Scanner scanner(builtin_matcher());
    return scanner.scan(content, file_name, kKey, options);
}

inline const Finding* find_rule(const ScanResult& result, std::string_view rule_id)
{
    for (const auto& finding : result.findings) {
        if (finding.rule_id == rule_id) {
            return &finding;
        }
    }
    return nullptr;
}

// The file name a rule's own examples are scanned under: one its `files` filter accepts.
inline std::string example_file_name(const Rule& rule)
{
    if (rule.files.empty()) {
        return "example.txt";
    }
    const std::string& first = rule.files.front();
    if (first == "@env") {
        return ".env";
    }
    std::string name;
    for (const char c : first) {
        name.push_back(c == '*' || c == '?' ? 'x' : c);
    }
    return name;
}

// Deterministic bytes for hostile-input tests.
class Random {
public:
    explicit Random(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next()
    {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    std::string chars(std::string_view alphabet, std::size_t n)
    {
        std::string out(n, ' ');
        for (auto& c : out) {
            c = alphabet[next() % alphabet.size()];
        }
        return out;
    }

private:
    std::uint64_t state_;
};

inline constexpr std::string_view kAlnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

}  // namespace scan_test
