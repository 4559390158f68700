#include "policy/grant_table.hpp"

#include "policy/policy_limits.hpp"
#include "policy/text.hpp"
#include "policy/time_units.hpp"

namespace codexvault::policy {

namespace {

// When a runtime grant stopped being usable, if it has.
std::optional<std::uint64_t> ended_at(const RuntimeGrant& grant, std::uint64_t now_usec)
{
    if (grant.revoked_at_usec) {
        return grant.revoked_at_usec;
    }
    const GrantDefinition& d = grant.definition;
    if (d.expires_at_usec && now_usec >= *d.expires_at_usec) {
        return d.expires_at_usec;
    }
    if (d.max_uses && grant.usage.uses >= *d.max_uses) {
        return grant.usage.last_used_usec;
    }
    return std::nullopt;
}

}  // namespace

Result<GrantId> GrantTable::issue(const PolicySet& policy, const GrantRequest& request, const IdSeed& seed,
                                  std::uint64_t now_usec)
{
    if (grants_.size() >= limits::kMaxRuntimeGrants) {
        return make_error("the runtime grant table is full (" + std::to_string(limits::kMaxRuntimeGrants) +
                          " grants); revoke or prune some first");
    }
    GrantDefinition d;
    auto principal = policy.resolve_principal(request.principal);
    if (!principal) {
        return make_error("principal: " + principal.message());
    }
    d.principal_label = std::move(principal.value().label);
    d.principal = std::move(principal.value().conditions);

    auto capability = parse_capability(request.capability);
    if (!capability) {
        return capability.error();
    }
    d.capability = std::move(capability).value();

    if (request.ttl.empty()) {
        return make_error("ttl is required for runtime grants (e.g. \"15m\", \"2h\", \"7d\")");
    }
    auto ttl = parse_duration(request.ttl);
    if (!ttl) {
        return make_error("ttl: " + ttl.message());
    }
    d.issued_at_usec = now_usec;
    d.expires_at_usec = saturating_add(now_usec, ttl.value());

    if (request.max_uses) {
        if (*request.max_uses < 1 || *request.max_uses > limits::kMaxUses) {
            return make_error("max_uses must be from 1 to 1000000000");
        }
        d.max_uses = request.max_uses;
    }
    if (request.rate) {
        auto rate = parse_rate(*request.rate);
        if (!rate) {
            return rate.error();
        }
        d.rate = rate.value();
    }
    const auto approval = parse_approval_mode(request.approval);
    if (!approval) {
        return make_error("approval must be \"none\", \"each\" or \"once\", not " + quote(request.approval));
    }
    d.approval = *approval;

    if (request.requests.size() > limits::kMaxRequestPatterns) {
        return make_error("more than " + std::to_string(limits::kMaxRequestPatterns) + " requests");
    }
    for (const auto& text : request.requests) {
        // An inject grant's options travel in the same list (IssueGrant keeps its signature).
        if (d.capability.kind == CapabilityKind::SecretInject) {
            if (!apply_inject_option(text, d.inject)) {
                return make_error("inject grant option " + quote(text) +
                                  ": expected on_touch=record|kill or on_expiry=close|terminate");
            }
            continue;
        }
        auto pattern = parse_request_pattern(text);
        if (!pattern) {
            return pattern.error();
        }
        d.requests.push_back(std::move(pattern).value());
    }
    if (auto checked = policy.check_requests(d.capability, d.requests); !checked) {
        return checked.error();
    }
    if (request.description.size() > limits::kMaxDescriptionLength) {
        return make_error("description is longer than 1024 bytes");
    }
    d.description = request.description;

    const GrantId id = make_grant_id(seed);
    if (slot_by_id_.find(id.view()) != slot_by_id_.end()) {
        return make_error("grant id collision; retry with fresh randomness");
    }
    d.id = id.str();
    d.origin = GrantOrigin::Runtime;
    d.sequence = next_sequence_++;
    RuntimeGrant grant;
    grant.definition = std::move(d);
    add(std::move(grant));
    return id;
}

void GrantTable::add(RuntimeGrant grant)
{
    const auto slot = static_cast<std::uint32_t>(grants_.size());
    slot_by_id_.emplace(grant.definition.id, slot);
    index_.add(grant.definition, slot);
    if (slot / 64 >= revoked_.size()) {
        revoked_.push_back(0);
    }
    if (grant.revoked_at_usec) {
        mark_revoked(slot);
    }
    grants_.push_back(std::move(grant));
}

void GrantTable::rebuild_index()
{
    index_.clear();
    slot_by_id_.clear();
    revoked_.assign((grants_.size() + 63) / 64, 0);
    for (std::uint32_t slot = 0; slot < grants_.size(); ++slot) {
        const GrantDefinition& d = grants_[slot].definition;
        slot_by_id_.emplace(d.id, slot);
        index_.add(d, slot);
        if (grants_[slot].revoked_at_usec) {
            mark_revoked(slot);
        }
    }
}

RevokeResult GrantTable::revoke(const PolicySet* policy, std::string_view id, std::uint64_t now_usec)
{
    if (const auto found = slot_by_id_.find(id); found != slot_by_id_.end()) {
        RuntimeGrant& grant = grants_[found->second];
        if (grant.revoked_at_usec) {
            return RevokeResult::AlreadyRevoked;
        }
        grant.revoked_at_usec = now_usec;
        mark_revoked(found->second);
        return RevokeResult::Revoked;
    }
    if (is_policy_grant_revoked(id)) {
        return RevokeResult::AlreadyRevoked;
    }
    if (policy != nullptr && policy->find_grant(id) != nullptr) {
        policy_revoked_.emplace(std::string(id), now_usec);
        return RevokeResult::Revoked;
    }
    return RevokeResult::NotFound;
}

std::size_t GrantTable::revoke_all(const PolicySet* policy, std::uint64_t now_usec)
{
    std::size_t revoked = 0;
    for (std::uint32_t slot = 0; slot < grants_.size(); ++slot) {
        RuntimeGrant& grant = grants_[slot];
        if (!grant.revoked_at_usec) {
            grant.revoked_at_usec = now_usec;
            mark_revoked(slot);
            ++revoked;
        }
    }
    if (policy != nullptr) {
        for (const auto& grant : policy->grants()) {
            if (policy_revoked_.emplace(grant.id, now_usec).second) {
                ++revoked;
            }
        }
    }
    return revoked;
}

bool GrantTable::is_policy_grant_revoked(std::string_view name) const noexcept
{
    return !policy_revoked_.empty() && policy_revoked_.find(name) != policy_revoked_.end();
}

std::optional<std::uint64_t> GrantTable::policy_grant_revoked_at(std::string_view name) const noexcept
{
    if (policy_revoked_.empty()) {
        return std::nullopt;
    }
    const auto found = policy_revoked_.find(name);
    return found == policy_revoked_.end() ? std::nullopt : std::optional<std::uint64_t>(found->second);
}

const GrantUsage* GrantTable::policy_grant_usage(std::string_view name) const noexcept
{
    if (policy_usage_.empty()) {
        return nullptr;
    }
    const auto found = policy_usage_.find(name);
    return found == policy_usage_.end() ? nullptr : &found->second;
}

GrantUsage& GrantTable::policy_grant_usage_for_update(std::string_view name)
{
    auto found = policy_usage_.find(name);
    if (found == policy_usage_.end()) {
        found = policy_usage_.emplace(std::string(name), GrantUsage{}).first;
    }
    return found->second;
}

const RuntimeGrant* GrantTable::find(std::string_view id) const noexcept
{
    const auto found = slot_by_id_.find(id);
    return found == slot_by_id_.end() ? nullptr : &grants_[found->second];
}

std::vector<GrantInfo> GrantTable::list(const PolicySet* policy, std::uint64_t now_usec) const
{
    std::vector<GrantInfo> out;
    if (policy != nullptr) {
        for (const auto& d : policy->grants()) {
            const GrantUsage* usage = policy_grant_usage(d.id);
            const auto revoked_at = policy_grant_revoked_at(d.id);
            out.push_back(GrantInfo{d, grant_state(d, usage, revoked_at.has_value(), now_usec),
                                    usage != nullptr ? usage->uses : 0, revoked_at});
        }
    }
    for (const auto& grant : grants_) {
        out.push_back(GrantInfo{
            grant.definition, grant_state(grant.definition, &grant.usage, grant.revoked_at_usec.has_value(), now_usec),
            grant.usage.uses, grant.revoked_at_usec});
    }
    return out;
}

std::size_t GrantTable::prune(const PolicySet* policy, std::uint64_t now_usec, std::uint64_t keep_usec)
{
    const std::size_t before = grants_.size() + policy_usage_.size();
    std::erase_if(grants_, [&](const RuntimeGrant& grant) {
        const auto ended = ended_at(grant, now_usec);
        return ended && now_usec >= *ended && now_usec - *ended >= keep_usec;
    });
    rebuild_index();
    if (policy != nullptr) {
        std::erase_if(policy_usage_,
                      [policy](const auto& entry) { return policy->find_grant(entry.first) == nullptr; });
    }
    return before - grants_.size() - policy_usage_.size();
}

Result<Ok> GrantTable::restore_runtime(RuntimeGrant grant)
{
    if (grants_.size() >= limits::kMaxRuntimeGrants) {
        return make_error("too many runtime grants");
    }
    if (!is_runtime_grant_id(grant.definition.id)) {
        return make_error("runtime grant id " + quote(grant.definition.id) + " is not of the form g-<16 hex>");
    }
    if (slot_by_id_.find(grant.definition.id) != slot_by_id_.end()) {
        return make_error("duplicate runtime grant " + grant.definition.id);
    }
    grant.definition.origin = GrantOrigin::Runtime;
    if (grant.definition.sequence >= next_sequence_) {
        next_sequence_ = grant.definition.sequence + 1;
    }
    add(std::move(grant));
    return Ok{};
}

void GrantTable::restore_policy_usage(std::string name, GrantUsage usage)
{
    policy_usage_[std::move(name)] = std::move(usage);
}

void GrantTable::restore_policy_revocation(std::string name, std::uint64_t revoked_at_usec)
{
    policy_revoked_[std::move(name)] = revoked_at_usec;
}

void GrantTable::restore_next_sequence(std::uint64_t next) noexcept
{
    if (next > next_sequence_) {
        next_sequence_ = next;
    }
}

}  // namespace codexvault::policy
