// One flush of the audit log: what makes the records written so far durable, and the head file
// that may only name a checkpoint once that checkpoint is durable (docs/audit-log.md, "The
// flusher"). The job is plain data so that it can run on the flusher thread (segment_flusher.hpp)
// or inline on the event loop (AuditLog::sync) with the same code: run_flush_job() touches nothing
// but the two descriptors it is given, which the log keeps open until the job's result is taken.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "lib/auditcore/checkpoint.hpp"

namespace codexvault::audit {

// A state file the flush writes once the records are durable (VaultObject's grant-state saves):
// the file may only hold changes whose decision records the log already has on disk.
struct StateFileWrite {
    int dir_fd = -1;    // borrowed: the state folder, open for the daemon's life
    std::string name;   // replaced atomically (temp file, fsync, rename, fsync of the folder)
    std::string bytes;  // the complete, sealed file
};

// What became of a state file handed to a flush.
enum class StateWriteOutcome {
    Written,  // on disk, after the fdatasync that covered the records before it
    Skipped,  // not attempted: the flush failed (the log is failed) or the write was withdrawn
    Failed,   // the write itself failed (FlushResult::state_failure says why); the log is fine
};

struct FlushJob {
    int segment_fd = -1;                  // borrowed: the segment the records were written to
    int dir_fd = -1;                      // borrowed: the audit folder, for the head file
    std::string segment_name;             // for the failure text
    std::uint64_t mark = 0;               // the last seq written to the segment before the job was made
    std::optional<HeadBytes> head;        // written atomically once the fdatasync succeeded
    std::optional<StateFileWrite> state;  // written last, once the records and the head are durable
};

struct FlushResult {
    std::uint64_t mark = 0;
    bool durable = false;  // every record up to `mark` is durable, and the head (if any) in place
    std::string failure;   // why not (may be empty when even the text could not be built)
    StateWriteOutcome state = StateWriteOutcome::Skipped;  // the job's state file, if it had one
    std::string state_failure;                             // StateWriteOutcome::Failed: why
    [[nodiscard]] bool ok() const noexcept { return durable; }
};

// fdatasync of the segment, then the head (temp file, fsync, rename, fsync of the folder), then the
// state file if the job carries one. Never throws: a failure is its text, in the words the log
// keeps as its failure reason (a state file's failure is reported apart: the log is not at fault).
FlushResult run_flush_job(const FlushJob& job) noexcept;

}  // namespace codexvault::audit
