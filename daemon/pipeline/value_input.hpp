// The secret value of PutSecret/RotateSecret: read from the descriptor the caller handed over,
// without ever waiting on it, then opened from the box vaultctl sealed it in.
//
// The single-threaded daemon must not block on a caller's descriptor (issue 10, item 11: a
// value descriptor of /proc/kmsg stopped Status and SIGTERM). So it takes only what is already
// there, from only two kinds of descriptor:
//   - a pipe or FIFO, read with O_NONBLOCK: the sender writes the whole box and closes its write
//     end before the call; a pipe that has no more data but is still open for writing is refused
//     at once ("still open for writing"), never waited for;
//   - a regular file on a local disk or memory file system (ext2/3/4, XFS, Btrfs, F2FS, tmpfs
//     including memfds, ramfs), whose reads wait for nothing but storage. Every other file
//     system is refused: procfs and sysfs files whose reads block (/proc/kmsg), FUSE and network
//     file systems whose reads can wait on another process or host.
// Directories, sockets, devices, event and timer descriptors, write-only and O_PATH descriptors
// are refused, as are empty values and values over limits::kMaxSecretBytes (after opening).
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <string>

#include "daemon/store/secure_buffer.hpp"
#include "daemon/store/transport_key.hpp"

namespace codexvault::daemon {

// Pure: whether a descriptor of this type (st_mode), on this file system (statfs f_type; only
// consulted for regular files), may be read. nullopt: it may; otherwise why not, for the reply.
std::optional<std::string> value_descriptor_refusal(mode_t mode, std::int64_t filesystem_type);

// Reads at most `max_bytes` + 1 bytes (one more, to tell "exactly the limit" from "over it")
// from the descriptor, as above, into guarded memory. Throws VaultError(InvalidArgument) for a
// refused descriptor or a pipe still open for writing. A pipe's file status flags are shared
// with the caller's copy of it: O_NONBLOCK is set for the read and the caller's flags are
// restored afterwards.
store::SecureBuffer read_value_descriptor(int fd, std::size_t max_bytes);

// The plaintext of the sealed value behind `fd`, in guarded secure memory: read as above (at most
// the largest box a 64 KiB value makes), opened with the daemon's transport key. A value sent in
// the clear, sealed to another key, or altered is refused (InvalidArgument); so are an empty
// value and one over limits::kMaxSecretBytes.
store::SecureBuffer read_sealed_value(int fd, const store::TransportKey& key);

}  // namespace codexvault::daemon
