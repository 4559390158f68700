// What exe a process ran, from the monitor's exec records: a bounded LRU keyed by (host tgid,
// start time in clock ticks), the pair the daemon pins a caller with. A pid reused after exit
// has another start time, so it never finds the old process's exe. Each entry keeps the last
// few execs of its process with their times, for "what exe did it have at time T".
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "daemon/monitor/events.hpp"

namespace codexvault::monitor {

struct ExeRecord {
    std::string path;
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    std::uint32_t uid = 0;
    std::uint32_t euid = 0;
    std::uint64_t exec_time_ns = 0;  // CLOCK_BOOTTIME of the execve; 0: ran before the monitor
    bool path_truncated = false;
};

// What the records say about one process around a moment (ExecCache::history).
struct ExeHistory {
    std::optional<ExeRecord> at;   // its exe at that moment: its last exec at or before it
    std::optional<ExeRecord> now;  // its latest exec
    bool exec_since = false;       // it exec'd after that moment (whatever `at` says)
    // Records were lost after the latest one this process has: an exec may be missing, so
    // neither `at` nor `now` is vouched for (both are nullopt) and `exec_since` may be false
    // wrongly. The caller treats the exe as unknown.
    bool uncertain = false;
};

class ExecCache {
public:
    static constexpr std::size_t default_capacity = 65'536;
    static constexpr std::size_t history_per_process = 8;

    explicit ExecCache(std::size_t capacity = default_capacity);

    // Records an exec (or an existing process). Events of a task without an exe are ignored.
    void record(const ExecEvent& event);

    // The exe the process has now (its latest exec), or nullopt when unknown.
    std::optional<ExeRecord> exe_of(std::uint32_t tgid, std::uint64_t start_ticks);
    // The exe it had at CLOCK_BOOTTIME `at_ns`: its last exec at or before then. An exe seen by
    // the walk at start counts as in place since the process started.
    std::optional<ExeRecord> exe_at(std::uint32_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns);

    // Everything about the process at CLOCK_BOOTTIME `at_ns` in one lookup.
    ExeHistory history(std::uint32_t tgid, std::uint64_t start_ticks, std::uint64_t at_ns);

    // The kernel could not write some record (of any kind) before CLOCK_BOOTTIME `detected_ns`:
    // an exec of any process may be missing, so no record older than that is vouched for any
    // more; a process becomes known again with its next exec.
    void note_loss(std::uint64_t detected_ns) { loss_ns_ = std::max(loss_ns_, detected_ns); }
    [[nodiscard]] std::uint64_t last_loss_ns() const { return loss_ns_; }

    [[nodiscard]] std::size_t size() const { return index_.size(); }
    [[nodiscard]] std::size_t capacity() const { return capacity_; }

private:
    struct Key {
        std::uint32_t tgid;
        std::uint64_t start_ticks;
        bool operator==(const Key&) const = default;
    };
    struct KeyHash {
        std::size_t operator()(const Key& k) const noexcept
        {
            return std::hash<std::uint64_t>{}(k.start_ticks * 0x9E3779B97F4A7C15ULL ^ k.tgid);
        }
    };
    struct Entry {
        Key key;
        std::vector<ExeRecord> execs;  // oldest first, at most history_per_process
    };

    Entry* find(const Key& key);  // and makes it the most recently used

    // A record older than the last loss may have been followed by an exec that was lost.
    [[nodiscard]] bool vouched(const ExeRecord& rec) const { return loss_ns_ == 0 || rec.exec_time_ns >= loss_ns_; }

    std::size_t capacity_;
    std::uint64_t loss_ns_ = 0;
    std::list<Entry> lru_;  // most recently used first
    std::unordered_map<Key, std::list<Entry>::iterator, KeyHash> index_;
};

}  // namespace codexvault::monitor
