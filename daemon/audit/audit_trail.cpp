#include "daemon/audit/audit_trail.hpp"

#include <sys/epoll.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <system_error>

#include "lib/log/log.hpp"

namespace codexvault::audit {
namespace {

constexpr std::string_view kMessagePrefix = "MESSAGE=";

// Development runs and tests: the entry's MESSAGE line (already escaped) on stderr. The lines of
// one batch of records are collected and written with one write(2) when the batch ends
// (flush_stderr_lines): a durable call writes two records, and a write per line was as much
// daemon CPU as writing the records themselves. Only the loop's thread mirrors records.
std::string& stderr_lines()
{
    static std::string lines;
    return lines;
}

// Beyond this the collected lines are written at once, so the buffer stays small whatever the
// batch (AuditLogOptions::max_batch_bytes bounds it too).
constexpr std::size_t kMaxStderrLines = 64 * 1024;

int flush_stderr_lines()
{
    std::string& lines = stderr_lines();
    std::size_t done = 0;
    int result = 0;
    while (done < lines.size()) {
        const ssize_t w = ::write(STDERR_FILENO, lines.data() + done, lines.size() - done);
        if (w < 0 && errno == EINTR) {
            continue;
        }
        if (w <= 0) {
            result = w < 0 ? -errno : -EIO;
            break;
        }
        done += static_cast<std::size_t>(w);
    }
    lines.clear();
    return result;
}

int send_to_stderr(const struct iovec* iov, int n)
{
    for (int i = 0; i < n; ++i) {
        const std::string_view field(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
        if (field.substr(0, kMessagePrefix.size()) == kMessagePrefix) {
            std::string& lines = stderr_lines();
            lines.append(field.substr(kMessagePrefix.size()));
            lines.push_back('\n');
            return lines.size() >= kMaxStderrLines ? flush_stderr_lines() : 0;
        }
    }
    return -EINVAL;
}

int send_to_journal(const struct iovec* iov, int n)
{
    return sd_journal_sendv(iov, n);
}

}  // namespace

// `text` when it fits in `max` bytes; else its first bytes (cut at a UTF-8 boundary) and how long
// it was, in `storage`.
std::string_view bounded_field(std::string_view text, std::size_t max, std::string& storage)
{
    if (text.size() <= max) {
        return text;
    }
    std::size_t end = max;
    while (end > 0 && (static_cast<unsigned char>(text[end]) & 0xc0) == 0x80) {
        --end;
    }
    storage.assign(text.substr(0, end));
    storage += "...[" + std::to_string(text.size()) + " bytes]";
    return storage;
}

namespace {

bool under_journald() noexcept
{
    const char* stream = std::getenv("JOURNAL_STREAM");
    return stream != nullptr && stream[0] != '\0';
}

}  // namespace

JournalMirror::SendFn journal_sender() noexcept
{
    return under_journald() ? &send_to_journal : &send_to_stderr;
}

JournalMirror::FlushFn journal_batch_end() noexcept
{
    return under_journald() ? nullptr : &flush_stderr_lines;
}

AuditTrail::AuditTrail(sd_event* event, std::unique_ptr<AuditLog> log) : event_(event), log_(std::move(log))
{
    sd_event_source* raw = nullptr;
    int r = sd_event_add_time(event_, &raw, CLOCK_MONOTONIC, UINT64_MAX, 0, &AuditTrail::on_timer, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "create audit timer");
    }
    timer_.reset(raw);
    r = sd_event_add_io(event_, &raw, flusher_.event_fd(), EPOLLIN, &AuditTrail::on_flush_done, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "watch the audit flusher");
    }
    flush_done_.reset(raw);
    r = sd_event_add_defer(event_, &raw, &AuditTrail::on_notify, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "create the audit notification source");
    }
    notify_.reset(raw);
    r = sd_event_source_set_enabled(raw, SD_EVENT_OFF);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "configure the audit notification source");
    }
    r = sd_event_add_defer(event_, &raw, &AuditTrail::on_write, this);
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "create the audit write source");
    }
    writer_.reset(raw);
    // After the pipeline's commit round (SD_EVENT_PRIORITY_IDLE), which writes the same records
    // when it asks for a flush and hands the flush over before making their journal copy; this
    // source then finds nothing left, and writes only records no round follows (the monitor's).
    r = sd_event_source_set_priority(raw, SD_EVENT_PRIORITY_IDLE + 1);
    if (r >= 0) {
        r = sd_event_source_set_enabled(raw, SD_EVENT_OFF);
    }
    if (r < 0) {
        throw std::system_error(-r, std::generic_category(), "configure the audit write source");
    }
    arm_timer();
}

AuditTrail::~AuditTrail()
{
    // Whoever handed over a state file is gone by now: its completion is not reported.
    pending_state_done_ = nullptr;
    inflight_state_done_ = nullptr;
    // The job in flight borrows the log's descriptors: it ends before the log does.
    run_fail_closed("audit flush at exit", [this] { settle(); });
    flusher_.stop();
}

