// The worker's confinement, attacked: each test confines a forked child exactly as a worker is
// confined (confine_worker) and then does what a worker compromised by hostile input might try.
// What the seccomp filter forbids ends the child with SIGSYS; what Landlock forbids fails EACCES.
#include <fcntl.h>
#include <linux/openat2.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <functional>

#include "daemon/ingest/protocol.hpp"
#include "daemon/ingest/worker.hpp"
#include "tree.hpp"

using namespace ingest_test;

namespace {

constexpr int kReachedEnd = 42;

// Runs `attack` in a child confined like a worker (result pipe at the write end of `pipe_fds`);
// returns the wait status. The attack returns the child's exit code.
int confined(const Tree& tree, const std::function<int(int result_fd)>& attack)
{
    int pipe_fds[2];
    check(::pipe2(pipe_fds, O_CLOEXEC) == 0, "pipe");
    UniqueFd read_end(pipe_fds[0]);
    UniqueFd write_end(pipe_fds[1]);
    const pid_t pid = ::fork();
    check(pid >= 0, "fork");
    if (pid == 0) {
        try {
            (void)confine_worker(tree.fd(), write_end.get(), ScanLimits{});
        } catch (...) {
            ::_exit(99);
        }
        ::_exit(attack(write_end.get()));
    }
    int status = 0;
    check(::waitpid(pid, &status, 0) == pid, "waitpid");
    return status;
}

bool killed_by_seccomp(int status)
{
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGSYS;
}

bool have_landlock()
{
    return landlock_abi() > 0;
}

}  // namespace

Test(worker_sandbox, the_confined_worker_may_read_beneath_its_folder_and_write_its_pipe)
{
    Tree tree;
    tree.file("a.txt", "hello\n");
    const int status = confined(tree, [&tree](int result_fd) {
        open_how how{};
        how.flags = O_RDONLY | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS;
        const long fd = ::syscall(SYS_openat2, tree.fd(), "a.txt", &how, sizeof how);
        char buffer[16];
        if (fd < 0 || ::read(static_cast<int>(fd), buffer, sizeof buffer) != 6) {
            return 1;
        }
        return ::write(result_fd, "ok", 2) == 2 ? kReachedEnd : 2;
    });
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == kReachedEnd, "status %d", status);
}

Test(worker_sandbox, execve_is_killed)
{
    Tree tree;
    const int status = confined(tree, [](int) {
        char* argv[] = {const_cast<char*>("/bin/true"), nullptr};
        ::execve("/bin/true", argv, nullptr);
        return kReachedEnd;
    });
    cr_expect(killed_by_seccomp(status), "status %d", status);
}

Test(worker_sandbox, creating_a_socket_is_killed)
{
    Tree tree;
    const int status = confined(tree, [](int) {
        (void)::socket(AF_INET, SOCK_STREAM, 0);
        return kReachedEnd;
    });
    cr_expect(killed_by_seccomp(status), "status %d", status);
}

Test(worker_sandbox, writing_anywhere_but_the_result_pipe_is_killed)
{
    Tree tree;
    const int status = confined(tree, [](int) {
        if (::write(STDERR_FILENO, "x", 1) != 1) {
            return 1;
        }
        return kReachedEnd;
    });
    cr_expect(killed_by_seccomp(status), "status %d", status);
}

Test(worker_sandbox, forking_is_killed)
{
    Tree tree;
    const int status = confined(tree, [](int) {
        (void)::syscall(SYS_fork);
        return kReachedEnd;
    });
    cr_expect(killed_by_seccomp(status), "status %d", status);
}

Test(worker_sandbox, executable_memory_is_killed)
{
    Tree tree;
    const int status = confined(tree, [](int) {
        (void)::mmap(nullptr, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        return kReachedEnd;
    });
    cr_expect(killed_by_seccomp(status), "status %d", status);
}

Test(worker_sandbox, openat_for_writing_or_creating_is_killed)
{
    Tree tree;
    const int status = confined(tree, [&tree](int) {
        (void)::openat(tree.fd(), "new", O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        return kReachedEnd;
    });
    cr_expect(killed_by_seccomp(status), "status %d", status);
}

Test(worker_sandbox, landlock_refuses_files_outside_the_folder)
{
    if (!have_landlock()) {
        cr_skip_test("the kernel offers no Landlock (the worker then relies on openat2 RESOLVE_BENEATH)");
    }
    Tree tree;
    const int status = confined(tree, [](int) {
        const int fd = ::openat(AT_FDCWD, "/etc/passwd", O_RDONLY | O_CLOEXEC);
        return fd < 0 && errno == EACCES ? kReachedEnd : 1;
    });
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == kReachedEnd, "status %d", status);
}

Test(worker_sandbox, landlock_refuses_writing_beneath_the_folder_through_openat2)
{
    if (!have_landlock()) {
        cr_skip_test("the kernel offers no Landlock (the worker then relies on openat2 RESOLVE_BENEATH)");
    }
    // seccomp cannot read openat2's flags (they are behind a pointer): Landlock is the wall here.
    Tree tree;
    tree.file("victim", "keep me\n");
    const int status = confined(tree, [&tree](int) {
        open_how how{};
        how.flags = O_WRONLY | O_TRUNC | O_CLOEXEC;
        how.resolve = RESOLVE_BENEATH;
        const long fd = ::syscall(SYS_openat2, tree.fd(), "victim", &how, sizeof how);
        return fd < 0 && errno == EACCES ? kReachedEnd : 1;
    });
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == kReachedEnd, "status %d", status);
    UniqueFd check_fd(::open(tree.at("victim").c_str(), O_RDONLY | O_CLOEXEC));
    char buffer[16]{};
    cr_expect_eq(::read(check_fd.get(), buffer, sizeof buffer), 8);
}
