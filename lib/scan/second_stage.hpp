// The second stage: a rule's own pattern, compiled with PCRE2 and run only on bounded windows
// around first-stage (Vectorscan) hits. Vectorscan reports where a match ends but not where it
// starts nor what its groups hold; PCRE2 recovers both.
//
// Dialect: PCRE2's, over bytes: compiled without UTF or UCP (and refusing (*UTF)/(*UCP) in a
// pattern), so `.`, classes, \w, \d, \s and \b work on single bytes and any input, valid UTF-8
// or not, is fine; `^` and `$` are multi-line (at line starts and ends); \C is refused.
// Vectorscan must accept the same pattern for rules it runs itself, which rules out lookbehind
// and backreferences there (lookaheads are run in prefilter mode; see first_stage.hpp).
//
// Cost: every search runs under a PCRE2 match limit, depth limit and heap limit (and, with the
// JIT, a bounded JIT stack), and draws on a Budget shared by the whole scan, so a pathological
// pattern or input costs a bounded amount and is reported, never a hang (README.md, "Budget").
#pragma once

// 8-bit code units: the scanner matches bytes.
#ifndef PCRE2_CODE_UNIT_WIDTH
#define PCRE2_CODE_UNIT_WIDTH 8
#endif
#include <pcre2.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "lib/scan/runs.hpp"

namespace codexvault::scan::re {

inline constexpr std::size_t kUnset = static_cast<std::size_t>(-1);

struct Span {
    std::size_t begin = 0;
    std::size_t end = 0;
    [[nodiscard]] std::size_t size() const noexcept { return end - begin; }
    friend bool operator==(const Span&, const Span&) = default;
};

// Work left for the second stage of one scan, in PCRE2 match-limit units (about one per byte
// examined or backtracking step).
struct Budget {
    std::uint64_t left = 0;
};

enum class Outcome : std::uint8_t {
    Found,
    NotFound,
    LimitHit,     // this search gave up at its own limit (match, depth, heap or JIT stack)
    OutOfBudget,  // the scan's budget is spent
};

struct CodeDeleter {
    void operator()(pcre2_code* code) const noexcept { pcre2_code_free(code); }
};
struct MatchDataDeleter {
    void operator()(pcre2_match_data* data) const noexcept { pcre2_match_data_free(data); }
};
struct MatchContextDeleter {
    void operator()(pcre2_match_context* context) const noexcept { pcre2_match_context_free(context); }
};
struct JitStackDeleter {
    void operator()(pcre2_jit_stack* stack) const noexcept { pcre2_jit_stack_free(stack); }
};

// Per-thread matching state: match data (two pairs: the whole match and group 1 are all the
// scanner reads), a match context with the limits, and a JIT stack. One per Scanner.
class Scratch {
public:
    // Throws std::bad_alloc when PCRE2 cannot allocate.
    Scratch();

private:
    friend class Regex;
    std::unique_ptr<pcre2_match_data, MatchDataDeleter> data_;
    std::unique_ptr<pcre2_match_context, MatchContextDeleter> context_;
    std::unique_ptr<pcre2_jit_stack, JitStackDeleter> jit_stack_;
    int pairs_ = 0;  // pairs the last successful match set
};

// Limits of one search, in PCRE2 units: a floor plus so many per byte of its window, never
// more than what is left of the scan's budget.
inline constexpr std::uint64_t kSearchFloor = 20000;
inline constexpr std::uint64_t kSearchPerByte = 16;
// What one search is charged besides the bytes it could have examined.
inline constexpr std::uint64_t kSearchCost = 64;
// Backtracking memory of one search (interpreter) and the JIT stack's largest size.
inline constexpr std::uint32_t kHeapLimitKiB = 16 * 1024;
inline constexpr std::size_t kJitStackBytes = 1024 * 1024;

class Regex {
public:
    // Error text names the byte offset in the pattern.
    static std::variant<Regex, std::string> compile(std::string_view pattern);

    // Number of capture groups, not counting group 0 (the whole match).
    [[nodiscard]] std::uint32_t groups() const noexcept { return groups_; }
    // PCRE2's minimum match length is 0: the pattern may match the empty string (a lower
    // bound, so a pattern that only looks ahead is also reported).
    [[nodiscard]] bool can_match_empty() const noexcept { return min_length_ == 0; }
    // Whether a match can begin with this byte (a cheap pre-check before a search); from
    // PCRE2's start-of-match analysis, over-approximated when it has none.
    [[nodiscard]] bool can_start_with(unsigned char byte) const noexcept { return first_[byte]; }
    [[nodiscard]] bool has_backreferences() const noexcept { return backreferences_; }
    [[nodiscard]] bool jit() const noexcept { return jit_; }

    // Leftmost-first match starting in [from, start_end) within text[0, to): the text from
    // `to` on is not seen at all, and `$` does not match at `to` when text goes on past it
    // (PCRE2_NOTEOL), so a match cut by the window is not taken for one at a line end; `\b`
    // at `to` does see a boundary. Text before `from` is seen by ^, \b and lookbehind.
    // On Found, spans[0] is the whole match and spans[1] group 1 ({kUnset, kUnset} when unset
    // or absent). Charges the budget (README.md, "Budget").
    Outcome search(std::string_view text, std::size_t from, std::size_t start_end, std::size_t to,
                   std::vector<Span>& spans, Budget& budget, Scratch& scratch) const;

    // Whether some match lies wholly inside text (ignore patterns on a candidate secret).
    Outcome contains(std::string_view text, Budget& budget, Scratch& scratch) const;

private:
    friend std::optional<ByteTable> single_byte_class(std::string_view pattern);
    Outcome run(std::string_view subject, std::size_t from, std::uint32_t options, std::size_t offset_limit,
                Budget& budget, Scratch& scratch) const;

    std::shared_ptr<const pcre2_code> code_;  // shared: a Matcher's copies and threads only read it
    ByteTable first_{};
    std::uint32_t groups_ = 0;
    std::size_t min_length_ = 0;
    bool backreferences_ = false;
    bool jit_ = false;
};

// The byte class a pattern stands for when it matches exactly one byte and nothing else
// (`[A-Za-z0-9+/]`, `\w`, `x`); nullopt otherwise. Checked with Vectorscan's width analysis,
// the table filled by PCRE2.
std::optional<ByteTable> single_byte_class(std::string_view pattern);

}  // namespace codexvault::scan::re
