// The runtime grant table: grants the founder issues while the daemon runs, and the mutable
// state of every grant (uses, rate state, approvals given once), including the grants from the
// policy files, whose state is kept here by name so that it survives a reload. Revocations
// are kept too, for runtime grants and for policy grants alike, and persist (persistence.hpp):
// a revoked grant stays revoked after a restart.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/grant.hpp"
#include "policy/grant_index.hpp"
#include "policy/ids.hpp"
#include "policy/policy_set.hpp"
#include "policy/result.hpp"

namespace codexvault::policy {

// What the founder asks for (the bus passes text; everything is parsed and checked by issue()).
struct GrantRequest {
    std::string principal;   // a principal name from the policy files, or "uid=1000,exe=/usr/bin/x"
    std::string capability;  // "provider:openai:request"
    std::string ttl;         // required: "30s", "15m", "2h", "7d" (at most 3650d)
    std::optional<std::uint64_t> max_uses;
    std::optional<std::string> rate;    // "60/min"
    std::string approval = "none";      // "none", "each", "once"
    std::vector<std::string> requests;  // provider grants: "POST /v1/chat/completions", ...
    std::string description;
};

// Mutable state first: usage and revocation share the first cache line, which the evaluation
// reads before anything else.
struct RuntimeGrant {
    GrantUsage usage;
    std::optional<std::uint64_t> revoked_at_usec;
    GrantDefinition definition;
};

enum class RevokeResult : std::uint8_t { Revoked, AlreadyRevoked, NotFound };

class GrantTable {
public:
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view text) const noexcept { return std::hash<std::string_view>{}(text); }
    };
    template <typename V>
    using NameMap = std::unordered_map<std::string, V, Hash, std::equal_to<>>;

    // Issues a runtime grant with id "g-<hex of seed>". The principal is resolved against the
    // policy now and kept with the grant (a later edit of the named principal does not change
    // what this grant matches). Provider grants need the provider in `policy`, and their
    // requests within its allowed set. Fails for a taken id (retry with fresh randomness).
    Result<GrantId> issue(const PolicySet& policy, const GrantRequest& request, const IdSeed& seed,
                          std::uint64_t now_usec);

    // Revokes a runtime grant by id, or a policy grant by name (it stays revoked, across
    // reloads and restarts).
    RevokeResult revoke(const PolicySet* policy, std::string_view id, std::uint64_t now_usec);
    // Revokes every runtime grant and every grant of `policy`; returns how many changed.
    std::size_t revoke_all(const PolicySet* policy, std::uint64_t now_usec);

    // Every grant, policy ones first, with its state at now.
    [[nodiscard]] std::vector<GrantInfo> list(const PolicySet* policy, std::uint64_t now_usec) const;

    // Forgets runtime grants that have been revoked, expired or used up for at least keep_usec,
    // and the state of policy grants that are no longer in `policy` (their revocations stay).
    std::size_t prune(const PolicySet* policy, std::uint64_t now_usec, std::uint64_t keep_usec);

    [[nodiscard]] const RuntimeGrant* find(std::string_view id) const noexcept;
    [[nodiscard]] std::size_t size() const noexcept { return grants_.size(); }

    // For the engine's evaluation path (no allocation).
    [[nodiscard]] const GrantIndex& index() const noexcept { return index_; }
    [[nodiscard]] const RuntimeGrant& at(std::uint32_t slot) const noexcept { return grants_[slot]; }
    // The usage of a runtime grant, to record a use (revocations go through revoke()).
    GrantUsage& usage_for_update(std::uint32_t slot) noexcept { return grants_[slot].usage; }
    // Whether the runtime grant in `slot` is revoked: one bit per slot, dense, so the evaluation
    // need not read the grant itself.
    [[nodiscard]] bool is_revoked(std::uint32_t slot) const noexcept
    {
        return ((revoked_[slot / 64] >> (slot % 64)) & 1U) != 0;
    }
    [[nodiscard]] const std::vector<RuntimeGrant>& runtime_grants() const noexcept { return grants_; }
    [[nodiscard]] bool is_policy_grant_revoked(std::string_view name) const noexcept;
    [[nodiscard]] std::optional<std::uint64_t> policy_grant_revoked_at(std::string_view name) const noexcept;
    [[nodiscard]] const GrantUsage* policy_grant_usage(std::string_view name) const noexcept;
    GrantUsage& policy_grant_usage_for_update(std::string_view name);

    // For persistence.
    [[nodiscard]] const NameMap<GrantUsage>& policy_usage() const noexcept { return policy_usage_; }
    [[nodiscard]] const NameMap<std::uint64_t>& policy_revocations() const noexcept { return policy_revoked_; }
    [[nodiscard]] std::uint64_t next_sequence() const noexcept { return next_sequence_; }
    Result<Ok> restore_runtime(RuntimeGrant grant);
    void restore_policy_usage(std::string name, GrantUsage usage);
    void restore_policy_revocation(std::string name, std::uint64_t revoked_at_usec);
    void restore_next_sequence(std::uint64_t next) noexcept;

    // Runtime grants are ordered after every policy grant.
    static constexpr std::uint64_t kRuntimeSequenceBase = 1ULL << 32;

private:
    void add(RuntimeGrant grant);
    void rebuild_index();
    void mark_revoked(std::uint32_t slot) noexcept { revoked_[slot / 64] |= std::uint64_t{1} << (slot % 64); }

    std::vector<RuntimeGrant> grants_;
    std::vector<std::uint64_t> revoked_;  // bit per slot: grants_[slot].revoked_at_usec is set
    NameMap<std::uint32_t> slot_by_id_;
    GrantIndex index_;
    NameMap<GrantUsage> policy_usage_;
    NameMap<std::uint64_t> policy_revoked_;  // name -> revoked at
    std::uint64_t next_sequence_ = kRuntimeSequenceBase;
};

}  // namespace codexvault::policy
