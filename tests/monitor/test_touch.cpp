// Touches of a tracked inode in the real kernel: reads and maps by an unmarked process are
// alerts naming its pid and exe, however it got the fd (inherited, SCM_RIGHTS, pidfd_getfd); the
// marked owner's own reads are routine; untracked reads produce nothing.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "tests/monitor/support.hpp"

using codexvault::monitor::AccessEvent;
using codexvault::monitor::OnTouch;
using namespace cvtest;

namespace {

constexpr std::uint64_t secret_id = 42;

std::optional<AccessEvent> find_access(const std::vector<codexvault::monitor::Event>& events, pid_t actor,
                                       AccessEvent::Kind kind)
{
    for (const auto& a : only<AccessEvent>(events)) {
        if (a.actor.tgid == static_cast<std::uint32_t>(actor) && a.kind == kind) {
            return a;
        }
    }
    return std::nullopt;
}

std::optional<AccessEvent> wait_access(Monitor& monitor, pid_t actor, AccessEvent::Kind kind)
{
    return find_access(drain_until(monitor,
                                   [&](const codexvault::monitor::Event& e) {
                                       const auto* a = std::get_if<AccessEvent>(&e);
                                       return a != nullptr && a->actor.tgid == static_cast<std::uint32_t>(actor) &&
                                              a->kind == kind;
                                   }),
                       actor, kind);
}

// The alert names the offender: pid, uid, comm and the exe's inode (this test binary).
void expect_alert_from(const std::optional<AccessEvent>& a, pid_t pid, const MemFd& secret)
{
    cr_assert(a.has_value(), "no record of pid %d touching the secret", pid);
    cr_expect(a->alert);
    cr_expect(!a->killed);
    cr_expect_eq(a->id, secret_id);
    cr_expect_eq(a->actor_mark, 0U);
    cr_expect_eq(a->dev, secret.dev);
    cr_expect_eq(a->ino, secret.ino);
    cr_expect_eq(a->actor.pid, static_cast<std::uint32_t>(pid));
    cr_expect_eq(a->actor.uid, 0U);
    const auto [dev, ino] = inode_of("/proc/self/exe");
    cr_expect_eq(a->actor.exe_dev, dev);
    cr_expect_eq(a->actor.exe_ino, ino);
}

int send_fd(int sock, int fd)
{
    char byte = 'x';
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    std::memcpy(CMSG_DATA(cmsg), &fd, sizeof(int));
    return ::sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

int recv_fd(int sock)
{
    char byte;
    iovec iov{&byte, 1};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int))] = {};
    msghdr msg{};
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control;
    msg.msg_controllen = sizeof(control);
    if (::recvmsg(sock, &msg, 0) != 1) {
        return -1;
    }
    const cmsghdr* cmsg = CMSG_FIRSTHDR(&msg);
    if (cmsg == nullptr || cmsg->cmsg_type != SCM_RIGHTS) {
        return -1;
    }
    int fd;
    std::memcpy(&fd, CMSG_DATA(cmsg), sizeof(int));
    return fd;
}

}  // namespace

Test(monitor_touch, a_read_by_an_unmarked_process_is_an_alert)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::record));
    const pid_t reader = spawn([&] {
        char buf[16];
        return ::pread(secret.fd, buf, sizeof(buf), 0) > 0 ? 0 : 1;
    });
    cr_assert(WIFEXITED(reap(reader)));
    const auto a = wait_access(*monitor, reader, AccessEvent::Kind::read);
    expect_alert_from(a, reader, secret);
    cr_expect_eq(a->fd, secret.fd);
    cr_expect_eq(a->syscall_nr, static_cast<std::uint32_t>(SYS_pread64));
}

Test(monitor_touch, an_mmap_by_an_unmarked_process_is_an_alert)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::record));
    const pid_t mapper = spawn([&] {
        void* p = ::mmap(nullptr, 4096, PROT_READ, MAP_SHARED, secret.fd, 0);
        return p == MAP_FAILED ? 1 : 0;
    });
    cr_assert(WIFEXITED(reap(mapper)));
    expect_alert_from(wait_access(*monitor, mapper, AccessEvent::Kind::mmap), mapper, secret);
}

