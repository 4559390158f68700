// The ingest worker's file walker: every regular file beneath a directory descriptor, read up
// to a limit, handed to a visitor; everything else skipped with a reason. It never follows a
// symlink, never leaves the directory it was given (every open is openat2 with RESOLVE_BENEATH
// and friends, relative to the descriptor of the directory that listed the name), never opens a
// fifo, socket or device, never blocks on one, and stops at its limits with the reason.
//
// Single-threaded; the visitor runs in the walk (the content it sees is valid only during the
// call). Paths are relative to the root, '/'-separated, and may hold any byte but '/' and NUL
// (file names are not UTF-8 by law); whoever puts them in a reply must encode them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace codexvault::ingest {

inline constexpr std::uint32_t kMaxDepthLimit = 256;  // one open descriptor per level

struct WalkLimits {
    std::uint64_t max_files = 100000;                           // regular files read
    std::uint64_t max_entries = 1000000;                        // directory entries seen, of any type
    std::uint64_t max_file_bytes = 8 * 1024 * 1024;             // read of each file (its prefix)
    std::uint64_t max_total_bytes = 8ULL * 1024 * 1024 * 1024;  // read in all
    std::uint32_t max_depth = 64;                               // directories below the root; clamped to kMaxDepthLimit
    // A regular file with more than one link may be another name of a file outside the tree
    // (nothing on the file says where its other names are): skipped unless allowed.
    bool read_hardlinked = false;
    std::size_t max_skips_kept = 1000;  // skips listed in the summary; the rest only counted
};

enum class SkipReason : std::uint8_t {
    Symlink,  // never followed (also: a name that became a symlink before it was opened)
    Fifo,
    Socket,
    Device,  // character or block device
    UnknownType,
    TooDeep,           // a directory below max_depth
    Hardlinked,        // st_nlink > 1 and read_hardlinked is off
    PermissionDenied,  // EACCES / EPERM
    Vanished,          // listed, then gone (renamed or deleted during the walk)
    OtherMount,        // a mount point below the root, or a name resolving out of it (EXDEV)
    Changed,           // listed as one type, opened as another
    ReadError,         // open or read failed otherwise (the errno is kept)
};

std::string_view to_string(SkipReason reason) noexcept;

enum class StopReason : std::uint8_t {
    None,
    FileLimit,
    EntryLimit,
    TotalBytesLimit,
};

std::string_view to_string(StopReason reason) noexcept;

struct Skip {
    std::string path;
    SkipReason reason = SkipReason::ReadError;
    int error = 0;  // errno, when one explains it
};

struct FileVisit {
    std::string_view path;
    std::string_view name;     // the last component
    std::string_view content;  // the first bytes read (all of them unless truncated)
    std::uint64_t size = 0;    // st_size when opened
    bool truncated = false;    // the file went on past max_file_bytes (or past the total limit)
    bool grew = false;         // more bytes were read than st_size said (written to during the walk)
    std::uint64_t links = 1;   // st_nlink (more than 1 only when read_hardlinked)
};

struct WalkSummary {
    std::uint64_t files = 0;
    std::uint64_t directories = 0;  // entered, the root included
    std::uint64_t entries = 0;
    std::uint64_t bytes_read = 0;
    std::uint64_t truncated_files = 0;
    std::uint64_t skipped = 0;  // all skips, kept or not
    std::vector<Skip> skips;    // the first max_skips_kept
    StopReason stopped = StopReason::None;
    [[nodiscard]] bool complete() const noexcept { return stopped == StopReason::None && skipped == 0; }
};

using FileVisitor = std::function<void(const FileVisit&)>;

// Walks beneath root_fd (a directory descriptor the caller keeps owning; it is only read, and
// its file offset is not used). Throws std::system_error when root_fd is not a readable
// directory or the process is out of descriptors (nothing partial is reported as complete),
// std::bad_alloc when out of memory; a visitor's exception passes through. Uses at most
// max_depth + 2 descriptors and one buffer of max_file_bytes.
WalkSummary walk(int root_fd, const WalkLimits& limits, const FileVisitor& visit);

}  // namespace codexvault::ingest
