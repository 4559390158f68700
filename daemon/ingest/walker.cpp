#include "daemon/ingest/walker.hpp"

#include <fcntl.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "daemon/ingest/beneath.hpp"

namespace codexvault::ingest {

std::string_view to_string(SkipReason reason) noexcept
{
    switch (reason) {
    case SkipReason::Symlink:
        return "symlink (not followed)";
    case SkipReason::Fifo:
        return "fifo";
    case SkipReason::Socket:
        return "socket";
    case SkipReason::Device:
        return "device";
    case SkipReason::UnknownType:
        return "unknown file type";
    case SkipReason::TooDeep:
        return "directory deeper than the depth limit";
    case SkipReason::Hardlinked:
        return "hard-linked file (its other names may be outside the tree)";
    case SkipReason::PermissionDenied:
        return "permission denied";
    case SkipReason::Vanished:
        return "vanished during the scan";
    case SkipReason::OtherMount:
        return "on another mount or outside the tree";
    case SkipReason::Changed:
        return "changed type during the scan";
    case SkipReason::ReadError:
        return "read error";
    }
    return "unknown";
}

std::string_view to_string(StopReason reason) noexcept
{
    switch (reason) {
    case StopReason::None:
        return "none";
    case StopReason::FileLimit:
        return "file limit";
    case StopReason::EntryLimit:
        return "entry limit";
    case StopReason::TotalBytesLimit:
        return "total bytes limit";
    }
    return "unknown";
}

namespace {

// The reason an open of a listed name failed.
SkipReason open_failure(int error) noexcept
{
    switch (error) {
    case ELOOP:
        return SkipReason::Symlink;
    case EXDEV:
        return SkipReason::OtherMount;
    case ENOENT:
        return SkipReason::Vanished;
    case ENOTDIR:
        return SkipReason::Changed;
    case EACCES:
    case EPERM:
        return SkipReason::PermissionDenied;
    case ENXIO:  // a socket, or a fifo's or device's node that refuses
        return SkipReason::Changed;
    default:
        return SkipReason::ReadError;
    }
}

[[noreturn]] void fail(int error, const char* what)
{
    throw std::system_error(error, std::generic_category(), what);
}

// Running out of descriptors is the walker's trouble, not the file's: the walk stops instead of
// reporting every later file as unreadable. (ENOMEM from a read is the file system's answer
// about one file, so it is a skip like any other error.)
void check_resources(int error)
{
    if (error == EMFILE || error == ENFILE) {
        fail(error, "ingest walk: out of file descriptors");
    }
}

class Walk {
public:
    Walk(const WalkLimits& limits, const FileVisitor& visit) : limits_(limits), visit_(visit)
    {
        limits_.max_depth = std::min(limits_.max_depth, kMaxDepthLimit);
        buffer_size_ = static_cast<std::size_t>(limits_.max_file_bytes);
        buffer_ = std::make_unique_for_overwrite<char[]>(std::max<std::size_t>(buffer_size_, 1));
    }

    WalkSummary run(int root_fd)
    {
        // The root is read through a descriptor of our own, so its offset and the caller's
        // are independent.
        auto root = open_directory_self(root_fd);
        ++summary_.directories;
        push(std::move(root), std::string(), 0);
        while (!stack_.empty() && summary_.stopped == StopReason::None) {
            Frame& frame = stack_.back();
            if (frame.next == frame.entries.size()) {
                stack_.pop_back();
                continue;
            }
            // Copied: visiting may push a frame and move the stack.
            const DirEntry entry = frame.entries[frame.next++];
            visit_entry(frame.fd.get(), frame.path, frame.depth, entry);
        }
        return std::move(summary_);
    }

private:
    struct Frame {
        UniqueFd fd;
        std::string path;  // "" for the root, else "a/b"
        std::uint32_t depth = 0;
        std::vector<DirEntry> entries;
        std::size_t next = 0;
    };

    static UniqueFd open_directory_self(int root_fd)
    {
        struct stat st {};
        if (::fstat(root_fd, &st) != 0) {
            fail(errno, "ingest walk: the root descriptor");
        }
        if (!S_ISDIR(st.st_mode)) {
            fail(ENOTDIR, "ingest walk: the root descriptor");
        }
        // "." beneath the root is the root itself, opened afresh (openat2 refuses nothing here).
        const int fd = ::openat(root_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            fail(errno, "ingest walk: reopening the root");
        }
        return UniqueFd(fd);
    }

    static std::string join(const std::string& dir, std::string_view name)
    {
        std::string path;
        path.reserve(dir.size() + 1 + name.size());
        path = dir;
        if (!path.empty()) {
            path.push_back('/');
        }
        path.append(name);
        return path;
    }

    void skip(std::string path, SkipReason reason, int error = 0)
    {
        ++summary_.skipped;
        if (summary_.skips.size() < limits_.max_skips_kept) {
            summary_.skips.push_back({std::move(path), reason, error});
        }
    }

