#include "policy/persistence.hpp"

#include <nlohmann/json.hpp>

#include <exception>
#include <optional>

#include "policy/policy_limits.hpp"
#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

using nlohmann::json;

constexpr std::size_t kMaxJsonDepth = 16;
constexpr std::size_t kMaxApprovals = 100'000;

// ---- encoding ----------------------------------------------------------------------------------

json optional_number(const std::optional<std::uint64_t>& value)
{
    return value ? json(*value) : json(nullptr);
}

json encode_usage(const GrantUsage& usage)
{
    json once = json::array();
    for (const auto& key : usage.once_approved) {
        once.push_back(json{{"uid", key.uid},
                            {"unit", key.unit},
                            {"exe", key.exe},
                            {"process_scoped", key.process_scoped},
                            {"pid", key.pid},
                            {"start_time", key.start_time}});
    }
    return json{{"uses", usage.uses},
                {"rate_tat", usage.rate_tat_usec},
                {"last_used", usage.last_used_usec},
                {"once", std::move(once)}};
}

json encode_conditions(const Conditions& c)
{
    json out = json::object();
    if (c.uid) {
        out["uid"] = *c.uid;
    }
    if (c.gid) {
        out["gid"] = *c.gid;
    }
    if (c.unit) {
        out["unit"] = *c.unit;
    }
    if (c.cgroup) {
        out["cgroup"] = *c.cgroup;
    }
    if (c.exe) {
        out["exe"] = *c.exe;
    }
    if (c.exe_sha256) {
        out["exe_sha256"] = *c.exe_sha256;
    }
    return out;
}

json encode_grant(const RuntimeGrant& grant)
{
    const GrantDefinition& d = grant.definition;
    json requests = json::array();
    for (const auto& pattern : d.requests) {
        requests.push_back(pattern.to_string());
    }
    json out{{"id", d.id},
             {"principal_label", d.principal_label},
             {"principal", encode_conditions(d.principal)},
             {"capability", d.capability.to_string()},
             {"issued_at", d.issued_at_usec},
             {"expires_at", optional_number(d.expires_at_usec)},
             {"max_uses", optional_number(d.max_uses)},
             {"rate", d.rate ? json(format_rate(*d.rate)) : json(nullptr)},
             {"approval", approval_mode_name(d.approval)},
             {"requests", std::move(requests)},
             {"on_touch", inject_on_touch_name(d.inject.on_touch)},
             {"on_expiry", inject_on_expiry_name(d.inject.on_expiry)},
             {"description", d.description},
             {"sequence", d.sequence},
             {"usage", encode_usage(grant.usage)},
             {"revoked_at", optional_number(grant.revoked_at_usec)}};
    return out;
}

json encode_approval(const Approval& a)
{
    const std::span<const std::uint8_t> request(reinterpret_cast<const std::uint8_t*>(a.request.data()),
                                                a.request.size());
    return json{{"id", a.id.view()},
                {"grant_id", a.grant_id},
                {"capability", a.capability.to_string()},
                {"uid", a.subject.uid},
                {"pid", a.subject.pid},
                {"start_time", a.subject.start_time},
                {"exe", a.subject.exe ? json(*a.subject.exe) : json(nullptr)},
                {"request_hex", to_hex(request)},
                {"summary", a.summary},
                {"created_at", a.created_at_usec},
                {"expires_at", a.expires_at_usec},
                {"state", approval_state_name(a.state)},
                {"decided_at", a.decided_at_usec}};
}

// ---- decoding ----------------------------------------------------------------------------------

