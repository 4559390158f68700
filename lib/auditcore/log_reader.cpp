#include "lib/auditcore/log_reader.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <limits>
#include <optional>
#include <span>
#include <system_error>

#include "lib/auditcore/chain.hpp"
#include "lib/auditcore/segment_dir.hpp"
#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::audit {
namespace {

constexpr std::size_t kMaxFrameBytes = kFrameOverheadBytes + kMaxPayloadBytes;
// A window this long that starts anywhere after the header holds at least one whole frame start
// unless the segment ends inside it.
constexpr std::size_t kBisectWindowBytes = 2 * kMaxFrameBytes;

[[noreturn]] void throw_errno(int error, const std::string& what)
{
    throw std::system_error(error, std::generic_category(), what);
}

// One segment file, read in windows with pread (a tail of a 64 MiB segment need not read it all).
class SegmentReader {
public:
    // nullopt: the name is not a regular file (a finding for the caller's notes).
    static std::optional<SegmentReader> open(int dir_fd, const std::string& name)
    {
        UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
        if (!fd) {
            if (errno == ELOOP) {
                return std::nullopt;
            }
            throw_errno(errno, "cannot open audit segment " + name);
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0) {
            throw_errno(errno, "cannot inspect audit segment " + name);
        }
        if (!S_ISREG(st.st_mode)) {
            return std::nullopt;
        }
        if (static_cast<std::uint64_t>(st.st_size) > kMaxSegmentFileBytes) {
            throw_errno(EFBIG, "audit segment " + name + " is larger than " + std::to_string(kMaxSegmentFileBytes) +
                                   " bytes; refusing to read it");
        }
        return SegmentReader(std::move(fd), name, static_cast<std::size_t>(st.st_size));
    }

    [[nodiscard]] std::size_t size() const noexcept { return size_; }
    [[nodiscard]] const std::string& name() const noexcept { return name_; }

