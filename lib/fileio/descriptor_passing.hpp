// Sending descriptors over a unix socket (SCM_RIGHTS), the one way the daemon hands a descriptor
// to another process: the ingest helper's directory and results, an injected secret.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>

namespace codexvault::fileio {

// At most this many descriptors ride on one message.
inline constexpr std::size_t kMaxPassedDescriptors = 2;

// One sendmsg of `size` bytes with `fds` attached (none when empty), retried on EINTR. `flags`
// are sendmsg's (e.g. MSG_DONTWAIT | MSG_NOSIGNAL). Returns the bytes sent, or -1 with errno set
// (EINVAL when more than kMaxPassedDescriptors are given).
ssize_t send_with_descriptors(int socket, const void* data, std::size_t size, std::span<const int> fds, int flags);

}  // namespace codexvault::fileio
