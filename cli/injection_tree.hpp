// `vaultctl audit injections`, the pure part: from an injection's audit records (the JSON objects
// AuditTail returns), the tree of the processes that received it and every touch and alert, in
// log order. The tree is built from the records' process tail (pid and start time of each process,
// its parent's pid and start time), never from reason text (docs/injection.md, "Records").
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace codexvault::cli {

struct InjectedProcess {
    std::int32_t pid = 0;
    std::uint64_t start_ticks = 0;  // with the pid, names the process
    std::optional<std::uint32_t> uid;
    std::int32_t parent_pid = 0;
    std::uint64_t parent_start_ticks = 0;
    std::vector<std::string> exes;      // the exe it had when it got the mark, then each exec ("" unknown)
    std::uint64_t start_usec = 0;       // 0: not recorded
    std::uint64_t end_usec = 0;         // its exit while marked; 0: not recorded (still running, or unmarked first)
    bool recipient = false;             // the process that called Inject
    std::vector<std::size_t> children;  // indexes into InjectionReport::processes, in fork order
};

struct InjectionEvent {
    std::uint64_t seq = 0;
    std::uint64_t time_usec = 0;  // when the kernel saw it, else when it was recorded
    std::string action;           // inject.touch, inject.alert, inject.revoke
    std::optional<std::int32_t> pid;
    std::optional<std::uint32_t> uid;
    std::string exe;
    std::string reason;
    std::uint64_t repeat_count = 0;
};

struct InjectionReport {
    std::string id;
    std::string grant;
    std::uint64_t open_usec = 0;
    std::string open_reason;
    std::uint64_t close_usec = 0;  // 0: still open as far as the records read tell
    std::string close_reason;
    std::vector<InjectedProcess> processes;  // processes[0] is the recipient once inject.open was read
    std::vector<InjectionEvent> events;
};

// Records in log order (any records; those not about an injection are ignored). `only` limits the
// result to one injection id.
std::vector<InjectionReport> build_injection_reports(const std::vector<nlohmann::json>& records,
                                                     const std::optional<std::string>& only);

nlohmann::json injection_reports_json(const std::vector<InjectionReport>& reports);
std::string render_injection_reports(const std::vector<InjectionReport>& reports);

}  // namespace codexvault::cli
