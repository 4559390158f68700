// The audit log's writer: the I/O shell around the pure ChainWriter (docs/audit-log.md, "What the
// writer must do"). One object per daemon, owned by the event loop; not thread-safe: only a
// FlushJob (two borrowed descriptors and bytes) ever leaves the loop's thread.
//
// Start-up: AuditLog::open() verifies the existing log in STATE/audit (segments + head) and
//   - continues it when it verifies (state Ok) or when its only problem is a torn last frame
//     (TornTailRecovered: the new segment starts with the torn-tail-recovered record);
//   - when anything else is wrong (Tampered), never appends to it or rewrites it: the folder is
//     renamed to STATE/audit.tampered-<realtime usec> (evidence for `vaultctl audit verify --dir`)
//     and a fresh log starts in STATE/audit with `start` and an `integrity` record naming the
//     finding and the quarantine folder. The daemon must then start LOCKED.
//   On the NEXT start the fresh log verifies, so open() reports Ok: keeping the vault locked across
//   restarts is the daemon's job (persist the lock with the state). OpenReport::quarantined_logs
//   lists every audit.tampered-* folder present, so Status can keep showing them.
//   Every open appends a `start` record and a checkpoint, so the head file always exists.
//   A changed master key means another audit key: the old log then fails verification
//   (bad-checkpoint-signature) and is quarantined with its own audit.pub, which still verifies it.
//
// Writing (the request path): append() encodes a record into an in-memory batch (no I/O);
// write_pending() write(2)s the batch to the current segment (O_APPEND). Durability is by mark:
// every record has a sequence number, written_seq() is the last one in the file and durable_seq()
// the last one a completed flush covers. begin_flush() writes the batch and hands out a FlushJob
// (flush_job.hpp) covering everything written; the job runs elsewhere (the flusher thread,
// segment_flusher.hpp) while the loop keeps appending and writing, and end_flush() takes its
// result: durable_seq() becomes the job's mark. sync() is the same job run inline. A call whose
// record has seq S may be acted on (or answered) once durable_seq() >= S.
//
// While a job is out, the segment and the folder it borrows stay open: nothing here closes or
// replaces them (a sealing checkpoint, close(), sync() and seal_segment() refuse to run, failing
// the log closed, as a bug in the caller would otherwise lose a flush). A checkpoint that does not
// seal can be written with a flush in flight (checkpoint_deferred()): its record goes into the
// file now and its head file rides on the next job, written by it once the record is durable.
//
// Errors: open() throws (std::system_error / std::runtime_error with context) when the log cannot
// be opened at all (folder, permissions, reading segments, quarantine rename): fail closed, the
// daemon must not start. Everything after that is reported, never thrown: the mutating calls
// return false (or Appended::Failed) and the log turns FAILED for good: healthy() is false,
// failure_reason() says why (e.g. "audit log write failed: No space left on device ..."), and
// nothing more is written to the log until the daemon restarts (its start-up verification then
// finds the log intact or a torn tail). A failed log must make the daemon deny every request but
// Status. A write that wrote nothing restores the chain state; a partial write leaves it as it is
// (the bytes on disk are a torn frame for the next start-up to recover).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "daemon/audit/flush_job.hpp"
#include "daemon/audit/journal_mirror.hpp"
#include "daemon/store/secure_buffer.hpp"
#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/checkpoint.hpp"
#include "lib/auditcore/fold.hpp"
#include "lib/auditcore/record.hpp"
#include "lib/auditcore/verifier.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::audit {

inline constexpr char kAuditDirName[] = "audit";
inline constexpr std::string_view kQuarantinePrefix = "audit.tampered-";

// Both clocks, in microseconds. Every writing call takes them so tests can inject time.
struct Timestamps {
    std::uint64_t realtime_usec = 0;   // CLOCK_REALTIME: the record's time
    std::uint64_t monotonic_usec = 0;  // CLOCK_MONOTONIC: checkpoint interval and folding windows
    static Timestamps now() noexcept;
};

