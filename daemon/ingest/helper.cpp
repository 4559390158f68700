#include "daemon/ingest/helper.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sodium.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <map>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "daemon/ingest/protocol.hpp"
#include "daemon/ingest/worker.hpp"
#include "lib/fileio/descriptor_passing.hpp"
#include "lib/scan/builtin_rules.hpp"
#include "lib/scan/matcher.hpp"

namespace codexvault::ingest {
namespace {

std::uint64_t monotonic_ms() noexcept
{
    struct timespec ts {};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::uint64_t>(ts.tv_sec) * 1000 + static_cast<std::uint64_t>(ts.tv_nsec) / 1000000;
}

struct Running {
    pid_t pid = -1;
    UniqueFd pidfd;
    std::uint64_t deadline_ms = 0;
    bool timed_out = false;
};

bool send_message(int control, const HelperMessage& message, std::initializer_list<int> fds)
{
    const ssize_t n = fileio::send_with_descriptors(control, &message, sizeof message,
                                                    std::span<const int>(fds.begin(), fds.size()), MSG_NOSIGNAL);
    return n == static_cast<ssize_t>(sizeof message);
}

WorkerEnd end_of(int status, bool timed_out, int& code)
{
    if (timed_out) {
        code = SIGKILL;
        return WorkerEnd::WallTimeLimit;
    }
    if (WIFSIGNALED(status)) {
        code = WTERMSIG(status);
        // SIGXCPU at the soft RLIMIT_CPU, SIGKILL at the hard one (a second later).
        return code == SIGXCPU || code == SIGKILL ? WorkerEnd::CpuLimit : WorkerEnd::Killed;
    }
    code = WEXITSTATUS(status);
    switch (code) {
    case 0:
        return WorkerEnd::Completed;
    case kExitSandbox:
        return WorkerEnd::SandboxFailed;
    case kExitOutOfMemory:
        return WorkerEnd::MemoryLimit;
    case kExitBadDirectory:
        return WorkerEnd::BadDirectory;
    default:
        return WorkerEnd::Failed;
    }
}

class HelperLoop {
public:
    HelperLoop(int control, std::shared_ptr<const scan::Matcher> matcher, int dev_null)
        : control_(control), matcher_(std::move(matcher)), dev_null_(dev_null)
    {
    }

    [[noreturn]] void run()
    {
        for (;;) {
            std::vector<struct pollfd> fds;
            std::vector<std::uint64_t> ids;
            fds.push_back({control_, POLLIN, 0});
            std::uint64_t now = monotonic_ms();
            int timeout = -1;
            for (auto& [id, worker] : running_) {
                fds.push_back({worker.pidfd.get(), POLLIN, 0});
                ids.push_back(id);
                if (!worker.timed_out) {
                    const std::uint64_t left = worker.deadline_ms > now ? worker.deadline_ms - now : 0;
                    timeout = timeout < 0
                                  ? static_cast<int>(std::min<std::uint64_t>(left, INT32_MAX))
                                  : std::min(timeout, static_cast<int>(std::min<std::uint64_t>(left, INT32_MAX)));
                }
            }
            const int r = ::poll(fds.data(), fds.size(), timeout);
            if (r < 0 && errno != EINTR) {
                stop();
            }
            now = monotonic_ms();
            for (auto& [id, worker] : running_) {
                if (!worker.timed_out && now >= worker.deadline_ms) {
                    worker.timed_out = true;
                    (void)::syscall(SYS_pidfd_send_signal, worker.pidfd.get(), SIGKILL, nullptr, 0);
                }
            }
            for (std::size_t i = 1; r > 0 && i < fds.size(); ++i) {
                if (fds[i].revents != 0) {
                    reap(ids[i - 1]);
                }
            }
            if (r > 0 && fds[0].revents != 0) {
                if (!serve_one()) {
                    stop();
                }
            }
        }
    }

private:
    [[noreturn]] void stop()
    {
        for (auto& [id, worker] : running_) {
            (void)::syscall(SYS_pidfd_send_signal, worker.pidfd.get(), SIGKILL, nullptr, 0);
            (void)::waitpid(worker.pid, nullptr, 0);
        }
        ::_exit(0);
    }

    // One control message; false when the daemon is gone.
    bool serve_one()
    {
        ScanRequest request{};
        auto message = fileio::receive_with_descriptors(control_, &request, sizeof request, 0);
        if (message.bytes <= 0) {
            return false;
        }
        if (message.bytes != static_cast<ssize_t>(sizeof request) || request.magic != kRequestMagic ||
            message.descriptors.size() != 1 || message.truncated) {
            sodium_memzero(request.key, sizeof request.key);
            return true;  // not from the daemon's code: ignored
        }
        start(request, message.descriptors[0].get());
        sodium_memzero(request.key, sizeof request.key);
        return true;
    }

    void refuse(std::uint64_t id)
    {
        HelperMessage message;
        message.kind = HelperMessage::Finished;
        message.end = WorkerEnd::Refused;
        message.id = id;
        (void)send_message(control_, message, {});
    }

