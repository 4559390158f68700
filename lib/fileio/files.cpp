#include "lib/fileio/files.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <system_error>

namespace codexvault::fileio {
namespace {

constexpr std::string_view kTempPrefix = ".tmp.";

[[noreturn]] void throw_errno(int error, const std::string& what)
{
    throw std::system_error(error, std::generic_category(), what);
}

std::string octal_mode(mode_t mode)
{
    char text[8];
    std::snprintf(text, sizeof text, "%04o", static_cast<unsigned>(mode & 07777));
    return text;
}

enum class Expected { Directory, File };

// The one place the privacy rule lives: right type, owned by us, no group/other bits. A file
// another user can write (or even read) could hand us a key of their choosing or leak ours.
void check_private(const struct stat& st, const std::filesystem::path& path, Expected expected)
{
    const bool want_dir = expected == Expected::Directory;
    const std::string label = (want_dir ? "state folder " : "state file ") + path.string();
    if (S_ISLNK(st.st_mode)) {
        throw std::runtime_error(label + " is a symbolic link; refusing to follow it");
    }
    if (want_dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
        throw std::runtime_error(label + (want_dir ? " is not a directory" : " is not a regular file"));
    }
    if (st.st_uid != ::geteuid()) {
        throw std::runtime_error(label + " is owned by uid " + std::to_string(st.st_uid) + ", expected " +
                                 std::to_string(::geteuid()));
    }
    if ((st.st_mode & 077) != 0) {
        throw std::runtime_error(label + " is group- or world-accessible (mode " + octal_mode(st.st_mode) +
                                 "); expected " + (want_dir ? "0700" : "0600"));
    }
}

void check_private_path(const std::filesystem::path& path, Expected expected)
{
    struct stat st {};
    if (::lstat(path.c_str(), &st) != 0) {
        throw_errno(errno, std::string("cannot inspect ") +
                               (expected == Expected::Directory ? "state folder " : "state file ") + path.string());
    }
    check_private(st, path, expected);
}

// A file name, not a path: the atomic write must stay inside dir_fd.
void require_plain_name(const std::string& name)
{
    if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos) {
        throw std::invalid_argument("invalid state file name '" + name + "'");
    }
}

std::string random_suffix()
{
    unsigned char bytes[8];
    std::size_t got = 0;
    while (got < sizeof bytes) {
        const ssize_t n = ::getrandom(bytes + got, sizeof bytes - got, 0);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno(errno, "getrandom for a temporary file name");
        }
        got += static_cast<std::size_t>(n);
    }
    static constexpr char kDigits[] = "0123456789abcdef";
    std::string text;
    for (const unsigned char byte : bytes) {
        text += kDigits[byte >> 4];
        text += kDigits[byte & 0xf];
    }
    return text;
}

// Unlinks a temp file unless disarmed: every early exit of write_temp_file() cleans up.
class TempFileGuard {
public:
    TempFileGuard(int dir_fd, const std::string& name) : dir_fd_(dir_fd), name_(name) {}
    TempFileGuard(const TempFileGuard&) = delete;
    TempFileGuard& operator=(const TempFileGuard&) = delete;
    ~TempFileGuard()
    {
        if (armed_) {
            (void)::unlinkat(dir_fd_, name_.c_str(), 0);
        }
    }
    void disarm() noexcept { armed_ = false; }

private:
    int dir_fd_;
    const std::string& name_;
    bool armed_ = true;
};

struct DirCloser {
    void operator()(DIR* dir) const noexcept { (void)::closedir(dir); }
};

}  // namespace

void write_all(int fd, std::span<const std::uint8_t> bytes, const std::string& name)
{
    std::size_t done = 0;
    while (done < bytes.size()) {
        const ssize_t n = ::write(fd, bytes.data() + done, bytes.size() - done);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno(errno, "cannot write " + name);
        }
        if (n == 0) {
            throw_errno(EIO, "cannot write " + name);  // no progress on a regular file: give up
        }
        done += static_cast<std::size_t>(n);
    }
}

void require_private_directory(const std::filesystem::path& path)
{
    check_private_path(path, Expected::Directory);
}

void require_private_file(const std::filesystem::path& path)
{
    check_private_path(path, Expected::File);
}

void require_private_file(int fd, const std::filesystem::path& path)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        throw_errno(errno, "cannot inspect state file " + path.string());
    }
    check_private(st, path, Expected::File);
}

void ensure_private_directory(const std::filesystem::path& path)
{
    if (::mkdir(path.c_str(), 0700) != 0 && errno != EEXIST) {
        throw_errno(errno, "cannot create state folder " + path.string());
    }
    require_private_directory(path);
}

UniqueFd open_directory(const std::filesystem::path& path)
{
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW));
    if (!fd) {
        throw_errno(errno, "cannot open state folder " + path.string());
    }
    return fd;
}