struct AuditLogOptions {
    std::uint64_t segment_max_bytes = std::uint64_t{64} << 20;  // rotate at the next checkpoint past this
    std::uint64_t checkpoint_every_records = 1000;
    std::uint64_t checkpoint_every_usec = 10'000'000;  // with at least one record since the last one
    // Beyond this many encoded bytes append() writes the batch itself: memory stays bounded even
    // if a caller forgets write_pending().
    std::size_t max_batch_bytes = std::size_t{1} << 20;
    bool mirror_to_journal = true;     // off only in tests
    bool set_append_only_flag = true;  // off only in tests that must edit segment files
    FoldLimits fold;
    std::string start_object;                        // the `start` record's object, e.g. "codex-vaultd 0.4.0"
    JournalMirror::SendFn journal_send = nullptr;    // tests: capture journal entries
    JournalMirror::FlushFn journal_flush = nullptr;  // a collecting sender's end of batch (stderr)
};

enum class OpenState {
    New,                // no log yet: segment 1 was created
    Ok,                 // the log verified; appending continues in it
    TornTailRecovered,  // the log's only problem was a torn last frame; continued in a new segment
    Tampered,           // the log failed verification: quarantined, a fresh log started
};
std::string_view open_state_name(OpenState state) noexcept;  // "new", "ok", "torn-tail-recovered", "tampered"

struct OpenReport {
    OpenState state = OpenState::New;
    VerifyReport previous;                      // the verification of the log found (meaningless for New)
    std::string finding;                        // Tampered: describe(previous.problem); TornTailRecovered: the note
    std::string quarantine;                     // Tampered: the folder's new name in the state folder
    std::vector<std::string> quarantined_logs;  // every audit.tampered-* folder now in the state folder, sorted
    PublicKey public_key{};
    KeyId key_id{};
    [[nodiscard]] bool tampered() const noexcept { return state == OpenState::Tampered; }
};

// The append-only inode flag (FS_APPEND_FL) on the current segment, for Status. Setting it needs
// CAP_LINUX_IMMUTABLE and a file system that supports it; not having it is expected, never fatal.
enum class AppendOnlyFlag {
    Disabled,      // turned off in the options (tests)
    Set,           // the current segment has it
    NotPermitted,  // EPERM/EACCES: no CAP_LINUX_IMMUTABLE (the normal case after dropping capabilities)
    Unsupported,   // ENOTTY/EOPNOTSUPP/EINVAL: the file system has no such flag, or seccomp answered ENOTTY
    Failed,        // any other error (errno kept)
};
std::string_view append_only_flag_name(AppendOnlyFlag flag) noexcept;

struct AppendOnlyStatus {
    AppendOnlyFlag flag = AppendOnlyFlag::Disabled;
    int error = 0;  // errno of the failed ioctl, 0 otherwise
};

enum class Appended {
    Queued,  // in the batch: written by the next write_pending()/sync()
    Folded,  // counted as a repeat (append_foldable only); part of a later folded-repeats record
    Failed,  // the log is failed (or closed): fail the request
};

struct AuditLogStatus {
    bool healthy = true;
    bool closed = false;
    std::string failure_reason;
    std::uint64_t segment = 0;
    std::uint64_t segment_bytes = 0;
    std::uint64_t last_seq = 0;
    std::uint64_t durable_seq = 0;
    bool flush_in_flight = false;
    std::uint64_t last_checkpoint_seq = 0;
    std::uint64_t records_since_checkpoint = 0;
    AppendOnlyStatus append_only;
    bool journal_enabled = false;
    std::uint64_t journal_sent = 0;
    std::uint64_t journal_failures = 0;
    KeyId key_id{};
};

class AuditLog {
public:
    // Opens (creating if needed) STATE/audit, verifies it, recovers or quarantines as above,
    // writes audit.pub, appends `start` (+ `integrity` when tampered) and a checkpoint. `seed` is
    // Keyring::derive(kAuditSeedSubkeyId, kAuditSeedContext, 32); it is not kept (the key pair is
    // derived into secure memory). Check healthy() afterwards: a write failure here is reported
    // like any other.
    static std::unique_ptr<AuditLog> open(const std::filesystem::path& state_dir,
                                          std::span<const std::uint8_t, kAuditSeedBytes> seed,
                                          const AuditLogOptions& options = {}, Timestamps now = Timestamps::now());

