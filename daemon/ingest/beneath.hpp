// The ingest walker's only doors to the file system: open one name beneath a directory
// descriptor with openat2 so that nothing but a plain name in a plain directory on the same
// mount resolves, list a directory with getdents64, and read a bounded prefix of a file. Errors
// come back as errno values (an expected outcome here: an upload may hold anything); only
// running out of memory throws.
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::ingest {

// What a directory entry says it is (d_type), before anything is opened.
enum class EntryType : std::uint8_t { Regular, Directory, Symlink, Fifo, Socket, CharDevice, BlockDevice, Unknown };

struct DirEntry {
    std::string name;
    EntryType type = EntryType::Unknown;
};

template <typename T>
struct Opened {
    T value{};
    int error = 0;  // errno when the call failed, 0 when value holds the outcome
};

// openat2(dir, name, RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS |
// RESOLVE_NO_XDEV): `name` is one path component ("a", never "a/b", "..", "." or ""; EINVAL
// otherwise). A symlink is ELOOP, a mount point EXDEV. Files are opened O_NONBLOCK, so a fifo
// that took a regular file's place between listing and opening cannot block the open; a socket
// fails ENXIO. Nothing else about the object is checked here: the caller fstat()s what it got.
// A directory that is a symlink is ELOOP too (the kernel says ENOTDIR; the entry is re-checked).
Opened<UniqueFd> open_file_beneath(int dir_fd, std::string_view name);
Opened<UniqueFd> open_directory_beneath(int dir_fd, std::string_view name);

// A directory's entries (without "." and ".."), at most max_entries of them (more: E2BIG, with
// the first max_entries in `value`). Reads from the descriptor's current offset.
Opened<std::vector<DirEntry>> list_entries(int dir_fd, std::size_t max_entries);

// The entry's own type without following it (fstatat AT_SYMLINK_NOFOLLOW), for file systems
// whose d_type is DT_UNKNOWN.
Opened<EntryType> entry_type(int dir_fd, std::string_view name);

EntryType type_of_mode(mode_t mode) noexcept;

Opened<struct stat> stat_fd(int fd);

// Reads from the start of fd into `buffer` until end of file or until the buffer is full;
// `more` tells whether bytes remained past it. EINTR is retried. On an error, `size` says how
// much was read before it.
struct ReadResult {
    std::size_t size = 0;
    bool more = false;
};
Opened<ReadResult> read_prefix(int fd, std::span<char> buffer);

}  // namespace codexvault::ingest
