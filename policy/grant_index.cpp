#include "policy/grant_index.hpp"

#include <algorithm>
#include <functional>

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

std::uint32_t fingerprint(std::string_view text) noexcept
{
    const std::uint64_t h = std::hash<std::string_view>{}(text);
    const auto folded = static_cast<std::uint32_t>(h ^ (h >> 32));
    return folded == 0 ? 1 : folded;
}

Candidate Candidate::of(const Conditions& principal, std::uint32_t slot) noexcept
{
    Candidate c;
    c.slot = slot;
    auto set = [&c](Condition condition) {
        c.conditions |= static_cast<std::uint8_t>(1U << static_cast<unsigned>(condition));
    };
    if (principal.uid) {
        set(Condition::Uid);
    }
    if (principal.gid) {
        set(Condition::Gid);
        c.gid = *principal.gid;
    }
    if (principal.unit) {
        set(Condition::Unit);
        c.unit_hash = fingerprint(*principal.unit);
    }
    if (principal.cgroup) {
        set(Condition::Cgroup);
        c.cgroup_hash = fingerprint(*principal.cgroup);
    }
    if (principal.exe) {
        set(Condition::Exe);
        c.exe_hash = fingerprint(*principal.exe);
    }
    if (principal.exe_sha256) {
        set(Condition::ExeSha256);
        c.exe_sha256_hash = fingerprint(*principal.exe_sha256);
    }
    return c;
}

SubjectPrints::SubjectPrints(const SubjectView& subject) noexcept : subject_(subject)
{
    if (!subject.unit.empty()) {
        unit_ = fingerprint(subject.unit);
    }
    if (subject.exe) {
        exe_ = fingerprint(*subject.exe);
    }
    if (subject.exe_sha256) {
        exe_sha256_ = fingerprint(*subject.exe_sha256);
    }
    // The cgroup condition C holds for cgroup S when S == C or S starts with C + "/": the
    // candidates are S's prefixes that end just before a '/', and S itself.
    const std::string_view cgroup = subject.cgroup;
    for (std::size_t i = 1; i <= cgroup.size() && !cgroup.empty(); ++i) {
        if (i == cgroup.size() || cgroup[i] == '/') {
            if (cgroup_count_ == kMaxCgroupPrefixes) {
                cgroup_overflow_ = true;
                break;
            }
            cgroup_prefixes_[cgroup_count_++] = fingerprint(cgroup.substr(0, i));
        }
    }
}

bool SubjectPrints::may_match(const Candidate& c) const noexcept
{
    if (c.has(Condition::Gid) && subject_.gid != c.gid &&
        std::find(subject_.groups.begin(), subject_.groups.end(), c.gid) == subject_.groups.end()) {
        return false;
    }
    if (c.has(Condition::Unit) && (unit_ == 0 || unit_ != c.unit_hash)) {
        return false;
    }
    if (c.has(Condition::Cgroup) && !cgroup_overflow_ &&
        std::find(cgroup_prefixes_, cgroup_prefixes_ + cgroup_count_, c.cgroup_hash) ==
            cgroup_prefixes_ + cgroup_count_) {
        return false;
    }
    if (subject_.exe) {
        if (c.has(Condition::Exe) && exe_ != c.exe_hash) {
            return false;
        }
        if (c.has(Condition::ExeSha256) && (exe_sha256_ == 0 || exe_sha256_ != c.exe_sha256_hash)) {
            return false;
        }
    }
    return true;
}

std::size_t GrantIndex::Hash::operator()(const CapabilityKeyView& key) const noexcept
{
    return std::hash<std::string_view>{}(key.name) * 31U + static_cast<std::size_t>(key.kind);
}

std::uint64_t GrantIndex::run_key(std::uint32_t capability_id, bool has_uid, std::uint32_t uid) noexcept
{
    return (static_cast<std::uint64_t>(capability_id + 1) << 33) | (static_cast<std::uint64_t>(has_uid ? 1 : 0) << 32) |
           uid;
}

