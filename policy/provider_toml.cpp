#include "policy/provider_toml.hpp"

#include <algorithm>

#include "policy/text.hpp"
#include "policy/time_units.hpp"

namespace codexvault::policy {

namespace {

class FieldParser {
public:
    FieldParser(const std::string& owner, std::vector<FieldError>& errors) : owner_(owner), errors_(errors) {}

    bool fail(const toml::node& node, const std::string& message)
    {
        errors_.push_back(FieldError{node.source(), owner_ + ": " + message});
        return false;
    }
    bool fail(const toml::key& key, const std::string& message)
    {
        errors_.push_back(FieldError{key.source(), owner_ + ": " + message});
        return false;
    }

    template <typename T>
    bool take(const toml::node& node, Result<T> parsed, T& out)
    {
        if (!parsed) {
            return fail(node, parsed.message());
        }
        out = std::move(parsed).value();
        return true;
    }

    const std::string* text(const toml::node& node, std::string_view what)
    {
        const auto* value = node.as_string();
        if (value == nullptr) {
            fail(node, std::string(what) + " must be a string");
            return nullptr;
        }
        return &value->get();
    }

    bool pins(const toml::node& node, std::vector<std::string>& out)
    {
        const toml::array* array = node.as_array();
        if (array == nullptr) {
            return fail(node, "pins must be an array of \"sha256//BASE64\" strings");
        }
        if (array->size() > kMaxPins) {
            return fail(node, "pins has more than " + std::to_string(kMaxPins) + " entries");
        }
        std::vector<std::string> list;
        bool ok = true;
        for (const toml::node& item : *array) {
            const std::string* pin = text(item, "a pin");
            std::string parsed;
            if (pin == nullptr || !take(item, parse_pin(*pin), parsed)) {
                ok = false;
                continue;
            }
            if (std::find(list.begin(), list.end(), parsed) != list.end()) {
                ok = fail(item, "pin " + quote(parsed) + " is listed twice");
                continue;
            }
            list.push_back(std::move(parsed));
        }
        if (ok && list.empty()) {
            // An empty list reads like "pinned to nothing", which would refuse every connection
            // or, worse, be taken for "no pinning" by a reader; leave the key out instead.
            return fail(node, "pins must list at least one pin (leave the key out for no pinning)");
        }
        if (ok) {
            out = std::move(list);
        }
        return ok;
    }

    bool duration(const toml::node& node, std::string_view what, std::uint64_t& out)
    {
        const std::string* value = text(node, what);
        if (value == nullptr) {
            return false;
        }
        auto parsed = parse_duration(*value);
        if (!parsed) {
            return fail(node, std::string(what) + ": " + parsed.message());
        }
        out = parsed.value();
        return true;
    }

    bool timeouts(const toml::node& node, Timeouts& out)
    {
        const toml::table* table = node.as_table();
        if (table == nullptr) {
            return fail(node,
                        "timeouts must be a table: timeouts = { connect = \"10s\", idle = \"5m\", total = \"1h\" }");
        }
        Timeouts result;
        bool ok = true;
        for (auto&& [key, value] : *table) {
            const std::string_view k = key.str();
            if (k == "connect") {
                ok = duration(value, "timeouts.connect", result.connect_usec) && ok;
            } else if (k == "idle") {
                ok = duration(value, "timeouts.idle", result.idle_usec) && ok;
            } else if (k == "total") {
                std::uint64_t total = 0;
                ok = duration(value, "timeouts.total", total) && ok;
                result.total_usec = total;
            } else {
                ok = fail(key, "unknown key timeouts." + std::string(k) + " (expected connect, idle, total)");
            }
        }
        if (ok) {
            out = result;
        }
        return ok;
    }

    bool byte_size(const toml::node& node, std::uint64_t max, std::string_view what, std::uint64_t& out)
    {
        if (const auto* number = node.as_integer()) {
            return take(node, check_byte_size(number->get(), max, what), out);
        }
        if (const auto* value = node.as_string()) {
            return take(node, parse_byte_size(value->get(), max, what), out);
        }
        return fail(node, std::string(what) + " must be an integer or a string such as \"32MiB\"");
    }

