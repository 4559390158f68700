// The first stage: ONE Vectorscan block-mode database for all rules that use it, compiled once
// (immutable; shared by all threads). A keyword rule contributes each keyword as a literal
// expression, a pattern rule its pattern (see Expression).
// Vectorscan reports only match ends; the second stage (scanner.cpp) re-runs the rule's pattern
// in a bounded window to find the secret. Run rules and whole-file rules do not use
// Vectorscan (see Trigger).
#pragma once

#include <cstdint>
#include <vector>

#include "lib/scan/hs_handles.hpp"
#include "lib/scan/result.hpp"
#include "lib/scan/rules.hpp"

namespace codexvault::scan {

enum class Trigger : std::uint8_t {
    Keywords,   // Vectorscan finds the keywords
    Pattern,    // Vectorscan runs the pattern
    Runs,       // the run finder (runs.hpp) finds runs of run_class
    WholeFile,  // limited to some files: the second stage searches each such file whole
};

Trigger trigger_of(const Rule& rule) noexcept;

// What one Vectorscan expression stands for. Each keyword is its own expression, so a report
// tells exactly where the keyword starts and the second stage tries only the starts `before`
// allows (one, for a token prefix).
struct Expression {
    std::uint32_t rule = 0;
    std::uint32_t keyword_length = 0;  // 0 for a pattern expression
    // How far before the reported end a match can start: keyword length plus the rule's
    // `before`, or the pattern's maximum width capped by the rule's max_length.
    std::uint32_t look_back = 0;
    // An env-read marker (env_reads.hpp) instead of a rule: its index, else kNoMarker.
    std::uint32_t marker = kNoMarker;
    static constexpr std::uint32_t kNoMarker = UINT32_MAX;
};

struct FirstStage {
    HsDatabase database;                  // null when no rule uses Vectorscan
    std::vector<Expression> expressions;  // indexed by Vectorscan expression id
};

// Patterns Vectorscan cannot run exactly (lookaheads) are compiled in prefilter mode: they may
// report more ends than the pattern has, never fewer; the second stage decides.
Result<FirstStage> compile_first_stage(const RuleSet& rules);

}  // namespace codexvault::scan
