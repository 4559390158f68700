// The pipeline's audit step. For now each decision and outcome is one structured line on
// stderr (journald under systemd); the tamper-evident log replaces this sink (issue 4).
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <tuple>

#include "daemon/bus/sd_ptr.hpp"
#include "daemon/identity/subject.hpp"

namespace codexvault::audit {

enum class Decision { Allow, Deny };

struct AuditRecord {
    std::string_view event;                      // "decision" or "outcome" or a lifecycle event
    std::string_view action;                     // the dispatch table's action
    std::string_view object;                     // e.g. a secret name; never a value
    const identity::Subject* subject = nullptr;  // null when the caller could not be identified
    std::string_view sender;                     // unique bus name, always known
    Decision decision = Decision::Deny;
    std::string_view reason;
    std::string grant;           // grant id and/or approval id the decision concerns; empty if none
    bool informational = false;  // Status/WhoAmI: may be folded when repeated
};

class AuditHook {
public:
    virtual ~AuditHook() = default;
    virtual void record(const AuditRecord& record) = 0;
};

// logfmt on stderr; values are quoted and control characters escaped so a caller-chosen
// string cannot forge a second record.
//
// So that a local caller cannot flood the log (and the journal behind it), repeats are folded:
// the first informational call and the first denial per (sender, action, decision, reason) in
// each one-second window are written at once; further ones in that window are counted and
// written as one "repeated" line with the count when the window ends. Allowed founder
// operations are never folded.
class StderrAuditHook final : public AuditHook {
public:
    static constexpr std::uint64_t kFoldWindowUsec = 1'000'000;

    explicit StderrAuditHook(sd_event* event);
    ~StderrAuditHook() override;
    StderrAuditHook(const StderrAuditHook&) = delete;
    StderrAuditHook& operator=(const StderrAuditHook&) = delete;

    void record(const AuditRecord& record) override;
    void flush_repeats();

private:
    struct Repeat {
        std::string line_prefix;  // the record's line without reason/count, for the summary
        std::uint64_t count = 0;
    };
    using Key = std::tuple<std::string, std::string, int, std::string>;

    static int on_window_end(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    void arm_window();

    sd_event* event_;
    bus::EventSourcePtr timer_;
    std::map<Key, Repeat> window_;
};

std::string logfmt_quote(std::string_view value);
std::string format_record(const AuditRecord& record);

}  // namespace codexvault::audit