// Rejects deeper nesting than the format has before nlohmann builds anything.
bool nesting_within(std::string_view text_in, std::size_t max_depth) noexcept
{
    std::size_t depth = 0;
    bool in_string = false;
    for (std::size_t i = 0; i < text_in.size(); ++i) {
        const char c = text_in[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > max_depth) {
                return false;
            }
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return true;
}

// Reads fields with their checks. The first problem is recorded with the path of the field
// (state.runtime_grants[3].usage.uses) and every read after it returns a default; the caller
// checks failed() and discards everything it built.
class Decoder {
public:
    [[nodiscard]] bool failed() const noexcept { return error_.has_value(); }
    [[nodiscard]] const std::string& error() const noexcept { return *error_; }

    void fail(const std::string& where, const std::string& what)
    {
        if (!error_) {
            error_ = where + ": " + what;
        }
    }

    const json* field(const json& object, const char* name, const std::string& where)
    {
        if (failed()) {
            return nullptr;
        }
        if (!object.is_object()) {
            fail(where, "expected an object");
            return nullptr;
        }
        const auto found = object.find(name);
        if (found == object.end()) {
            fail(where, std::string("missing field \"") + name + "\"");
            return nullptr;
        }
        return &*found;
    }

    std::uint64_t number(const json& object, const char* name, const std::string& where)
    {
        const json* value = field(object, name, where);
        if (value == nullptr) {
            return 0;
        }
        if (!value->is_number_unsigned() && !(value->is_number_integer() && value->get<std::int64_t>() >= 0)) {
            fail(where + "." + name, "expected a non-negative integer");
            return 0;
        }
        return value->get<std::uint64_t>();
    }

    std::uint32_t number32(const json& object, const char* name, const std::string& where)
    {
        const std::uint64_t value = number(object, name, where);
        if (value > UINT32_MAX) {
            fail(where + "." + name, "out of range");
            return 0;
        }
        return static_cast<std::uint32_t>(value);
    }

    std::optional<std::uint64_t> optional_number(const json& object, const char* name, const std::string& where)
    {
        const json* value = field(object, name, where);
        if (value == nullptr || value->is_null()) {
            return std::nullopt;
        }
        return number(object, name, where);
    }

    std::string text(const json& object, const char* name, const std::string& where)
    {
        const json* value = field(object, name, where);
        if (value == nullptr) {
            return {};
        }
        if (!value->is_string()) {
            fail(where + "." + name, "expected a string");
            return {};
        }
        return value->get<std::string>();
    }

    bool boolean(const json& object, const char* name, const std::string& where)
    {
        const json* value = field(object, name, where);
        if (value == nullptr) {
            return false;
        }
        if (!value->is_boolean()) {
            fail(where + "." + name, "expected true or false");
            return false;
        }
        return value->get<bool>();
    }

    // An array field, or an empty array when it is missing or not one (after recording that).
    const json& array(const json& object, const char* name, const std::string& where)
    {
        static const json kEmpty = json::array();
        const json* value = field(object, name, where);
        if (value == nullptr) {
            return kEmpty;
        }
        if (!value->is_array()) {
            fail(where + "." + name, "expected an array");
            return kEmpty;
        }
        return *value;
    }

    template <typename T>
    T checked(Result<T> result, const std::string& where)
    {
        if (!result) {
            fail(where, result.message());
            return T{};
        }
        return std::move(result).value();
    }

    Conditions conditions(const json& object, const std::string& where);
    GrantUsage usage(const json& object, const std::string& where);
    RuntimeGrant grant(const json& object, const std::string& where);
    Approval approval(const json& object, const std::string& where);

private:
    std::optional<std::string> error_;
};

Conditions Decoder::conditions(const json& object, const std::string& where)
{
    Conditions c;
    if (!object.is_object()) {
        fail(where, "expected an object");
        return c;
    }
    for (const auto& [key, value] : object.items()) {
        std::string at = where;
        at += '.';
        at += key;
        if (key == "uid" || key == "gid") {
            const Condition which = key == "uid" ? Condition::Uid : Condition::Gid;
            if (!value.is_number_integer()) {
                fail(at, "expected an integer");
                return c;
            }
            (which == Condition::Uid ? c.uid : c.gid) =
                checked(validate_id_condition(which, value.get<std::int64_t>()), at);
            continue;
        }
        if (!value.is_string()) {
            fail(at, "expected a string");
            return c;
        }
        const auto& v = value.get_ref<const std::string&>();
        if (key == "unit") {
            c.unit = checked(validate_text_condition(Condition::Unit, v), at);
        } else if (key == "cgroup") {
            c.cgroup = checked(validate_text_condition(Condition::Cgroup, v), at);
        } else if (key == "exe") {
            c.exe = checked(validate_text_condition(Condition::Exe, v), at);
        } else if (key == "exe_sha256") {
            c.exe_sha256 = checked(validate_text_condition(Condition::ExeSha256, v), at);
        } else {
            fail(at, "unknown condition");
        }
    }
    if (c.empty()) {
        fail(where, "a principal needs at least one condition");
    }
    return c;
}

GrantUsage Decoder::usage(const json& object, const std::string& where)
{
    GrantUsage u;
    u.uses = number(object, "uses", where);
    u.rate_tat_usec = number(object, "rate_tat", where);
    u.last_used_usec = number(object, "last_used", where);
    const json& once = array(object, "once", where);
    if (once.size() > limits::kMaxOnceInstancesPerGrant) {
        fail(where + ".once", "too many entries");
    }
    for (std::size_t i = 0; i < once.size() && !failed(); ++i) {
        const std::string at = where + ".once[" + std::to_string(i) + "]";
        InstanceKey key;
        key.uid = number32(once[i], "uid", at);
        key.unit = text(once[i], "unit", at);
        key.exe = text(once[i], "exe", at);
        key.process_scoped = boolean(once[i], "process_scoped", at);
        key.pid = number32(once[i], "pid", at);
        key.start_time = number(once[i], "start_time", at);
        u.once_approved.push_back(std::move(key));
    }
    return u;
}

RuntimeGrant Decoder::grant(const json& object, const std::string& where)
{
    RuntimeGrant g;
    GrantDefinition& d = g.definition;
    d.id = text(object, "id", where);
    if (!failed() && !is_runtime_grant_id(d.id)) {
        fail(where + ".id", "not of the form g-<16 hex>");
    }
    d.origin = GrantOrigin::Runtime;
    d.principal_label = text(object, "principal_label", where);
    if (!failed() && (d.principal_label.empty() || d.principal_label.size() > limits::kMaxPrincipalSpecLength + 7)) {
        fail(where + ".principal_label", "empty or too long");
    }
    if (const json* principal = field(object, "principal", where)) {
        d.principal = conditions(*principal, where + ".principal");
    }
    d.capability = checked(parse_capability(text(object, "capability", where)), where + ".capability");
    d.issued_at_usec = number(object, "issued_at", where);
    d.expires_at_usec = optional_number(object, "expires_at", where);
    d.max_uses = optional_number(object, "max_uses", where);
    if (d.max_uses && (*d.max_uses < 1 || *d.max_uses > limits::kMaxUses)) {
        fail(where + ".max_uses", "out of range");
    }
    if (const json* rate = field(object, "rate", where); rate != nullptr && !rate->is_null()) {
        d.rate = checked(parse_rate(text(object, "rate", where)), where + ".rate");
    }
    const auto approval_mode = parse_approval_mode(text(object, "approval", where));
    if (!approval_mode) {
        fail(where + ".approval", "expected none, each or once");
    }
    d.approval = approval_mode.value_or(ApprovalMode::Each);
    const json& requests = array(object, "requests", where);
    if (requests.size() > limits::kMaxRequestPatterns) {
        fail(where + ".requests", "too many entries");
    }
    for (std::size_t i = 0; i < requests.size() && !failed(); ++i) {
        const std::string at = where + ".requests[" + std::to_string(i) + "]";
        if (!requests[i].is_string()) {
            fail(at, "expected a string");
            break;
        }
        d.requests.push_back(checked(parse_request_pattern(requests[i].get_ref<const std::string&>()), at));
    }
    if (!d.requests.empty() && d.capability.kind != CapabilityKind::ProviderRequest) {
        fail(where + ".requests", "requests on a grant that is not a provider grant");
    }
    // Inject options: absent in state written before they existed (the defaults then).
    for (const char* key : {"on_touch", "on_expiry"}) {
        if (const auto it = object.find(key); it != object.end()) {
            if (!it->is_string() || !apply_inject_option(std::string(key) + "=" + it->get<std::string>(), d.inject)) {
                fail(where + "." + key, "not a known value");
            }
        }
    }
    d.description = text(object, "description", where);
    if (d.description.size() > limits::kMaxDescriptionLength) {
        fail(where + ".description", "too long");
    }
    d.sequence = number(object, "sequence", where);
    if (!failed() && (d.sequence < GrantTable::kRuntimeSequenceBase || d.sequence == UINT64_MAX)) {
        fail(where + ".sequence", "out of range");
    }
    if (const json* u = field(object, "usage", where)) {
        g.usage = usage(*u, where + ".usage");
    }
    g.revoked_at_usec = optional_number(object, "revoked_at", where);
    return g;
}

Approval Decoder::approval(const json& object, const std::string& where)
{
    Approval a;
    const std::string id = text(object, "id", where);
    if (!failed() && !is_approval_id(id)) {
        fail(where + ".id", "not of the form a-<16 hex>");
    }
    if (failed()) {
        return a;
    }
    a.id = ApprovalId(id);
    a.grant_id = text(object, "grant_id", where);
    if (!failed() && !is_valid_name(a.grant_id)) {
        fail(where + ".grant_id", "not a grant id");
    }
    a.capability = checked(parse_capability(text(object, "capability", where)), where + ".capability");
    a.subject.uid = number32(object, "uid", where);
    a.subject.pid = number32(object, "pid", where);
    a.subject.start_time = number(object, "start_time", where);
    if (const json* exe = field(object, "exe", where); exe != nullptr && !exe->is_null()) {
        a.subject.exe = text(object, "exe", where);
    }
    const std::string hex = text(object, "request_hex", where);
    if (hex.size() % 2 != 0 || hex.size() > 2 * 16384 || !is_lower_hex(hex)) {
        fail(where + ".request_hex", "expected lowercase hex");
    }
    for (std::size_t i = 0; i + 1 < hex.size() && !failed(); i += 2) {
        auto nibble = [](char c) {
            return c <= '9' ? c - '0' : c - 'a' + 10;
        };
        a.request.push_back(static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1])));
    }
    a.summary = text(object, "summary", where);
    a.created_at_usec = number(object, "created_at", where);
    a.expires_at_usec = number(object, "expires_at", where);
    const std::string state = text(object, "state", where);
    bool known = false;
    for (auto candidate :
         {ApprovalState::Pending, ApprovalState::Approved, ApprovalState::Denied, ApprovalState::Consumed}) {
        if (approval_state_name(candidate) == state) {
            a.state = candidate;
            known = true;
        }
    }
    if (!known) {
        fail(where + ".state", "expected pending, approved, denied or consumed");
    }
    a.decided_at_usec = number(object, "decided_at", where);
    return a;
}

