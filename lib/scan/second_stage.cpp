#include "lib/scan/second_stage.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace codexvault::scan::re {

namespace {

// Bytes, not UTF-8, and no way for a pattern to switch that back on; multi-line anchors (the
// dialect the rules are written in); \C refused (meaningless without UTF, and a footgun with
// it); the offset limit bounds where a windowed match may start.
constexpr std::uint32_t kCompileOptions =
    PCRE2_MULTILINE | PCRE2_NEVER_UTF | PCRE2_NEVER_UCP | PCRE2_NEVER_BACKSLASH_C | PCRE2_USE_OFFSET_LIMIT;

bool jit_available() noexcept
{
    static const bool available = [] {
        std::uint32_t jit = 0;
        return pcre2_config(PCRE2_CONFIG_JIT, &jit) >= 0 && jit == 1;
    }();
    return available;
}

std::string error_text(int code)
{
    PCRE2_UCHAR buffer[256];
    if (pcre2_get_error_message(code, buffer, sizeof buffer) < 0) {
        return "PCRE2 error " + std::to_string(code);
    }
    return reinterpret_cast<const char*>(buffer);
}

bool is_limit_error(int rc) noexcept
{
    return rc == PCRE2_ERROR_MATCHLIMIT || rc == PCRE2_ERROR_DEPTHLIMIT || rc == PCRE2_ERROR_HEAPLIMIT ||
           rc == PCRE2_ERROR_JIT_STACKLIMIT || rc == PCRE2_ERROR_NOMEMORY;
}

void set_bit_table(ByteTable& table, const pcre2_code* code)
{
    std::uint32_t type = 0;
    const std::uint8_t* bitmap = nullptr;
    if (pcre2_pattern_info(code, PCRE2_INFO_FIRSTBITMAP, &bitmap) == 0 && bitmap != nullptr) {
        for (unsigned byte = 0; byte < 256; ++byte) {
            table[byte] = ((bitmap[byte / 8] >> (byte % 8)) & 1) != 0;
        }
        return;
    }
    if (pcre2_pattern_info(code, PCRE2_INFO_FIRSTCODETYPE, &type) == 0 && type == 1) {
        std::uint32_t unit = 0;
        if (pcre2_pattern_info(code, PCRE2_INFO_FIRSTCODEUNIT, &unit) == 0 && unit < 256) {
            table.fill(false);
            table[unit] = true;
            // PCRE2 does not say whether the first unit is caseless; both cases are allowed.
            if (unit >= 'a' && unit <= 'z') {
                table[unit - 'a' + 'A'] = true;
            } else if (unit >= 'A' && unit <= 'Z') {
                table[unit - 'A' + 'a'] = true;
            }
            return;
        }
    }
    table.fill(true);  // no start analysis (a leading ^, a lookahead): any byte may start a match
}

}  // namespace

Scratch::Scratch()
{
    data_.reset(pcre2_match_data_create(2, nullptr));
    context_.reset(pcre2_match_context_create(nullptr));
    if (data_ == nullptr || context_ == nullptr) {
        throw std::bad_alloc();
    }
    pcre2_set_heap_limit(context_.get(), kHeapLimitKiB);
    if (jit_available()) {
        jit_stack_.reset(pcre2_jit_stack_create(32 * 1024, kJitStackBytes, nullptr));
        if (jit_stack_ == nullptr) {
            throw std::bad_alloc();
        }
        pcre2_jit_stack_assign(context_.get(), nullptr, jit_stack_.get());
    }
}

std::variant<Regex, std::string> Regex::compile(std::string_view pattern)
{
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* raw = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(), kCompileOptions,
                                    &error, &offset, nullptr);
    if (raw == nullptr) {
        if (error == PCRE2_ERROR_NOMEMORY) {
            throw std::bad_alloc();
        }
        return "at byte " + std::to_string(offset) + ": " + error_text(error);
    }
    Regex regex;
    regex.code_.reset(raw, CodeDeleter{});
    // The JIT needs executable memory; where it cannot have any (no JIT in this build, or a
    // policy that refuses it) the interpreter runs the same pattern with the same limits.
    regex.jit_ = jit_available() && pcre2_jit_compile(raw, PCRE2_JIT_COMPLETE) == 0;
    std::uint32_t value = 0;
    if (pcre2_pattern_info(raw, PCRE2_INFO_CAPTURECOUNT, &value) != 0) {
        return std::string("cannot read the pattern's group count");
    }
    regex.groups_ = value;
    if (pcre2_pattern_info(raw, PCRE2_INFO_MINLENGTH, &value) != 0) {
        return std::string("cannot read the pattern's minimum length");
    }
    regex.min_length_ = value;
    if (pcre2_pattern_info(raw, PCRE2_INFO_BACKREFMAX, &value) != 0) {
        return std::string("cannot read the pattern's backreferences");
    }
    regex.backreferences_ = value != 0;
    set_bit_table(regex.first_, raw);
    return regex;
}