Appended AuditTrail::record(const AuditRecord& record)
{
    // Objects and reasons can carry text the caller sent (a capability string, a name): each
    // record holds a bounded amount of it, so record size is no lever for filling the disk.
    std::string object_storage;
    std::string reason_storage;
    RecordView view;
    view.type = record.type;
    view.decision = record.decision;
    view.sender = record.sender;
    view.action = record.action;
    view.object = bounded_field(record.object, kMaxObjectBytes, object_storage);
    view.reason = bounded_field(record.reason, kMaxReasonBytes, reason_storage);
    view.grant = record.grant;
    if (record.subject != nullptr) {
        const identity::Subject& s = *record.subject;
        view.subject_known = true;
        view.uid = s.uid;
        view.pid = s.pid;
        view.exe = s.exe_known ? std::string_view(s.exe) : std::string_view();
        view.unit = s.unit;
    }
    if (record.process != nullptr) {
        view.has_process = true;
        view.process = *record.process;
    }
    const bool foldable = record.informational || record.decision == Decision::Deny;
    const Appended result = foldable ? log_->append_foldable(view, record.informational) : log_->append(view);
    arm_timer();
    // Whoever appended (a call, the monitor), the record reaches the file once the loop is idle,
    // not only with the next call's round.
    (void)sd_event_source_set_enabled(writer_.get(), SD_EVENT_ONESHOT);
    return result;
}

bool AuditTrail::write_pending()
{
    return log_->write_pending();
}

bool AuditTrail::request_flush()
{
    if (!log_->healthy()) {
        return false;
    }
    if (flusher_.busy()) {
        // The next flush starts when this one completes; the bytes go to the file now, so the
        // page cache, not the loop, holds them meanwhile.
        flush_wanted_ = true;
        return log_->write_pending();
    }
    start_flush();
    return log_->healthy();
}

void AuditTrail::start_flush()
{
    flush_wanted_ = false;
    checkpoint_if_due(Timestamps::now());
    std::optional<FlushJob> job = log_->begin_flush(pending_state_.has_value());
    if (job) {
        if (pending_state_) {
            job->state = std::exchange(pending_state_, std::nullopt);
            inflight_state_done_ = std::exchange(pending_state_done_, nullptr);
        }
        flusher_.submit(std::move(*job));
        // The journal copy of what the job covers is made while the fdatasync runs.
        log_->mirror_written();
    } else if (!log_->healthy()) {
        notify_durable();  // the waiting calls are answered Unavailable
    }
    arm_timer();
}

// A checkpoint that does not seal is written now and made durable by the next flush (its head
// written after it). A sealing one closes the segment, so it waits for the flush in flight and
// runs synchronously; that happens once per segment_max_bytes.
void AuditTrail::checkpoint_if_due(Timestamps now)
{
    if (!log_->checkpoint_due(now)) {
        return;
    }
    if (!log_->checkpoint_would_seal()) {
        (void)log_->checkpoint_deferred(now);
        return;
    }
    settle();
    (void)log_->checkpoint(now, true);
    notify_durable();
}

void AuditTrail::settle()
{
    if (!flusher_.busy()) {
        return;
    }
    complete(flusher_.wait());
    notify_durable();
}

void AuditTrail::complete(const FlushResult& result)
{
    const bool was_healthy = log_->healthy();
    if (!log_->end_flush(result) && was_healthy) {
        log::critical("the audit log failed: " + log_->failure_reason() + "; every request is now refused");
    }
    if (StateWriteDone done = std::exchange(inflight_state_done_, nullptr)) {
        done(result.durable ? result.state : StateWriteOutcome::Skipped, result.state_failure);
    }
}

void AuditTrail::write_state_after_flush(StateFileWrite write, StateWriteDone done)
{
    if (StateWriteDone replaced = std::exchange(pending_state_done_, nullptr)) {
        replaced(StateWriteOutcome::Skipped, {});
    }
    pending_state_ = std::move(write);
    pending_state_done_ = std::move(done);
    if (!request_flush()) {
        settle_state_write();  // the log is failed: nothing may be written after it
    }
}

void AuditTrail::settle_state_write()
{
    if (StateWriteDone withdrawn = std::exchange(pending_state_done_, nullptr)) {
        pending_state_.reset();
        withdrawn(StateWriteOutcome::Skipped, {});
    }
    if (inflight_state_done_) {
        settle();
    }
}

bool AuditTrail::sync()
{
    settle();
    const bool ok = log_->sync() && log_->maybe_checkpoint();
    notify_durable();
    arm_timer();
    return ok;
}

bool AuditTrail::seal()
{
    settle();
    const bool ok = log_->seal_segment();
    notify_durable();
    arm_timer();
    return ok;
}

