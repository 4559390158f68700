#include "lib/scan/matcher.hpp"

#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace codexvault::scan {

namespace {

Result<re::Regex> compile_regex(const std::string& pattern, const std::string& rule_id)
{
    auto compiled = re::Regex::compile(pattern);
    if (auto* error = std::get_if<std::string>(&compiled)) {
        return Error{"rule '" + rule_id + "': " + *error};
    }
    return std::get<re::Regex>(std::move(compiled));
}

}  // namespace

Result<std::shared_ptr<const Matcher>> Matcher::create(RuleSet rules)
{
    std::shared_ptr<Matcher> matcher(new Matcher());
    matcher->rules_ = std::move(rules);
    auto first = compile_first_stage(matcher->rules_);
    if (!first) {
        return Error{first.message()};
    }
    matcher->first_ = std::move(first).value();
    const auto& list = matcher->rules_.rules();
    matcher->compiled_.reserve(list.size());
    for (std::size_t i = 0; i < list.size(); ++i) {
        const Rule& rule = list[i];
        auto pattern = compile_regex(rule.pattern, rule.id);
        if (!pattern) {
            return Error{pattern.message()};
        }
        Compiled compiled;
        compiled.pattern = std::move(pattern).value();
        for (const auto& text : rule.ignore) {
            auto ignore = compile_regex(text, rule.id);
            if (!ignore) {
                return Error{ignore.message()};
            }
            compiled.ignore.push_back(std::move(ignore).value());
        }
        compiled.verifier = rule.verify.empty() ? nullptr : find_verifier(rule.verify);
        compiled.gate = rule.gate.empty() ? nullptr : find_gate(rule.gate);
        compiled.trigger = trigger_of(rule);
        compiled.before = rule.before;
        compiled.window = rule.window;
        if (compiled.trigger == Trigger::Runs) {
            const auto run_class = re::single_byte_class(rule.run_class);
            if (!run_class) {
                return Error{"rule '" + rule.id + "': 'run_class' must be one byte class"};
            }
            compiled.run_class = *run_class;
            compiled.run_min = rule.run_min;
            compiled.run_max = rule.run_max;
            compiled.run_after = rule.run_after;
            compiled.run_plan = plan_runs_after(rule.run_after, compiled.run_class, rule.run_min, rule.run_max);
        }
        matcher->compiled_.push_back(std::move(compiled));
    }
    return std::shared_ptr<const Matcher>(std::move(matcher));
}

Result<std::shared_ptr<const Matcher>> Matcher::create(std::string_view rules_text, std::string_view source)
{
    auto rules = RuleSet::parse(rules_text, source);
    if (!rules) {
        return Error{rules.message()};
    }
    return create(std::move(rules).value());
}

}  // namespace codexvault::scan
