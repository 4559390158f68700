// Secret-detection rules as data: the shape of one rule and the loader for a rules file
// (TOML; lib/scan/README.md documents every key). Loading validates everything it can without
// Vectorscan: required keys, value ranges, unknown keys, unique ids, and that every pattern
// compiles with the second-stage engine.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/scan/result.hpp"

namespace codexvault::scan {

// How sure a finding is to be a live credential (not how dangerous it would be):
//   High   a provider's documented format with a distinctive prefix or structure;
//   Medium a format that needs context (a keyword, a URL shape) or is often a test fixture;
//   Low    a heuristic (a high-entropy quoted string).
enum class Confidence : std::uint8_t { Low = 0, Medium = 1, High = 2 };

std::string_view to_string(Confidence confidence) noexcept;

struct Rule {
    std::string id;      // unique, [a-z0-9-]
    std::string family;  // several rules may share one (github: ghp_, gho_, github_pat_, ...)
    std::string name;
    Confidence confidence = Confidence::Medium;
    std::string provider;  // the vault's name for the provider ("openai"); empty when none

    // The secret is capture group 1 when the pattern has groups, else the whole match.
    std::string pattern;

    // What makes the first stage look at a place, one of:
    //   keywords   literals Vectorscan looks for (exact case unless keywords_ignore_case). The
    //              second stage searches the pattern for a match that starts between `before`
    //              bytes before a keyword and the keyword's end, and ends at most `window`
    //              bytes after the keyword;
    //   run_class  runs of run_min (to run_max, when set) bytes of one byte class, optionally
    //              only right after one of the run_after bytes (for a heuristic with no
    //              literal); a match starts between `before` bytes before a run and the run's
    //              first byte, and ends at most `window` bytes after the run;
    //   neither    Vectorscan runs the pattern itself (costlier: for patterns without a usable
    //              literal); a match ends where Vectorscan reports one and starts at most
    //              max_length bytes before. Except: a rule limited to some `files` with neither
    //              is searched by the second stage over the whole of each such file.
    std::vector<std::string> keywords;
    bool keywords_ignore_case = false;
    std::string run_class;
    std::uint32_t run_min = 0;
    std::uint32_t run_max = 0;  // longer runs are skipped; 0: no limit
    std::string run_after;      // when set, only runs just after one of these bytes (quotes)
    std::uint32_t before = 0;
    std::uint32_t window = 256;
    std::uint32_t max_length = 1024;

    double min_entropy = 0.0;         // Shannon bits per byte of the secret
    std::uint32_t public_prefix = 0;  // leading bytes of the secret that are a public, fixed prefix
    std::string verify;               // a named verifier (lib/scan/verifiers.hpp), or empty
    std::string gate;                 // keyword rules: a named check after each keyword (gates.hpp)
    std::vector<std::string> ignore;  // patterns; a secret containing a match is dropped
    std::vector<std::string> files;   // basename globs ('*', '?', caseless) or "@env"; empty = all

    std::vector<std::string> examples;           // each must produce a finding of this rule
    std::vector<std::string> negative_examples;  // each must produce no finding of any rule
};

class RuleSet {
public:
    // Parses a rules file; `source` names it in error messages.
    static Result<RuleSet> parse(std::string_view text, std::string_view source = "rules");

    [[nodiscard]] const std::vector<Rule>& rules() const noexcept { return rules_; }
    [[nodiscard]] std::size_t family_count() const;

private:
    std::vector<Rule> rules_;
};

}  // namespace codexvault::scan
