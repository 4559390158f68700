#include "policy/policy_parser.hpp"

#include <toml++/toml.h>

#include <algorithm>
#include <exception>
#include <functional>
#include <optional>
#include <unordered_map>

#include "policy/document_shape.hpp"
#include "policy/policy_limits.hpp"
#include "policy/provider_toml.hpp"
#include "policy/text.hpp"
#include "policy/time_units.hpp"

namespace codexvault::policy {

namespace {

// Diagnostics for one load, capped at limits::kMaxErrors.
class Errors {
public:
    void add(SourceLocation where, std::string message)
    {
        if (list_.size() < limits::kMaxErrors) {
            list_.push_back(Diagnostic{std::move(where), std::move(message)});
        } else if (!overflow_) {
            overflow_ = true;
            list_.push_back(Diagnostic{std::move(where), "too many errors; stopping"});
        }
    }
    [[nodiscard]] bool any() const noexcept { return !list_.empty(); }
    [[nodiscard]] bool full() const noexcept { return overflow_; }
    std::vector<Diagnostic> take() { return std::move(list_); }

private:
    std::vector<Diagnostic> list_;
    bool overflow_ = false;
};

// A grant as written, before its principal and provider are resolved against the whole set.
struct GrantDraft {
    GrantDefinition definition;
    std::string principal_spec;
    SourceLocation principal_at;
    SourceLocation capability_at;
    SourceLocation requests_at;
};

struct Drafts {
    std::vector<Principal> principals;
    std::vector<Provider> providers;
    std::vector<GrantDraft> grants;
};

bool printable(std::string_view text) noexcept
{
    for (char c : text) {
        const auto byte = static_cast<unsigned char>(c);
        if (byte < 0x20 || byte == 0x7F) {
            return false;
        }
    }
    return true;
}

class DocumentParser {
public:
    DocumentParser(std::string_view name, Errors& errors, Drafts& drafts)
        : name_(name), errors_(errors), drafts_(drafts)
    {
    }

    void parse(const toml::table& root)
    {
        for (auto&& [key, node] : root) {
            const std::string_view k = key.str();
            if (k == "version") {
                const auto* version = node.as_integer();
                if (version == nullptr || version->get() != 1) {
                    error(node, "version must be 1 (the only policy format there is)");
                }
            } else if (k == "principals") {
                each_entry(key, node, "principals", "principal",
                           [this](const std::string& n, const toml::table& t, const SourceLocation& at) {
                               principal(n, t, at);
                           });
            } else if (k == "providers") {
                each_entry(key, node, "providers", "provider",
                           [this](const std::string& n, const toml::table& t, const SourceLocation& at) {
                               provider(n, t, at);
                           });
            } else if (k == "grants") {
                each_entry(
                    key, node, "grants", "grant",
                    [this](const std::string& n, const toml::table& t, const SourceLocation& at) { grant(n, t, at); });
            } else {
                error(key,
                      "unknown top-level key " + quote(k) + " (expected principals, providers, grants or version)");
            }
            if (errors_.full()) {
                return;
            }
        }
    }

private:
    using EntryFn = std::function<void(const std::string&, const toml::table&, const SourceLocation&)>;

    SourceLocation at(const toml::source_region& region) const
    {
        return SourceLocation{std::string(name_), region.begin.line, region.begin.column};
    }
    SourceLocation at(const toml::node& node) const { return at(node.source()); }
    SourceLocation at(const toml::key& key) const { return at(key.source()); }

    void error(const toml::node& node, std::string message) { errors_.add(at(node), std::move(message)); }
    void error(const toml::key& key, std::string message) { errors_.add(at(key), std::move(message)); }

