// The kill policy in the real kernel: SIGKILL is sent at syscall entry, so the offender never
// returns to user space with what it read. What the syscall body still does differs by file
// system (checked here, described in bpf/README.md).
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <cstring>
#include <functional>
#include <string>

#include "tests/monitor/support.hpp"

using codexvault::monitor::AccessEvent;
using codexvault::monitor::OnTouch;
using namespace cvtest;

namespace {

constexpr std::uint64_t secret_id = 77;
volatile char victim_data[32] = "victim's secret";

// Runs `offend(pipe_write_end)` in a child; returns its wait status and what it wrote.
struct Offence {
    pid_t pid;
    int status;
    std::string leaked;
};

Offence offend(const std::function<ssize_t(char* buf, std::size_t len)>& take)
{
    int out[2];
    cr_assert_eq(::pipe(out), 0);
    const pid_t pid = spawn([&] {
        ::close(out[0]);
        char buf[64] = {};
        const ssize_t n = take(buf, sizeof(buf));
        if (n > 0) {
            (void)!::write(out[1], buf, static_cast<std::size_t>(n));
        }
        return 0;
    });
    ::close(out[1]);
    std::string leaked;
    char buf[64];
    ssize_t n;
    while ((n = ::read(out[0], buf, sizeof(buf))) > 0) {
        leaked.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out[0]);
    return {pid, reap(pid), leaked};
}

void expect_killed(Monitor& monitor, const Offence& o, AccessEvent::Kind kind)
{
    cr_expect(o.leaked.empty(), "the offender passed on %zu bytes", o.leaked.size());
    cr_expect(WIFSIGNALED(o.status) && WTERMSIG(o.status) == SIGKILL, "offender status %d", o.status);
    bool recorded = false;
    for (const auto& a : only<AccessEvent>(drain_for(monitor, std::chrono::milliseconds(200)))) {
        recorded =
            recorded || (a.actor.tgid == static_cast<std::uint32_t>(o.pid) && a.kind == kind && a.alert && a.killed);
    }
    cr_expect(recorded, "no record of the kill");
}

}  // namespace

Test(monitor_kill, a_reader_of_a_killing_secret_dies_before_its_read_returns)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::kill));
    const auto o = offend([&](char* buf, std::size_t len) { return ::pread(secret.fd, buf, len, 0); });
    expect_killed(*monitor, o, AccessEvent::Kind::read);
}

Test(monitor_kill, a_mapper_of_a_killing_secret_dies_before_it_can_look)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::kill));
    const auto o = offend([&](char* buf, std::size_t len) -> ssize_t {
        void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, secret.fd, 0);
        if (p == MAP_FAILED) {
            return -1;
        }
        std::memcpy(buf, p, len);
        return static_cast<ssize_t>(len);
    });
    expect_killed(*monitor, o, AccessEvent::Kind::mmap);
}

Test(monitor_kill, process_vm_readv_on_a_killing_mark_dies_before_it_returns)
{
    auto monitor = load_or_skip();
    Latch done;
    const pid_t victim = spawn([&] {
        done.wait();
        return 0;
    });
    cr_assert(!monitor->mark_process(victim, secret_id, OnTouch::kill));
    const auto o = offend([&](char* buf, std::size_t len) {
        iovec local{buf, len < sizeof(victim_data) ? len : sizeof(victim_data)};
        iovec remote{const_cast<char*>(victim_data), sizeof(victim_data)};
        return ::process_vm_readv(victim, &local, 1, &remote, 1, 0);
    });
    done.release();
    const int victim_status = reap(victim);
    cr_expect(WIFEXITED(victim_status), "the victim must not be the one killed");
    expect_killed(*monitor, o, AccessEvent::Kind::vm_read);
}

// On a page-cache file system (ext4 here) the read path checks for a fatal signal before it
// copies, so even memory shared with another process never receives the data. (shmem -- memfd,
// tmpfs -- copies first: see bpf/README.md.)
Test(monitor_kill, on_a_page_cache_file_the_data_never_reaches_memory)
{
    auto monitor = load_or_skip();
    const std::string path = "/var/tmp/cv-monitor-kill-" + std::to_string(::getpid());
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    cr_assert(fd >= 0, "open %s: %s", path.c_str(), std::strerror(errno));
    ::unlink(path.c_str());
    struct statfs fs {};
    cr_assert_eq(::fstatfs(fd, &fs), 0);
    if (fs.f_type != 0xEF53) {  // EXT4_SUPER_MAGIC
        cr_skip_test("/var/tmp is not ext4 (f_type %#lx): the copy-before-check behaviour differs",
                     static_cast<unsigned long>(fs.f_type));
    }
    cr_assert_eq(::write(fd, "s3cret", 6), 6);
    const auto [dev, ino] = [&] {
        struct stat st {};
        ::fstat(fd, &st);
        return std::pair<std::uint64_t, std::uint64_t>{st.st_dev, st.st_ino};
    }();
    cr_assert(!monitor->track_inode(dev, ino, secret_id, OnTouch::kill));
    auto* shared = static_cast<char*>(::mmap(nullptr, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0));
    cr_assert(shared != MAP_FAILED);
    const pid_t reader = spawn([&] { return ::pread(fd, shared, 64, 0) > 0 ? 0 : 1; });
    const int status = reap(reader);
    cr_expect(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    cr_expect_eq(shared[0], 0, "the read copied data before the kill took effect");
    ::close(fd);
}