Outcome Regex::run(std::string_view subject, std::size_t from, std::uint32_t options, std::size_t offset_limit,
                   Budget& budget, Scratch& scratch) const
{
    if (budget.left == 0) {
        return Outcome::OutOfBudget;
    }
    const std::uint64_t window = subject.size() - from;
    const std::uint64_t wanted = kSearchFloor + kSearchPerByte * window;
    const auto limit = static_cast<std::uint32_t>(std::min<std::uint64_t>({wanted, budget.left, UINT32_MAX}));
    pcre2_match_context* context = scratch.context_.get();
    pcre2_set_match_limit(context, limit);
    pcre2_set_depth_limit(context, limit);
    pcre2_set_offset_limit(context, offset_limit);
    // Vectorscan and PCRE2 both want a non-null pointer, even for nothing.
    const auto* bytes = reinterpret_cast<PCRE2_SPTR>(subject.empty() ? "" : subject.data());
    const int rc = pcre2_match(code_.get(), bytes, subject.size(), from, options, scratch.data_.get(), context);
    std::uint64_t charge = limit;
    Outcome outcome = Outcome::LimitHit;
    if (rc >= 0) {
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data_.get());
        charge = std::min<std::uint64_t>(limit, ovector[1] - from + kSearchCost);
        // rc is the number of pairs set; 0 when there were more than the two there is room for.
        scratch.pairs_ = rc == 0 ? 2 : rc;
        outcome = Outcome::Found;
    } else if (rc == PCRE2_ERROR_NOMATCH) {
        charge = std::min<std::uint64_t>(limit, window + kSearchCost);
        outcome = Outcome::NotFound;
    } else if (is_limit_error(rc) && limit < wanted) {
        outcome = Outcome::OutOfBudget;  // it might have finished with the share it should have had
    }
    // Any other error (none is expected for a valid pattern and offsets) fails closed as a
    // limit: the scan reports itself incomplete.
    budget.left -= std::min(charge, budget.left);
    return outcome;
}

Outcome Regex::search(std::string_view text, std::size_t from, std::size_t start_end, std::size_t to,
                      std::vector<Span>& spans, Budget& budget, Scratch& scratch) const
{
    spans.assign(2, Span{kUnset, kUnset});
    to = std::min(to, text.size());
    start_end = std::min(start_end, to + 1);
    if (from >= start_end || from > to) {
        return Outcome::NotFound;
    }
    const std::uint32_t options = to < text.size() ? PCRE2_NOTEOL : 0;
    const Outcome outcome = run(text.substr(0, to), from, options, start_end - 1, budget, scratch);
    if (outcome != Outcome::Found) {
        return outcome;
    }
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(scratch.data_.get());
    spans[0] = Span{ovector[0], ovector[1]};
    if (scratch.pairs_ >= 2 && ovector[2] != PCRE2_UNSET && ovector[3] != PCRE2_UNSET) {
        spans[1] = Span{ovector[2], ovector[3]};
    }
    return Outcome::Found;
}

Outcome Regex::contains(std::string_view text, Budget& budget, Scratch& scratch) const
{
    return run(text, 0, 0, PCRE2_UNSET, budget, scratch);
}

std::optional<ByteTable> single_byte_class(std::string_view pattern)
{
    const std::string text(pattern);
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* error = nullptr;
    if (hs_expression_info(text.c_str(), 0, &info, &error) != HS_SUCCESS) {
        hs_free_compile_error(error);
        return std::nullopt;
    }
    const bool one_byte = info->min_width == 1 && info->max_width == 1;
    std::free(info);  // Vectorscan's default allocator
    if (!one_byte) {
        return std::nullopt;
    }
    auto compiled = Regex::compile(pattern);
    if (!std::holds_alternative<Regex>(compiled)) {
        return std::nullopt;
    }
    const Regex& regex = std::get<Regex>(compiled);
    std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(pcre2_match_data_create(1, nullptr));
    if (data == nullptr) {
        throw std::bad_alloc();
    }
    ByteTable table{};
    for (unsigned byte = 0; byte < 256; ++byte) {
        const auto one = static_cast<unsigned char>(byte);
        table[byte] =
            pcre2_match(regex.code_.get(), &one, 1, 0, PCRE2_ANCHORED | PCRE2_ENDANCHORED, data.get(), nullptr) >= 0;
    }
    return table;
}

}  // namespace codexvault::scan::re
