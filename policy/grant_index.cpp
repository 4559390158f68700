#include "policy/grant_index.hpp"

#include <algorithm>
#include <bit>
#include <functional>
#include <stdexcept>
#include <tuple>

namespace codexvault::policy {

namespace {

std::uint64_t mix(std::uint64_t x) noexcept
{
    // splitmix64's finaliser
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

}  // namespace

std::uint32_t StringPool::intern(std::string_view text)
{
    const std::size_t hash = std::hash<std::string_view>{}(text);
    if (const std::uint32_t found = find(text, hash); found != 0) {
        return found;
    }
    if ((ends_.size() + 1) * 2 > table_.size()) {
        grow();
    }
    text_.append(text);
    ends_.push_back(static_cast<std::uint32_t>(text_.size()));
    const auto id = static_cast<std::uint32_t>(ends_.size());
    const std::size_t mask = table_.size() - 1;
    std::size_t i = hash & mask;
    while (table_[i].id != 0) {
        i = (i + 1) & mask;
    }
    table_[i] = Slot{static_cast<std::uint32_t>(hash >> 32), id};
    return id;
}

std::uint32_t StringPool::find(std::string_view text, std::size_t hash) const noexcept
{
    if (table_.empty()) {
        return 0;
    }
    const auto tag = static_cast<std::uint32_t>(hash >> 32);
    const std::size_t mask = table_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
        const Slot slot = table_[i];
        if (slot.id == 0) {
            return 0;
        }
        if (slot.tag == tag && at(slot.id) == text) {
            return slot.id;
        }
    }
}

std::string_view StringPool::at(std::uint32_t id) const noexcept
{
    const std::uint32_t begin = id >= 2 ? ends_[id - 2] : 0;
    return std::string_view(text_).substr(begin, ends_[id - 1] - begin);
}

void StringPool::grow()
{
    table_.assign(table_.empty() ? 16 : table_.size() * 2, Slot{});
    const std::size_t mask = table_.size() - 1;
    for (std::uint32_t id = 1; id <= ends_.size(); ++id) {
        const std::size_t hash = std::hash<std::string_view>{}(at(id));
        std::size_t i = hash & mask;
        while (table_[i].id != 0) {
            i = (i + 1) & mask;
        }
        table_[i] = Slot{static_cast<std::uint32_t>(hash >> 32), id};
    }
}

void StringPool::clear() noexcept
{
    table_.clear();
    ends_.clear();
    text_.clear();
}

GrantId GrantFacts::runtime_grant_id() const noexcept
{
    static constexpr char kHex[] = "0123456789abcdef";
    std::array<char, 2 + 2 * std::tuple_size_v<IdSeed>> text{'g', '-'};
    for (std::size_t i = 0; i < runtime_id.size(); ++i) {
        text[2 + 2 * i] = kHex[runtime_id[i] >> 4];
        text[3 + 2 * i] = kHex[runtime_id[i] & 0x0F];
    }
    return GrantId(std::string_view(text.data(), text.size()));
}

void SubjectKeys::hash_strings() noexcept
{
    strings_hashed_ = true;
    const std::hash<std::string_view> hash;
    if (!subject_.unit.empty()) {
        unit_hash_ = hash(subject_.unit);
    }
    if (subject_.exe) {
        exe_hash_ = hash(*subject_.exe);
    }
    if (subject_.exe_sha256) {
        exe_sha256_hash_ = hash(*subject_.exe_sha256);
    }
}

void SubjectKeys::hash_cgroup_prefixes() noexcept
{
    cgroup_hashed_ = true;
    const std::string_view cgroup = subject_.cgroup;
    // From length 0 (the empty prefix holds when S starts with '/'; conditions are never empty,
    // but the match is exact whatever the condition).
    for (std::size_t i = 0; i <= cgroup.size(); ++i) {
        if (i == cgroup.size() || cgroup[i] == '/') {
            if (prefix_count_ == kMaxCgroupPrefixes) {
                prefix_overflow_ = true;
                return;
            }
            prefix_lengths_[prefix_count_] = static_cast<std::uint32_t>(i);
            prefix_hashes_[prefix_count_] = std::hash<std::string_view>{}(cgroup.substr(0, i));
            ++prefix_count_;
        }
    }
}

namespace {

constexpr unsigned bit(Condition condition) noexcept
{
    return 1U << static_cast<unsigned>(condition);
}

// As principal.cpp: `wanted` is `actual` or one of its ancestors.
bool cgroup_matches(std::string_view wanted, std::string_view actual) noexcept
{
    if (actual.size() < wanted.size() || actual.substr(0, wanted.size()) != wanted) {
        return false;
    }
    return actual.size() == wanted.size() || actual[wanted.size()] == '/';
}

}  // namespace

void SubjectMatcher::resolve_strings() noexcept
{
    strings_resolved_ = true;
    if (!keys_.strings_hashed_) {
        keys_.hash_strings();
    }
    const SubjectView& s = keys_.subject_;
    if (!s.unit.empty() && !index_.units_.empty()) {
        unit_ = index_.units_.find(s.unit, keys_.unit_hash_);
    }
    if (s.exe && !index_.exes_.empty()) {
        exe_ = index_.exes_.find(*s.exe, keys_.exe_hash_);
    }
    if (s.exe_sha256 && !index_.exe_sha256s_.empty()) {
        exe_sha256_ = index_.exe_sha256s_.find(*s.exe_sha256, keys_.exe_sha256_hash_);
    }
}

void SubjectMatcher::resolve_cgroup() noexcept
{
    cgroup_resolved_ = true;
    if (!keys_.cgroup_hashed_) {
        keys_.hash_cgroup_prefixes();
    }
    if (keys_.prefix_overflow_) {
        cgroup_overflow_ = true;
        return;
    }
    const std::string_view cgroup = keys_.subject_.cgroup;
    for (std::size_t i = 0; i < keys_.prefix_count_; ++i) {
        const std::uint32_t id =
            index_.cgroups_.find(cgroup.substr(0, keys_.prefix_lengths_[i]), keys_.prefix_hashes_[i]);
        if (id != 0) {
            // At most one id per prefix, and there are at most kMaxCgroupPrefixes prefixes.
            cgroups_[cgroup_count_++] = id;
        }
    }
}

bool SubjectMatcher::cgroup_holds(std::uint32_t id) noexcept
{
    const std::string_view cgroup = keys_.subject_.cgroup;
    if (cgroup.empty()) {
        return false;
    }
    if (!cgroup_resolved_) {
        resolve_cgroup();
    }
    if (cgroup_overflow_) {
        return cgroup_matches(index_.cgroups_.at(id), cgroup);
    }
    return std::find(cgroups_.begin(), cgroups_.begin() + static_cast<std::ptrdiff_t>(cgroup_count_), id) !=
           cgroups_.begin() + static_cast<std::ptrdiff_t>(cgroup_count_);
}

MatchStatus SubjectMatcher::match(const IndexEntry& entry) noexcept
{
    // The same conditions, in the same order, as match() in principal.cpp; the uid condition
    // holds by construction (the entry is in the run for the subject's uid, or has none).
    const GrantIndex::PrincipalEntry& e = index_.principals_[entry.principal()];
    const SubjectView& s = keys_.subject_;
    const unsigned c = e.conditions;
    if ((c & bit(Condition::Gid)) != 0 && s.gid != e.gid &&
        std::find(s.groups.begin(), s.groups.end(), e.gid) == s.groups.end()) {
        return MatchStatus::Mismatch;
    }
    const unsigned strings = bit(Condition::Unit) | bit(Condition::Exe) | bit(Condition::ExeSha256);
    if ((c & strings) != 0 && !strings_resolved_) {
        resolve_strings();
    }
    // unit_ is 0 (never an entry's id) when the subject has no unit or one no grant names.
    if ((c & bit(Condition::Unit)) != 0 && unit_ != e.unit) {
        return MatchStatus::Mismatch;
    }
    if ((c & bit(Condition::Cgroup)) != 0 && !cgroup_holds(e.cgroup)) {
        return MatchStatus::Mismatch;
    }
    if ((c & (bit(Condition::Exe) | bit(Condition::ExeSha256))) == 0) {
        return MatchStatus::Match;
    }
    if (!s.exe) {
        return MatchStatus::ExeUnknown;
    }
    if ((c & bit(Condition::Exe)) != 0 && exe_ != e.exe) {
        return MatchStatus::Mismatch;
    }
    if ((c & bit(Condition::ExeSha256)) != 0 && exe_sha256_ != e.exe_sha256) {
        return MatchStatus::Mismatch;
    }
    return MatchStatus::Match;
}

std::size_t GrantIndex::PrincipalHash::operator()(const PrincipalEntry& p) const noexcept
{
    std::uint64_t h = p.conditions;
    for (const std::uint32_t v : {p.gid, p.unit, p.cgroup, p.exe, p.exe_sha256}) {
        h = mix(h * 0x9e3779b97f4a7c15ULL + v);
    }
    return h;
}

std::size_t GrantIndex::capability_hash(CapabilityKind kind, std::string_view name) noexcept
{
    return mix(std::hash<std::string_view>{}(name)*31U + static_cast<std::size_t>(kind));
}

std::uint32_t GrantIndex::find_capability(CapabilityKind kind, std::string_view name) const noexcept
{
    if (capability_table_.empty()) {
        return 0;
    }
    const std::size_t hash = capability_hash(kind, name);
    const std::size_t mask = capability_table_.size() - 1;
    for (std::size_t i = hash & mask;; i = (i + 1) & mask) {
        const CapabilitySlot& slot = capability_table_[i];
        if (slot.id == 0) {
            return 0;
        }
        if (slot.hash == hash) {
            const CapabilityRecord& record = capabilities_[slot.id - 1];
            if (record.kind == kind && record.name == name) {
                return slot.id;
            }
        }
    }
}

void GrantIndex::grow_capabilities()
{
    capability_table_.assign(capability_table_.empty() ? 16 : capability_table_.size() * 2, CapabilitySlot{});
    const std::size_t mask = capability_table_.size() - 1;
    for (std::uint32_t id = 1; id <= capabilities_.size(); ++id) {
        const CapabilityRecord& record = capabilities_[id - 1];
        const std::size_t hash = capability_hash(record.kind, record.name);
        std::size_t i = hash & mask;
        while (capability_table_[i].id != 0) {
            i = (i + 1) & mask;
        }
        capability_table_[i] = CapabilitySlot{hash, id};
    }
}

std::uint32_t GrantIndex::capability_id(const Capability& capability)
{
    if (const std::uint32_t found = find_capability(capability.kind, capability.name); found != 0) {
        return found - 1;
    }
    capabilities_.push_back(CapabilityRecord{capability.kind, capability.name, {}});
    // grow_capabilities() inserts every capability, the new one included.
    if (capabilities_.size() * 2 > capability_table_.size()) {
        grow_capabilities();
    } else {
        const std::size_t hash = capability_hash(capability.kind, capability.name);
        const std::size_t mask = capability_table_.size() - 1;
        std::size_t i = hash & mask;
        while (capability_table_[i].id != 0) {
            i = (i + 1) & mask;
        }
        capability_table_[i] = CapabilitySlot{hash, static_cast<std::uint32_t>(capabilities_.size())};
    }
    return static_cast<std::uint32_t>(capabilities_.size() - 1);
}

std::uint32_t GrantIndex::principal_id(const Conditions& principal)
{
    PrincipalEntry p;
    auto set = [&p](Condition condition) {
        p.conditions |= static_cast<std::uint8_t>(bit(condition));
    };
    if (principal.uid) {
        set(Condition::Uid);
    }
    if (principal.gid) {
        set(Condition::Gid);
        p.gid = *principal.gid;
        gid_conditions_ = true;
    }
    if (principal.unit) {
        set(Condition::Unit);
        p.unit = units_.intern(*principal.unit);
    }
    if (principal.cgroup) {
        set(Condition::Cgroup);
        p.cgroup = cgroups_.intern(*principal.cgroup);
    }
    if (principal.exe) {
        set(Condition::Exe);
        p.exe = exes_.intern(*principal.exe);
    }
    if (principal.exe_sha256) {
        set(Condition::ExeSha256);
        p.exe_sha256 = exe_sha256s_.intern(*principal.exe_sha256);
    }
    const auto [found, added] = principal_ids_.emplace(p, static_cast<std::uint32_t>(principals_.size()));
    if (added) {
        if (principals_.size() >= IndexEntry::kMaxPrincipals) {
            // Unreachable within the limits on grants; fail loudly rather than alias.
            throw std::length_error("too many distinct principals in one grant index");
        }
        principals_.push_back(p);
    }
    return found->second;
}

std::size_t GrantIndex::slot_hash(std::uint32_t capability, std::uint32_t uid) noexcept
{
    return mix((static_cast<std::uint64_t>(capability) << 32) | uid);
}

void GrantIndex::grow_table()
{
    std::vector<Slot> old = std::move(table_);
    table_.assign(old.empty() ? 64 : old.size() * 2, Slot{});
    const std::size_t mask = table_.size() - 1;
    for (const Slot& slot : old) {
        if (slot.capability == 0) {
            continue;
        }
        std::size_t i = slot_hash(slot.capability & ~kManyBit, slot.uid) & mask;
        while (table_[i].capability != 0) {
            i = (i + 1) & mask;
        }
        table_[i] = slot;
    }
}

void GrantIndex::append(PoolRun& run, IndexEntry entry)
{
    if (run.size == run.capacity) {
        // Move the run to the end of the pool with twice the room (the old room is left unused
        // until the next clear(); at most half the pool is ever wasted).
        const std::uint32_t capacity = run.capacity == 0 ? 4 : run.capacity * 2;
        const auto begin = static_cast<std::uint32_t>(pool_.size());
        pool_.resize(pool_.size() + capacity);
        std::copy_n(pool_.begin() + run.begin, run.size, pool_.begin() + begin);
        run.begin = begin;
        run.capacity = capacity;
    }
    pool_[run.begin + run.size] = entry;
    ++run.size;
}

void GrantIndex::add_by_uid(std::uint32_t capability, std::uint32_t uid, IndexEntry entry)
{
    // At most 4/5 full: with four slots to a cache line, a lookup mostly reads one line.
    if ((used_slots_ + 1) * 5 > table_.size() * 4) {
        grow_table();
    }
    const std::size_t mask = table_.size() - 1;
    for (std::size_t i = slot_hash(capability, uid) & mask;; i = (i + 1) & mask) {
        Slot& slot = table_[i];
        if (slot.capability == 0) {
            slot = Slot{uid, capability, entry};
            ++used_slots_;
            return;
        }
        if (slot.uid != uid || (slot.capability & ~kManyBit) != capability) {
            continue;
        }
        if ((slot.capability & kManyBit) == 0) {
            PoolRun run;
            append(run, slot.entry);
            slot.capability |= kManyBit;
            slot.entry = IndexEntry{static_cast<std::uint32_t>(runs_.size()), 0};
            runs_.push_back(run);
        }
        append(runs_[slot.entry.slot], entry);
        return;
    }
}

void GrantIndex::add(const GrantDefinition& grant, std::uint32_t slot)
{
    std::uint32_t traits = 0;
    auto trait = [&traits](GrantTrait t) {
        traits |= static_cast<std::uint32_t>(t);
    };
    GrantFacts facts;
    if (grant.expires_at_usec) {
        trait(GrantTrait::Expires);
        facts.expires_at_usec = *grant.expires_at_usec;
    }
    if (grant.max_uses) {
        trait(GrantTrait::MaxUses);
    }
    if (grant.rate) {
        trait(GrantTrait::Rate);
    }
    if (!grant.requests.empty()) {
        trait(GrantTrait::Requests);
    }
    if (grant.approval == ApprovalMode::Each) {
        trait(GrantTrait::ApprovalEach);
    } else if (grant.approval == ApprovalMode::Once) {
        trait(GrantTrait::ApprovalOnce);
    }
    if (is_runtime_grant_id(grant.id)) {
        // "g-" and 16 lowercase hex digits: kept as its 8 bytes, given back exactly.
        auto nibble = [](char ch) {
            return static_cast<unsigned>(ch <= '9' ? ch - '0' : ch - 'a' + 10);
        };
        for (std::size_t i = 0; i < facts.runtime_id.size(); ++i) {
            facts.runtime_id[i] =
                static_cast<std::uint8_t>((nibble(grant.id[2 + 2 * i]) << 4) | nibble(grant.id[3 + 2 * i]));
        }
        trait(GrantTrait::RuntimeId);
    }
    if (slot >= facts_.size()) {
        facts_.resize(slot + 1);
    }
    facts_[slot] = facts;

    const IndexEntry entry{slot, principal_id(grant.principal) | (traits << 24)};
    const std::uint32_t capability = capability_id(grant.capability);
    if (grant.principal.uid) {
        add_by_uid(capability + 1, *grant.principal.uid, entry);
    } else {
        append(capabilities_[capability].any_uid, entry);
    }
}

void GrantIndex::clear() noexcept
{
    capabilities_.clear();
    capability_table_.clear();
    table_.clear();
    used_slots_ = 0;
    runs_.clear();
    pool_.clear();
    facts_.clear();
    principals_.clear();
    principal_ids_.clear();
    units_.clear();
    cgroups_.clear();
    exes_.clear();
    exe_sha256s_.clear();
    gid_conditions_ = false;
}

GrantIndex::Hits GrantIndex::find(CapabilityKind kind, std::string_view name, std::uint32_t uid) const noexcept
{
    const std::uint32_t capability = find_capability(kind, name);
    if (capability == 0) {
        return {};
    }
    Hits hits;
    hits.capability_known = true;
    hits.any_uid = entries(capabilities_[capability - 1].any_uid);
    if (table_.empty()) {
        return hits;
    }
    const std::size_t mask = table_.size() - 1;
    for (std::size_t i = slot_hash(capability, uid) & mask;; i = (i + 1) & mask) {
        const Slot& slot = table_[i];
        if (slot.capability == 0) {
            return hits;
        }
        if (slot.uid == uid && (slot.capability & ~kManyBit) == capability) {
            hits.by_uid = (slot.capability & kManyBit) != 0 ? entries(runs_[slot.entry.slot])
                                                            : std::span<const IndexEntry>(&slot.entry, 1);
            return hits;
        }
    }
}

}  // namespace codexvault::policy
