// The pipeline's audit step: turns what the daemon decided into audit records, keeps the log's
// timers (folded repeats, checkpoints) on the event loop, and drives the flusher thread
// (segment_flusher.hpp): request_flush() hands the flush of everything written so far to the
// thread, and when it completes (an sd-event io source on the flusher's eventfd) the log's
// durable mark advances and the on_durable callback runs, from an event source of the loop, never
// from inside a call into this class. The log itself (audit_log.hpp) does the chaining, files and
// journal; this class only knows the daemon's vocabulary.
//
// One flush at a time: a request while one is in flight is remembered and the next flush starts
// when it completes, covering everything written meanwhile. Checkpoints that do not seal ride on
// the next flush (record written now, head file written by the flusher after the fdatasync);
// anything that closes the segment (a sealing checkpoint, seal(), close()) and the synchronous
// sync() first wait for the flush in flight (settle()), so a segment is never closed under it.
//
// Outside systemd's journal (a development run, the tests) the journal copy goes to stderr as one
// line per record instead, so a terminal shows the same records journald would.
#pragma once

#include <systemd/sd-event.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "daemon/audit/audit_log.hpp"
#include "daemon/audit/segment_flusher.hpp"
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
    std::string_view grant;                // grant and/or approval id; empty if none
    bool informational = false;            // Status/WhoAmI/Check: may be folded, never waited for
    const ProcessLink* process = nullptr;  // the process tail (an injection's records); null: none
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
    // unusable and the request must fail closed. Queued: last_seq() is the record's mark.
    Appended record(const AuditRecord& record);
    [[nodiscard]] std::uint64_t last_seq() const noexcept { return log_->last_seq(); }
    // Every record up to this mark is durable.
    [[nodiscard]] std::uint64_t durable_seq() const noexcept { return log_->durable_seq(); }
    // Writes what is queued (no fdatasync): informational records.
    bool write_pending();
    // Asks for everything appended so far to become durable, off the loop: writes it, then starts
    // a flush on the flusher thread, or, with one in flight, starts the next when that completes.
    // A due checkpoint joins the flush. False when the log is failed.
    bool request_flush();
    [[nodiscard]] bool flush_in_flight() const noexcept { return flusher_.busy(); }
    // Waits for the flush in flight, if any, and takes its result (on_durable runs later, from
    // the loop). For the synchronous paths below and for the orderly stop.
    void settle();
    // Called from the loop after the durable mark advanced or the log failed.
    void set_on_durable(std::function<void()> callback) { on_durable_ = std::move(callback); }

    // A state file to write off the loop, after everything appended so far is durable: it rides
    // on the next flush (requested here), which the flusher runs fdatasync first, then the file.
    // `done` runs on the loop when that flush is taken (from on_flush_done, settle() or
    // settle_state_write()); it is where the caller records the write (the record follows the
    // file). One at a time: a second replaces a first not yet handed to a flush (whose `done`
    // then hears Skipped).
    using StateWriteDone = std::function<void(StateWriteOutcome outcome, const std::string& failure)>;
    void write_state_after_flush(StateFileWrite write, StateWriteDone done);
    // A state write not yet handed to a flush is withdrawn (Skipped); one in flight is waited
    // for. Before any synchronous write of the same file, so an older copy never lands last.
    void settle_state_write();
    [[nodiscard]] bool state_write_out() const noexcept { return pending_state_done_ || inflight_state_done_; }
    // Starts the flusher thread (harden::apply_runtime_hardening's hook). Before, flushes run
    // inline on the loop.
    void start_flusher() { flusher_.start(); }
    // Synchronous, on the loop: settle(), then write and fdatasync what is queued, then a due
    // checkpoint. Start-up, SIGHUP, the orderly stop.
    bool sync();
    // Incident response: settle(), then a sealing checkpoint now.
    bool seal();
    // Orderly stop: settle(), stop the flusher thread, then `stop` record, checkpoint, sync.
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
    static int on_flush_done(sd_event_source* source, int fd, std::uint32_t revents, void* userdata) noexcept;
    static int on_notify(sd_event_source* source, void* userdata) noexcept;
    static int on_write(sd_event_source* source, void* userdata) noexcept;
    void fail_closed(const std::string& reason) noexcept;
    void tick();
    void arm_timer();
    void start_flush();
    void checkpoint_if_due(Timestamps now);
    void complete(const FlushResult& result);
    void notify_durable() noexcept;
    void run_on_durable() noexcept;

    sd_event* event_;
    std::unique_ptr<AuditLog> log_;
    SegmentFlusher flusher_;  // after log_: destroyed (joined) first
    bus::EventSourcePtr timer_;
    bus::EventSourcePtr flush_done_;  // the flusher's eventfd
    bus::EventSourcePtr notify_;      // runs on_durable_ after a flush completed outside on_flush_done
    bus::EventSourcePtr writer_;      // idle: writes records appended outside a call (monitor, folds)
    std::function<void()> on_durable_;
    bool flush_wanted_ = false;                    // a flush was requested while one was in flight
    std::optional<StateFileWrite> pending_state_;  // waits for the next flush
    StateWriteDone pending_state_done_;
    StateWriteDone inflight_state_done_;  // the flush in flight carries a state file
};

// The journal sender the daemon gives the log: sd_journal_sendv under journald (JOURNAL_STREAM set
// by systemd), else a writer of each entry's MESSAGE line to stderr.
JournalMirror::SendFn journal_sender() noexcept;
// Its end of batch: null under journald (one datagram per entry), else the write of the lines
// collected on stderr.
JournalMirror::FlushFn journal_batch_end() noexcept;

}  // namespace codexvault::audit
