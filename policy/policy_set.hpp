// PolicySet: the principals, providers and static grants of one successful load of the policy
// files, with the grant index. Immutable once built and shared as
// std::shared_ptr<const PolicySet>, so the daemon can swap a freshly loaded set in with one
// pointer assignment (reload) while nothing else changes. There is no partial set: a load with
// any error yields no PolicySet at all (see policy_parser.hpp), and the engine then denies
// every grant-based use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/grant.hpp"
#include "policy/grant_index.hpp"
#include "policy/principal.hpp"
#include "policy/provider.hpp"
#include "policy/result.hpp"

namespace codexvault::policy {

// A principal as a grant refers to it: a name from the policy files, or inline conditions.
struct PrincipalRef {
    std::string label;  // "agents", or "inline:uid=1000,exe=/usr/bin/python3"
    Conditions conditions;
};

class PolicySet {
public:
    // Building (used by the parser and by tests). Each returns an error for a duplicate name or
    // a definition that does not hold together; nothing is added then.
    Result<Ok> add_principal(Principal principal);
    Result<Ok> add_provider(Provider provider);
    // The grant's principal (principal_label/principal) must already be resolved; checked here:
    // the capability's provider exists and covers the grant's requests, requests only on
    // provider grants, the id is a valid name and not of the runtime form "g-<16 hex>".
    Result<Ok> add_grant(GrantDefinition grant);

    [[nodiscard]] const Principal* find_principal(std::string_view name) const noexcept;
    [[nodiscard]] const Provider* find_provider(std::string_view name) const noexcept;
    [[nodiscard]] const GrantDefinition* find_grant(std::string_view id) const noexcept;

    [[nodiscard]] const std::vector<Principal>& principals() const noexcept { return principals_; }
    [[nodiscard]] const std::vector<Provider>& providers() const noexcept { return providers_; }
    [[nodiscard]] const std::vector<GrantDefinition>& grants() const noexcept { return grants_; }
    [[nodiscard]] const GrantIndex& index() const noexcept { return index_; }

    // `vaultctl grant --principal SPEC`: SPEC containing '=' is inline conditions
    // (parse_inline_conditions), otherwise the name of a principal in this set.
    [[nodiscard]] Result<PrincipalRef> resolve_principal(std::string_view spec) const;

    // Checks a provider grant's requests against the provider (also used for runtime grants).
    [[nodiscard]] Result<Ok> check_requests(const Capability& capability,
                                            const std::vector<RequestPattern>& requests) const;

private:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
    };
    using NameMap = std::unordered_map<std::string, std::uint32_t, Hash, std::equal_to<>>;

    std::vector<Principal> principals_;
    std::vector<Provider> providers_;
    std::vector<GrantDefinition> grants_;
    NameMap principal_by_name_;
    NameMap provider_by_name_;
    NameMap grant_by_id_;
    GrantIndex index_;
};

}  // namespace codexvault::policy
