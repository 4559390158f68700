// The pipeline's audit step: turns what the daemon decided into audit records, and keeps the log's
// timers (folded repeats, checkpoints) on the event loop. The log itself (audit_log.hpp) does the
// chaining, files and journal; this class only knows the daemon's vocabulary.
//
// Outside systemd's journal (a development run, the tests) the journal copy goes to stderr as one
// line per record instead, so a terminal shows the same records journald would.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/audit/audit_log.hpp"
#include "daemon/identity/subject.hpp"
#include "lib/sdbus/sd_ptr.hpp"

namespace codexvault::audit {

// One pipeline record, viewing strings the caller owns.
struct AuditRecord {
    EventType type = EventType::Decision;
    std::string_view action;                     // the dispatch table's action
    std::string_view object;                     // e.g. a secret name; never a value
    const identity::Subject* subject = nullptr;  // null when the caller could not be identified
    std::string_view sender;                     // unique bus name, or "signal:SIGHUP", "daemon"
    Decision decision = Decision::Deny;
    std::string_view reason;
    std::string_view grant;      // grant and/or approval id; empty if none
    bool informational = false;  // Status/WhoAmI/Check: may be folded, never waited for
};

// What a record keeps of a field that may carry caller-chosen text; longer text is cut, with its
// length noted.
inline constexpr std::size_t kMaxObjectBytes = 256;
inline constexpr std::size_t kMaxReasonBytes = 512;
std::string_view bounded_field(std::string_view text, std::size_t max, std::string& storage);

class AuditTrail {
public:
    AuditTrail(sd_event* event, std::unique_ptr<AuditLog> log);
    AuditTrail(const AuditTrail&) = delete;
    AuditTrail& operator=(const AuditTrail&) = delete;
    ~AuditTrail();

    // Queues the record (folded when informational or a denial repeats). Failed: the log is
    // unusable and the request must fail closed.
    Appended record(const AuditRecord& record);
    // Writes what is queued (no fdatasync): informational records.
    bool write_pending();
    // Writes and fdatasyncs what is queued, then checkpoints when one is due.
    bool sync();
    // Incident response: a sealing checkpoint now.
    bool seal();
    // Orderly stop: `stop` record, checkpoint, sync.
    bool close(std::string_view reason);

    [[nodiscard]] bool healthy() const noexcept { return log_->healthy(); }
    [[nodiscard]] const std::string& failure_reason() const noexcept { return log_->failure_reason(); }
    [[nodiscard]] AuditLog& log() noexcept { return *log_; }
    [[nodiscard]] const AuditLog& log() const noexcept { return *log_; }
    // One line for Status: "ok: segment 3, seq 1234, ..." or "FAILED: ...".
    [[nodiscard]] std::string status_line() const;

    // Runs `work` (a timer's or another C callback's share of the log's upkeep). An exception it
    // throws must not cross the C callback, and must not be swallowed either: the log turns FAILED
    // with `what` and the exception's text, so every later request is denied (no record, no
    // action), and the daemon's log says why.
    template <typename Work>
    void run_fail_closed(const char* what, Work&& work) noexcept
    {
        try {
            std::forward<Work>(work)();
        } catch (const std::exception& e) {
            fail_closed(std::string(what) + ": " + e.what());
        } catch (...) {
            fail_closed(std::string(what) + ": unknown exception");
        }
    }

private:
    static int on_timer(sd_event_source* source, std::uint64_t usec, void* userdata) noexcept;
    void fail_closed(const std::string& reason) noexcept;
    void tick();
    void arm_timer();

    sd_event* event_;
    std::unique_ptr<AuditLog> log_;
    bus::EventSourcePtr timer_;
};

// The journal sender the daemon gives the log: sd_journal_sendv under journald (JOURNAL_STREAM set
// by systemd), else a writer of each entry's MESSAGE line to stderr.
JournalMirror::SendFn journal_sender() noexcept;

}  // namespace codexvault::audit