    AuditLog(const AuditLog&) = delete;
    AuditLog& operator=(const AuditLog&) = delete;
    // Writes what is still batched (best effort) unless failed; does not append `stop` (close does).
    ~AuditLog();

    [[nodiscard]] const OpenReport& open_report() const noexcept { return report_; }

    // Encodes one record (seq, prev hash and both timestamps are set here; a checkpoint or
    // torn-tail record type is refused as a failure). Fill it from the resolved Subject; never
    // put a secret value or a request/response body in any field.
    Appended append(const RecordView& fields, Timestamps now = Timestamps::now());
    // The same, through the Folder: informational calls and denials repeated within a window are
    // counted instead of written (Appended::Folded); allowed state-changing calls are always
    // written. Due folded-repeats records are appended first, so they stay in time order.
    Appended append_foldable(const RecordView& fields, bool informational, Timestamps now = Timestamps::now());
    // Appends the folded-repeats records of ended windows. Call when fold_deadline() passes.
    [[nodiscard]] bool flush_folds(Timestamps now = Timestamps::now());
    // Monotonic time at which flush_folds() has something to write (0: now); nullopt: nothing.
    [[nodiscard]] std::optional<std::uint64_t> fold_deadline() const noexcept { return folder_.deadline(); }

    // One write(2) loop for the whole batch (O_APPEND), then mirrors its records (and any written
    // but not yet mirrored) to the journal.
    [[nodiscard]] bool write_pending();
    // Writes the batch like write_pending(), then hands out a job covering every record written
    // that no job covered yet (and the head of a deferred checkpoint); nullopt when there is
    // nothing to flush, the log is failed (check healthy()) or a job is already out. The records
    // it wrote are not mirrored yet: the caller hands the job to the flusher first and then calls
    // mirror_written(), so the journal copy is made while the fdatasync runs instead of delaying
    // it (end_flush() mirrors them at the latest).
    // With `even_if_synced`, a job is handed out even when every record written is durable
    // already (a state file waits for it).
    [[nodiscard]] std::optional<FlushJob> begin_flush(bool even_if_synced = false);
    // Mirrors to the journal, in order, the records written to the file but not mirrored yet.
    void mirror_written() noexcept;
    // The result of the job begin_flush() handed out. Success: durable_seq() = its mark. Failure:
    // the log is failed with the job's reason. Returns healthy().
    bool end_flush(const FlushResult& result);
    [[nodiscard]] bool flush_in_flight() const noexcept { return flush_in_flight_; }
    // begin_flush() + run_flush_job() here + end_flush(): write_pending() + fdatasync (skipped when
    // nothing was written since the last flush). Refused (the log fails) with a job out.
    [[nodiscard]] bool sync();

    // Sequence numbers: the last record appended (perhaps still batched), the last one in the
    // file, the last one known durable. 0: none yet.
    [[nodiscard]] std::uint64_t last_seq() const noexcept { return writer_.state().next_seq - 1; }
    [[nodiscard]] std::uint64_t written_seq() const noexcept { return written_.next_seq - 1; }
    [[nodiscard]] std::uint64_t durable_seq() const noexcept { return durable_seq_; }