Result<RuntimeState> decode(std::string_view text_in, const ApprovalOptions& options)
{
    if (text_in.size() > limits::kMaxStateBytes) {
        return make_error("state: larger than 256 MiB");
    }
    if (!nesting_within(text_in, kMaxJsonDepth)) {
        return make_error("state: nested too deeply");
    }
    const json root = json::parse(text_in, nullptr, false);
    if (root.is_discarded()) {
        return make_error("state: not valid JSON");
    }
    Decoder d;
    if (d.text(root, "format", "state") != kStateFormat && !d.failed()) {
        d.fail("state.format", "not a Codex Vault policy state");
    }
    if (d.number(root, "version", "state") != static_cast<std::uint64_t>(kStateVersion) && !d.failed()) {
        d.fail("state.version", "unsupported version");
    }
    RuntimeState state{GrantTable{}, ApprovalBook{options}};
    const json& grants = d.array(root, "runtime_grants", "state");
    for (std::size_t i = 0; i < grants.size() && !d.failed(); ++i) {
        const std::string where = "state.runtime_grants[" + std::to_string(i) + "]";
        RuntimeGrant grant = d.grant(grants[i], where);
        if (d.failed()) {
            break;
        }
        if (auto added = state.grants.restore_runtime(std::move(grant)); !added) {
            d.fail(where, added.message());
        }
    }
    const json& usage = d.array(root, "policy_grant_usage", "state");
    for (std::size_t i = 0; i < usage.size() && !d.failed(); ++i) {
        const std::string where = "state.policy_grant_usage[" + std::to_string(i) + "]";
        std::string name = d.text(usage[i], "name", where);
        if (!d.failed() && (!is_valid_name(name) || state.grants.policy_grant_usage(name) != nullptr)) {
            d.fail(where + ".name", "invalid or duplicate grant name");
        }
        if (const json* entry = d.field(usage[i], "usage", where)) {
            GrantUsage decoded = d.usage(*entry, where + ".usage");
            if (!d.failed()) {
                state.grants.restore_policy_usage(std::move(name), std::move(decoded));
            }
        }
    }
    const json& revocations = d.array(root, "policy_grant_revocations", "state");
    for (std::size_t i = 0; i < revocations.size() && !d.failed(); ++i) {
        const std::string where = "state.policy_grant_revocations[" + std::to_string(i) + "]";
        std::string name = d.text(revocations[i], "name", where);
        if (!d.failed() && (!is_valid_name(name) || state.grants.is_policy_grant_revoked(name))) {
            d.fail(where + ".name", "invalid or duplicate grant name");
        }
        const std::uint64_t at = d.number(revocations[i], "revoked_at", where);
        if (!d.failed()) {
            state.grants.restore_policy_revocation(std::move(name), at);
        }
    }
    state.grants.restore_next_sequence(d.number(root, "next_sequence", "state"));
    const json& approvals = d.array(root, "approvals", "state");
    if (approvals.size() > kMaxApprovals) {
        d.fail("state.approvals", "too many entries");
    }
    for (std::size_t i = 0; i < approvals.size() && !d.failed(); ++i) {
        const std::string where = "state.approvals[" + std::to_string(i) + "]";
        Approval approval = d.approval(approvals[i], where);
        if (!d.failed() && !state.approvals.restore(std::move(approval))) {
            d.fail(where + ".id", "duplicate approval id");
        }
    }
    if (d.failed()) {
        return make_error(d.error());
    }
    return state;
}

}  // namespace

