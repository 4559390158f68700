#include "daemon/monitor/exec_cache.hpp"

#include <unistd.h>

#include <algorithm>

namespace codexvault::monitor {
namespace {

std::uint64_t ticks_to_ns(std::uint64_t ticks)
{
    static const auto per_second = static_cast<std::uint64_t>(::sysconf(_SC_CLK_TCK));
    return ticks * (1'000'000'000ULL / per_second);
}

}  // namespace

ExecCache::ExecCache(std::size_t capacity) : capacity_(std::max<std::size_t>(capacity, 1))
{
    index_.reserve(std::min<std::size_t>(capacity_, default_capacity));
}

ExecCache::Entry* ExecCache::find(const Key& key)
{
    const auto it = index_.find(key);
    if (it == index_.end()) {
        return nullptr;
    }
    lru_.splice(lru_.begin(), lru_, it->second);
    return &*it->second;
}

void ExecCache::record(const ExecEvent& event)
{
    if (!event.task.has_exe) {
        return;
    }
    const Key key{event.task.tgid, event.task.start_ticks()};
    ExeRecord rec{event.exe_path,  event.task.exe_dev, event.task.exe_ino,  event.task.uid,
                  event.task.euid, event.time_ns,      event.path_truncated};
    Entry* entry = find(key);
    if (entry == nullptr) {
        if (index_.size() >= capacity_) {
            index_.erase(lru_.back().key);
            lru_.pop_back();
        }
        lru_.push_front(Entry{key, {}});
        index_.emplace(key, lru_.begin());
        entry = &lru_.front();
    }
    auto& execs = entry->execs;
    // Kept in exec-time order: the walk at start (time 0) may be read after a ring record.
    const auto pos = std::upper_bound(execs.begin(), execs.end(), rec.exec_time_ns,
                                      [](std::uint64_t t, const ExeRecord& r) { return t < r.exec_time_ns; });
    execs.insert(pos, std::move(rec));
    if (execs.size() > history_per_process) {
        execs.erase(execs.begin());
    }
}

std::optional<ExeRecord> ExecCache::exe_of(std::uint32_t tgid, std::uint64_t start_ticks)
{
    return history(tgid, start_ticks, UINT64_MAX).now;
}

std::optional<ExeRecord> ExecCache::exe_at(std::uint32_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns)
{
    return history(tgid, start_ticks, at_ns).at;
}

ExeHistory ExecCache::history(std::uint32_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns)
{
    ExeHistory out;
    const Entry* entry = find(Key{tgid, start_ticks});
    if (entry == nullptr || entry->execs.empty()) {
        // Never seen: unknown. If it already ran at the last loss, its exec may be what was lost.
        out.uncertain = loss_ns_ != 0 && ticks_to_ns(start_ticks) <= loss_ns_;
        return out;
    }
    if (!vouched(entry->execs.back())) {
        out.uncertain = true;
        return out;
    }
    const ExeRecord* best = nullptr;
    for (const auto& rec : entry->execs) {
        if (rec.exec_time_ns <= at_ns) {
            best = &rec;
        } else {
            out.exec_since = true;
        }
    }
    // With older execs evicted, a moment before the oldest kept has no answer (never the oldest
    // kept). An answer older than the last loss may have been followed by a lost exec.
    if (best != nullptr && vouched(*best)) {
        out.at = *best;
    }
    out.now = entry->execs.back();
    return out;
}

}  // namespace codexvault::monitor
