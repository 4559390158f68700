#include "policy/policy_set.hpp"

#include "policy/ids.hpp"
#include "policy/text.hpp"

namespace codexvault::policy {

namespace {

std::string defined_at(const SourceLocation& where)
{
    return where.known() ? " (first defined at " + where.to_string() + ")" : std::string();
}

}  // namespace

Result<Ok> PolicySet::add_principal(Principal principal)
{
    if (!is_valid_name(principal.name)) {
        return make_error("principal name " + quote(principal.name) +
                          " must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
    }
    if (principal.conditions.empty()) {
        return make_error("principal " + quote(principal.name) +
                          " has no conditions; it would match every process (give uid, gid, unit, cgroup, exe or "
                          "exe_sha256)");
    }
    if (const auto* existing = find_principal(principal.name)) {
        return make_error("duplicate principal " + quote(principal.name) + defined_at(existing->source));
    }
    principal_by_name_.emplace(principal.name, static_cast<std::uint32_t>(principals_.size()));
    principals_.push_back(std::move(principal));
    return Ok{};
}

Result<Ok> PolicySet::add_provider(Provider provider)
{
    if (!is_valid_name(provider.name)) {
        return make_error("provider name " + quote(provider.name) +
                          " must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
    }
    if (provider.allow.empty()) {
        return make_error("provider " + quote(provider.name) + " allows no requests");
    }
    if (!is_valid_name(provider.secret)) {
        return make_error("provider " + quote(provider.name) + ": secret name " + quote(provider.secret) +
                          " is not a valid secret name");
    }
    if (const auto* existing = find_provider(provider.name)) {
        return make_error("duplicate provider " + quote(provider.name) + defined_at(existing->source));
    }
    provider_by_name_.emplace(provider.name, static_cast<std::uint32_t>(providers_.size()));
    providers_.push_back(std::move(provider));
    return Ok{};
}

Result<Ok> PolicySet::check_requests(const Capability& capability, const std::vector<RequestPattern>& requests) const
{
    if (capability.kind != CapabilityKind::ProviderRequest) {
        if (!requests.empty()) {
            return make_error("requests can only be given for provider:NAME:request grants");
        }
        return Ok{};
    }
    const Provider* provider = find_provider(capability.name);
    if (provider == nullptr) {
        return make_error("capability " + quote(capability.to_string()) + " names provider " + quote(capability.name) +
                          ", which is not defined");
    }
    for (const auto& pattern : requests) {
        if (!provider->covers(pattern)) {
            return make_error("request " + quote(pattern.to_string()) + " is not within what provider " +
                              quote(provider->name) + " allows");
        }
    }
    return Ok{};
}

Result<Ok> PolicySet::add_grant(GrantDefinition grant)
{
    if (!is_valid_name(grant.id)) {
        return make_error("grant name " + quote(grant.id) +
                          " must be 1-64 characters of [A-Za-z0-9._-] starting with a letter or digit");
    }
    if (is_runtime_grant_id(grant.id)) {
        return make_error("grant name " + quote(grant.id) + " has the form of a runtime grant id (g-<16 hex>)");
    }
    if (grant.principal.empty()) {
        return make_error("grant " + quote(grant.id) + " has a principal without conditions");
    }
    if (auto checked = check_requests(grant.capability, grant.requests); !checked) {
        return make_error("grant " + quote(grant.id) + ": " + checked.message());
    }
    if (const auto* existing = find_grant(grant.id)) {
        return make_error("duplicate grant " + quote(grant.id) + defined_at(existing->source));
    }
    const auto slot = static_cast<std::uint32_t>(grants_.size());
    grant.origin = GrantOrigin::Policy;
    grant.sequence = slot;
    grant_by_id_.emplace(grant.id, slot);
    index_.add(grant, slot);
    grants_.push_back(std::move(grant));
    return Ok{};
}

const Principal* PolicySet::find_principal(std::string_view name) const noexcept
{
    const auto found = principal_by_name_.find(name);
    return found == principal_by_name_.end() ? nullptr : &principals_[found->second];
}

const Provider* PolicySet::find_provider(std::string_view name) const noexcept
{
    const auto found = provider_by_name_.find(name);
    return found == provider_by_name_.end() ? nullptr : &providers_[found->second];
}

const GrantDefinition* PolicySet::find_grant(std::string_view id) const noexcept
{
    const auto found = grant_by_id_.find(id);
    return found == grant_by_id_.end() ? nullptr : &grants_[found->second];
}

Result<PrincipalRef> PolicySet::resolve_principal(std::string_view spec) const
{
    if (spec.find('=') != std::string_view::npos) {
        auto conditions = parse_inline_conditions(spec);
        if (!conditions) {
            return conditions.error();
        }
        PrincipalRef ref{"inline:" + conditions.value().to_spec(), std::move(conditions).value()};
        return ref;
    }
    const Principal* principal = find_principal(spec);
    if (principal == nullptr) {
        return make_error("no principal named " + quote(spec) +
                          " in the policy files (inline conditions look like uid=1000,exe=/usr/bin/x)");
    }
    return PrincipalRef{principal->name, principal->conditions};
}

}  // namespace codexvault::policy
