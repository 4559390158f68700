#include "lib/auditcore/log_reader.hpp"

#include <fcntl.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <span>
#include <system_error>

#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/segment_dir.hpp"
#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::audit {
namespace {

// The first sequence number a segment's header claims (0 when it has no valid header).
std::uint64_t first_seq_of(int dir_fd, const std::string& name)
{
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
    if (!fd) {
        return 0;
    }
    std::array<std::uint8_t, kSegmentHeaderBytes> bytes{};
    const std::size_t got = fileio::read_until_eof(fd.get(), bytes.data(), bytes.size(), "audit segment " + name);
    const auto header = parse_segment_header(std::span<const std::uint8_t>(bytes.data(), got));
    return header ? header->first_seq : 0;
}

struct SegmentScan {
    std::deque<TailEntry> matches;  // in file order
    std::uint64_t last_seq = 0;
};

// Decodes the frames of one segment; keeps matching records with seq > after (at most `keep`
// newest ones when keep_newest, else the `keep` oldest; keep == 0: all).
SegmentScan scan_segment(std::span<const std::uint8_t> bytes, const std::string& name, const TailQuery& query,
                         std::uint64_t after, std::size_t keep, bool keep_newest, std::vector<std::string>& notes)
{
    SegmentScan scan;
    if (!parse_segment_header(bytes)) {
        notes.push_back(name + ": segment header is not valid; segment skipped");
        return scan;
    }
    std::size_t off = kSegmentHeaderBytes;
    for (;;) {
        const FrameRead frame = read_frame(bytes, off);
        if (frame.status == FrameStatus::End) {
            break;
        }
        if (frame.status == FrameStatus::Truncated || frame.status == FrameStatus::ZeroFill) {
            notes.push_back(name + ": ends in a torn frame at offset " + std::to_string(off) +
                            " (a crash during a write, or a record being written now)");
            break;
        }
        const std::optional<RecordView> r =
            frame.status == FrameStatus::Ok ? decode_payload(frame.payload) : std::nullopt;
        if (!r) {
            notes.push_back(name + ": damaged frame at offset " + std::to_string(off) +
                            "; the rest of this segment is not shown (run `vaultctl audit verify`)");
            break;
        }
        scan.last_seq = std::max(scan.last_seq, r->seq);
        off += frame.size;
        if (r->seq <= after || !query.filter.matches(*r)) {
            continue;
        }
        if (!keep_newest && keep != 0 && scan.matches.size() >= keep) {
            continue;  // keep reading for last_seq only
        }
        scan.matches.push_back(TailEntry{Record::from(*r), frame.hash});
        if (keep_newest && keep != 0 && scan.matches.size() > keep) {
            scan.matches.pop_front();
        }
    }
    return scan;
}

}  // namespace

TailResult read_tail(const std::filesystem::path& dir, const TailQuery& query)
{
    const UniqueFd fd = fileio::open_directory(dir);
    return read_tail(fd.get(), query);
}

TailResult read_tail(int dir_fd, const TailQuery& query)
{
    TailResult result;
    result.notes.emplace_back(
        "records are shown as read, without verifying the chain or signatures; "
        "run `vaultctl audit verify` to check them");
    const std::vector<SegmentFile> segments = list_segments(dir_fd);
    std::vector<std::uint8_t> bytes;

    if (query.after_seq) {
        const std::uint64_t after = *query.after_seq;
        result.last_seq = after;
        for (std::size_t i = 0; i < segments.size(); ++i) {
            // Skip a segment when the next one starts at or before after+1: it holds nothing newer.
            if (i + 1 < segments.size()) {
                const std::uint64_t next_first = first_seq_of(dir_fd, segments[i + 1].name);
                if (next_first != 0 && next_first <= after + 1) {
                    continue;
                }
            }
            if (read_segment(dir_fd, segments[i].name, bytes) != ReadStatus::Ok) {
                result.notes.push_back(segments[i].name + " is not a regular file; skipped");
                continue;
            }
            const std::size_t room = query.limit == 0 ? 0 : query.limit - result.entries.size();
            SegmentScan scan = scan_segment(bytes, segments[i].name, query, after, room, false, result.notes);
            result.last_seq = std::max(result.last_seq, scan.last_seq);
            for (auto& entry : scan.matches) {
                result.entries.push_back(std::move(entry));
            }
            if (query.limit != 0 && result.entries.size() >= query.limit) {
                // Page full: continue from the last record returned, not from the end of the log.
                result.last_seq = result.entries.back().record.seq;
                break;
            }
        }
        return result;
    }

    // Last N: newest segment first, until enough records match.
    std::vector<std::deque<TailEntry>> chunks;  // newest segment first
    std::size_t have = 0;
    for (std::size_t i = segments.size(); i-- > 0;) {
        if (read_segment(dir_fd, segments[i].name, bytes) != ReadStatus::Ok) {
            result.notes.push_back(segments[i].name + " is not a regular file; skipped");
            continue;
        }
        const std::size_t need = query.limit == 0 ? 0 : query.limit - have;
        SegmentScan scan = scan_segment(bytes, segments[i].name, query, 0, need, true, result.notes);
        result.last_seq = std::max(result.last_seq, scan.last_seq);
        have += scan.matches.size();
        chunks.push_back(std::move(scan.matches));
        if (query.limit != 0 && have >= query.limit) {
            break;
        }
    }
    for (auto chunk = chunks.rbegin(); chunk != chunks.rend(); ++chunk) {
        for (auto& entry : *chunk) {
            result.entries.push_back(std::move(entry));
        }
    }
    return result;
}

std::vector<std::string> tail_json_lines(const TailResult& result)
{
    std::vector<std::string> lines;
    lines.reserve(result.entries.size());
    for (const TailEntry& entry : result.entries) {
        lines.push_back(dump_record_json(entry.record.view(), &entry.hash));
    }
    return lines;
}

}  // namespace codexvault::audit
