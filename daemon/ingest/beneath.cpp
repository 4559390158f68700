#include "daemon/ingest/beneath.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace codexvault::ingest {

namespace {

// Symlinks and magic links (/proc/PID/fd/N) are never followed, ".." cannot climb above the
// directory, and a mount point below it is not crossed (a bind mount of / inside an upload
// would otherwise be a way out).
constexpr std::uint64_t kResolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV;

bool plain_name(std::string_view name) noexcept
{
    return !name.empty() && name != "." && name != ".." && name.find('/') == std::string_view::npos &&
           name.find('\0') == std::string_view::npos;
}

Opened<UniqueFd> open_beneath(int dir_fd, std::string_view name, std::uint64_t flags)
{
    if (!plain_name(name)) {
        return {{}, EINVAL};
    }
    const std::string path(name);
    open_how how{};
    how.flags = flags | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY;
    how.resolve = kResolve;
    for (;;) {
        const long fd = ::syscall(SYS_openat2, dir_fd, path.c_str(), &how, sizeof how);
        if (fd >= 0) {
            return {UniqueFd(static_cast<int>(fd)), 0};
        }
        if (errno != EINTR && errno != EAGAIN) {
            return {{}, errno};
        }
    }
}

EntryType type_of_dirent(unsigned char type) noexcept
{
    switch (type) {
    case DT_REG:
        return EntryType::Regular;
    case DT_DIR:
        return EntryType::Directory;
    case DT_LNK:
        return EntryType::Symlink;
    case DT_FIFO:
        return EntryType::Fifo;
    case DT_SOCK:
        return EntryType::Socket;
    case DT_CHR:
        return EntryType::CharDevice;
    case DT_BLK:
        return EntryType::BlockDevice;
    default:
        return EntryType::Unknown;
    }
}

// The kernel's struct linux_dirent64 (u64 d_ino, s64 d_off, u16 d_reclen, u8 d_type, then the
// NUL-terminated name), read field by field: glibc 2.36 declares no type for it.
constexpr std::size_t kReclenAt = 16;
constexpr std::size_t kTypeAt = 18;
constexpr std::size_t kNameAt = 19;

}  // namespace

Opened<UniqueFd> open_file_beneath(int dir_fd, std::string_view name)
{
    return open_beneath(dir_fd, name, O_RDONLY | O_NONBLOCK);
}

Opened<UniqueFd> open_directory_beneath(int dir_fd, std::string_view name)
{
    auto opened = open_beneath(dir_fd, name, O_RDONLY | O_DIRECTORY);
    // O_DIRECTORY on a symlink not followed says ENOTDIR; say what it was.
    if (opened.error == ENOTDIR) {
        const auto type = entry_type(dir_fd, name);
        if (type.error == 0 && type.value == EntryType::Symlink) {
            opened.error = ELOOP;
        }
    }
    return opened;
}

Opened<std::vector<DirEntry>> list_entries(int dir_fd, std::size_t max_entries)
{
    Opened<std::vector<DirEntry>> out;
    alignas(8) static thread_local char buffer[64 * 1024];
    for (;;) {
        const long got = ::syscall(SYS_getdents64, dir_fd, buffer, sizeof buffer);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            out.error = errno;
            return out;
        }
        if (got == 0) {
            return out;
        }
        const auto end = static_cast<std::size_t>(got);
        for (std::size_t at = 0; at + kNameAt < end;) {
            std::uint16_t reclen = 0;
            std::memcpy(&reclen, buffer + at + kReclenAt, sizeof reclen);
            const auto type = static_cast<unsigned char>(buffer[at + kTypeAt]);
            const char* name_at = buffer + at + kNameAt;
            const std::string_view name(name_at, ::strnlen(name_at, reclen - std::min<std::size_t>(reclen, kNameAt)));
            if (reclen == 0) {
                break;  // never from a kernel; not a reason to loop forever
            }
            at += reclen;
            if (name == "." || name == "..") {
                continue;
            }
            if (out.value.size() >= max_entries) {
                out.error = E2BIG;
                return out;
            }
            out.value.push_back({std::string(name), type_of_dirent(type)});
        }
    }
}

EntryType type_of_mode(mode_t mode) noexcept
{
    switch (mode & S_IFMT) {
    case S_IFREG:
        return EntryType::Regular;
    case S_IFDIR:
        return EntryType::Directory;
    case S_IFLNK:
        return EntryType::Symlink;
    case S_IFIFO:
        return EntryType::Fifo;
    case S_IFSOCK:
        return EntryType::Socket;
    case S_IFCHR:
        return EntryType::CharDevice;
    case S_IFBLK:
        return EntryType::BlockDevice;
    default:
        return EntryType::Unknown;
    }
}

Opened<EntryType> entry_type(int dir_fd, std::string_view name)
{
    if (!plain_name(name)) {
        return {EntryType::Unknown, EINVAL};
    }
    const std::string path(name);
    struct stat st {};
    if (::fstatat(dir_fd, path.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return {EntryType::Unknown, errno};
    }
    return {type_of_mode(st.st_mode), 0};
}

Opened<struct stat> stat_fd(int fd)
{
    Opened<struct stat> out;
    if (::fstat(fd, &out.value) != 0) {
        out.error = errno;
    }
    return out;
}

Opened<ReadResult> read_prefix(int fd, std::span<char> buffer)
{
    Opened<ReadResult> result;
    std::size_t& have = result.value.size;
    while (have < buffer.size()) {
        const ssize_t got = ::read(fd, buffer.data() + have, buffer.size() - have);
        if (got < 0) {
            if (errno == EINTR) {
                continue;
            }
            result.error = errno;
            return result;
        }
        if (got == 0) {
            return result;
        }
        have += static_cast<std::size_t>(got);
    }
    // One byte more says whether the file goes on past the cap (it may have grown since fstat).
    char probe = 0;
    ssize_t got = 0;
    do {
        got = ::read(fd, &probe, 1);
    } while (got < 0 && errno == EINTR);
    result.value.more = got > 0;
    return result;
}

}  // namespace codexvault::ingest
