// Grant lookup by capability, then by the principal's uid: the evaluation path touches only
// the grants that name the capability asked for and whose principal has the caller's uid or
// no uid condition at all. Each hit is a compact Candidate that carries enough of the
// principal (exact gid, fingerprints of the string conditions) to discard most grants that
// cannot match without touching the grant itself; a candidate that passes is then checked
// exactly (fingerprints only ever rule out, they never admit).
//
// Layout: capabilities get dense ids; one open-addressing table maps (capability id, uid or
// "no uid") to a run of candidates: a run of one is kept in the table entry itself, longer runs
// in one contiguous pool. A lookup is a capability-name hash plus two probes; nothing allocates.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "policy/capability.hpp"
#include "policy/principal.hpp"

namespace codexvault::policy {

// 32-bit fingerprint of a condition string; 0 is never produced. Fingerprints only rule grants
// out (a collision costs one exact comparison, never a wrong decision).
std::uint32_t fingerprint(std::string_view text) noexcept;

struct Candidate {
    std::uint32_t unit_hash = 0;
    std::uint32_t cgroup_hash = 0;
    std::uint32_t exe_hash = 0;
    std::uint32_t exe_sha256_hash = 0;
    std::uint32_t slot = 0;  // in the owner's grant vector
    std::uint32_t gid = 0;
    std::uint8_t conditions = 0;  // bit (1 << Condition) for each condition the principal has

    [[nodiscard]] bool has(Condition condition) const noexcept
    {
        return (conditions & (1U << static_cast<unsigned>(condition))) != 0;
    }
    static Candidate of(const Conditions& principal, std::uint32_t slot) noexcept;
};

// The subject's side of the fingerprints, computed once per evaluation.
class SubjectPrints {
public:
    explicit SubjectPrints(const SubjectView& subject) noexcept;
    // False only when the candidate's principal certainly does not match the subject (a
    // condition fails); an unknown exe is left to the exact check (it reports "exe unknown").
    [[nodiscard]] bool may_match(const Candidate& candidate) const noexcept;

private:
    static constexpr std::size_t kMaxCgroupPrefixes = 32;
    const SubjectView& subject_;
    std::uint32_t unit_ = 0;
    std::uint32_t exe_ = 0;
    std::uint32_t exe_sha256_ = 0;
    std::uint32_t cgroup_prefixes_[kMaxCgroupPrefixes] = {};
    std::size_t cgroup_count_ = 0;
    bool cgroup_overflow_ = false;
};

class GrantIndex {
public:
    void add(const Capability& capability, const Conditions& principal, std::uint32_t slot);
    void clear() noexcept;

    struct Hits {
        std::span<const Candidate> by_uid;   // principal's uid == the caller's
        std::span<const Candidate> any_uid;  // principal without a uid condition
        bool capability_known = false;       // some grant names the capability (any uid)
    };
    // No allocation. The spans are valid until the next add() or clear().
    [[nodiscard]] Hits find(CapabilityKind kind, std::string_view name, std::uint32_t uid) const noexcept;

private:
    struct CapabilityKey {
        CapabilityKind kind;
        std::string name;
    };
    struct CapabilityKeyView {
        CapabilityKind kind;
        std::string_view name;
    };
    struct Hash {
        using is_transparent = void;
        std::size_t operator()(const CapabilityKey& key) const noexcept
        {
            return (*this)(CapabilityKeyView{key.kind, key.name});
        }
        std::size_t operator()(const CapabilityKeyView& key) const noexcept;
    };
    struct Equal {
        using is_transparent = void;
        template <typename A, typename B>
        bool operator()(const A& a, const B& b) const noexcept
        {
            return a.kind == b.kind && std::string_view(a.name) == std::string_view(b.name);
        }
    };
    struct Run {
        std::uint64_t key = 0;  // 0: empty table entry
        std::uint32_t begin = 0;
        std::uint32_t size = 0;
        std::uint32_t capacity = 0;  // 0 while the run is the one candidate in `single`
        Candidate single;
    };
    [[nodiscard]] std::span<const Candidate> candidates(const Run* run) const noexcept;

    static std::uint64_t run_key(std::uint32_t capability_id, bool has_uid, std::uint32_t uid) noexcept;
    [[nodiscard]] const Run* find_run(std::uint64_t key) const noexcept;
    Run& run_for(std::uint64_t key);
    void grow_table();

    std::unordered_map<CapabilityKey, std::uint32_t, Hash, Equal> capability_ids_;
    std::vector<Run> table_;  // power-of-two size, at most half full
    std::size_t runs_ = 0;
    std::vector<Candidate> pool_;
};

}  // namespace codexvault::policy
