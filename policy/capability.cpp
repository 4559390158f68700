#include "policy/capability.hpp"

#include <array>

#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

struct Form {
    CapabilityKind kind;
    std::string_view prefix;  // text before NAME (or the whole text for unnamed kinds)
    std::string_view suffix;  // text after NAME
    std::string_view grammar;
};

constexpr std::array<Form, kCapabilityKinds> kForms{{
    {CapabilityKind::SecretInject, "secret:", ":inject", "secret:NAME:inject"},
    {CapabilityKind::ProviderRequest, "provider:", ":request", "provider:NAME:request"},
    {CapabilityKind::IngestScan, "ingest:scan", "", "ingest:scan"},
    {CapabilityKind::AuditRead, "audit:read", "", "audit:read"},
    {CapabilityKind::StatusRead, "status:read", "", "status:read"},
}};

const Form& form_of(CapabilityKind kind) noexcept
{
    return kForms[static_cast<std::size_t>(kind)];
}

constexpr std::string_view kExpected =
    "expected one of secret:NAME:inject, provider:NAME:request, ingest:scan, audit:read, status:read";

}  // namespace

std::string Capability::to_string() const
{
    const Form& form = form_of(kind);
    if (!takes_name(kind)) {
        return std::string(form.prefix);
    }
    std::string text;
    text.reserve(form.prefix.size() + name.size() + form.suffix.size());
    text += form.prefix;
    text += name;
    text += form.suffix;
    return text;
}

Result<Capability> parse_capability(std::string_view text)
{
    for (const Form& form : kForms) {
        if (!takes_name(form.kind)) {
            if (text == form.prefix) {
                return Capability::of(form.kind);
            }
            continue;
        }
        if (!text.starts_with(form.prefix)) {
            continue;
        }
        if (!text.ends_with(form.suffix) || text.size() < form.prefix.size() + form.suffix.size()) {
            return make_error("invalid capability " + quote(text) + ": expected " + std::string(form.grammar));
        }
        const std::string_view name =
            text.substr(form.prefix.size(), text.size() - form.prefix.size() - form.suffix.size());
        if (!is_valid_name(name)) {
            return make_error("invalid capability " + quote(text) +
                              ": NAME must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
        }
        return Capability{form.kind, std::string(name)};
    }
    return make_error("unknown capability " + quote(text) + ": " + std::string(kExpected));
}

}  // namespace codexvault::policy
