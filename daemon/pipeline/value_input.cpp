#include "daemon/pipeline/value_input.hpp"

#include <fcntl.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "common/limits.hpp"
#include "common/vault_error.hpp"

namespace codexvault::daemon {
namespace {

// Local disk and memory file systems: a read of a regular file there waits for storage only.
// Kept short on purpose; a file system missing here is refused, never read.
constexpr std::array<std::int64_t, 6> kReadableFileSystems{
    EXT4_SUPER_MAGIC,  // also ext2 and ext3 (one magic)
    XFS_SUPER_MAGIC,  BTRFS_SUPER_MAGIC, F2FS_SUPER_MAGIC,
    TMPFS_MAGIC,  // also memfd_create() files
    RAMFS_MAGIC,
};

[[noreturn]] void refuse(const std::string& why)
{
    throw VaultError(ErrorCode::InvalidArgument, why);
}

[[noreturn]] void refuse_errno(const char* what, int error)
{
    refuse(std::string(what) + ": " + std::strerror(error));
}

const char* describe_type(mode_t mode)
{
    if (S_ISDIR(mode)) {
        return "a directory";
    }
    if (S_ISSOCK(mode)) {
        return "a socket";
    }
    if (S_ISCHR(mode)) {
        return "a character device";
    }
    if (S_ISBLK(mode)) {
        return "a block device";
    }
    if (S_ISLNK(mode)) {
        return "a symbolic link";
    }
    return "not a regular file or pipe (an event, timer or other special descriptor)";
}

// Restores the caller's file status flags of a pipe the daemon made non-blocking for its read.
class RestoreFlags {
public:
    RestoreFlags(int fd, int flags) noexcept : fd_(fd), flags_(flags) {}
    RestoreFlags(const RestoreFlags&) = delete;
    RestoreFlags& operator=(const RestoreFlags&) = delete;
    ~RestoreFlags() { (void)::fcntl(fd_, F_SETFL, flags_); }

private:
    int fd_;
    int flags_;
};

}  // namespace

std::optional<std::string> value_descriptor_refusal(mode_t mode, std::int64_t filesystem_type)
{
    if (S_ISFIFO(mode)) {
        return std::nullopt;
    }
    if (!S_ISREG(mode)) {
        return std::string("value descriptor is ") + describe_type(mode) + "; pass a pipe or regular file";
    }
    for (const std::int64_t readable : kReadableFileSystems) {
        if (filesystem_type == readable) {
            return std::nullopt;
        }
    }
    char type[24];
    std::snprintf(type, sizeof type, "0x%llx", static_cast<unsigned long long>(filesystem_type));
    return std::string("value descriptor is a file on a file system whose reads may wait (type ") + type +
           ", e.g. procfs, sysfs, FUSE or a network file system); pass a pipe, or a file on a local disk or tmpfs";
}

store::SecureBuffer read_value_descriptor(int fd, std::size_t max_bytes)
{
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        refuse_errno("cannot inspect value descriptor", errno);
    }
    std::int64_t filesystem_type = 0;
    if (S_ISREG(st.st_mode)) {
        struct statfs fs {};
        if (::fstatfs(fd, &fs) != 0) {
            refuse_errno("cannot inspect value descriptor's file system", errno);
        }
        filesystem_type = static_cast<std::int64_t>(fs.f_type);
    }
    if (const auto refusal = value_descriptor_refusal(st.st_mode, filesystem_type)) {
        refuse(*refusal);
    }
    const int flags = ::fcntl(fd, F_GETFL);
    if (flags < 0) {
        refuse_errno("cannot inspect value descriptor", errno);
    }
    if ((flags & O_PATH) != 0 || (flags & O_ACCMODE) == O_WRONLY) {
        refuse("value descriptor is not readable");
    }
    // The description is shared with the caller's copy, so the daemon cannot open its own
    // non-blocking one (reopening through /proc/self/fd needs the pipe inode's permissions, which
    // the unprivileged daemon does not have for another user's pipe). It sets O_NONBLOCK for the
    // read and puts the caller's flags back afterwards.
    std::optional<RestoreFlags> restore;
    if (S_ISFIFO(st.st_mode) && (flags & O_NONBLOCK) == 0) {
        if (::fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
            refuse_errno("cannot make value pipe non-blocking", errno);
        }
        restore.emplace(fd, flags);
    }

    // Guarded memory: what arrives may be a value an older client sent in the clear.
    store::SecureBuffer bytes = store::SecureBuffer::allocate_guarded(max_bytes + 1);
    std::size_t got = 0;
    while (got < bytes.size()) {
        const ssize_t n = ::read(fd, bytes.data() + got, bytes.size() - got);
        if (n > 0) {
            got += static_cast<std::size_t>(n);
            continue;
        }
        if (n == 0) {
            break;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            refuse("value pipe still open for writing; write the whole value and close the write end before sending");
        }
        refuse_errno("cannot read secret value", errno);
    }
    bytes.truncate(got);
    return bytes;
}

store::SecureBuffer read_sealed_value(int fd, const store::TransportKey& key)
{
    const store::SecureBuffer sealed = read_value_descriptor(fd, limits::kMaxSecretBytes + store::kSealOverheadBytes);
    if (sealed.size() == 0) {
        refuse("secret value is empty");
    }
    if (sealed.size() > limits::kMaxSecretBytes + store::kSealOverheadBytes) {
        refuse("secret value exceeds " + std::to_string(limits::kMaxSecretBytes) + " bytes");
    }
    std::optional<store::SecureBuffer> value = key.open(sealed.span());
    if (!value) {
        refuse(
            "secret value is not sealed to this vault's transport key (vaultctl seals it to the key `vaultctl "
            "status` shows as transport_key; a value sent in the clear is refused)");
    }
    if (value->size() == 0) {
        refuse("secret value is empty");
    }
    return std::move(*value);
}

}  // namespace codexvault::daemon
