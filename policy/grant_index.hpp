// Grant lookup by capability, then by the principal's uid: the evaluation path touches only
// the grants that name the capability asked for and whose principal has the caller's uid or
// no uid condition at all. Each hit is a compact IndexEntry whose principal is decided exactly
// by the index alone: the gid is kept as is, and every string condition (unit, cgroup, exe,
// exe_sha256) as the id of its exact text interned in the index; the subject's strings are
// looked up (and compared exactly) once per evaluation, so a candidate's principal is matched
// by comparing integers, without touching the grant. The entry also tells which options the
// grant has, so that deciding for a plain grant (no max_uses, rate, request patterns or
// approval=once) reads nothing of the grant but its index entry, its GrantFacts (expiry, id)
// and the table's revocation bit.
//
// Layout, made for a small working set (at 100,000 grants a random lookup should stay in cache):
// capabilities get dense ids through a small flat table, and each keeps the run of its grants
// whose principal has no uid. One open-addressing table of 16-byte slots maps (capability id,
// uid) to a run of 8-byte entries: a run of one is kept in the slot itself, longer runs in one
// contiguous pool. Distinct principals are kept once (an entry names its principal by id), and
// a plain grant's expiry and id in a dense array by slot. A lookup is a capability-name hash
// plus one probe sequence; nothing allocates.
#pragma once

#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/capability.hpp"
#include "policy/grant.hpp"
#include "policy/ids.hpp"
#include "policy/principal.hpp"

namespace codexvault::policy {

// Distinct strings, each stored once and named by a dense id from 1 (0: none). Lookups compare
// the text exactly.
class StringPool {
public:
    std::uint32_t intern(std::string_view text);
    // 0 when the text is not in the pool. `hash` is std::hash<std::string_view> of the text.
    [[nodiscard]] std::uint32_t find(std::string_view text, std::size_t hash) const noexcept;
    [[nodiscard]] std::string_view at(std::uint32_t id) const noexcept;
    [[nodiscard]] bool empty() const noexcept { return ends_.empty(); }
    void clear() noexcept;

private:
    struct Slot {
        std::uint32_t tag = 0;  // high half of the hash
        std::uint32_t id = 0;   // 0: empty slot
    };
    void grow();
    std::vector<Slot> table_;          // power-of-two size, at most half full
    std::vector<std::uint32_t> ends_;  // string id: text_[ends_[id - 2] (or 0) .. ends_[id - 1])
    std::string text_;
};

// What the evaluation needs to know of a grant beyond its principal.
enum class GrantTrait : std::uint8_t {
    Expires = 1U << 0,       // expires_at_usec is set
    MaxUses = 1U << 1,       // has max_uses
    Rate = 1U << 2,          // has a rate limit
    Requests = 1U << 3,      // has request patterns (provider grants)
    ApprovalEach = 1U << 4,  // approval = each
    ApprovalOnce = 1U << 5,  // approval = once
    RuntimeId = 1U << 6,     // id is "g-<16 hex>" of GrantFacts::runtime_id's bytes
};

// One grant as a run of the index holds it (8 bytes): where it is, its principal (an id in the
// index's table of distinct principals, which decides the match exactly) and its traits.
struct IndexEntry {
    static constexpr std::uint32_t kMaxPrincipals = 1U << 24;

    std::uint32_t slot = 0;              // in the owner's grant vector
    std::uint32_t principal_traits = 0;  // principal id (low 24 bits) | GrantTrait bits << 24

    [[nodiscard]] std::uint32_t principal() const noexcept { return principal_traits & (kMaxPrincipals - 1); }
    [[nodiscard]] bool has(GrantTrait trait) const noexcept
    {
        return ((principal_traits >> 24) & static_cast<std::uint32_t>(trait)) != 0;
    }
};

// The rest of a plain grant's evaluation, by slot (read only once its principal matched).
struct GrantFacts {
    std::uint64_t expires_at_usec = 0;  // with GrantTrait::Expires
    IdSeed runtime_id{};                // with GrantTrait::RuntimeId
    // The grant's id "g-<16 hex>"; no allocation.
    [[nodiscard]] GrantId runtime_grant_id() const noexcept;
};

class GrantIndex;

// The subject's condition strings, hashed on first use and shared by the indexes an evaluation
// looks in.
class SubjectKeys {
public:
    explicit SubjectKeys(const SubjectView& subject) noexcept : subject_(subject) {}

private:
    friend class SubjectMatcher;
    static constexpr std::size_t kMaxCgroupPrefixes = 32;
    void hash_strings() noexcept;
    void hash_cgroup_prefixes() noexcept;

    const SubjectView& subject_;
    bool strings_hashed_ = false;
    bool cgroup_hashed_ = false;
    std::size_t unit_hash_ = 0;
    std::size_t exe_hash_ = 0;
    std::size_t exe_sha256_hash_ = 0;
    // The cgroup condition C holds for cgroup S when S == C or S starts with C + "/": S's
    // prefixes that end just before a '/', and S itself (their lengths and hashes).
    // Only the first prefix_count_ are set (not cleared up front: this is built per evaluation).
    std::array<std::uint32_t, kMaxCgroupPrefixes> prefix_lengths_;
    std::array<std::size_t, kMaxCgroupPrefixes> prefix_hashes_;
    std::size_t prefix_count_ = 0;
    bool prefix_overflow_ = false;  // more prefixes than kept: cgroups are compared as text
};

// Matches index entries of one index against one subject, exactly (the same answer as
// match(grant.principal, subject).status). Looks the subject's strings up in the index's pools
// on first need. No allocation.
class SubjectMatcher {
public:
    SubjectMatcher(const GrantIndex& index, SubjectKeys& keys) noexcept : index_(index), keys_(keys) {}
    // The entry must come from this index, from the run for the subject's uid or the one for
    // principals without a uid condition (the uid condition is not looked at again).
    [[nodiscard]] MatchStatus match(const IndexEntry& entry) noexcept;

private:
    static constexpr std::size_t kMaxCgroupIds = 32;
    void resolve_strings() noexcept;
    void resolve_cgroup() noexcept;
    [[nodiscard]] bool cgroup_holds(std::uint32_t id) noexcept;

