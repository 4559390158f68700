// Reading records back from an audit folder for `vaultctl audit tail` (and its -f follow mode):
// decode, filter, keep the last N. This reader does NOT verify the chain or the signatures; it
// says so in every result (TailResult::verified is false, plus a note), and stops at the first
// damaged frame of a segment. `vaultctl audit verify` (lib/auditcore/offline_verify.hpp) is the
// check.
//
// The cost of a call can be bounded (TailQuery::max_scan_bytes): the last-N mode reads windows
// from the end of the newest segment backwards, and follow mode finds its starting point in a
// segment by bisection, so a filter that matches nothing costs the budget, not the log's size.
// Reading from the middle of a segment needs a frame boundary: a position whose length, length
// complement and BLAKE2b frame hash all agree (a cryptographic match, not a guess).
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
    // At most about this many segment bytes are read (0 = no limit: offline reading). When the
    // budget ends the search, TailResult::complete is false and a note says so.
    std::size_t max_scan_bytes = 0;
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
    bool complete = true;            // false: the scan budget ran out before the whole log was read
    std::size_t scanned_bytes = 0;   // segment bytes read for this result
    std::vector<std::string> notes;  // "not verified", damaged frames, torn tails
};

// Throws std::system_error when the folder or a segment cannot be opened or read.
TailResult read_tail(const std::filesystem::path& dir, const TailQuery& query);
TailResult read_tail(int dir_fd, const TailQuery& query);

// The first offset at or after `from` in `window` where a whole frame with a matching hash starts,
// or nullopt. `window` is any slice of a segment after its header.
std::optional<std::size_t> find_frame_start(std::span<const std::uint8_t> window, std::size_t from) noexcept;

// One line of JSON per entry (record_to_json with the hash), for `audit tail --json`.
std::vector<std::string> tail_json_lines(const TailResult& result);

}  // namespace codexvault::audit