    void start(const ScanRequest& request, int dir_fd)
    {
        int pipe_fds[2];
        if (::pipe2(pipe_fds, O_CLOEXEC) != 0) {
            refuse(request.id);
            return;
        }
        UniqueFd read_end(pipe_fds[0]);
        UniqueFd write_end(pipe_fds[1]);
        // Where the daemon writes findings too many for one reply (it cannot create files itself).
        UniqueFd overflow(
            static_cast<int>(::syscall(SYS_memfd_create, "ingest-overflow", MFD_CLOEXEC | MFD_ALLOW_SEALING)));
        if (!overflow) {
            refuse(request.id);
            return;
        }
        const pid_t pid = ::fork();
        if (pid < 0) {
            refuse(request.id);
            return;
        }
        if (pid == 0) {
            // The worker keeps the directory (3) and the pipe's write end (4); stdio is /dev/null.
            const int dir = ::fcntl(dir_fd, F_DUPFD, 100);
            const int out = ::fcntl(write_end.get(), F_DUPFD, 100);
            if (dir < 0 || out < 0 || ::dup2(dev_null_, 0) < 0 || ::dup2(dev_null_, 1) < 0 ||
                ::dup2(dev_null_, 2) < 0 || ::dup2(dir, 3) != 3 || ::dup2(out, 4) != 4 ||
                ::syscall(SYS_close_range, 5U, ~0U, 0U) != 0) {
                ::_exit(kExitSandbox);
            }
            run_worker(3, 4, request, matcher_);
        }
        write_end.reset();
        Running worker;
        worker.pid = pid;
        worker.pidfd.reset(static_cast<int>(::syscall(SYS_pidfd_open, pid, 0U)));
        worker.deadline_ms = monotonic_ms() + std::uint64_t{request.limits.wall_seconds} * 1000;
        if (!worker.pidfd) {
            (void)::kill(pid, SIGKILL);
            (void)::waitpid(pid, nullptr, 0);
            refuse(request.id);
            return;
        }
        HelperMessage started;
        started.kind = HelperMessage::Started;
        started.id = request.id;
        if (!send_message(control_, started, {read_end.get(), overflow.get()})) {
            (void)::syscall(SYS_pidfd_send_signal, worker.pidfd.get(), SIGKILL, nullptr, 0);
        }
        running_.emplace(request.id, std::move(worker));
    }

    void reap(std::uint64_t id)
    {
        auto it = running_.find(id);
        if (it == running_.end()) {
            return;
        }
        int status = 0;
        struct rusage usage {};
        pid_t got = 0;
        do {
            got = ::wait4(it->second.pid, &status, WNOHANG, &usage);
        } while (got < 0 && errno == EINTR);
        if (got == 0) {
            return;  // not yet
        }
        HelperMessage message;
        message.kind = HelperMessage::Finished;
        message.id = id;
        int code = 0;
        message.end = got < 0 ? WorkerEnd::Failed : end_of(status, it->second.timed_out, code);
        message.status = code;
        message.peak_rss_kib = static_cast<std::uint64_t>(usage.ru_maxrss);
        message.cpu_usec = static_cast<std::uint64_t>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
                           static_cast<std::uint64_t>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
        running_.erase(it);
        (void)send_message(control_, message, {});
    }

    int control_;
    std::shared_ptr<const scan::Matcher> matcher_;
    int dev_null_;
    std::map<std::uint64_t, Running> running_;
};

[[noreturn]] void helper_main(int control, const std::function<void()>& harden) noexcept
{
    try {
        // Ends with the daemon; the signals that stop the daemon are the daemon's to handle.
        if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) {
            ::_exit(1);
        }
        ::signal(SIGINT, SIG_IGN);
        ::signal(SIGTERM, SIG_IGN);
        ::signal(SIGHUP, SIG_IGN);
        ::signal(SIGPIPE, SIG_IGN);
        sigset_t none;
        sigemptyset(&none);
        (void)::sigprocmask(SIG_SETMASK, &none, nullptr);
        // Moved above the low numbers first, so no dup2 below overwrites the other.
        const int high_control = ::fcntl(control, F_DUPFD_CLOEXEC, 100);
        const int opened = ::open("/dev/null", O_RDWR | O_CLOEXEC);
        const int dev_null = opened < 0 ? -1 : ::fcntl(opened, F_DUPFD_CLOEXEC, 100);
        if (high_control < 0 || dev_null < 0 || ::dup2(high_control, 3) != 3 || ::dup2(dev_null, 4) != 4 ||
            ::syscall(SYS_close_range, 5U, ~0U, 0U) != 0 || ::dup2(4, 0) != 0 || ::dup2(4, 1) != 1) {
            ::_exit(1);
        }
        (void)::fcntl(3, F_SETFD, FD_CLOEXEC);
        (void)::fcntl(4, F_SETFD, FD_CLOEXEC);
        if (harden) {
            harden();
        }
        if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || ::prctl(PR_SET_DUMPABLE, 0) != 0) {
            ::_exit(1);
        }
        // Compiled once here, before any fork: each worker inherits the databases and the JIT code
        // and never needs executable memory of its own.
        auto matcher = scan::Matcher::create(scan::builtin_rules_text(), "rules.toml");
        if (!matcher) {
            ::_exit(1);
        }
        HelperLoop loop(3, std::move(matcher).value(), 4);
        loop.run();
    } catch (...) {
        ::_exit(1);
    }
}

}  // namespace

Helper start_helper(const std::function<void()>& harden)
{
    int pair[2];
    if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) != 0) {
        throw std::system_error(errno, std::generic_category(), "ingest helper: socketpair");
    }
    UniqueFd ours(pair[0]);
    UniqueFd theirs(pair[1]);
    const pid_t pid = ::fork();
    if (pid < 0) {
        throw std::system_error(errno, std::generic_category(), "ingest helper: fork");
    }
    if (pid == 0) {
        ours.reset();
        helper_main(theirs.get(), harden);
    }
    return Helper{pid, std::move(ours)};
}

}  // namespace codexvault::ingest
