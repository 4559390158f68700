// Descriptors sent with send_with_descriptors arrive as descriptors of the same files.
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
using codexvault::fileio::send_with_descriptors;

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