    // True when records_since_checkpoint >= checkpoint_every_records, or checkpoint_every_usec has
    // passed since the last checkpoint with at least one record since.
    [[nodiscard]] bool checkpoint_due(Timestamps now) const noexcept;
    // Monotonic time at which the interval rule will make a checkpoint due; nullopt while no record
    // has been appended since the last checkpoint.
    [[nodiscard]] std::optional<std::uint64_t> next_checkpoint_deadline() const noexcept;
    // checkpoint() when due (sealing when the segment reached segment_max_bytes); true when there
    // was nothing to do.
    [[nodiscard]] bool maybe_checkpoint(Timestamps now = Timestamps::now());
    // Signed checkpoint now: write, fdatasync, head file (head.tmp, fsync, rename, fsync folder),
    // journal; with `seal`, the segment ends there and the next one is created. Refused (the log
    // fails) with a job out.
    [[nodiscard]] bool checkpoint(Timestamps now, bool seal);
    // True when a checkpoint now would seal the segment (it reached segment_max_bytes).
    [[nodiscard]] bool checkpoint_would_seal() const noexcept;
    // A checkpoint that does not seal, written now; its fdatasync and head file are left to the
    // next begin_flush() (allowed with a job out).
    [[nodiscard]] bool checkpoint_deferred(Timestamps now);
    // Incident response: folds flushed, sealing checkpoint, head, next segment.
    [[nodiscard]] bool seal_segment(Timestamps now = Timestamps::now());
    // Orderly stop: folds flushed, `stop`, checkpoint, sync; later calls fail. `reason` goes into
    // the stop record.
    [[nodiscard]] bool close(Timestamps now = Timestamps::now(), std::string_view reason = "orderly stop");

    [[nodiscard]] bool healthy() const noexcept { return failure_.empty(); }
    // Turns the log FAILED for good with `reason` (the first reason is kept): for failures found
    // outside the log itself, such as an exception in a callback that drives it. Every request is
    // then denied, as for a failed write.
    void fail_closed(std::string reason) noexcept;
    [[nodiscard]] const std::string& failure_reason() const noexcept { return failure_; }
    [[nodiscard]] AppendOnlyStatus append_only_flag() const noexcept { return append_only_; }
    [[nodiscard]] const ChainState& chain_state() const noexcept { return writer_.state(); }
    [[nodiscard]] AuditLogStatus status() const;
    [[nodiscard]] const std::filesystem::path& directory() const noexcept { return dir_path_; }

private:
    AuditLog(const AuditLogOptions& options, std::span<const std::uint8_t, kAuditSeedBytes> seed);

    void start(const std::filesystem::path& state_dir, Timestamps now);
    void quarantine(Timestamps now);
    void open_directory_fd();
    void create_segment(Timestamps now);
    void open_current_segment();
    void set_append_only(int fd);
    void mirror_frames(std::span<const std::uint8_t> bytes) noexcept;
    // The write(2) loop of write_pending(), without the journal copy: the bytes written wait in
    // unmirrored_ for mirror_written().
    [[nodiscard]] bool write_batch();
    void fail(std::string reason);
    // False, failing the log closed, when a job is out: the caller should have waited for it.
    [[nodiscard]] bool no_flush_in_flight(const char* what);
    [[nodiscard]] bool append_checkpoint_record(Timestamps now, bool seal);
    [[nodiscard]] bool usable() const noexcept { return healthy() && !closed_; }

    AuditLogOptions options_;
    store::SecureBuffer secret_key_;  // Ed25519 secret key: memfd_secret pages, never a plain array
    CheckpointSigner signer_;         // borrows secret_key_
    OpenReport report_;

    std::filesystem::path state_path_;
    std::filesystem::path dir_path_;
    UniqueFd state_dir_;
    UniqueFd dir_;
    UniqueFd segment_;  // O_WRONLY|O_APPEND

    ChainWriter writer_;
    ChainState written_;                     // the state matching the bytes in the file (restored on a failed write)
    std::vector<std::uint8_t> batch_;        // encoded, not yet written
    std::vector<std::uint8_t> unmirrored_;   // written, not yet copied to the journal
    bool unsynced_ = false;                  // written since the last flush began
    std::uint64_t durable_seq_ = 0;          // every record up to here is durable
    bool flush_in_flight_ = false;           // a job from begin_flush() is out: segment_ and dir_ stay open
    std::optional<HeadBytes> pending_head_;  // a deferred checkpoint's head, for the next job
    std::uint64_t last_checkpoint_monotonic_ = 0;

    Folder folder_;
    JournalMirror mirror_;
    AppendOnlyStatus append_only_;
    std::string failure_;
    bool closed_ = false;
};

}  // namespace codexvault::audit