std::string write_temp_file(int dir_fd, const std::string& name, std::span<const std::uint8_t> bytes, unsigned mode)
{
    require_plain_name(name);
    std::string temp_name = std::string(kTempPrefix) + name + "." + random_suffix();
    UniqueFd fd(::openat(dir_fd, temp_name.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
                         static_cast<mode_t>(mode)));
    if (!fd) {
        throw_errno(errno, "cannot create temporary file for " + name);
    }
    TempFileGuard guard(dir_fd, temp_name);
    // openat() applied the umask; the caller asked for this exact mode.
    if (::fchmod(fd.get(), static_cast<mode_t>(mode)) != 0) {
        throw_errno(errno, "cannot set the mode of the temporary file for " + name);
    }
    write_all(fd.get(), bytes, name);
    if (::fsync(fd.get()) != 0) {
        throw_errno(errno, "cannot fsync the temporary file for " + name);
    }
    guard.disarm();
    return temp_name;
}

void commit_temp_file(int dir_fd, const std::string& temp_name, const std::string& name, bool replace)
{
    require_plain_name(name);
    if (replace) {
        if (::renameat(dir_fd, temp_name.c_str(), dir_fd, name.c_str()) != 0) {
            throw_errno(errno, "cannot move the temporary file into place as " + name);
        }
    } else if (::renameat2(dir_fd, temp_name.c_str(), dir_fd, name.c_str(), RENAME_NOREPLACE) != 0) {
        // Filesystems without RENAME_NOREPLACE say EINVAL; link() never replaces either.
        if (errno != EINVAL) {
            throw_errno(errno, "cannot move the temporary file into place as " + name);
        }
        if (::linkat(dir_fd, temp_name.c_str(), dir_fd, name.c_str(), 0) != 0) {
            throw_errno(errno, "cannot link the temporary file into place as " + name);
        }
        (void)::unlinkat(dir_fd, temp_name.c_str(), 0);
    }
    sync_directory(dir_fd, "after writing " + name);
}

void write_file_atomically(int dir_fd, const std::string& name, std::span<const std::uint8_t> bytes, unsigned mode)
{
    std::string temp_name = write_temp_file(dir_fd, name, bytes, mode);
    TempFileGuard guard(dir_fd, temp_name);
    commit_temp_file(dir_fd, temp_name, name);
    guard.disarm();
}

void sync_directory(int dir_fd, const std::string& what)
{
    if (::fsync(dir_fd) != 0) {
        throw_errno(errno, "cannot fsync the state folder " + what);
    }
}

std::vector<std::string> list_directory(int dir_fd)
{
    // fdopendir() takes ownership of its descriptor, so it gets a fresh one for the same folder.
    UniqueFd own(::openat(dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!own) {
        throw_errno(errno, "cannot reopen state folder for listing");
    }
    std::unique_ptr<DIR, DirCloser> dir(::fdopendir(own.get()));
    if (!dir) {
        throw_errno(errno, "cannot list state folder");
    }
    (void)own.release();  // now owned by the DIR stream
    std::vector<std::string> names;
    for (;;) {
        errno = 0;
        const dirent* entry = ::readdir(dir.get());
        if (entry == nullptr) {
            if (errno != 0) {
                throw_errno(errno, "cannot list state folder");
            }
            break;
        }
        const std::string_view name(entry->d_name);
        if (name != "." && name != "..") {
            names.emplace_back(name);
        }
    }
    return names;
}

void remove_stale_temp_files(int dir_fd)
{
    bool removed = false;
    for (const auto& name : list_directory(dir_fd)) {
        if (!name.starts_with(kTempPrefix)) {
            continue;
        }
        if (::unlinkat(dir_fd, name.c_str(), 0) == 0) {
            removed = true;
        } else if (errno != ENOENT && errno != EISDIR) {  // a folder by that name is not ours
            throw_errno(errno, "cannot remove stale temporary file " + name);
        }
    }
    if (removed) {
        sync_directory(dir_fd, "after removing stale temporary files");
    }
}

std::size_t read_until_eof(int fd, void* data, std::size_t capacity, const std::string& what)
{
    auto* bytes = static_cast<std::uint8_t*>(data);
    std::size_t got = 0;
    while (got < capacity) {
        const ssize_t n = ::read(fd, bytes + got, capacity - got);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            throw_errno(errno, "cannot read " + what);
        }
        if (n == 0) {
            break;
        }
        got += static_cast<std::size_t>(n);
    }
    return got;
}

std::string read_small_file(int dir_fd, const std::string& name, std::size_t max_bytes)
{
    UniqueFd fd(::openat(dir_fd, name.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY));
    if (!fd) {
        throw_errno(errno, "cannot open " + name);
    }
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) {
        throw_errno(errno, "cannot inspect " + name);
    }
    if (!S_ISREG(st.st_mode)) {
        throw std::runtime_error(name + " is not a regular file");
    }
    std::string text(max_bytes + 1, '\0');  // one spare byte tells "exactly max" from "too big"
    const std::size_t got = read_until_eof(fd.get(), text.data(), text.size(), name);
    if (got > max_bytes) {
        throw std::runtime_error(name + " is larger than " + std::to_string(max_bytes) + " bytes");
    }
    text.resize(got);
    return text;
}

}  // namespace codexvault::fileio
