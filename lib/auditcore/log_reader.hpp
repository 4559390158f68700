// Reading records back from an audit folder for `vaultctl audit tail` (and its -f follow mode):
// decode, filter, keep the last N. This reader does NOT verify the chain or the signatures; it
// says so in every result (TailResult::verified is false, plus a note), and stops at the first
// damaged frame of a segment. `vaultctl audit verify` (cli/audit_verify.hpp) is the check.
//
// Reads segments from the newest backwards until it has N matching records, so a tail of a large
// log reads only its last segment(s). Follow mode reads forward from a sequence number and skips
// whole segments that end before it (by their headers).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "lib/auditcore/record.hpp"

namespace codexvault::audit {

struct TailQuery {
    RecordFilter filter;  // event type, uid, action, decision, ... (exact matches)
    // At most this many matching records, the newest ones (0 = no limit, only with after_seq).
    std::size_t limit = 20;
    // Follow mode: only records with seq > after_seq (oldest first), at most `limit` of them, the
    // OLDEST ones, so that repeated calls with the returned last_seq page through everything.
    std::optional<std::uint64_t> after_seq;
};

struct TailEntry {
    Record record;
    Hash hash{};  // the record's frame hash
};

struct TailResult {
    std::vector<TailEntry> entries;  // oldest first
    // Follow mode: pass as the next after_seq (the last record read, matching or not).
    std::uint64_t last_seq = 0;
    bool verified = false;           // always false: see the header comment
    std::vector<std::string> notes;  // "not verified", damaged frames, torn tails
};

// Throws std::system_error when the folder or a segment cannot be opened or read.
TailResult read_tail(const std::filesystem::path& dir, const TailQuery& query);
TailResult read_tail(int dir_fd, const TailQuery& query);

// One line of JSON per entry (record_to_json with the hash), for `audit tail --json`.
std::vector<std::string> tail_json_lines(const TailResult& result);

}  // namespace codexvault::audit