    void each_entry(const toml::key& section_key, const toml::node& section, std::string_view what,
                    std::string_view singular, const EntryFn& fn)
    {
        const toml::table* table = section.as_table();
        if (table == nullptr) {
            error(section_key,
                  std::string(what) + " must be a table of named entries, e.g. [" + std::string(what) + ".NAME]");
            return;
        }
        for (auto&& [key, node] : *table) {
            if (++entries_ > limits::kMaxEntriesPerDocument) {
                if (!entries_reported_) {
                    entries_reported_ = true;
                    error(key, "more than " + std::to_string(limits::kMaxEntriesPerDocument) +
                                   " principals, providers and grants in one document");
                }
                return;
            }
            const std::string entry_name(key.str());
            if (!is_valid_name(entry_name)) {
                error(key, std::string(singular) + " name " + quote(entry_name) +
                               " must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
                continue;
            }
            const toml::table* entry = node.as_table();
            if (entry == nullptr) {
                error(key, std::string(singular) + " " + quote(entry_name) + " must be a table: [" + std::string(what) +
                               "." + entry_name + "]");
                continue;
            }
            fn(entry_name, *entry, at(key));
            if (errors_.full()) {
                return;
            }
        }
    }

    const std::string* string_value(const toml::node& node, std::string_view what)
    {
        const auto* value = node.as_string();
        if (value == nullptr) {
            error(node, std::string(what) + " must be a string");
            return nullptr;
        }
        return &value->get();
    }

    std::optional<std::string> description(const toml::node& node, std::string_view owner)
    {
        const std::string* text = string_value(node, "description");
        if (text == nullptr) {
            return std::nullopt;
        }
        if (text->size() > limits::kMaxDescriptionLength || !printable(*text)) {
            error(node, std::string(owner) + ": description must be at most 1024 bytes without control characters");
            return std::nullopt;
        }
        return *text;
    }

    // An array of strings, each parsed to a pattern.
    std::optional<std::vector<RequestPattern>> patterns(const toml::node& node, std::string_view what)
    {
        const toml::array* array = node.as_array();
        if (array == nullptr) {
            error(node, std::string(what) + " must be an array of \"METHOD /path\" strings");
            return std::nullopt;
        }
        if (array->size() > limits::kMaxRequestPatterns) {
            error(node,
                  std::string(what) + " has more than " + std::to_string(limits::kMaxRequestPatterns) + " entries");
            return std::nullopt;
        }
        std::vector<RequestPattern> out;
        bool ok = true;
        for (const toml::node& item : *array) {
            const std::string* text = string_value(item, what);
            if (text == nullptr) {
                ok = false;
                continue;
            }
            auto pattern = parse_request_pattern(*text);
            if (!pattern) {
                error(item, pattern.message());
                ok = false;
                continue;
            }
            out.push_back(std::move(pattern).value());
        }
        if (!ok) {
            return std::nullopt;
        }
        return out;
    }

    void principal(const std::string& name, const toml::table& table, const SourceLocation& where)
    {
        Principal result;
        result.name = name;
        result.source = where;
        bool ok = true;
        const std::string owner = "principal " + quote(name);
        for (auto&& [key, node] : table) {
            const std::string_view k = key.str();
            if (k == "description") {
                auto text = description(node, owner);
                ok = ok && text.has_value();
                result.description = text.value_or("");
                continue;
            }
            std::optional<Condition> which;
            for (std::size_t i = 0; i < kConditionKinds; ++i) {
                if (condition_name(static_cast<Condition>(i)) == k) {
                    which = static_cast<Condition>(i);
                }
            }
            if (!which) {
                error(key, owner + ": unknown key " + quote(k) +
                               " (expected uid, gid, unit, cgroup, exe, exe_sha256, description)");
                ok = false;
                continue;
            }
            if (!set_condition(result.conditions, *which, node, owner)) {
                ok = false;
            }
        }
        if (ok && result.conditions.empty()) {
            errors_.add(where, owner +
                                   " has no conditions; it would match every process (give uid, gid, unit, cgroup, "
                                   "exe or exe_sha256)");
            ok = false;
        }
        if (ok) {
            drafts_.principals.push_back(std::move(result));
        }
    }

    bool set_condition(Conditions& conditions, Condition which, const toml::node& node, const std::string& owner)
    {
        if (which == Condition::Uid || which == Condition::Gid) {
            const auto* number = node.as_integer();
            if (number == nullptr) {
                error(node, owner + ": " + std::string(condition_name(which)) + " must be an integer");
                return false;
            }
            auto id = validate_id_condition(which, number->get());
            if (!id) {
                error(node, owner + ": " + id.message());
                return false;
            }
            (which == Condition::Uid ? conditions.uid : conditions.gid) = id.value();
            return true;
        }
        const std::string* text = string_value(node, condition_name(which));
        if (text == nullptr) {
            return false;
        }
        auto value = validate_text_condition(which, *text);
        if (!value) {
            error(node, owner + ": " + value.message());
            return false;
        }
        switch (which) {
        case Condition::Unit:
            conditions.unit = std::move(value).value();
            break;
        case Condition::Cgroup:
            conditions.cgroup = std::move(value).value();
            break;
        case Condition::Exe:
            conditions.exe = std::move(value).value();
            break;
        default:
            conditions.exe_sha256 = std::move(value).value();
            break;
        }
        return true;
    }

    void provider(const std::string& name, const toml::table& table, const SourceLocation& where)
    {
        Provider result;
        result.name = name;
        result.source = where;
        const std::string owner = "provider " + quote(name);
        bool ok = true;
        bool have_origin = false;
        bool have_allow = false;
        bool have_inject = false;
        for (auto&& [key, node] : table) {
            const std::string_view k = key.str();
            if (k == "origin") {
                const std::string* text = string_value(node, "origin");
                if (text == nullptr) {
                    ok = false;
                    continue;
                }
                auto origin = parse_origin(*text);
                if (!origin) {
                    error(node, owner + ": " + origin.message());
                    ok = false;
                    continue;
                }
                result.origin = std::move(origin).value();
                have_origin = true;
            } else if (k == "allow") {
                auto list = patterns(node, "allow");
                if (!list) {
                    ok = false;
                    continue;
                }
                if (list->empty()) {
                    error(node, owner + ": allow must list at least one \"METHOD /path\"");
                    ok = false;
                    continue;
                }
                result.allow = std::move(*list);
                have_allow = true;
            } else if (k == "secret") {
                const std::string* text = string_value(node, "secret");
                if (text == nullptr || !is_valid_name(*text)) {
                    if (text != nullptr) {
                        error(node, owner + ": secret " + quote(*text) +
                                        " is not a valid secret name ([A-Za-z0-9][A-Za-z0-9._-]{0,63})");
                    }
                    ok = false;
                    continue;
                }
                result.secret = *text;
            } else if (k == "inject") {
                if (!injection(node, owner, result.inject)) {
                    ok = false;
                    continue;
                }
                have_inject = true;
            } else if (k == "description") {
                auto text = description(node, owner);
                ok = ok && text.has_value();
                result.description = text.value_or("");
            } else if (!transport_field(k, key, node, owner, result)) {
                ok = false;
            }
        }
        if (ok) {
            std::vector<FieldError> problems;
            check_transport(result, table.source(), owner, problems);
            ok = report(problems);
        }
        const std::pair<bool, const char*> required[] = {{have_origin, "origin"},
                                                         {have_allow, "allow"},
                                                         {!result.secret.empty(), "secret"},
                                                         {have_inject, "inject"}};
        for (const auto& [present, field] : required) {
            if (!present && ok) {
                errors_.add(where, owner + ": " + field + " is required");
                ok = false;
            }
        }
        if (ok) {
            drafts_.providers.push_back(std::move(result));
        }
    }

    // The transport keys are parsed in provider_toml.cpp; false when the key failed or is unknown.
    bool transport_field(std::string_view k, const toml::key& key, const toml::node& node, const std::string& owner,
                         Provider& out)
    {
        std::vector<FieldError> problems;
        switch (parse_transport_field(k, node, owner, out, problems)) {
        case FieldStatus::Ok:
            return true;
        case FieldStatus::Failed:
            return report(problems);
        case FieldStatus::NotTransport:
            break;
        }
        error(key, owner + ": unknown key " + quote(k) + " (expected " + std::string(kProviderKeys) + ")");
        return false;
    }

    bool report(const std::vector<FieldError>& problems)
    {
        for (const FieldError& problem : problems) {
            errors_.add(at(problem.where), problem.message);
        }
        return problems.empty();
    }

    bool injection(const toml::node& node, const std::string& owner, Injection& out)
    {
        const toml::table* table = node.as_table();
        if (table == nullptr) {
            error(node, owner +
                            ": inject must be a table: inject = { header = \"Authorization\", template = \"Bearer "
                            "{secret}\" }");
            return false;
        }
        const std::string* header = nullptr;
        const std::string* templ = nullptr;
        for (auto&& [key, value] : *table) {
            const std::string_view k = key.str();
            if (k == "header") {
                header = string_value(value, "inject.header");
                if (header == nullptr) {
                    return false;
                }
            } else if (k == "template") {
                templ = string_value(value, "inject.template");
                if (templ == nullptr) {
                    return false;
                }
            } else {
                error(key, owner + ": unknown key inject." + std::string(k) + " (expected header, template)");
                return false;
            }
        }
        if (header == nullptr || templ == nullptr) {
            error(node, owner + ": inject needs both header and template");
            return false;
        }
        auto parsed = parse_injection(*header, *templ);
        if (!parsed) {
            error(node, owner + ": " + parsed.message());
            return false;
        }
        out = std::move(parsed).value();
        return true;
    }

    std::optional<std::uint64_t> expiry(const toml::node& node, const std::string& owner)
    {
        const auto* value = node.as_date_time();
        if (value == nullptr) {
            error(node, owner + ": expires must be a TOML date-time with a UTC offset, e.g. 2026-01-01T00:00:00Z");
            return std::nullopt;
        }
        const toml::date_time& dt = value->get();
        if (!dt.offset) {
            error(node, owner + ": expires must include a UTC offset (Z or +hh:mm); a local time is ambiguous");
            return std::nullopt;
        }
        CivilTime civil;
        civil.year = dt.date.year;
        civil.month = dt.date.month;
        civil.day = dt.date.day;
        civil.hour = dt.time.hour;
        civil.minute = dt.time.minute;
        civil.second = dt.time.second;
        civil.nanosecond = dt.time.nanosecond;
        civil.offset_minutes = dt.offset->minutes;
        const auto usec = civil_to_usec(civil);
        if (!usec) {
            error(node, owner + ": expires is out of range (1970 to 9999)");
        }
        return usec;
    }

    void grant(const std::string& name, const toml::table& table, const SourceLocation& where)
    {
        GrantDraft draft;
        GrantDefinition& g = draft.definition;
        g.id = name;
        g.origin = GrantOrigin::Policy;
        g.source = where;
        const std::string owner = "grant " + quote(name);
        bool ok = true;
        bool have_capability = false;
        bool have_requests = false;
        SourceLocation requests_at = where;
        bool have_inject_options = false;
        SourceLocation inject_at = where;
        for (auto&& [key, node] : table) {
            const std::string_view k = key.str();
            if (k == "principal") {
                const std::string* text = string_value(node, "principal");
                if (text == nullptr) {
                    ok = false;
                    continue;
                }
                draft.principal_spec = *text;
                draft.principal_at = at(node);
            } else if (k == "capability") {
                const std::string* text = string_value(node, "capability");
                if (text == nullptr) {
                    ok = false;
                    continue;
                }
                auto capability = parse_capability(*text);
                if (!capability) {
                    error(node, owner + ": " + capability.message());
                    ok = false;
                    continue;
                }
                g.capability = std::move(capability).value();
                draft.capability_at = at(node);
                have_capability = true;
            } else if (k == "expires") {
                const auto usec = expiry(node, owner);
                ok = ok && usec.has_value();
                g.expires_at_usec = usec;
            } else if (k == "ttl") {
                error(key, owner + ": grants in policy files take expires = <date-time>; ttl is for runtime grants");
                ok = false;
            } else if (k == "max_uses") {
                const auto* number = node.as_integer();
                if (number == nullptr || number->get() < 1 ||
                    number->get() > static_cast<std::int64_t>(limits::kMaxUses)) {
                    error(node, owner + ": max_uses must be an integer from 1 to 1000000000");
                    ok = false;
                    continue;
                }
                g.max_uses = static_cast<std::uint64_t>(number->get());
            } else if (k == "rate") {
                const std::string* text = string_value(node, "rate");
                if (text == nullptr) {
                    ok = false;
                    continue;
                }
                auto rate = parse_rate(*text);
                if (!rate) {
                    error(node, owner + ": " + rate.message());
                    ok = false;
                    continue;
                }
                g.rate = rate.value();
            } else if (k == "approval") {
                const std::string* text = string_value(node, "approval");
                const auto mode = text == nullptr ? std::nullopt : parse_approval_mode(*text);
                if (!mode) {
                    error(node, owner + ": approval must be \"none\", \"each\" or \"once\"");
                    ok = false;
                    continue;
                }
                g.approval = *mode;
            } else if (k == "requests") {
                auto list = patterns(node, "requests");
                if (!list) {
                    ok = false;
                    continue;
                }
                g.requests = std::move(*list);
                have_requests = true;
                requests_at = at(node);
                draft.requests_at = requests_at;
            } else if (k == "description") {
                auto text = description(node, owner);
                ok = ok && text.has_value();
                g.description = text.value_or("");
            } else if (k == "on_touch" || k == "on_expiry") {
                const std::string* text = string_value(node, k == "on_touch" ? "on_touch" : "on_expiry");
                if (text == nullptr || !apply_inject_option(std::string(k) + "=" + *text, g.inject)) {
                    error(node, owner + ": " + std::string(k) +
                                    (k == "on_touch" ? R"( must be "record" or "kill")"
                                                     : R"( must be "close" or "terminate")"));
                    ok = false;
                    continue;
                }
                have_inject_options = true;
                inject_at = at(node);
            } else {
                error(key, owner + ": unknown key " + quote(k) +
                               " (expected principal, capability, expires, max_uses, rate, approval, requests, "
                               "on_touch, on_expiry, description)");
                ok = false;
            }
        }
        if (ok && draft.principal_spec.empty()) {
            errors_.add(where, owner + ": principal is required");
            ok = false;
        }
        if (ok && !have_capability) {
            errors_.add(where, owner + ": capability is required");
            ok = false;
        }
        if (ok && have_requests && g.capability.kind != CapabilityKind::ProviderRequest) {
            errors_.add(requests_at, owner + ": requests can only be given for provider:NAME:request grants");
            ok = false;
        }
        if (ok && have_inject_options && g.capability.kind != CapabilityKind::SecretInject) {
            errors_.add(inject_at, owner + ": on_touch and on_expiry can only be given for secret:NAME:inject grants");
            ok = false;
        }
        if (ok) {
            drafts_.grants.push_back(std::move(draft));
        }
    }

    std::string_view name_;
    Errors& errors_;
    Drafts& drafts_;
    std::size_t entries_ = 0;
    bool entries_reported_ = false;
};

void parse_document(const PolicyDocument& document, Errors& errors, Drafts& drafts)
{
    const SourceLocation start{std::string(document.name), 1, 1};
    if (auto shape = check_document_shape(document.content)) {
        errors.add(SourceLocation{std::string(document.name), shape->line, shape->column}, shape->message);
        return;
    }
    try {
        const toml::table root = toml::parse(document.content, document.name);
        DocumentParser(document.name, errors, drafts).parse(root);
    } catch (const toml::parse_error& e) {
        const auto& where = e.source().begin;
        errors.add(SourceLocation{std::string(document.name), where.line, where.column},
                   "TOML syntax: " + std::string(e.description()));
    } catch (const std::bad_alloc&) {
        errors.add(start, "out of memory while parsing");
    } catch (const std::exception& e) {
        errors.add(start, std::string("could not parse: ") + e.what());
    }
}

// toml++ keeps a table's keys sorted by name; the policy's order is the order of the text.
using DocumentOrder = std::unordered_map<std::string_view, std::size_t>;

bool before(const SourceLocation& a, const SourceLocation& b, const DocumentOrder& order)
{
    const auto rank = [&order](const SourceLocation& where) {
        const auto found = order.find(where.file);
        return found == order.end() ? std::size_t{0} : found->second + 1;
    };
    const auto ra = rank(a);
    const auto rb = rank(b);
    if (ra != rb) {
        return ra < rb;
    }
    return a.line != b.line ? a.line < b.line : a.column < b.column;
}

void sort_drafts(Drafts& drafts, const DocumentOrder& order)
{
    const auto by_source = [&order](const auto& a, const auto& b) {
        return before(a.source, b.source, order);
    };
    std::stable_sort(drafts.principals.begin(), drafts.principals.end(), by_source);
    std::stable_sort(drafts.providers.begin(), drafts.providers.end(), by_source);
    std::stable_sort(drafts.grants.begin(), drafts.grants.end(), [&order](const GrantDraft& a, const GrantDraft& b) {
        return before(a.definition.source, b.definition.source, order);
    });
}

// Adds the drafts to the set in the order principals, providers, grants, so a grant may refer
// to a principal or provider defined in any document.
void assemble(Drafts& drafts, PolicySet& set, Errors& errors)
{
    std::size_t total = drafts.principals.size() + drafts.providers.size() + drafts.grants.size();
    if (total > limits::kMaxEntriesTotal) {
        errors.add(SourceLocation{"(policy set)", 1, 1}, "more than " + std::to_string(limits::kMaxEntriesTotal) +
                                                             " principals, providers and grants in all documents");
        return;
    }
    for (auto& principal : drafts.principals) {
        const SourceLocation where = principal.source;
        if (auto added = set.add_principal(std::move(principal)); !added) {
            errors.add(where, added.message());
        }
    }
    for (auto& provider : drafts.providers) {
        const SourceLocation where = provider.source;
        if (auto added = set.add_provider(std::move(provider)); !added) {
            errors.add(where, added.message());
        }
    }
    for (auto& draft : drafts.grants) {
        GrantDefinition& g = draft.definition;
        auto principal = set.resolve_principal(draft.principal_spec);
        if (!principal) {
            errors.add(draft.principal_at, "grant " + quote(g.id) + ": " + principal.message());
            continue;
        }
        if (g.capability.kind == CapabilityKind::ProviderRequest && set.find_provider(g.capability.name) == nullptr) {
            errors.add(draft.capability_at, "grant " + quote(g.id) + ": capability " + quote(g.capability.to_string()) +
                                                " names provider " + quote(g.capability.name) +
                                                ", which is not defined");
            continue;
        }
        if (auto requests = set.check_requests(g.capability, g.requests); !requests) {
            errors.add(draft.requests_at.known() ? draft.requests_at : g.source,
                       "grant " + quote(g.id) + ": " + requests.message());
            continue;
        }
        g.principal_label = std::move(principal.value().label);
        g.principal = std::move(principal.value().conditions);
        const SourceLocation where = g.source;
        if (auto added = set.add_grant(std::move(g)); !added) {
            errors.add(where, added.message());
        }
    }
}

}  // namespace

std::string LoadResult::error_text() const
{
    std::string text;
    for (const auto& diagnostic : errors) {
        text += diagnostic.to_string();
        text.push_back('\n');
    }
    return text;
}

LoadResult load_policy(std::span<const PolicyDocument> documents)
{
    LoadResult result;
    Errors errors;
    try {
        if (documents.size() > limits::kMaxDocuments) {
            errors.add(SourceLocation{"(policy set)", 1, 1},
                       "more than " + std::to_string(limits::kMaxDocuments) + " policy documents");
            result.errors = errors.take();
            return result;
        }
        DocumentOrder order;
        Drafts drafts;
        for (const PolicyDocument& document : documents) {
            if (document.name.empty() || document.name.size() > limits::kMaxDocumentNameBytes) {
                errors.add(SourceLocation{"(policy set)", 1, 1}, "a policy document needs a name of 1-4096 bytes");
                continue;
            }
            if (!order.emplace(document.name, order.size()).second) {
                errors.add(SourceLocation{std::string(document.name), 1, 1}, "document given twice");
                continue;
            }
            parse_document(document, errors, drafts);
            if (errors.full()) {
                break;
            }
        }
        auto set = std::make_shared<PolicySet>();
        if (!errors.any()) {
            sort_drafts(drafts, order);
            assemble(drafts, *set, errors);
        }
        if (!errors.any()) {
            result.policy = std::move(set);
        }
        result.errors = errors.take();
        std::stable_sort(
            result.errors.begin(), result.errors.end(),
            [&order](const Diagnostic& a, const Diagnostic& b) { return before(a.where, b.where, order); });
        return result;
    } catch (const std::bad_alloc&) {
        errors.add(SourceLocation{"(policy set)", 1, 1}, "out of memory while loading the policy");
        result.policy.reset();
    }
    result.errors = errors.take();
    return result;
}

}  // namespace codexvault::policy