    void push(UniqueFd fd, std::string path, std::uint32_t depth)
    {
        const std::uint64_t left = limits_.max_entries - std::min(limits_.max_entries, summary_.entries);
        auto listed = list_entries(fd.get(), static_cast<std::size_t>(std::min<std::uint64_t>(left, SIZE_MAX)));
        check_resources(listed.error);
        if (listed.error == E2BIG) {
            summary_.stopped = StopReason::EntryLimit;
        } else if (listed.error != 0) {
            skip(path.empty() ? std::string(".") : path, open_failure(listed.error), listed.error);
            return;
        }
        summary_.entries += listed.value.size();
        // Byte order: the same tree gives the same report.
        std::sort(listed.value.begin(), listed.value.end(),
                  [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
        stack_.push_back({std::move(fd), std::move(path), depth, std::move(listed.value), 0});
    }

    void visit_entry(int dir_fd, const std::string& dir_path, std::uint32_t depth, const DirEntry& entry)
    {
        EntryType type = entry.type;
        if (type == EntryType::Unknown) {
            const auto found = entry_type(dir_fd, entry.name);
            check_resources(found.error);
            if (found.error != 0) {
                skip(join(dir_path, entry.name), open_failure(found.error), found.error);
                return;
            }
            type = found.value;
        }
        switch (type) {
        case EntryType::Directory:
            enter(dir_fd, join(dir_path, entry.name), depth + 1, entry.name);
            return;
        case EntryType::Regular:
            read_file(dir_fd, join(dir_path, entry.name), entry.name);
            return;
        case EntryType::Symlink:
            skip(join(dir_path, entry.name), SkipReason::Symlink);
            return;
        case EntryType::Fifo:
            skip(join(dir_path, entry.name), SkipReason::Fifo);
            return;
        case EntryType::Socket:
            skip(join(dir_path, entry.name), SkipReason::Socket);
            return;
        case EntryType::CharDevice:
        case EntryType::BlockDevice:
            skip(join(dir_path, entry.name), SkipReason::Device);
            return;
        case EntryType::Unknown:
            skip(join(dir_path, entry.name), SkipReason::UnknownType);
            return;
        }
    }

    void enter(int dir_fd, std::string path, std::uint32_t depth, std::string_view name)
    {
        if (depth > limits_.max_depth) {
            skip(std::move(path), SkipReason::TooDeep);
            return;
        }
        auto opened = open_directory_beneath(dir_fd, name);
        check_resources(opened.error);
        if (opened.error != 0) {
            skip(std::move(path), open_failure(opened.error), opened.error);
            return;
        }
        ++summary_.directories;
        push(std::move(opened.value), std::move(path), depth);
    }

    void read_file(int dir_fd, std::string path, std::string_view name)
    {
        if (summary_.files >= limits_.max_files) {
            summary_.stopped = StopReason::FileLimit;
            return;
        }
        auto opened = open_file_beneath(dir_fd, name);
        check_resources(opened.error);
        if (opened.error != 0) {
            skip(std::move(path), open_failure(opened.error), opened.error);
            return;
        }
        const auto st = stat_fd(opened.value.get());
        if (st.error != 0) {
            skip(std::move(path), SkipReason::ReadError, st.error);
            return;
        }
        // Listed as a file, but something else by the time it was opened (O_NONBLOCK kept a
        // fifo from blocking the open; nothing is read from it).
        if (!S_ISREG(st.value.st_mode)) {
            skip(std::move(path), SkipReason::Changed);
            return;
        }
        if (st.value.st_nlink > 1 && !limits_.read_hardlinked) {
            skip(std::move(path), SkipReason::Hardlinked);
            return;
        }
        const std::uint64_t total_left =
            limits_.max_total_bytes - std::min(limits_.max_total_bytes, summary_.bytes_read);
        if (total_left == 0) {
            summary_.stopped = StopReason::TotalBytesLimit;
            return;
        }
        const auto cap = static_cast<std::size_t>(std::min<std::uint64_t>(buffer_size_, total_left));
        const auto read = read_prefix(opened.value.get(), std::span<char>(buffer_.get(), cap));
        if (read.error != 0) {
            skip(std::move(path),
                 read.error == EACCES || read.error == EPERM ? SkipReason::PermissionDenied : SkipReason::ReadError,
                 read.error);
            return;
        }
        ++summary_.files;
        summary_.bytes_read += read.value.size;
        FileVisit visit;
        visit.path = path;
        visit.name = name;
        visit.content = std::string_view(buffer_.get(), read.value.size);
        visit.size = static_cast<std::uint64_t>(st.value.st_size);
        visit.truncated = read.value.more;
        visit.grew = read.value.size > visit.size;
        visit.links = st.value.st_nlink;
        if (visit.truncated) {
            ++summary_.truncated_files;
        }
        visit_(visit);
        if (visit.truncated && cap < buffer_size_) {
            summary_.stopped = StopReason::TotalBytesLimit;
        }
    }

    WalkLimits limits_;
    const FileVisitor& visit_;
    std::size_t buffer_size_ = 0;
    std::unique_ptr<char[]> buffer_;
    std::vector<Frame> stack_;
    WalkSummary summary_;
};

}  // namespace

WalkSummary walk(int root_fd, const WalkLimits& limits, const FileVisitor& visit)
{
    Walk walk(limits, visit);
    return walk.run(root_fd);
}

}  // namespace codexvault::ingest