bool AuditTrail::close(std::string_view reason)
{
    (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
    settle();
    flusher_.stop();
    return log_->close(Timestamps::now(), reason);
}

// The flusher finished a job: the durable mark moves, the pipeline releases what waited for it
// (and asks for the next flush), and a flush requested meanwhile starts now.
int AuditTrail::on_flush_done(sd_event_source* /*source*/, int /*fd*/, std::uint32_t /*revents*/,
                              void* userdata) noexcept
{
    auto* self = static_cast<AuditTrail*>(userdata);
    self->flusher_.read_event();
    self->run_fail_closed("audit flush", [self] {
        std::optional<FlushResult> result = self->flusher_.take_result();
        if (!result) {
            return;  // settle() took it; its notification follows
        }
        self->complete(*result);
    });
    self->run_on_durable();
    return 0;
}

int AuditTrail::on_notify(sd_event_source* /*source*/, void* userdata) noexcept
{
    static_cast<AuditTrail*>(userdata)->run_on_durable();
    return 0;
}

int AuditTrail::on_write(sd_event_source* /*source*/, void* userdata) noexcept
{
    auto* self = static_cast<AuditTrail*>(userdata);
    (void)self->log_->write_pending();  // a failure fails the log, and every later call
    return 0;
}

void AuditTrail::notify_durable() noexcept
{
    if (sd_event_source_set_enabled(notify_.get(), SD_EVENT_ONESHOT) < 0) {
        log::warning("could not schedule the audit notification; waiting calls wait for the next flush");
    }
}

void AuditTrail::run_on_durable() noexcept
{
    if (on_durable_) {
        run_fail_closed("audit completion", [this] { on_durable_(); });
    }
    if (flush_wanted_ && !flusher_.busy() && log_->healthy()) {
        run_fail_closed("audit flush", [this] { start_flush(); });
    }
}

std::string AuditTrail::status_line() const
{
    const AuditLogStatus s = log_->status();
    if (!s.healthy) {
        return "FAILED (every request but Status is denied until restart): " + s.failure_reason;
    }
    std::string line = "ok: hash-chained log, segment " + std::to_string(s.segment) + ", last seq " +
                       std::to_string(s.last_seq) + ", last checkpoint seq " + std::to_string(s.last_checkpoint_seq) +
                       ", append-only flag " + std::string(append_only_flag_name(s.append_only.flag)) +
                       ", journal copies " + std::to_string(s.journal_sent);
    if (s.journal_failures != 0) {
        line += " (" + std::to_string(s.journal_failures) + " failed)";
    }
    const auto& quarantined = log_->open_report().quarantined_logs;
    if (!quarantined.empty()) {
        line += "; quarantined logs kept for investigation: " + std::to_string(quarantined.size());
    }
    return line;
}

// Folded repeats are written when their window ends; a checkpoint is due 10 s after the first
// record it would cover, even when the vault is idle.
int AuditTrail::on_timer(sd_event_source* /*source*/, std::uint64_t /*usec*/, void* userdata) noexcept
{
    auto* self = static_cast<AuditTrail*>(userdata);
    self->run_fail_closed("audit timer", [self] { self->tick(); });
    return 0;
}

void AuditTrail::tick()
{
    const Timestamps now = Timestamps::now();
    AuditLog& log = *log_;
    if (const auto deadline = log.fold_deadline(); deadline && *deadline <= now.monotonic_usec) {
        (void)log.flush_folds(now);
    }
    if (log.write_pending() && log.checkpoint_due(now)) {
        checkpoint_if_due(now);
        (void)request_flush();  // the checkpoint's fdatasync and head file
    }
    arm_timer();
}

void AuditTrail::fail_closed(const std::string& reason) noexcept
{
    log_->fail_closed(reason);
    log::critical("the audit log failed: " + reason + "; every request is now refused");
    (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
    notify_durable();  // the waiting calls are answered Unavailable
}

void AuditTrail::arm_timer()
{
    if (!log_->healthy()) {
        (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
        return;
    }
    std::optional<std::uint64_t> next = log_->fold_deadline();
    if (const auto checkpoint = log_->next_checkpoint_deadline()) {
        next = next ? std::min(*next, *checkpoint) : *checkpoint;
    }
    if (!next) {
        (void)sd_event_source_set_enabled(timer_.get(), SD_EVENT_OFF);
        return;
    }
    // The log's deadlines are CLOCK_MONOTONIC microseconds, the clock of this timer.
    if (sd_event_source_set_time(timer_.get(), std::max<std::uint64_t>(*next, 1)) < 0 ||
        sd_event_source_set_enabled(timer_.get(), SD_EVENT_ONESHOT) < 0) {
        log::warning("could not arm the audit timer; folds and checkpoints wait for the next call");
    }
}

}  // namespace codexvault::audit
