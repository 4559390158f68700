#include "lib/fileio/descriptor_passing.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>

namespace codexvault::fileio {

ssize_t send_with_descriptors(int socket, const void* data, std::size_t size, std::span<const int> fds, int flags)
{
    if (fds.size() > kMaxPassedDescriptors) {
        errno = EINVAL;
        return -1;
    }
    iovec iov{const_cast<void*>(data), size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(kMaxPassedDescriptors * sizeof(int))] = {};
    if (!fds.empty()) {
        msg.msg_control = control;
        msg.msg_controllen = CMSG_SPACE(fds.size() * sizeof(int));
        cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
        cmsg->cmsg_level = SOL_SOCKET;
        cmsg->cmsg_type = SCM_RIGHTS;
        cmsg->cmsg_len = CMSG_LEN(fds.size() * sizeof(int));
        std::memcpy(CMSG_DATA(cmsg), fds.data(), fds.size() * sizeof(int));
    }
    ssize_t n = 0;
    do {
        n = ::sendmsg(socket, &msg, flags);
    } while (n < 0 && errno == EINTR);
    return n;
}

ReceivedMessage receive_with_descriptors(int socket, void* data, std::size_t size, int flags)
{
    constexpr std::size_t kRoom = 2 * kMaxPassedDescriptors;
    iovec iov{data, size};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    alignas(cmsghdr) char control[CMSG_SPACE(kRoom * sizeof(int))] = {};
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    ReceivedMessage received;
    do {
        received.bytes = ::recvmsg(socket, &msg, flags | MSG_CMSG_CLOEXEC);
    } while (received.bytes < 0 && errno == EINTR);
    if (received.bytes < 0) {
        received.error = errno;
        return received;
    }
    received.truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
    for (cmsghdr* cmsg = CMSG_FIRSTHDR(&msg); cmsg != nullptr; cmsg = CMSG_NXTHDR(&msg, cmsg)) {
        if (cmsg->cmsg_level != SOL_SOCKET || cmsg->cmsg_type != SCM_RIGHTS) {
            continue;
        }
        const std::size_t count = (cmsg->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (std::size_t i = 0; i < count; ++i) {
            int fd = -1;
            std::memcpy(&fd, CMSG_DATA(cmsg) + i * sizeof(int), sizeof fd);
            received.descriptors.emplace_back(fd);
        }
    }
    return received;
}

}  // namespace codexvault::fileio
