#include "daemon/integrity/lock_file.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <exception>
#include <span>
#include <string>
#include <system_error>

#include "lib/fileio/files.hpp"
#include "lib/fileio/unique_fd.hpp"

namespace codexvault::store::lock_file {
namespace {

constexpr std::size_t kMaxLockFileBytes = 512;  // the longest valid record is under 400 bytes

LockState unreadable_lock()
{
    LockState state;
    state.reason = kUnreadableLockReason;
    state.mark_done(IncidentStep::Locked);
    state.unreadable = true;
    return state;
}

}  // namespace

std::optional<LockState> load(int dir_fd) noexcept
{
    try {
        UniqueFd fd(::openat(dir_fd, kLockFileName, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK));
        if (!fd) {
            if (errno == ENOENT) {
                return std::nullopt;
            }
            return unreadable_lock();
        }
        struct stat st {};
        if (::fstat(fd.get(), &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != ::geteuid() ||
            (st.st_mode & 077) != 0 || static_cast<std::uint64_t>(st.st_size) > kMaxLockFileBytes) {
            return unreadable_lock();
        }
        std::string text(kMaxLockFileBytes + 1, '\0');
        const std::size_t got = fileio::read_until_eof(fd.get(), text.data(), text.size(), kLockFileName);
        if (got > kMaxLockFileBytes) {
            return unreadable_lock();
        }
        text.resize(got);
        if (auto state = decode_lock_state(text)) {
            return state;
        }
        return unreadable_lock();
    } catch (...) {
        // A read error or an allocation failure: still locked, never a silent unlock.
        try {
            return unreadable_lock();
        } catch (...) {
            std::terminate();  // cannot even build the record: stopping is the closed failure
        }
    }
}

void save(int dir_fd, const LockState& state)
{
    const std::string text = encode_lock_state(state);
    fileio::write_file_atomically(dir_fd, kLockFileName,
                                  std::span(reinterpret_cast<const std::uint8_t*>(text.data()), text.size()), 0600);
}

void clear(int dir_fd)
{
    if (::unlinkat(dir_fd, kLockFileName, 0) != 0) {
        if (errno == ENOENT) {
            return;
        }
        throw std::system_error(errno, std::generic_category(), "cannot remove the lock state file");
    }
    fileio::sync_directory(dir_fd, "after removing the lock state file");
}

}  // namespace codexvault::store::lock_file