std::string encode_state(const GrantTable& grants, const ApprovalBook& approvals)
{
    json runtime = json::array();
    for (const auto& grant : grants.runtime_grants()) {
        runtime.push_back(encode_grant(grant));
    }
    json usage = json::array();
    for (const auto& [name, entry] : grants.policy_usage()) {
        usage.push_back(json{{"name", name}, {"usage", encode_usage(entry)}});
    }
    json revocations = json::array();
    for (const auto& [name, at] : grants.policy_revocations()) {
        revocations.push_back(json{{"name", name}, {"revoked_at", at}});
    }
    json approval_list = json::array();
    for (const auto& approval : approvals.all()) {
        approval_list.push_back(encode_approval(approval));
    }
    const json root{{"format", kStateFormat},
                    {"version", kStateVersion},
                    {"next_sequence", grants.next_sequence()},
                    {"runtime_grants", std::move(runtime)},
                    {"policy_grant_usage", std::move(usage)},
                    {"policy_grant_revocations", std::move(revocations)},
                    {"approvals", std::move(approval_list)}};
    // Invalid UTF-8 (possible only in daemon-supplied text such as an exe path) is replaced
    // rather than thrown on; such a value then no longer matches, which fails closed.
    return root.dump(1, ' ', false, json::error_handler_t::replace);
}

Result<RuntimeState> decode_state(std::string_view json_text, const ApprovalOptions& options)
{
    // Parsing does not throw (allow_exceptions = false) and every access is type-checked first;
    // the handlers are a safety net so that nothing can escape to the daemon.
    try {
        return decode(json_text, options);
    } catch (const json::exception& e) {
        return make_error(std::string("state: malformed: ") + e.what());
    } catch (const std::bad_alloc&) {
        return make_error("state: out of memory while decoding");
    }
}

}  // namespace codexvault::policy