    const GrantIndex& index_;
    SubjectKeys& keys_;
    bool strings_resolved_ = false;
    bool cgroup_resolved_ = false;
    std::uint32_t unit_ = 0;
    std::uint32_t exe_ = 0;
    std::uint32_t exe_sha256_ = 0;
    std::array<std::uint32_t, kMaxCgroupIds>
        cgroups_;  // interned ids of the subject's prefixes (the first cgroup_count_)
    std::size_t cgroup_count_ = 0;
    bool cgroup_overflow_ = false;  // compare each entry's cgroup text instead
};

class GrantIndex {
public:
    // Slots are dense: each grant of the owner, from 0, in order.
    void add(const GrantDefinition& grant, std::uint32_t slot);
    void clear() noexcept;

    struct Hits {
        std::span<const IndexEntry> by_uid;   // principal's uid == the caller's
        std::span<const IndexEntry> any_uid;  // principal without a uid condition
        bool capability_known = false;        // some grant names the capability (any uid)
        [[nodiscard]] bool empty() const noexcept { return by_uid.empty() && any_uid.empty(); }
    };
    // No allocation. The spans are valid until the next add() or clear().
    [[nodiscard]] Hits find(CapabilityKind kind, std::string_view name, std::uint32_t uid) const noexcept;
    [[nodiscard]] const GrantFacts& facts(std::uint32_t slot) const noexcept { return facts_[slot]; }
    // Some grant added since the last clear() has a gid condition, the only one that looks at the
    // subject's supplementary groups (the daemon reads them only while one does).
    [[nodiscard]] bool has_gid_condition() const noexcept { return gid_conditions_; }

private:
    friend class SubjectMatcher;
    // A principal without its uid: gid as is, string conditions as StringPool ids (0: none).
    struct PrincipalEntry {
        std::uint32_t gid = 0;
        std::uint32_t unit = 0;
        std::uint32_t cgroup = 0;
        std::uint32_t exe = 0;
        std::uint32_t exe_sha256 = 0;
        std::uint8_t conditions = 0;  // bit (1 << Condition) for each condition, uid included
        friend bool operator==(const PrincipalEntry&, const PrincipalEntry&) = default;
    };
    struct PrincipalHash {
        std::size_t operator()(const PrincipalEntry& p) const noexcept;
    };
    // A run of entries in pool_.
    struct PoolRun {
        std::uint32_t begin = 0;
        std::uint32_t size = 0;
        std::uint32_t capacity = 0;
    };
    struct CapabilityRecord {
        CapabilityKind kind;
        std::string name;
        PoolRun any_uid;  // the grants whose principal has no uid condition
    };
    struct CapabilitySlot {
        std::size_t hash = 0;
        std::uint32_t id = 0;  // capability id + 1; 0: empty slot
    };
    // The (capability, uid) table: 16 bytes, four to a cache line.
    static constexpr std::uint32_t kManyBit = 1U << 31;
    struct Slot {
        std::uint32_t uid = 0;
        std::uint32_t capability = 0;  // capability id + 1 (0: empty), | kManyBit for a run in the pool
        IndexEntry entry;              // the run's one entry; with kManyBit, entry.slot is its runs_ index
    };
    static_assert(sizeof(Slot) == 16);

    [[nodiscard]] std::span<const IndexEntry> entries(const PoolRun& run) const noexcept
    {
        return {pool_.data() + run.begin, run.size};
    }
    void append(PoolRun& run, IndexEntry entry);
    static std::size_t capability_hash(CapabilityKind kind, std::string_view name) noexcept;
    [[nodiscard]] std::uint32_t find_capability(CapabilityKind kind, std::string_view name) const noexcept;
    std::uint32_t capability_id(const Capability& capability);
    void grow_capabilities();
    std::uint32_t principal_id(const Conditions& principal);
    static std::size_t slot_hash(std::uint32_t capability, std::uint32_t uid) noexcept;
    void add_by_uid(std::uint32_t capability, std::uint32_t uid, IndexEntry entry);
    void grow_table();

    std::vector<CapabilityRecord> capabilities_;    // by id
    std::vector<CapabilitySlot> capability_table_;  // power-of-two size, at most half full
    std::vector<Slot> table_;                       // power-of-two size, at most 4/5 full
    std::size_t used_slots_ = 0;
    std::vector<PoolRun> runs_;      // by_uid runs of more than one entry
    std::vector<IndexEntry> pool_;   // runs_ and the any_uid runs
    std::vector<GrantFacts> facts_;  // by slot
    std::vector<PrincipalEntry> principals_;
    std::unordered_map<PrincipalEntry, std::uint32_t, PrincipalHash> principal_ids_;  // building only
    StringPool units_;
    StringPool cgroups_;
    StringPool exes_;
    StringPool exe_sha256s_;
    bool gid_conditions_ = false;
};

}  // namespace codexvault::policy