Test(monitor_touch, an_fd_received_over_scm_rights_is_an_alert_then_its_read)
{
    auto monitor = load_or_skip();
    int socks[2];
    cr_assert_eq(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, socks), 0);
    // The receiver exists before the secret does: it can only get the fd through the socket.
    const pid_t receiver = spawn([&] {
        const int fd = recv_fd(socks[1]);
        char buf[16];
        return fd >= 0 && ::pread(fd, buf, sizeof(buf), 0) > 0 ? 0 : 1;
    });
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::record));
    cr_assert_eq(send_fd(socks[0], secret.fd), 0);
    const int status = reap(receiver);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    // One drain: both records may arrive in the same batch.
    const auto events = drain_until(*monitor, [&](const codexvault::monitor::Event& e) {
        const auto* a = std::get_if<AccessEvent>(&e);
        return a != nullptr && a->actor.tgid == static_cast<std::uint32_t>(receiver) &&
               a->kind == AccessEvent::Kind::read;
    });
    expect_alert_from(find_access(events, receiver, AccessEvent::Kind::receive), receiver, secret);
    expect_alert_from(find_access(events, receiver, AccessEvent::Kind::read), receiver, secret);
}

Test(monitor_touch, pidfd_getfd_on_a_marked_holder_is_recorded_twice)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::record));
    Latch done;
    const pid_t holder = spawn([&] {
        done.wait();
        return 0;
    });
    cr_assert(!monitor->mark_process(holder, secret_id, OnTouch::record));
    const pid_t thief = spawn([&] {
        const int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, holder, 0));
        const int fd = static_cast<int>(::syscall(SYS_pidfd_getfd, pidfd, secret.fd, 0));
        return fd >= 0 ? 0 : 1;
    });
    const int status = reap(thief);
    done.release();
    reap(holder);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "pidfd_getfd failed in the child");

    const auto events = drain_for(*monitor, std::chrono::milliseconds(300));
    const auto accesses = only<AccessEvent>(events);
    // The attempt on the marked holder, at entry...
    const bool attempt = std::any_of(accesses.begin(), accesses.end(), [&](const AccessEvent& a) {
        return a.actor.tgid == static_cast<std::uint32_t>(thief) && a.kind == AccessEvent::Kind::pidfd_getfd &&
               a.target_tgid == static_cast<std::uint32_t>(holder) && a.alert && a.id == secret_id &&
               a.detail == static_cast<std::uint32_t>(secret.fd);
    });
    cr_expect(attempt, "no attempt on the marked holder recorded");
    // ...and the tracked inode the thief now holds, at exit.
    const bool got = std::any_of(accesses.begin(), accesses.end(), [&](const AccessEvent& a) {
        return a.actor.tgid == static_cast<std::uint32_t>(thief) && a.kind == AccessEvent::Kind::pidfd_getfd &&
               a.ino == secret.ino && a.dev == secret.dev && a.alert;
    });
    cr_expect(got, "no record of the thief receiving the tracked inode");
}

Test(monitor_touch, the_marked_owner_reading_its_own_secret_is_routine)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::kill));
    Latch marked;
    const pid_t owner = spawn([&] {
        marked.wait();
        char buf[16];
        return ::pread(secret.fd, buf, sizeof(buf), 0) > 0 ? 0 : 1;
    });
    cr_assert(!monitor->mark_process(owner, secret_id, OnTouch::record));
    marked.release();
    const int status = reap(owner);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the owner was killed for reading its own secret");
    const auto a = wait_access(*monitor, owner, AccessEvent::Kind::read);
    cr_assert(a.has_value());
    cr_expect(!a->alert);
    cr_expect(!a->killed);
    cr_expect_eq(a->actor_mark, secret_id);
}

Test(monitor_touch, a_process_marked_for_another_secret_is_an_alert)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::record));
    Latch marked;
    const pid_t other = spawn([&] {
        marked.wait();
        char buf[16];
        return ::pread(secret.fd, buf, sizeof(buf), 0) > 0 ? 0 : 1;
    });
    cr_assert(!monitor->mark_process(other, secret_id + 1, OnTouch::record));
    marked.release();
    reap(other);
    const auto a = wait_access(*monitor, other, AccessEvent::Kind::read);
    cr_assert(a.has_value());
    cr_expect(a->alert);
    cr_expect_eq(a->actor_mark, secret_id + 1);
}

Test(monitor_touch, untracked_reads_emit_nothing)
{
    auto monitor = load_or_skip();
    const auto secret = make_memfd("s3cret");
    const auto other = make_memfd("not a secret");
    for (const bool tracking : {false, true}) {
        if (tracking) {
            // The gate is open now: every read is looked at, and still none is recorded.
            cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::record));
        }
        const pid_t reader = spawn([&] {
            char buf[64];
            for (int i = 0; i < 20'000; ++i) {
                if (::pread(other.fd, buf, sizeof(buf), 0) < 0) {
                    return 1;
                }
            }
            return 0;
        });
        cr_assert(WIFEXITED(reap(reader)));
        const auto accesses = only<AccessEvent>(drain_for(*monitor, std::chrono::milliseconds(200)));
        cr_expect(accesses.empty(), "%zu records for untracked reads (tracking=%d)", accesses.size(), tracking);
    }
    cr_expect_eq(monitor->lost_events(), 0U);
}

