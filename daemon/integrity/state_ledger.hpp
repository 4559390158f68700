// Pure core of the start-up check of the authenticated state files (policy-state.json,
// founder.pub) against the audit log: given what is on disk and what the log says, whether the
// file is taken as it is, adopted from an earlier version's format, or makes the vault lock.
// No I/O: start_up_checks.cpp reads the files (through VaultService) and the log.
//
// What the log knows: every write of a state file is followed by a "state.generation" record
// naming the file and its generation ("generation N (...)"), and every file carries, under its
// MAC, the seq and hash of a record the log held durably when it was written. So:
//   - a file that fails its MAC, or is malformed          -> lock, content refused;
//   - a file missing although the log records a write    -> lock (deleted);
//   - a generation below the last one the log records     -> lock (rolled back);
//   - a stamp the log does not hold (log ends before it,
//     or holds another record there, or there is no log) -> lock (audit/ removed, replaced or
//                                                            an older copy restored);
//   - an earlier version's unauthenticated file           -> adopted once, when a log from before
//     this start exists and records no authenticated generation of it; otherwise lock, refused.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "daemon/store/sealed_state.hpp"

namespace codexvault::daemon {

enum class FileForm { Absent, Authentic, Legacy, Bad };

struct FileView {
    FileForm form = FileForm::Absent;
    std::uint64_t generation = 0;  // Authentic
    store::AuditStamp stamp;       // Authentic
    std::string detail;            // Bad
};

enum class StampInLog {
    NotChecked,  // no stamp (seq 0), or no trustworthy log to look in
    Found,       // the log holds that record
    Missing,     // the log ends before that seq
    Differs,     // the log holds another record at that seq
};

struct LogView {
    // A log from before this start verified and was continued (open state ok or torn tail).
    bool previous_log = false;
    // The log failed verification and was quarantined: nothing it says can be used (the vault
    // locks for that already), so only the files' own authentication is judged.
    bool untrusted = false;
    std::optional<std::uint64_t> recorded_generation;  // the last "state.generation" record's
    StampInLog stamp = StampInLog::NotChecked;
};

enum class Verdict {
    Accept,  // in force as it is
    Adopt,   // an earlier version's file, taken once and rewritten sealed
    Lock,    // the vault locks with `reason`
};

struct Judgement {
    Verdict verdict = Verdict::Accept;
    bool refuse_content = false;  // Lock: the content is not used at all (not authentic)
    std::string reason;
};

Judgement judge_state_file(store::StateKind kind, const FileView& file, const LogView& log);

// The reason text of a "state.generation" record, and the generation read back from one.
std::string generation_reason(std::uint64_t generation, std::string_view why, std::uint64_t audit_seq);
std::optional<std::uint64_t> parse_generation_reason(std::string_view reason) noexcept;

}  // namespace codexvault::daemon
