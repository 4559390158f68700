#include "lib/scan/first_stage.hpp"

#include <hs/hs.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

#include "lib/scan/env_reads.hpp"

namespace codexvault::scan {

namespace {

// A keyword as a Vectorscan literal: letters and digits as they are, everything else \xHH.
std::string escape_literal(const std::string& keyword)
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (const char c : keyword) {
        const auto byte = static_cast<unsigned char>(c);
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
            out.push_back(c);
        } else {
            out += "\\x";
            out.push_back(kHex[byte >> 4]);
            out.push_back(kHex[byte & 15]);
        }
    }
    return out;
}

struct ExpressionInfo {
    bool ok = false;
    std::uint32_t max_width = 0;
    std::string error;
};

ExpressionInfo expression_info(const std::string& expression, unsigned flags)
{
    hs_expr_info_t* info = nullptr;
    hs_compile_error_t* error = nullptr;
    ExpressionInfo out;
    if (hs_expression_info(expression.c_str(), flags, &info, &error) != HS_SUCCESS) {
        out.error = error != nullptr ? error->message : "unknown error";
        hs_free_compile_error(error);
        return out;
    }
    out.ok = true;
    out.max_width = info->max_width;
    std::free(info);  // hs_expression_info allocates with the misc allocator (malloc by default)
    return out;
}

}  // namespace

Trigger trigger_of(const Rule& rule) noexcept
{
    if (!rule.keywords.empty()) {
        return Trigger::Keywords;
    }
    if (!rule.run_class.empty()) {
        return Trigger::Runs;
    }
    return rule.files.empty() ? Trigger::Pattern : Trigger::WholeFile;
}

Result<FirstStage> compile_first_stage(const RuleSet& rules)
{
    const auto& list = rules.rules();
    std::vector<std::string> expressions;
    std::vector<unsigned> flags;
    std::vector<unsigned> ids;
    FirstStage stage;
    const auto add = [&](std::string expression, unsigned expression_flags, Expression target) {
        ids.push_back(static_cast<unsigned>(expressions.size()));
        expressions.push_back(std::move(expression));
        flags.push_back(expression_flags);
        stage.expressions.push_back(target);
    };
    for (std::size_t i = 0; i < list.size(); ++i) {
        const Rule& rule = list[i];
        const auto index = static_cast<std::uint32_t>(i);
        const Trigger trigger = trigger_of(rule);
        if (trigger == Trigger::Keywords) {
            const unsigned keyword_flags = rule.keywords_ignore_case ? HS_FLAG_CASELESS : 0u;
            for (const auto& keyword : rule.keywords) {
                const auto length = static_cast<std::uint32_t>(keyword.size());
                add(escape_literal(keyword), keyword_flags, {index, length, length + rule.before});
            }
            continue;
        }
        if (trigger != Trigger::Pattern) {
            continue;
        }
        unsigned rule_flags = HS_FLAG_MULTILINE;
        ExpressionInfo info = expression_info(rule.pattern, rule_flags);
        if (!info.ok) {
            // Lookaheads are not supported exactly; prefilter mode over-approximates them.
            const ExpressionInfo prefilter = expression_info(rule.pattern, rule_flags | HS_FLAG_PREFILTER);
            if (!prefilter.ok) {
                return Error{"rule '" + rule.id + "': Vectorscan: " + info.error};
            }
            rule_flags |= HS_FLAG_PREFILTER;
            info = prefilter;
        }
        add(rule.pattern, rule_flags, {index, 0, std::min(info.max_width, rule.max_length)});
    }
    // The env-read markers ride along, so listing the names code reads costs no second pass.
    for (std::size_t m = 0; m < env_read_marker_count(); ++m) {
        Expression marker;
        marker.marker = static_cast<std::uint32_t>(m);
        add(escape_literal(std::string(env_read_marker(m))), 0u, marker);
    }
    std::vector<const char*> pointers;
    pointers.reserve(expressions.size());
    for (const auto& expression : expressions) {
        pointers.push_back(expression.c_str());
    }
    hs_database_t* database = nullptr;
    hs_compile_error_t* error = nullptr;
    if (hs_compile_multi(pointers.data(), flags.data(), ids.data(), static_cast<unsigned>(pointers.size()),
                         HS_MODE_BLOCK, nullptr, &database, &error) != HS_SUCCESS) {
        std::string message = "Vectorscan: ";
        message += error != nullptr ? error->message : "unknown error";
        if (error != nullptr && error->expression >= 0 && static_cast<std::size_t>(error->expression) < ids.size()) {
            const Expression& failed = stage.expressions[static_cast<std::size_t>(error->expression)];
            if (failed.marker == Expression::kNoMarker) {
                message = "rule '" + list[failed.rule].id + "': " + message;
            }
        }
        hs_free_compile_error(error);
        return Error{message};
    }
    stage.database.reset(database);
    return stage;
}

}  // namespace codexvault::scan