const GrantIndex::Run* GrantIndex::find_run(std::uint64_t key) const noexcept
{
    if (table_.empty()) {
        return nullptr;
    }
    const std::size_t mask = table_.size() - 1;
    for (std::size_t i = mix(key) & mask;; i = (i + 1) & mask) {
        const Run& run = table_[i];
        if (run.key == key) {
            return &run;
        }
        if (run.key == 0) {
            return nullptr;
        }
    }
}

void GrantIndex::grow_table()
{
    std::vector<Run> old = std::move(table_);
    table_.assign(old.empty() ? 64 : old.size() * 2, Run{});
    const std::size_t mask = table_.size() - 1;
    for (const Run& run : old) {
        if (run.key == 0) {
            continue;
        }
        std::size_t i = mix(run.key) & mask;
        while (table_[i].key != 0) {
            i = (i + 1) & mask;
        }
        table_[i] = run;
    }
}

GrantIndex::Run& GrantIndex::run_for(std::uint64_t key)
{
    if ((runs_ + 1) * 2 > table_.size()) {
        grow_table();
    }
    const std::size_t mask = table_.size() - 1;
    std::size_t i = mix(key) & mask;
    while (table_[i].key != 0 && table_[i].key != key) {
        i = (i + 1) & mask;
    }
    if (table_[i].key == 0) {
        table_[i].key = key;
        ++runs_;
    }
    return table_[i];
}

void GrantIndex::add(const Capability& capability, const Conditions& principal, std::uint32_t slot)
{
    auto found = capability_ids_.find(CapabilityKeyView{capability.kind, capability.name});
    if (found == capability_ids_.end()) {
        const auto id = static_cast<std::uint32_t>(capability_ids_.size());
        found = capability_ids_.emplace(CapabilityKey{capability.kind, capability.name}, id).first;
    }
    Run& run = run_for(run_key(found->second, principal.uid.has_value(), principal.uid.value_or(0)));
    const Candidate candidate = Candidate::of(principal, slot);
    if (run.size == 0) {
        run.single = candidate;
        run.size = 1;
        return;
    }
    if (run.size == run.capacity || run.capacity == 0) {
        // Move the run to the end of the pool with twice the room (the old room is left unused
        // until the next clear(); at most half the pool is ever wasted).
        const std::uint32_t capacity = run.capacity == 0 ? 4 : run.capacity * 2;
        const auto begin = static_cast<std::uint32_t>(pool_.size());
        pool_.resize(pool_.size() + capacity);
        if (run.capacity == 0) {
            pool_[begin] = run.single;
        } else {
            std::copy_n(pool_.begin() + run.begin, run.size, pool_.begin() + begin);
        }
        run.begin = begin;
        run.capacity = capacity;
    }
    pool_[run.begin + run.size] = candidate;
    ++run.size;
}

std::span<const Candidate> GrantIndex::candidates(const Run* run) const noexcept
{
    if (run == nullptr) {
        return {};
    }
    if (run->capacity == 0) {
        return {&run->single, run->size};
    }
    return {pool_.data() + run->begin, run->size};
}

void GrantIndex::clear() noexcept
{
    capability_ids_.clear();
    table_.clear();
    runs_ = 0;
    pool_.clear();
}

GrantIndex::Hits GrantIndex::find(CapabilityKind kind, std::string_view name, std::uint32_t uid) const noexcept
{
    const auto found = capability_ids_.find(CapabilityKeyView{kind, name});
    if (found == capability_ids_.end()) {
        return {};
    }
    Hits hits;
    hits.capability_known = true;
    hits.by_uid = candidates(find_run(run_key(found->second, true, uid)));
    hits.any_uid = candidates(find_run(run_key(found->second, false, 0)));
    return hits;
}

}  // namespace codexvault::policy