    bool client(const toml::node& node, std::optional<ClientSettings>& out)
    {
        const toml::table* table = node.as_table();
        if (table == nullptr) {
            return fail(node,
                        "client must be a table: client = { base_url_env = \"OPENAI_BASE_URL\", base_path = "
                        "\"/v1\", api_key_env = \"OPENAI_API_KEY\" }");
        }
        ClientSettings result;
        bool ok = true;
        for (auto&& [key, value] : *table) {
            const std::string_view k = key.str();
            const std::string* field = nullptr;
            if (k == "base_url_env" || k == "api_key_env" || k == "base_path") {
                field = text(value, "client." + std::string(k));
                if (field == nullptr) {
                    ok = false;
                    continue;
                }
            }
            if (k == "base_url_env") {
                ok = take(value, parse_env_name(*field, "client.base_url_env"), result.base_url_env) && ok;
            } else if (k == "api_key_env") {
                ok = take(value, parse_env_name(*field, "client.api_key_env"), result.api_key_env) && ok;
            } else if (k == "base_path") {
                ok = take(value, parse_base_path(*field), result.base_path) && ok;
            } else {
                ok = fail(key,
                          "unknown key client." + std::string(k) + " (expected base_url_env, base_path, api_key_env)");
            }
        }
        if (!ok) {
            return false;
        }
        if (result.base_url_env.empty() || result.api_key_env.empty()) {
            return fail(node, "client needs base_url_env and api_key_env");
        }
        if (result.base_url_env == result.api_key_env) {
            return fail(node, "client.base_url_env and client.api_key_env must be different variables");
        }
        out = std::move(result);
        return true;
    }

private:
    const std::string& owner_;
    std::vector<FieldError>& errors_;
};

}  // namespace

FieldStatus parse_transport_field(std::string_view key, const toml::node& node, const std::string& owner, Provider& out,
                                  std::vector<FieldError>& errors)
{
    FieldParser parser(owner, errors);
    Transport& transport = out.transport;
    bool ok = false;
    if (key == "ca_file") {
        const std::string* value = parser.text(node, "ca_file");
        ok = value != nullptr && parser.take(node, parse_ca_file(*value), transport.ca_file);
    } else if (key == "pins") {
        ok = parser.pins(node, transport.pins);
    } else if (key == "allow_private_address") {
        const auto* flag = node.as_boolean();
        ok = flag != nullptr ? (transport.allow_private_address = flag->get(), true)
                             : parser.fail(node, "allow_private_address must be true or false");
    } else if (key == "timeouts") {
        ok = parser.timeouts(node, transport.timeouts);
    } else if (key == "max_request_bytes") {
        ok = parser.byte_size(node, kMaxRequestBytesLimit, "max_request_bytes", transport.max_request_bytes);
    } else if (key == "max_response_bytes") {
        ok = parser.byte_size(node, kMaxResponseBytesLimit, "max_response_bytes", transport.max_response_bytes);
        if (ok && transport.max_response_bytes == 0) {
            ok = parser.fail(node, "max_response_bytes must be at least 1 byte");
        }
    } else if (key == "client") {
        ok = parser.client(node, out.client);
    } else {
        return FieldStatus::NotTransport;
    }
    return ok ? FieldStatus::Ok : FieldStatus::Failed;
}

void check_transport(const Provider& provider, const toml::source_region& where, const std::string& owner,
                     std::vector<FieldError>& errors)
{
    const Timeouts& t = provider.transport.timeouts;
    if (t.total_usec && *t.total_usec < t.connect_usec) {
        errors.push_back(
            FieldError{where, owner + ": timeouts.total must be at least timeouts.connect (which defaults to 10s)"});
    }
}

}  // namespace codexvault::policy
