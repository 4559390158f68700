// STATE/lock on disk: the persistent lock record of lock_state.hpp. Its presence means the
// vault is locked; clear() (after a founder unlock) removes it.
//
// Deleting the file unlocks the vault at the next start: anyone who can write STATE as the
// daemon's user can do that, and equally delete the audit log or the key. The lock's protection
// is the audit trail of the lock and of the start-up that found no lock file, not this file.
#pragma once

#include <optional>

#include "daemon/integrity/lock_state.hpp"

namespace codexvault::store::lock_file {

// nullopt when there is no lock file (ENOENT). Never throws: a file that exists but cannot be
// read, is a symlink or not a regular file, is not private (0600, our uid), is too large or does
// not decode yields a locked state with reason kUnreadableLockReason, steps_done = Locked,
// incident = false and unreadable = true. Fail closed: an unreadable lock is still a lock.
std::optional<LockState> load(int dir_fd) noexcept;

// Atomic write (temp, fsync, rename, fsync of the folder), mode 0600. Throws std::system_error.
void save(int dir_fd, const LockState& state);

// Removes the file and fsyncs the folder; no file is not an error. Throws std::system_error.
void clear(int dir_fd);

}  // namespace codexvault::store::lock_file
