// Descriptors sent with send_with_descriptors arrive, through receive_with_descriptors, as
// descriptors of the same files.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstring>

#include "lib/fileio/descriptor_passing.hpp"
#include "lib/fileio/unique_fd.hpp"

using codexvault::UniqueFd;
using codexvault::fileio::receive_with_descriptors;
using codexvault::fileio::send_with_descriptors;

namespace {

struct SocketPair {
    UniqueFd sender;
    UniqueFd receiver;
};

SocketPair make_socket_pair(int type)
{
    int pair[2];
    cr_assert_eq(::socketpair(AF_UNIX, type | SOCK_CLOEXEC, 0, pair), 0);
    return SocketPair{UniqueFd(pair[0]), UniqueFd(pair[1])};
}

ino_t inode_of(int fd)
{
    struct stat st {};
    cr_assert_eq(::fstat(fd, &st), 0);
    return st.st_ino;
}

}  // namespace

Test(descriptor_passing, two_descriptors_arrive_with_the_bytes_and_a_third_is_refused)
{
    int pair[2];
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair), 0);
    const UniqueFd sender(pair[0]);
    const UniqueFd receiver(pair[1]);
    int pipe_fds[2];
    cr_assert_eq(::pipe2(pipe_fds, O_CLOEXEC), 0);
    const UniqueFd read_end(pipe_fds[0]);
    const UniqueFd write_end(pipe_fds[1]);

    const int fds[] = {read_end.get(), write_end.get()};
    cr_assert_eq(send_with_descriptors(sender.get(), "id", 2, fds, MSG_NOSIGNAL), 2);

    char text[8] = {};
    iovec iov{text, sizeof text};
    alignas(cmsghdr) char control[CMSG_SPACE(2 * sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof control;
    cr_assert_eq(::recvmsg(receiver.get(), &msg, MSG_CMSG_CLOEXEC), 2);
    cr_expect_eq(std::memcmp(text, "id", 2), 0);
    const cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cr_assert(cmsg != nullptr && cmsg->cmsg_type == SCM_RIGHTS && cmsg->cmsg_len == CMSG_LEN(2 * sizeof(int)));
    int got[2];
    std::memcpy(got, CMSG_DATA(cmsg), sizeof got);
    const UniqueFd first(got[0]);
    const UniqueFd second(got[1]);
    struct stat a {
    }, b{};
    cr_assert_eq(::fstat(first.get(), &a), 0);
    cr_assert_eq(::fstat(read_end.get(), &b), 0);
    cr_expect_eq(a.st_ino, b.st_ino, "the received descriptor is the pipe sent");

    const int three[] = {read_end.get(), write_end.get(), read_end.get()};
    errno = 0;
    cr_expect_eq(send_with_descriptors(sender.get(), "x", 1, three, MSG_NOSIGNAL), -1);
    cr_expect_eq(errno, EINVAL);
}

Test(descriptor_passing, receive_returns_the_bytes_and_owned_close_on_exec_descriptors)
{
    const SocketPair sockets = make_socket_pair(SOCK_STREAM);
    int pipe_fds[2];
    cr_assert_eq(::pipe2(pipe_fds, O_CLOEXEC), 0);
    const UniqueFd read_end(pipe_fds[0]);
    const UniqueFd write_end(pipe_fds[1]);
    const int fds[] = {read_end.get(), write_end.get()};
    cr_assert_eq(send_with_descriptors(sockets.sender.get(), "id", 2, fds, MSG_NOSIGNAL), 2);

    char text[8] = {};
    auto received = receive_with_descriptors(sockets.receiver.get(), text, sizeof text, 0);
    cr_assert_eq(received.bytes, 2);
    cr_expect_eq(std::memcmp(text, "id", 2), 0);
    cr_expect_not(received.truncated);
    cr_assert_eq(received.descriptors.size(), 2U);
    cr_expect_eq(inode_of(received.descriptors[0].get()), inode_of(read_end.get()));
    cr_expect_eq(inode_of(received.descriptors[1].get()), inode_of(write_end.get()));
    cr_expect_eq(::fcntl(received.descriptors[0].get(), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
}

Test(descriptor_passing, a_datagram_longer_than_the_buffer_is_reported_truncated)
{
    const SocketPair sockets = make_socket_pair(SOCK_SEQPACKET);
    const int fds[] = {sockets.sender.get()};
    cr_assert_eq(send_with_descriptors(sockets.sender.get(), "longer", 6, fds, MSG_NOSIGNAL), 6);
    char text[2] = {};
    const auto received = receive_with_descriptors(sockets.receiver.get(), text, sizeof text, 0);
    cr_expect_eq(received.bytes, 2);
    cr_expect(received.truncated, "a cut message must be reported so the caller drops it");
    cr_expect_eq(received.descriptors.size(), 1U, "the descriptor that arrived is still owned and closed");
}

Test(descriptor_passing, end_of_stream_and_would_block_are_told_apart)
{
    SocketPair sockets = make_socket_pair(SOCK_STREAM);
    char byte = 0;
    const auto nothing_yet = receive_with_descriptors(sockets.receiver.get(), &byte, 1, MSG_DONTWAIT);
    cr_expect_eq(nothing_yet.bytes, -1);
    cr_expect_eq(nothing_yet.error, EAGAIN);
    sockets.sender.reset();
    const auto closed = receive_with_descriptors(sockets.receiver.get(), &byte, 1, MSG_DONTWAIT);
    cr_expect_eq(closed.bytes, 0);
    cr_expect(closed.descriptors.empty());
}