    // Bytes [offset, offset + length) as far as the file has them (it may be growing: the daemon
    // appends; what fstat saw ends at a frame boundary or inside a frame being written).
    void read(std::size_t offset, std::size_t length, std::vector<std::uint8_t>& out) const
    {
        out.resize(length);
        std::size_t got = 0;
        while (got < length) {
            const ssize_t n = ::pread(fd_.get(), out.data() + got, length - got, static_cast<off_t>(offset + got));
            if (n < 0 && errno == EINTR) {
                continue;
            }
            if (n < 0) {
                throw_errno(errno, "cannot read audit segment " + name_);
            }
            if (n == 0) {
                break;
            }
            got += static_cast<std::size_t>(n);
        }
        out.resize(got);
    }

private:
    SegmentReader(UniqueFd fd, std::string name, std::size_t size)
        : fd_(std::move(fd)), name_(std::move(name)), size_(size)
    {
    }
    UniqueFd fd_;
    std::string name_;
    std::size_t size_;
};

// The first sequence number a segment's header claims (0 when it has no valid header).
std::uint64_t first_seq_of(const SegmentReader& segment, std::vector<std::uint8_t>& scratch)
{
    segment.read(0, kSegmentHeaderBytes, scratch);
    const auto header = parse_segment_header(scratch);
    return header ? header->first_seq : 0;
}

struct SegmentScan {
    std::deque<TailEntry> matches;  // in file order
    std::uint64_t last_seq = 0;
};

// Decodes the frames of `window` (bytes of segment `name` from file offset `base`) from `start`;
// keeps matching records with seq > after (at most `keep` newest ones when keep_newest, else the
// `keep` oldest; keep == 0: all). A frame cut by the window's end is a torn tail only when the
// window reaches the end of the file.
SegmentScan scan_frames(std::span<const std::uint8_t> window, std::size_t start, std::size_t base,
                        bool reaches_file_end, const std::string& name, const TailQuery& query, std::uint64_t after,
                        std::size_t keep, bool keep_newest, std::vector<std::string>& notes)
{
    SegmentScan scan;
    std::size_t off = start;
    for (;;) {
        const FrameRead frame = read_frame(window, off);
        if (frame.status == FrameStatus::End) {
            break;
        }
        if (frame.status == FrameStatus::Truncated || frame.status == FrameStatus::ZeroFill) {
            if (reaches_file_end) {
                notes.push_back(name + ": ends in a torn frame at offset " + std::to_string(base + off) +
                                " (a crash during a write, or a record being written now)");
            }
            break;
        }
        const std::optional<RecordView> r =
            frame.status == FrameStatus::Ok ? decode_payload(frame.payload) : std::nullopt;
        if (!r) {
            notes.push_back(name + ": damaged frame at offset " + std::to_string(base + off) +
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

// Where scanning a window of a segment starts: after a valid header when the window is the start
// of the file, else at the first verified frame boundary. nullopt: nothing to scan.
std::optional<std::size_t> scan_start(std::span<const std::uint8_t> window, std::size_t base, const std::string& name,
                                      std::vector<std::string>& notes)
{
    if (base == 0) {
        if (!parse_segment_header(window)) {
            notes.push_back(name + ": segment header is not valid; segment skipped");
            return std::nullopt;
        }
        return kSegmentHeaderBytes;
    }
    return find_frame_start(window, 0);
}

// A file offset of a frame in `segment` whose seq is <= after, as late as bisection finds it in
// a few windows: scanning forward from there reaches the first record after `after` quickly.
std::size_t bisect_after(const SegmentReader& segment, std::uint64_t after, std::vector<std::uint8_t>& scratch,
                         std::size_t& scanned)
{
    std::size_t lo = kSegmentHeaderBytes;  // the first frame: the header said its seq is <= after
    std::size_t hi = segment.size();
    while (hi > lo && hi - lo > kBisectWindowBytes) {
        const std::size_t mid = lo + (hi - lo) / 2;
        segment.read(mid, std::min(kBisectWindowBytes, segment.size() - mid), scratch);
        scanned += scratch.size();
        const std::optional<std::size_t> at = find_frame_start(scratch, 0);
        if (!at) {
            hi = mid;
            continue;
        }
        const FrameRead frame = read_frame(scratch, *at);
        const std::optional<RecordView> r = decode_payload(frame.payload);
        if (r && r->seq <= after) {
            lo = mid + *at;
        } else {
            hi = mid;
        }
    }
    return lo;
}

constexpr char kBudgetNote[] =
    "the search stopped at its size limit; older records were not searched "
    "(`vaultctl audit tail --dir` on the folder reads everything)";

}  // namespace

std::optional<std::size_t> find_frame_start(std::span<const std::uint8_t> window, std::size_t from) noexcept
{
    for (std::size_t off = from; off + kFrameOverheadBytes <= window.size(); ++off) {
        // The length/complement pair rules out almost every offset before any hashing.
        const FrameRead peek = peek_frame(window, off);
        if (peek.status != FrameStatus::Ok) {
            continue;
        }
        if (read_frame(window, off).status == FrameStatus::Ok) {
            return off;
        }
    }
    return std::nullopt;
}

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
    const bool bounded = query.max_scan_bytes != 0;
    const auto budget_left = [&] {
        return bounded ? query.max_scan_bytes - std::min(query.max_scan_bytes, result.scanned_bytes)
                       : std::numeric_limits<std::size_t>::max();
    };
    std::vector<std::uint8_t> window;
    std::vector<std::uint8_t> scratch;

    if (query.after_seq) {
        const std::uint64_t after = *query.after_seq;
        result.last_seq = after;
        for (std::size_t i = 0; i < segments.size(); ++i) {
            // Skip a segment when the next one starts at or before after+1: it holds nothing newer.
            if (i + 1 < segments.size()) {
                const auto next = SegmentReader::open(dir_fd, segments[i + 1].name);
                const std::uint64_t next_first = next ? first_seq_of(*next, scratch) : 0;
                if (next_first != 0 && next_first <= after + 1) {
                    continue;
                }
            }
            const auto segment = SegmentReader::open(dir_fd, segments[i].name);
            if (!segment) {
                result.notes.push_back(segments[i].name + " is not a regular file; skipped");
                continue;
            }
            if (budget_left() == 0) {
                result.complete = false;
                break;
            }
            std::size_t base = 0;
            // The bisection's few windows are counted but not charged: the page still gets its
            // budget, and at least two frames' worth, so every call makes progress.
            const std::size_t budget = std::max(budget_left(), kBisectWindowBytes);
            const std::uint64_t first = first_seq_of(*segment, scratch);
            if (bounded && first != 0 && first <= after && segment->size() > budget) {
                base = bisect_after(*segment, after, scratch, result.scanned_bytes);
            }
            const std::size_t length = std::min(segment->size() - std::min(base, segment->size()), budget);
            segment->read(base, length, window);
            result.scanned_bytes += window.size();
            const bool reaches_end = base + window.size() >= segment->size();
            const std::optional<std::size_t> start = scan_start(window, base, segment->name(), result.notes);
            if (!start) {
                continue;
            }
            const std::size_t room = query.limit == 0 ? 0 : query.limit - result.entries.size();
            SegmentScan scan = scan_frames(window, *start, base, reaches_end, segment->name(), query, after, room,
                                           false, result.notes);
            result.last_seq = std::max(result.last_seq, scan.last_seq);
            for (auto& entry : scan.matches) {
                result.entries.push_back(std::move(entry));
            }
            if (query.limit != 0 && result.entries.size() >= query.limit) {
                // Page full: continue from the last record returned, not from the end of the log.
                result.last_seq = result.entries.back().record.seq;
                break;
            }
            if (!reaches_end) {
                // The budget ran out inside this segment: the next call continues after the last
                // record read (last_seq), so paging still reaches everything.
                result.complete = false;
                break;
            }
        }
        if (!result.complete) {
            result.notes.emplace_back(kBudgetNote);
        }
        return result;
    }

    // Last N: newest segment first, each read from its end backwards as far as the budget allows,
    // until enough records match.
    std::vector<std::deque<TailEntry>> chunks;  // newest segment first
    std::size_t have = 0;
    for (std::size_t i = segments.size(); i-- > 0;) {
        const auto segment = SegmentReader::open(dir_fd, segments[i].name);
        if (!segment) {
            result.notes.push_back(segments[i].name + " is not a regular file; skipped");
            continue;
        }
        if (budget_left() == 0) {
            result.complete = false;
            break;
        }
        std::size_t base = 0;
        if (segment->size() > budget_left()) {
            base = segment->size() - budget_left();
            if (base <= kSegmentHeaderBytes) {
                base = 0;
            }
        }
        segment->read(base, segment->size() - base, window);
        result.scanned_bytes += window.size();
        const std::optional<std::size_t> start = scan_start(window, base, segment->name(), result.notes);
        if (start) {
            const std::size_t need = query.limit == 0 ? 0 : query.limit - have;
            SegmentScan scan =
                scan_frames(window, *start, base, true, segment->name(), query, 0, need, true, result.notes);
            result.last_seq = std::max(result.last_seq, scan.last_seq);
            have += scan.matches.size();
            chunks.push_back(std::move(scan.matches));
        }
        if (query.limit != 0 && have >= query.limit) {
            break;
        }
        if (base != 0) {
            result.complete = false;  // the older part of this segment was not read
            break;
        }
    }
    for (auto chunk = chunks.rbegin(); chunk != chunks.rend(); ++chunk) {
        for (auto& entry : *chunk) {
            result.entries.push_back(std::move(entry));
        }
    }
    if (!result.complete) {
        result.notes.emplace_back(kBudgetNote);
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
