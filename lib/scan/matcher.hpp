// The matcher: rules compiled for both stages (Matcher, immutable, shared by all threads) and
// the per-thread scanning state (Scanner). This is the library's entry point:
//
//   auto matcher = Matcher::create(rules_text, "rules.toml");      // once, at startup
//   Scanner scanner(matcher.value());                                // once per worker thread
//   ScanResult r = scanner.scan(bytes, "src/app/.env", key);         // per file
//
// Pure: no file or network I/O, no clock, no randomness; the library allocates memory and
// nothing else. The fingerprint key comes from the caller. libsodium's BLAKE2b works without
// sodium_init() (it then uses the portable implementation); the daemon calls sodium_init() at
// startup anyway, which also selects the faster one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "lib/scan/finding.hpp"
#include "lib/scan/first_stage.hpp"
#include "lib/scan/gates.hpp"
#include "lib/scan/hs_handles.hpp"
#include "lib/scan/result.hpp"
#include "lib/scan/rules.hpp"
#include "lib/scan/runs.hpp"
#include "lib/scan/second_stage.hpp"
#include "lib/scan/verifiers.hpp"

namespace codexvault::scan {

class Matcher {
public:
    static Result<std::shared_ptr<const Matcher>> create(RuleSet rules);
    // Parses the rules text first (`source` names it in errors).
    static Result<std::shared_ptr<const Matcher>> create(std::string_view rules_text, std::string_view source);

    [[nodiscard]] const RuleSet& rule_set() const noexcept { return rules_; }

private:
    friend class Scanner;
    struct Compiled {
        re::Regex pattern;
        std::vector<re::Regex> ignore;
        Verifier verifier = nullptr;
        Gate gate = nullptr;  // Keywords: checked at each keyword before a chain is made
        Trigger trigger = Trigger::Pattern;
        std::uint32_t before = 0;  // Keywords and Runs: how far before the trigger a match may start
        std::uint32_t window = 0;  // Keywords and Runs: how far past the trigger a match may end
        ByteTable run_class{};     // Runs
        std::uint32_t run_min = 0;
        std::uint32_t run_max = 0;
        std::string run_after;   // Runs: bytes one of which must come just before the run
        RunsAfterPlan run_plan;  // Runs with run_after: the run finder's tables, made once
    };
    Matcher() = default;

    RuleSet rules_;
    FirstStage first_;
    std::vector<Compiled> compiled_;
};

// Scans one buffer at a time. Not thread-safe: it owns the Vectorscan scratch (per-thread by
// Vectorscan's design) and reusable buffers, so give each thread its own Scanner; the Matcher
// is shared (the Scanner keeps it alive).
class Scanner {
public:
    // Throws std::bad_alloc when Vectorscan cannot allocate the scratch.
    explicit Scanner(std::shared_ptr<const Matcher> matcher);
    Scanner(const Scanner&) = delete;
    Scanner& operator=(const Scanner&) = delete;

    // content: any bytes (binary and invalid UTF-8 are fine); file_name: the path or base name,
    // used only to select rules limited to some files (`files` in the rules) and never stored.
    // The result holds no secret bytes; it is in input order and capped (ScanOptions).
    ScanResult scan(std::string_view content, std::string_view file_name,
                    std::span<const std::uint8_t, kFingerprintKeyBytes> key, const ScanOptions& options = {});

    [[nodiscard]] const Matcher& matcher() const noexcept { return *matcher_; }

private:
    // Where the second stage searches one rule: a match starts in [from, start_end) and
    // ends by limit. Nearby triggers of one rule merge into one chain.
    struct Chain {
        std::uint32_t rule;
        std::size_t from;
        std::size_t start_end;
        std::size_t limit;
    };
    struct Candidate {
        std::uint32_t rule;
        std::size_t offset;
        std::size_t length;
        double entropy;
    };

    static int on_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags,
                        void* context);
    void add(std::uint32_t rule, std::size_t from, std::size_t start_end, std::size_t limit);
    void flush();
    void verify(const Chain& chain);
    void consider(std::uint32_t rule, re::Span secret);
    void stop(Truncation reason);
    void note(Truncation reason);  // the first reason the result is incomplete; the scan goes on
    void finish(ScanResult& result, std::span<const std::uint8_t, kFingerprintKeyBytes> key);

    std::shared_ptr<const Matcher> matcher_;
    HsScratch scratch_;
    re::Scratch re_scratch_;
    std::vector<re::Span> spans_;

    // State of the scan in progress.
    std::string_view content_;
    ScanStats* stats_ = nullptr;
    Truncation truncation_ = Truncation::None;
    bool stopped_ = false;
    std::size_t candidate_cap_ = 0;
    re::Budget budget_;
    std::vector<std::uint8_t> active_;                    // per rule: applies to this file
    std::vector<std::uint32_t> open_;                     // per rule: index of its newest chain, or kNoChain
    std::vector<Chain> chains_;                           // first-stage hits waiting for the second stage
    std::vector<Candidate> candidates_;                   // verified, before overlap removal
    std::unordered_set<std::uint64_t> seen_;              // (rule, offset) already recorded
    std::vector<std::string_view>* env_reads_ = nullptr;  // names read, when asked for
};

}  // namespace codexvault::scan
