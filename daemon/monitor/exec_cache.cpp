#include "daemon/monitor/exec_cache.hpp"

#include <algorithm>

namespace codexvault::monitor {

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
    const Entry* entry = find(Key{tgid, start_ticks});
    if (entry == nullptr || entry->execs.empty()) {
        return std::nullopt;
    }
    return entry->execs.back();
}

std::optional<ExeRecord> ExecCache::exe_at(std::uint32_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns)
{
    const Entry* entry = find(Key{tgid, start_ticks});
    if (entry == nullptr) {
        return std::nullopt;
    }
    const ExeRecord* best = nullptr;
    for (const auto& rec : entry->execs) {
        if (rec.exec_time_ns <= at_ns) {
            best = &rec;
        }
    }
    if (best == nullptr) {
        return std::nullopt;
    }
    return *best;
}

}  // namespace codexvault::monitor
