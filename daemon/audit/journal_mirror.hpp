// The journald copy of the audit log: one journal entry per record written (folded repeats are
// one entry), with the event's MESSAGE_ID so `journalctl MESSAGE_ID=...` finds every event of a
// type, and structured CODEX_VAULT_* fields. Checkpoints carry their hash, so a copy of the
// chain's anchors lives outside the log folder (docs/audit-log.md, "What it cannot prove").
//
// A record never holds secret bytes (it has no field for them), so neither does its journal entry.
// Caller-chosen strings (names, reasons, exe paths) are escaped: in MESSAGE they are quoted with
// control characters as \xNN, so a name cannot forge a second line or field; in the structured
// fields control characters and backslashes are escaped the same way (unquoted), so every field
// is text and `journalctl CODEX_VAULT_OBJECT=name` matches ordinary names exactly.
//
// Mirroring is best effort by design: journald may be absent (tests, containers). A failure is
// counted and never fails the request; the log files are the record.
#pragma once

#include <sys/uio.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "lib/auditcore/record.hpp"

namespace codexvault::audit {

// Each escaped string is cut at this many bytes (marked "...[cut]"): the journal is a copy, the
// log holds the full value, and an entry must stay far below the journal socket's datagram size
// (a larger entry makes sd_journal_sendv fall back to memfd_create, which the daemon's seccomp
// filter does not allow).
inline constexpr std::size_t kJournalValueMaxBytes = 1024;

// "\"a\\x0ab\"": quoted, with '"' and '\\' backslash-escaped and control bytes as \xNN.
std::string journal_quote(std::string_view value, std::size_t limit = kJournalValueMaxBytes);
// The same escaping without the quotes (structured field values).
std::string journal_escape(std::string_view value, std::size_t limit = kJournalValueMaxBytes);

// syslog priority: integrity/incident 2 (crit), torn-tail-recovered and lock 4 (warning), a
// denial 5 (notice), everything else 6 (info).
int journal_priority(const RecordView& r) noexcept;
// "codex-vault audit seq=12 event=decision action=\"put\" decision=deny reason=\"...\" ..."
std::string journal_message(const RecordView& r);
// Every "NAME=value" field of the entry (MESSAGE_ID, PRIORITY, MESSAGE, SYSLOG_IDENTIFIER and the
// CODEX_VAULT_* fields), in a fixed order; `out` is cleared first and its capacity reused.
void journal_fields(const RecordView& r, const Hash& record_hash, std::vector<std::string>& out);

class JournalMirror {
public:
    // sd_journal_sendv's signature: returns 0 or a negative errno.
    using SendFn = int (*)(const struct iovec* iov, int n);
    // Ends a batch for a sender that collects entries (the stderr copy writes the lines of one
    // batch with one write(2) instead of one per record): 0 or a negative errno, which counts
    // every entry of the batch as failed.
    using FlushFn = int (*)();

    // `send` defaults to sd_journal_sendv; tests pass a recorder. With `flush`, entries count as
    // sent only once end_batch() wrote them.
    explicit JournalMirror(bool enabled, SendFn send = nullptr, FlushFn flush = nullptr);

    // One entry for one record. Never throws; a failure is counted.
    void mirror(const RecordView& r, const Hash& record_hash) noexcept;
    // After the records of one write: hands a collecting sender's entries on.
    void end_batch() noexcept;

    [[nodiscard]] bool enabled() const noexcept { return enabled_; }
    [[nodiscard]] std::uint64_t sent() const noexcept { return sent_; }
    [[nodiscard]] std::uint64_t failures() const noexcept { return failures_; }
    [[nodiscard]] int last_error() const noexcept { return last_error_; }  // positive errno, 0 = none

private:
    bool enabled_;
    SendFn send_;
    FlushFn flush_;
    std::uint64_t batched_ = 0;  // entries handed to a collecting sender since the last end_batch()
    std::uint64_t sent_ = 0;
    std::uint64_t failures_ = 0;
    int last_error_ = 0;
    std::vector<std::string> fields_;  // reused between records
    std::vector<struct iovec> iov_;
};

}  // namespace codexvault::audit
