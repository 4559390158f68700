// Passing descriptors over a unix socket (SCM_RIGHTS), the one way the daemon hands a descriptor
// to another process: the ingest helper's directory and results, an injected secret.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <span>
#include <vector>

#include "lib/fileio/unique_fd.hpp"

namespace codexvault::fileio {

// At most this many descriptors ride on one message.
inline constexpr std::size_t kMaxPassedDescriptors = 2;

// One sendmsg of `size` bytes with `fds` attached (none when empty), retried on EINTR. `flags`
// are sendmsg's (e.g. MSG_DONTWAIT | MSG_NOSIGNAL). Returns the bytes sent, or -1 with errno set
// (EINVAL when more than kMaxPassedDescriptors are given).
ssize_t send_with_descriptors(int socket, const void* data, std::size_t size, std::span<const int> fds, int flags);

// What one receive_with_descriptors call got.
struct ReceivedMessage {
    ssize_t bytes = 0;  // recvmsg's result: 0 at end of stream, -1 on error (see `error`)
    int error = 0;      // errno when bytes is -1
    // The message or its control data was cut (MSG_TRUNC, MSG_CTRUNC): the sender is not one of
    // ours, so callers drop it. Descriptors that did arrive are still owned here and closed.
    bool truncated = false;
    std::vector<UniqueFd> descriptors;  // close-on-exec, in the order sent
};

// One recvmsg into `data` (up to `size` bytes) with room for a few more descriptors than any of
// our messages carries, so a stray extra one is received and closed rather than left to
// truncation; retried on EINTR. `flags` are recvmsg's (MSG_CMSG_CLOEXEC is always added).
ReceivedMessage receive_with_descriptors(int socket, void* data, std::size_t size, int flags);

}  // namespace codexvault::fileio
