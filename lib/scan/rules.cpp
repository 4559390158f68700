#include "lib/scan/rules.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <new>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "lib/scan/gates.hpp"
#include "lib/scan/second_stage.hpp"
#include "lib/scan/verifiers.hpp"

namespace codexvault::scan {

std::string_view to_string(Confidence confidence) noexcept
{
    switch (confidence) {
    case Confidence::High:
        return "high";
    case Confidence::Medium:
        return "medium";
    case Confidence::Low:
        return "low";
    }
    return "low";
}

namespace {

constexpr std::int64_t kMaxWindow = 65536;
constexpr std::int64_t kMinRun = 8;
constexpr std::int64_t kMaxRun = 4096;
constexpr std::size_t kMaxRunAfter = 4;
constexpr std::int64_t kMaxLength = 65536;
constexpr std::int64_t kMaxPublicPrefix = 64;
constexpr std::size_t kMaxKeywordBytes = 64;

bool is_id(std::string_view text)
{
    if (text.empty() || text.size() > 64 || text.front() == '-') {
        return false;
    }
    return std::all_of(text.begin(), text.end(),
                       [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-'; });
}

bool is_provider(std::string_view text)
{
    if (text.empty() || text.size() > 64) {
        return false;
    }
    return std::all_of(text.begin(), text.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.';
    });
}

// Reads one [[rule]] table; errors name the rule (or its position) and the key.
class RuleReader {
public:
    RuleReader(const toml::table& table, std::string where) : table_(table), where_(std::move(where)) {}

    std::optional<Rule> read()
    {
        static const std::set<std::string_view> kKnown = {"id",
                                                          "family",
                                                          "name",
                                                          "confidence",
                                                          "provider",
                                                          "pattern",
                                                          "keywords",
                                                          "keywords_ignore_case",
                                                          "run_class",
                                                          "run_min",
                                                          "run_max",
                                                          "run_after",
                                                          "before",
                                                          "window",
                                                          "max_length",
                                                          "min_entropy",
                                                          "public_prefix",
                                                          "verify",
                                                          "gate",
                                                          "ignore",
                                                          "files",
                                                          "examples",
                                                          "negative_examples"};
        for (const auto& [key, node] : table_) {
            if (!kKnown.contains(key.str())) {
                return fail("unknown key '" + std::string(key.str()) + "'");
            }
        }
        Rule rule;
        if (!text("id", rule.id, true) || !is_id(rule.id)) {
            return fail("'id' must be 1-64 of [a-z0-9-]");
        }
        where_ = "rule '" + rule.id + "'";
        if (!text("family", rule.family, true) || !is_id(rule.family)) {
            return fail("'family' must be 1-64 of [a-z0-9-]");
        }
        if (!text("name", rule.name, true) || rule.name.empty()) {
            return fail("'name' is required");
        }
        std::string confidence;
        if (!text("confidence", confidence, true)) {
            return fail("'confidence' is required");
        }
        if (confidence == "high") {
            rule.confidence = Confidence::High;
        } else if (confidence == "medium") {
            rule.confidence = Confidence::Medium;
        } else if (confidence == "low") {
            rule.confidence = Confidence::Low;
        } else {
            return fail("'confidence' must be high, medium or low");
        }
        if (!text("provider", rule.provider, false) || (!rule.provider.empty() && !is_provider(rule.provider))) {
            return fail("'provider' must be 1-64 of [a-z0-9._-]");
        }
        if (!text("pattern", rule.pattern, true) || rule.pattern.empty()) {
            return fail("'pattern' is required");
        }
        if (auto error = check_pattern(rule.pattern, true)) {
            return fail("'pattern': " + *error);
        }
        if (!list("keywords", rule.keywords, false)) {
            return std::nullopt;
        }
        for (const auto& keyword : rule.keywords) {
            if (keyword.empty() || keyword.size() > kMaxKeywordBytes) {
                return fail("each keyword must be 1-64 bytes");
            }
        }
        if (const auto* node = table_.get("keywords_ignore_case")) {
            const auto value = node->value_exact<bool>();
            if (!value) {
                return fail("'keywords_ignore_case' must be true or false");
            }
            rule.keywords_ignore_case = *value;
        }
        if (!text("run_class", rule.run_class, false)) {
            return std::nullopt;
        }
        std::int64_t number = 0;
        if (!integer("run_min", number, rule.run_class.empty() ? 0 : kMinRun, kMaxRun)) {
            return std::nullopt;
        }
        rule.run_min = static_cast<std::uint32_t>(number);
        number = 0;
        if (!integer("run_max", number, 0, kMaxWindow)) {
            return std::nullopt;
        }
        rule.run_max = static_cast<std::uint32_t>(number);
        if (rule.run_max != 0 && (rule.run_class.empty() || rule.run_max < rule.run_min)) {
            return fail("'run_max' needs 'run_class' and must not be below 'run_min'");
        }
        if (!text("run_after", rule.run_after, false)) {
            return std::nullopt;
        }
        if (!rule.run_after.empty() && (rule.run_class.empty() || rule.run_after.size() > kMaxRunAfter)) {
            return fail("'run_after' needs 'run_class' and holds at most 4 bytes");
        }
        if (!rule.run_class.empty()) {
            if (!rule.keywords.empty()) {
                return fail("'keywords' and 'run_class' exclude each other");
            }
            if (!re::single_byte_class(rule.run_class)) {
                return fail("'run_class' must be one byte class, such as '[A-Za-z0-9]'");
            }
            if (rule.run_min == 0) {
                return fail("'run_min' is required with 'run_class'");
            }
        } else if (rule.run_min != 0) {
            return fail("'run_min' needs 'run_class'");
        }
        number = rule.before;
        if (!integer("before", number, 0, kMaxWindow)) {
            return std::nullopt;
        }
        rule.before = static_cast<std::uint32_t>(number);
        number = rule.window;
        if (!integer("window", number, 1, kMaxWindow)) {
            return std::nullopt;
        }
        rule.window = static_cast<std::uint32_t>(number);
        number = rule.max_length;
        if (!integer("max_length", number, 1, kMaxLength)) {
            return std::nullopt;
        }
        rule.max_length = static_cast<std::uint32_t>(number);
        number = 0;
        if (!integer("public_prefix", number, 0, kMaxPublicPrefix)) {
            return std::nullopt;
        }
        rule.public_prefix = static_cast<std::uint32_t>(number);
        if (const auto* node = table_.get("min_entropy")) {
            const auto value = node->value<double>();
            if (!value || !std::isfinite(*value) || *value < 0.0 || *value > 8.0) {
                return fail("'min_entropy' must be a number from 0 to 8");
            }
            rule.min_entropy = *value;
        }
        if (!text("verify", rule.verify, false)) {
            return std::nullopt;
        }
        if (!rule.verify.empty() && find_verifier(rule.verify) == nullptr) {
            return fail("unknown verifier '" + rule.verify + "'");
        }
        if (!text("gate", rule.gate, false)) {
            return std::nullopt;
        }
        if (!rule.gate.empty() && find_gate(rule.gate) == nullptr) {
            return fail("unknown gate '" + rule.gate + "'");
        }
        if (!rule.gate.empty() && rule.keywords.empty()) {
            return fail("'gate' applies to keyword rules only");
        }
        if (!list("ignore", rule.ignore, false)) {
            return std::nullopt;
        }
        for (const auto& pattern : rule.ignore) {
            if (auto error = check_pattern(pattern, false)) {
                return fail("'ignore' pattern: " + *error);
            }
        }
        if (!list("files", rule.files, false)) {
            return std::nullopt;
        }
        // Keys that only mean something for one kind of trigger (rules.hpp) are refused elsewhere,
        // so a typo in a rule cannot silently do nothing.
        const bool windowed = !rule.keywords.empty() || !rule.run_class.empty();
        if (!windowed && (table_.contains("before") || table_.contains("window"))) {
            return fail("'before' and 'window' apply to keyword and run rules only");
        }
        if (windowed && table_.contains("max_length")) {
            return fail("'max_length' applies to rules without keywords or run_class only");
        }
        if (!rule.run_class.empty() && !rule.files.empty()) {
            return fail("'files' cannot limit a run rule");
        }
        if (!list("examples", rule.examples, true) || rule.examples.empty()) {
            return fail("at least one example is required");
        }
        if (!list("negative_examples", rule.negative_examples, true) || rule.negative_examples.empty()) {
            return fail("at least one negative example is required");
        }
        return rule;
    }

    [[nodiscard]] const std::string& error() const { return error_; }

private:
    std::nullopt_t fail(std::string message)
    {
        if (error_.empty()) {
            error_ = where_ + ": " + std::move(message);
        }
        return std::nullopt;
    }

    bool text(std::string_view key, std::string& out, bool required)
    {
        const auto* node = table_.get(key);
        if (node == nullptr) {
            return !required;
        }
        const auto* value = node->as_string();
        if (value == nullptr) {
            fail("'" + std::string(key) + "' must be a string");
            return false;
        }
        out = value->get();
        return true;
    }

    bool list(std::string_view key, std::vector<std::string>& out, bool required)
    {
        const auto* node = table_.get(key);
        if (node == nullptr) {
            if (required) {
                fail("'" + std::string(key) + "' is required");
            }
            return !required;
        }
        const auto* array = node->as_array();
        if (array == nullptr) {
            fail("'" + std::string(key) + "' must be an array of strings");
            return false;
        }
        for (const auto& item : *array) {
            const auto* value = item.as_string();
            if (value == nullptr) {
                fail("'" + std::string(key) + "' must be an array of strings");
                return false;
            }
            out.push_back(value->get());
        }
        return true;
    }

    bool integer(std::string_view key, std::int64_t& out, std::int64_t min, std::int64_t max)
    {
        const auto* node = table_.get(key);
        if (node == nullptr) {
            return true;
        }
        const auto value = node->value_exact<std::int64_t>();
        if (!value || *value < min || *value > max) {
            fail("'" + std::string(key) + "' must be an integer from " + std::to_string(min) + " to " +
                 std::to_string(max));
            return false;
        }
        out = *value;
        return true;
    }

    static std::optional<std::string> check_pattern(const std::string& pattern, bool at_most_one_group)
    {
        auto compiled = re::Regex::compile(pattern);
        if (const auto* error = std::get_if<std::string>(&compiled)) {
            return *error;
        }
        const auto& regex = std::get<re::Regex>(compiled);
        if (regex.can_match_empty()) {
            return std::string("the pattern can match the empty string");
        }
        // Matching with backreferences is not a regular language any more: nothing needs them,
        // and Vectorscan could only approximate them.
        if (regex.has_backreferences()) {
            return std::string("backreferences are not supported");
        }
        if (at_most_one_group && regex.groups() > 1) {
            return std::string("use (?:...) for every group but the secret's");
        }
        return std::nullopt;
    }

    const toml::table& table_;
    std::string where_;
    std::string error_;
};

}  // namespace

Result<RuleSet> RuleSet::parse(std::string_view text, std::string_view source)
{
    const std::string name(source);
    try {
        const toml::table root = toml::parse(text, name);
        for (const auto& [key, node] : root) {
            if (key.str() != "version" && key.str() != "rule") {
                return Error{name + ": unknown top-level key '" + std::string(key.str()) + "'"};
            }
        }
        const auto version = root["version"].value_exact<std::int64_t>();
        if (!version || *version != 1) {
            return Error{name + ": 'version = 1' is required"};
        }
        const auto* array = root["rule"].as_array();
        if (array == nullptr || array->empty()) {
            return Error{name + ": no [[rule]] tables"};
        }
        RuleSet set;
        std::set<std::string, std::less<>> ids;
        std::size_t index = 0;
        for (const auto& node : *array) {
            ++index;
            const auto* table = node.as_table();
            if (table == nullptr) {
                return Error{name + ": rule #" + std::to_string(index) + " is not a table"};
            }
            RuleReader reader(*table, "rule #" + std::to_string(index));
            auto rule = reader.read();
            if (!rule) {
                return Error{name + ": " + reader.error()};
            }
            if (!ids.insert(rule->id).second) {
                return Error{name + ": duplicate rule id '" + rule->id + "'"};
            }
            set.rules_.push_back(std::move(*rule));
        }
        return set;
    } catch (const toml::parse_error& e) {
        return Error{name + ":" + std::to_string(e.source().begin.line) + ": " + std::string(e.description())};
    } catch (const std::bad_alloc&) {
        throw;
    } catch (const std::exception& e) {
        return Error{name + ": " + e.what()};
    }
}

std::size_t RuleSet::family_count() const
{
    std::set<std::string_view> families;
    for (const auto& rule : rules_) {
        families.insert(rule.family);
    }
    return families.size();
}

}  // namespace codexvault::scan