Test(monitor_touch, the_raw_tp_fallback_records_the_same)
{
    codexvault::monitor::Options options;
    options.force_raw_tp = true;
    auto monitor = load_or_skip(options);
    for (const auto& p : monitor->status().programs) {
        // Iterators (the task walk at load, the connect-time check) are not hooks: no raw_tp flavour.
        if (p.type != "iter") {
            cr_expect_str_eq(p.type.c_str(), "raw_tp", "%s", p.hook.c_str());
        }
    }
    const auto secret = make_memfd("s3cret");
    cr_assert(!monitor->track_inode(secret.dev, secret.ino, secret_id, OnTouch::record));
    const pid_t reader = spawn([&] {
        char buf[16];
        return ::read(secret.fd, buf, sizeof(buf)) >= 0 ? 0 : 1;
    });
    reap(reader);
    expect_alert_from(wait_access(*monitor, reader, AccessEvent::Kind::read), reader, secret);
}

// The hooks look up the hash map only for files on a device that holds a tracked inode (a filter
// of 8 devices, with an overflow flag beyond). Inodes on more devices than that are all seen, and
// once they are untracked down to a few, the survivors still are and the others no longer.
Test(monitor_touch, tracked_inodes_on_more_devices_than_the_filter_holds_are_all_seen)
{
    auto monitor = load_or_skip();
    struct Candidate {
        int fd;
        std::uint64_t dev;
        std::uint64_t ino;
    };
    std::vector<Candidate> files;
    std::set<std::uint64_t> devices;
    const auto add = [&](int fd) {
        struct stat st {};
        if (fd >= 0 && ::fstat(fd, &st) == 0 && devices.insert(st.st_dev).second) {
            files.push_back({fd, st.st_dev, st.st_ino});
        } else if (fd >= 0) {
            ::close(fd);
        }
    };
    add(make_memfd("shmem").fd);
    int pipe_fds[2];
    if (::pipe(pipe_fds) == 0) {
        (void)!::write(pipe_fds[1], "p", 1);
        add(pipe_fds[0]);
    }
    int sock_fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM, 0, sock_fds) == 0) {
        add(sock_fds[0]);
    }
    add(::eventfd(1, EFD_NONBLOCK));
    for (const char* path : {"/proc/self/stat", "/sys/devices/system/cpu/online", "/dev/null"}) {
        add(::open(path, O_RDONLY));
    }
    for (const std::string folder : {"/var/tmp", "/dev/shm", "/run", "/tmp"}) {
        const std::string path = folder + "/cv-monitor-devices-" + std::to_string(::getpid());
        const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            (void)!::write(fd, "x", 1);
            ::unlink(path.c_str());
        }
        add(fd);
    }
    if (files.size() <= 8) {
        cr_skip_test("only %zu distinct devices to open files on here; the filter holds 8", files.size());
    }
    for (std::size_t i = 0; i < files.size(); ++i) {
        cr_assert(!monitor->track_inode(files[i].dev, files[i].ino, 500 + i, OnTouch::record));
    }
    const auto read_all = [&](const std::vector<Candidate>& which) {
        return spawn([&] {
            for (const auto& f : which) {
                // Never wait: an empty pipe or socket is still a read(2) of the fd.
                (void)::fcntl(f.fd, F_SETFL, ::fcntl(f.fd, F_GETFL) | O_NONBLOCK);
                char buf[8];
                (void)!::pread(f.fd, buf, 1, 0);
                (void)!::read(f.fd, buf, 1);  // pipes, sockets and eventfds refuse pread
            }
            return 0;
        });
    };
    const auto seen_ids = [&](pid_t reader) {
        std::set<std::uint64_t> ids;
        for (const auto& a : only<AccessEvent>(drain_for(*monitor, std::chrono::milliseconds(500)))) {
            if (a.actor.tgid == static_cast<std::uint32_t>(reader)) {
                ids.insert(a.id);
            }
        }
        return ids;
    };
    pid_t reader = read_all(files);
    reap(reader);
    auto ids = seen_ids(reader);
    for (std::size_t i = 0; i < files.size(); ++i) {
        cr_expect(ids.count(500 + i) == 1, "file %zu of %zu (device %llu) was read unseen", i, files.size(),
                  static_cast<unsigned long long>(files[i].dev));
    }
    // Down to two devices: the filter holds them again (no overflow).
    for (std::size_t i = 2; i < files.size(); ++i) {
        cr_assert(!monitor->untrack_inode(files[i].dev, files[i].ino));
    }
    reader = read_all(files);
    reap(reader);
    ids = seen_ids(reader);
    cr_expect(ids == (std::set<std::uint64_t>{500, 501}), "%zu ids seen after untracking all but two", ids.size());
    for (const auto& f : files) {
        ::close(f.fd);
    }
}
