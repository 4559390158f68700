#include "daemon/audit/audit_log.hpp"

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <system_error>

#include "lib/auditcore/segment_dir.hpp"
#include "lib/fileio/files.hpp"

namespace codexvault::audit {
namespace {

[[noreturn]] void throw_errno(int error, const std::string& what)
{
    throw std::system_error(error, std::generic_category(), what);
}

std::uint64_t clock_usec(clockid_t clock) noexcept
{
    struct timespec ts {};
    (void)::clock_gettime(clock, &ts);  // cannot fail for these clocks
    return static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000U + static_cast<std::uint64_t>(ts.tv_nsec) / 1000U;
}

store::SecureBuffer derive_secret_key(std::span<const std::uint8_t, kAuditSeedBytes> seed)
{
    store::ensure_sodium_initialized();
    store::SecureBuffer secret = store::SecureBuffer::allocate(kAuditSecretKeyBytes);
    PublicKey unused{};  // the signer recomputes it from the secret key
    derive_audit_keypair(seed, unused,
                         std::span<std::uint8_t, kAuditSecretKeyBytes>(secret.data(), kAuditSecretKeyBytes));
    return secret;
}

std::span<const std::uint8_t, kAuditSecretKeyBytes> key_span(const store::SecureBuffer& secret) noexcept
{
    return std::span<const std::uint8_t, kAuditSecretKeyBytes>(secret.data(), kAuditSecretKeyBytes);
}

std::vector<std::string> list_quarantines(int state_dir_fd)
{
    std::vector<std::string> names;
    for (auto& name : fileio::list_directory(state_dir_fd)) {
        if (name.starts_with(kQuarantinePrefix)) {
            names.push_back(std::move(name));
        }
    }
    std::sort(names.begin(), names.end());
    return names;
}

std::string errno_text(int error)
{
    return std::generic_category().message(error);
}

}  // namespace

Timestamps Timestamps::now() noexcept
{
    return Timestamps{clock_usec(CLOCK_REALTIME), clock_usec(CLOCK_MONOTONIC)};
}

std::string_view open_state_name(OpenState state) noexcept
{
    switch (state) {
    case OpenState::New:
        return "new";
    case OpenState::Ok:
        return "ok";
    case OpenState::TornTailRecovered:
        return "torn-tail-recovered";
    case OpenState::Tampered:
        return "tampered";
    }
    return "unknown";
}

std::string_view append_only_flag_name(AppendOnlyFlag flag) noexcept
{
    switch (flag) {
    case AppendOnlyFlag::Disabled:
        return "disabled";
    case AppendOnlyFlag::Set:
        return "set";
    case AppendOnlyFlag::NotPermitted:
        return "not-permitted";
    case AppendOnlyFlag::Unsupported:
        return "unsupported";
    case AppendOnlyFlag::Failed:
        return "failed";
    }
    return "unknown";
}

AuditLog::AuditLog(const AuditLogOptions& options, std::span<const std::uint8_t, kAuditSeedBytes> seed)
    : options_(options),
      secret_key_(derive_secret_key(seed)),
      signer_(key_span(secret_key_)),
      folder_(options.fold),
      mirror_(options.mirror_to_journal, options.journal_send, options.journal_flush)
{
    // A SecureBuffer's memory does not move with the object, but AuditLog never moves anyway:
    // signer_ keeps a view of secret_key_ for the object's whole life.
    batch_.reserve(64 * 1024);
    unmirrored_.reserve(64 * 1024);
    report_.public_key = signer_.public_key();
    report_.key_id = signer_.key_id();
}

std::unique_ptr<AuditLog> AuditLog::open(const std::filesystem::path& state_dir,
                                         std::span<const std::uint8_t, kAuditSeedBytes> seed,
                                         const AuditLogOptions& options, Timestamps now)
{
    std::unique_ptr<AuditLog> log(new AuditLog(options, seed));
    log->start(state_dir, now);
    return log;
}

AuditLog::~AuditLog()
{
    // With a job out (only if its owner forgot to wait for it) the descriptors it borrows must not
    // be flushed here either; the records are in the batch or the file, as after a crash.
    if (usable() && !batch_.empty() && !flush_in_flight_) {
        (void)sync();  // best effort: a record appended but never written would be lost silently
    }
    mirror_written();
}

void AuditLog::open_directory_fd()
{
    fileio::ensure_private_directory(dir_path_);
    dir_ = fileio::open_directory(dir_path_);
}

void AuditLog::start(const std::filesystem::path& state_dir, Timestamps now)
{
    state_path_ = state_dir;
    dir_path_ = state_dir / kAuditDirName;
    state_dir_ = fileio::open_directory(state_dir);
    open_directory_fd();
    fileio::remove_stale_temp_files(dir_.get());  // half-created segments and heads: never part of the log

    const DirectoryVerification found = verify_directory(dir_.get(), signer_.public_key());
    report_.previous = found.report;
    // Every start ends by writing the head, so only a crash during the very first start (header,
    // `start`, its checkpoint: at most two records) leaves segments without one. Anything more
    // without a head means the head was removed, and a cut tail could hide behind that.
    const bool head_removed =
        !found.head_present && !found.segments.empty() && (found.segments.size() > 1 || found.report.records > 2);
    if (found.segments.empty() && !found.head_present) {
        report_.state = OpenState::New;
    } else if (head_removed) {
        report_.state = OpenState::Tampered;
        report_.finding = "head file missing: the log holds " + std::to_string(found.report.records) +
                          " record(s) in " + std::to_string(found.segments.size()) +
                          " segment(s), so a head was written and has been removed (a removed tail may be hidden)";
        quarantine(now);
    } else if (found.report.ok) {
        report_.state = OpenState::Ok;
        writer_ = ChainWriter(found.report.resume);
    } else if (found.report.resumable) {
        report_.state = OpenState::TornTailRecovered;
        report_.finding = describe(found.report.problem);
        writer_ = ChainWriter(found.report.resume);
    } else {
        report_.state = OpenState::Tampered;
        report_.finding = describe(found.report.problem);
        quarantine(now);
    }

    // After verification and quarantine: the old folder keeps the key it was written with.
    const std::string pub = format_public_key(signer_.public_key());
    fileio::write_file_atomically(
        dir_.get(), kPublicKeyFileName,
        std::span<const std::uint8_t>(reinterpret_cast<const std::uint8_t*>(pub.data()), pub.size()), 0644);
    report_.quarantined_logs = list_quarantines(state_dir_.get());
    last_checkpoint_monotonic_ = now.monotonic_usec;

    // From here on, a problem is a health failure, not an exception: the daemon starts and says so.
    try {
        if (writer_.needs_new_segment()) {
            create_segment(now);
        } else {
            open_current_segment();
        }
    } catch (const std::exception& e) {
        fail(std::string("audit log: cannot open a segment for writing: ") + e.what());
        return;
    }
    written_ = writer_.state();
    durable_seq_ = written_seq();  // verified from the file (or created with fsync) just now

    std::string reason = "audit log opened: " + std::string(open_state_name(report_.state));
    if (report_.state == OpenState::Tampered) {
        reason += "; the previous log was moved to " + report_.quarantine;
    }
    RecordView start_record;
    start_record.type = EventType::Start;
    start_record.subject_known = true;
    start_record.uid = static_cast<std::uint32_t>(::geteuid());
    start_record.pid = static_cast<std::int32_t>(::getpid());
    start_record.action = "start";
    start_record.object = options_.start_object;
    start_record.reason = reason;
    if (append(start_record, now) == Appended::Failed) {
        return;
    }
    if (report_.state == OpenState::Tampered) {
        RecordView integrity;
        integrity.type = EventType::Integrity;
        integrity.decision = Decision::Deny;
        integrity.action = "audit-verify";
        integrity.object = report_.quarantine;
        integrity.reason = report_.finding;
        if (append(integrity, now) == Appended::Failed) {
            return;
        }
    }
    (void)checkpoint(now, false);  // a failure is recorded in the health state
}

void AuditLog::quarantine(Timestamps now)
{
    // Renaming the folder keeps every byte as evidence; nothing in it is edited or removed. Files
    // carrying the append-only flag do not prevent renaming the folder that holds them.
    dir_.reset();
    const std::string base = std::string(kQuarantinePrefix) + std::to_string(now.realtime_usec);
    std::string name = base;
    for (int attempt = 1;; ++attempt) {
        if (::renameat2(state_dir_.get(), kAuditDirName, state_dir_.get(), name.c_str(), RENAME_NOREPLACE) == 0) {
            break;
        }
        if (errno != EEXIST || attempt > 100) {
            throw_errno(errno, "cannot move the tampered audit log " + dir_path_.string() + " aside as " + name);
        }
        name = base + "-" + std::to_string(attempt);
    }
    fileio::sync_directory(state_dir_.get(), "after quarantining the audit log as " + name);
    report_.quarantine = name;
    writer_ = ChainWriter();
    open_directory_fd();
}

void AuditLog::set_append_only(int fd)
{
    if (!options_.set_append_only_flag) {
        append_only_ = AppendOnlyStatus{AppendOnlyFlag::Disabled, 0};
        return;
    }
    int flags = 0;
    int rc = ::ioctl(fd, FS_IOC_GETFLAGS, &flags);
    if (rc == 0 && (flags & FS_APPEND_FL) != 0) {
        append_only_ = AppendOnlyStatus{AppendOnlyFlag::Set, 0};
        return;
    }
    if (rc == 0) {
        flags |= FS_APPEND_FL;
        rc = ::ioctl(fd, FS_IOC_SETFLAGS, &flags);
    }
    if (rc == 0) {
        append_only_ = AppendOnlyStatus{AppendOnlyFlag::Set, 0};
        return;
    }
    const int error = errno;
    switch (error) {
    case EPERM:
    case EACCES:
        append_only_ = AppendOnlyStatus{AppendOnlyFlag::NotPermitted, error};
        break;
    case ENOTTY:
    case EOPNOTSUPP:
    case EINVAL:
    case ENOSYS:
        append_only_ = AppendOnlyStatus{AppendOnlyFlag::Unsupported, error};
        break;
    default:
        append_only_ = AppendOnlyStatus{AppendOnlyFlag::Failed, error};
        break;
    }
}

void AuditLog::create_segment(Timestamps now)
{
    std::vector<std::uint8_t> bytes;  // header, then the torn-tail-recovered record if one is pending
    std::vector<std::uint8_t> first_records;
    const SegmentHeaderBytes header = writer_.begin_segment(now.realtime_usec, now.monotonic_usec, first_records);
    bytes.reserve(header.size() + first_records.size());
    bytes.insert(bytes.end(), header.begin(), header.end());
    bytes.insert(bytes.end(), first_records.begin(), first_records.end());
    const std::string name = segment_file_name(writer_.state().segment);

    // Whole header (and recovery record) durable under a temporary name first: a segment never has
    // a torn header, and the recovery record cannot be lost between creating and appending.
    const std::string temp = fileio::write_temp_file(dir_.get(), name, bytes, 0600);
    try {
        fileio::commit_temp_file(dir_.get(), temp, name, /*replace=*/false);
    } catch (...) {
        (void)::unlinkat(dir_.get(), temp.c_str(), 0);
        throw;
    }
    UniqueFd fd(::openat(dir_.get(), name.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd) {
        throw_errno(errno, "cannot open audit segment " + name + " for appending");
    }
    set_append_only(fd.get());
    segment_ = std::move(fd);
    written_ = writer_.state();
    // The header and first records were fsynced before the rename; a new segment follows only a
    // sealing checkpoint that was flushed, or the start.
    durable_seq_ = written_seq();
    mirror_frames(first_records);
}

void AuditLog::open_current_segment()
{
    const std::string name = segment_file_name(writer_.state().segment);
    UniqueFd fd(::openat(dir_.get(), name.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd) {
        throw_errno(errno, "cannot open audit segment " + name + " for appending");
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw_errno(errno, "cannot inspect audit segment " + name);
    }
    // The verifier read exactly this many bytes; anything else means the file changed since.
    if (static_cast<std::uint64_t>(st.st_size) != writer_.state().segment_bytes) {
        throw std::runtime_error("audit segment " + name + " changed during start-up verification (" +
                                 std::to_string(st.st_size) + " bytes, verified " +
                                 std::to_string(writer_.state().segment_bytes) + ")");
    }
    set_append_only(fd.get());
    segment_ = std::move(fd);
}

void AuditLog::fail_closed(std::string reason) noexcept
{
    try {
        fail(std::move(reason));
    } catch (...) {
        // Even the reason could not be kept: the log must still stop accepting records.
        failure_ = "audit log failed";
        batch_.clear();
    }
}

void AuditLog::fail(std::string reason)
{
    if (failure_.empty()) {
        failure_ = std::move(reason);
    }
    batch_.clear();
}

void AuditLog::mirror_frames(std::span<const std::uint8_t> bytes) noexcept
{
    if (!mirror_.enabled()) {
        return;
    }
    // The bytes were produced by the encoder a moment ago: structure only, no need to rehash.
    std::size_t off = 0;
    for (;;) {
        const FrameRead frame = peek_frame(bytes, off);
        if (frame.status != FrameStatus::Ok) {
            break;
        }
        if (const auto r = decode_payload(frame.payload)) {
            Hash hash{};
            std::memcpy(hash.data(), bytes.data() + off + frame.size - hash.size(), hash.size());
            mirror_.mirror(*r, hash);
        }
        off += frame.size;
    }
    mirror_.end_batch();
}

Appended AuditLog::append(const RecordView& fields, Timestamps now)
{
    if (!usable()) {
        return Appended::Failed;
    }
    RecordView r = fields;
    r.realtime_usec = now.realtime_usec;
    r.monotonic_usec = now.monotonic_usec;
    const std::size_t before = batch_.size();
    try {
        (void)writer_.append(r, batch_);
    } catch (const std::exception& e) {
        batch_.resize(before);  // the writer commits its state only after the frame is complete
        fail(std::string("audit log: cannot encode a record: ") + e.what());
        return Appended::Failed;
    }
    if (batch_.size() >= options_.max_batch_bytes && !write_pending()) {
        return Appended::Failed;
    }
    return Appended::Queued;
}

Appended AuditLog::append_foldable(const RecordView& fields, bool informational, Timestamps now)
{
    if (!usable()) {
        return Appended::Failed;
    }
    if (!flush_folds(now)) {
        return Appended::Failed;
    }
    try {
        if (folder_.offer(fields, informational, now.monotonic_usec) == FoldVerdict::Folded) {
            return Appended::Folded;
        }
    } catch (const std::exception& e) {
        fail(std::string("audit log: cannot fold a record: ") + e.what());
        return Appended::Failed;
    }
    return append(fields, now);
}

bool AuditLog::flush_folds(Timestamps now)
{
    if (!usable()) {
        return false;
    }
    std::vector<FoldedRepeat> due;
    try {
        due = folder_.take_due(now.monotonic_usec);
    } catch (const std::exception& e) {
        fail(std::string("audit log: cannot fold records: ") + e.what());
        return false;
    }
    for (const FoldedRepeat& f : due) {
        if (append(f.view(), now) == Appended::Failed) {
            return false;
        }
    }
    return true;
}

bool AuditLog::write_pending()
{
    const bool written = write_batch();
    mirror_written();
    return written;
}

void AuditLog::mirror_written() noexcept
{
    if (unmirrored_.empty()) {
        return;
    }
    mirror_frames(unmirrored_);
    unmirrored_.clear();
}

bool AuditLog::write_batch()
{
    if (!usable()) {
        return false;
    }
    if (batch_.empty()) {
        return true;
    }
    std::size_t done = 0;
    int error = 0;
    while (done < batch_.size()) {
        const ssize_t n = ::write(segment_.get(), batch_.data() + done, batch_.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            error = errno;
            break;
        }
        if (n == 0) {
            error = EIO;  // no progress on a regular file: treat as an I/O error
            break;
        }
        done += static_cast<std::size_t>(n);
    }
    if (error != 0) {
        const std::string where = " (segment " + segment_file_name(writer_.state().segment) + ", " +
                                  std::to_string(done) + " of " + std::to_string(batch_.size()) + " bytes written)";
        if (done == 0) {
            writer_ = ChainWriter(written_);  // nothing reached the file: the chain is as it was
        } else {
            unsynced_ = true;  // a torn frame is on disk; the next start-up recovers it
        }
        fail("audit log write failed: " + errno_text(error) + where);
        return false;
    }
    if (mirror_.enabled()) {
        if (unmirrored_.empty()) {
            unmirrored_.swap(batch_);  // no copy; the buffers trade capacity
        } else {
            unmirrored_.insert(unmirrored_.end(), batch_.begin(), batch_.end());
        }
    }
    written_ = writer_.state();
    batch_.clear();
    unsynced_ = true;
    return true;
}

bool AuditLog::no_flush_in_flight(const char* what)
{
    if (!flush_in_flight_) {
        return true;
    }
    fail(std::string("audit log: internal error: ") + what + " while a flush is in flight");
    return false;
}

std::optional<FlushJob> AuditLog::begin_flush(bool even_if_synced)
{
    if (flush_in_flight_ || !write_batch() || (!unsynced_ && !even_if_synced)) {
        mirror_written();  // no job to hand over first
        return std::nullopt;
    }
    FlushJob job;
    job.segment_fd = segment_.get();
    job.dir_fd = dir_.get();
    job.segment_name = segment_file_name(written_.segment);
    job.mark = written_seq();
    job.head = std::exchange(pending_head_, std::nullopt);
    unsynced_ = false;
    flush_in_flight_ = true;
    return job;
}

bool AuditLog::end_flush(const FlushResult& result)
{
    mirror_written();  // at the latest now (the caller normally did it after handing the job over)
    flush_in_flight_ = false;
    if (!result.ok()) {
        fail(result.failure.empty() ? std::string("audit log flush failed") : result.failure);
        return false;
    }
    durable_seq_ = std::max(durable_seq_, result.mark);
    return healthy();
}

bool AuditLog::sync()
{
    if (!usable() || !no_flush_in_flight("a synchronous flush")) {
        return false;
    }
    std::optional<FlushJob> job = begin_flush();
    if (!job) {
        return usable();  // nothing written since the last flush, or the write failed
    }
    return end_flush(run_flush_job(*job));
}

bool AuditLog::checkpoint_due(Timestamps now) const noexcept
{
    const std::uint64_t since = writer_.state().records_since_checkpoint;
    if (since == 0) {
        return false;
    }
    return since >= options_.checkpoint_every_records ||
           (now.monotonic_usec >= last_checkpoint_monotonic_ &&
            now.monotonic_usec - last_checkpoint_monotonic_ >= options_.checkpoint_every_usec);
}

std::optional<std::uint64_t> AuditLog::next_checkpoint_deadline() const noexcept
{
    if (writer_.state().records_since_checkpoint == 0) {
        return std::nullopt;
    }
    return last_checkpoint_monotonic_ + options_.checkpoint_every_usec;
}

bool AuditLog::maybe_checkpoint(Timestamps now)
{
    if (!usable()) {
        return false;
    }
    if (!checkpoint_due(now)) {
        return true;
    }
    return checkpoint(now, checkpoint_would_seal());
}

bool AuditLog::checkpoint_would_seal() const noexcept
{
    return writer_.state().segment_bytes >= options_.segment_max_bytes;
}

// Encodes and writes a checkpoint; its head is kept for the job that will make it durable (the
// head names a checkpoint only once that checkpoint is durable: a head ahead of the log would
// make a crash look like a removed tail).
bool AuditLog::append_checkpoint_record(Timestamps now, bool seal)
{
    if (!write_pending()) {  // the checkpoint must follow every record encoded before it
        return false;
    }
    try {
        (void)writer_.append_checkpoint(signer_, now.realtime_usec, now.monotonic_usec, seal, batch_);
        pending_head_ = writer_.head(signer_);
    } catch (const std::exception& e) {
        fail(std::string("audit log: cannot encode a checkpoint: ") + e.what());
        return false;
    }
    last_checkpoint_monotonic_ = now.monotonic_usec;
    return write_pending();
}

bool AuditLog::checkpoint_deferred(Timestamps now)
{
    if (!usable()) {
        return false;
    }
    return append_checkpoint_record(now, false);
}

bool AuditLog::checkpoint(Timestamps now, bool seal)
{
    if (!usable() || !no_flush_in_flight(seal ? "sealing a segment" : "a synchronous checkpoint")) {
        return false;
    }
    if (!append_checkpoint_record(now, seal) || !sync()) {  // sync() writes the head after the fdatasync
        return false;
    }
    if (writer_.state().sealed) {
        try {
            create_segment(now);
        } catch (const std::exception& e) {
            fail(std::string("audit log: cannot create the next segment: ") + e.what());
            return false;
        }
    }
    return true;
}

bool AuditLog::seal_segment(Timestamps now)
{
    if (!flush_folds(now)) {
        return false;
    }
    return checkpoint(now, true);
}

bool AuditLog::close(Timestamps now, std::string_view reason)
{
    if (!usable() || !no_flush_in_flight("closing the log")) {
        return false;
    }
    try {
        for (const FoldedRepeat& f : folder_.take_all()) {
            if (append(f.view(), now) == Appended::Failed) {
                return false;
            }
        }
    } catch (const std::exception& e) {
        fail(std::string("audit log: cannot fold records: ") + e.what());
        return false;
    }
    RecordView stop;
    stop.type = EventType::Stop;
    stop.subject_known = true;
    stop.uid = static_cast<std::uint32_t>(::geteuid());
    stop.pid = static_cast<std::int32_t>(::getpid());
    stop.action = "stop";
    stop.reason = reason;
    if (append(stop, now) == Appended::Failed || !checkpoint(now, false)) {
        return false;
    }
    closed_ = true;
    segment_.reset();
    return true;
}

AuditLogStatus AuditLog::status() const
{
    AuditLogStatus s;
    s.healthy = healthy();
    s.closed = closed_;
    s.failure_reason = failure_;
    const ChainState& state = writer_.state();
    s.segment = state.segment;
    s.segment_bytes = state.segment_bytes;
    s.last_seq = state.next_seq - 1;
    s.durable_seq = durable_seq_;
    s.flush_in_flight = flush_in_flight_;
    s.last_checkpoint_seq = state.last_checkpoint_seq;
    s.records_since_checkpoint = state.records_since_checkpoint;
    s.append_only = append_only_;
    s.journal_enabled = mirror_.enabled();
    s.journal_sent = mirror_.sent();
    s.journal_failures = mirror_.failures();
    s.key_id = signer_.key_id();
    return s;
}

}  // namespace codexvault::audit
