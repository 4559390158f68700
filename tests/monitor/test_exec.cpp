// Exec records in the real kernel: path, device, inode and uid of each exec, the pid-reuse rule
// of the exe cache, mount crossings and the depth limit of the dentry walk.
#include <fcntl.h>
#include <sched.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include "tests/monitor/support.hpp"

using codexvault::monitor::ExecEvent;
using namespace cvtest;

namespace {

bool is_exec_of(const codexvault::monitor::Event& e, pid_t pid)
{
    const auto* x = std::get_if<ExecEvent>(&e);
    return x != nullptr && x->task.tgid == static_cast<std::uint32_t>(pid) && !x->existing;
}

// The exec record of `pid` (the last one when it exec'd more than once).
ExecEvent exec_record(Monitor& monitor, pid_t pid)
{
    const auto events = drain_until(monitor, [&](const auto& e) { return is_exec_of(e, pid); });
    for (auto it = events.rbegin(); it != events.rend(); ++it) {
        if (is_exec_of(*it, pid)) {
            return std::get<ExecEvent>(*it);
        }
    }
    cr_assert_fail("no exec record for pid %d", pid);
    return {};
}

// Runs `path` as the child of a fork, keeps it a zombie to read its start time, then reaps it.
struct Ran {
    pid_t pid;
    std::uint64_t start_ticks;
};
Ran run_and_keep_start(const char* path, uid_t uid)
{
    const pid_t pid = spawn([&] {
        if (uid != 0 && (::setgid(uid) != 0 || ::setuid(uid) != 0)) {
            return 2;
        }
        ::execl(path, path, static_cast<char*>(nullptr));
        return 3;
    });
    siginfo_t info{};
    cr_assert_eq(::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
    const auto ticks = stat_start_ticks(pid);
    const int status = reap(pid);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "%s did not run (status %d)", path, status);
    return {pid, ticks};
}

std::string copy_true_to(const std::string& path)
{
    std::ifstream in("/usr/bin/true", std::ios::binary);
    std::ofstream out(path, std::ios::binary);
    out << in.rdbuf();
    out.close();
    cr_assert_eq(::chmod(path.c_str(), 0755), 0);
    return path;
}

}  // namespace

Test(monitor_exec, records_path_device_inode_and_uid_of_another_user)
{
    auto monitor = load_or_skip();
    const auto ran = run_and_keep_start("/usr/bin/true", 65534);
    const auto rec = exec_record(*monitor, ran.pid);
    const auto [dev, ino] = inode_of("/usr/bin/true");

    cr_expect_str_eq(rec.exe_path.c_str(), "/usr/bin/true");
    cr_expect_eq(rec.task.exe_dev, dev);
    cr_expect_eq(rec.task.exe_ino, ino);
    cr_expect_eq(rec.task.uid, 65534U);
    cr_expect_eq(rec.task.euid, 65534U);
    cr_expect_str_eq(rec.task.comm.c_str(), "true");
    cr_expect_eq(rec.task.start_ticks(), ran.start_ticks, "boottime ns -> ticks must give /proc/PID/stat's starttime");
    cr_expect(rec.time_ns > 0);

    const auto cached = monitor->exe_of(ran.pid, ran.start_ticks);
    cr_assert(cached.has_value());
    cr_expect_str_eq(cached->path.c_str(), "/usr/bin/true");
    cr_expect_eq(cached->ino, ino);
    cr_expect_eq(cached->uid, 65534U);
}

Test(monitor_exec, walks_across_mount_points)
{
    auto monitor = load_or_skip();
    // /dev/shm is its own tmpfs mount: the walk must cross into / to name it.
    const std::string path = copy_true_to("/dev/shm/cv-monitor-true-" + std::to_string(::getpid()));
    const auto ran = run_and_keep_start(path.c_str(), 0);
    const auto rec = exec_record(*monitor, ran.pid);
    ::unlink(path.c_str());
    cr_expect_str_eq(rec.exe_path.c_str(), path.c_str());
    cr_expect(!rec.path_truncated);
}

Test(monitor_exec, cuts_paths_deeper_than_the_walk_limit)
{
    auto monitor = load_or_skip();
    std::string dir = "/tmp/cv-monitor-deep-" + std::to_string(::getpid());
    const std::string top = dir;
    ::mkdir(dir.c_str(), 0755);
    for (int i = 0; i < 40; ++i) {
        dir += "/d";
        cr_assert(::mkdir(dir.c_str(), 0755) == 0 || errno == EEXIST);
    }
    const auto path = copy_true_to(dir + "/true");
    const auto ran = run_and_keep_start(path.c_str(), 0);
    const auto rec = exec_record(*monitor, ran.pid);
    std::filesystem::remove_all(top);
    cr_expect(rec.path_truncated);
    // The 32 names nearest the file are kept: "/d/d/.../d/true".
    std::string want;
    for (int i = 0; i < 31; ++i) {
        want += "/d";
    }
    want += "/true";
    cr_expect_str_eq(rec.exe_path.c_str(), want.c_str());
}

// The pid of an exited process, handed to a new one (ns_last_pid steers the allocator), never
// finds the old process's exe: the cache key includes the start time.
Test(monitor_exec, a_reused_pid_never_inherits_the_old_exe)
{
    auto monitor = load_or_skip();
    const auto first = run_and_keep_start("/usr/bin/true", 0);
    exec_record(*monitor, first.pid);
    // A start time in another clock tick than the first process's (ticks are 10 ms).
    std::this_thread::sleep_for(std::chrono::milliseconds(30));

    Latch go;
    pid_t second = -1;
    for (int attempt = 0; attempt < 20 && second != first.pid; ++attempt) {
        if (second > 0) {
            go.release();
            reap(second);
        }
        std::ofstream last("/proc/sys/kernel/ns_last_pid");
        last << (first.pid - 1);
        last.close();
        if (!last) {
            cr_skip_test("cannot steer pid allocation (/proc/sys/kernel/ns_last_pid not writable)");
        }
        second = spawn([&] {
            go.wait();
            ::execl("/usr/bin/env", "env", "-i", "/usr/bin/true", static_cast<char*>(nullptr));
            return 3;
        });
    }
    if (second != first.pid) {
        go.release();
        reap(second);
        cr_skip_test("could not get pid %d again (other processes took it)", first.pid);
    }
    const auto second_ticks = stat_start_ticks(second);
    cr_assert_neq(second_ticks, first.start_ticks);
    // Not exec'd yet: nothing is known about the new process, whatever the pid had before.
    cr_expect(!monitor->exe_of(second, second_ticks).has_value());

    go.release();
    reap(second);
    const auto rec = exec_record(*monitor, second);  // env first, then true (same pid)
    cr_expect_str_eq(rec.exe_path.c_str(), "/usr/bin/true");
    const auto now = monitor->exe_of(second, second_ticks);
    cr_assert(now.has_value());
    cr_expect_str_eq(now->path.c_str(), "/usr/bin/true");
    const auto before = monitor->exe_at(second, second_ticks, now->exec_time_ns - 1);
    cr_assert(before.has_value(), "the exe before the second exec is remembered");
    cr_expect_str_eq(before->path.c_str(), "/usr/bin/env");
    const auto old = monitor->exe_of(first.pid, first.start_ticks);
    cr_assert(old.has_value());
    cr_expect_str_eq(old->path.c_str(), "/usr/bin/true");
    cr_expect_lt(old->exec_time_ns, before->exec_time_ns);
}

Test(monitor_exec, reports_host_and_namespace_pids)
{
    auto monitor = load_or_skip();
    // The child unshares a pid namespace; its own child is pid 1 there and execs.
    int out[2];
    cr_assert_eq(::pipe(out), 0);
    const pid_t parent = spawn([&] {
        if (::unshare(CLONE_NEWPID) != 0) {
            return 2;
        }
        const pid_t inner = ::fork();
        if (inner == 0) {
            ::execl("/usr/bin/true", "true", static_cast<char*>(nullptr));
            ::_exit(3);
        }
        (void)!::write(out[1], &inner, sizeof(inner));
        int status = 0;
        ::waitpid(inner, &status, 0);
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : 4;
    });
    ::close(out[1]);
    pid_t inner = -1;
    cr_assert_eq(::read(out[0], &inner, sizeof(inner)), static_cast<ssize_t>(sizeof(inner)));
    const auto rec = exec_record(*monitor, inner);
    const int status = reap(parent);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "namespace child failed (status %d)", status);
    cr_expect_eq(rec.task.tgid, static_cast<std::uint32_t>(inner), "host pid");
    cr_expect_eq(rec.task.ns_pid, 1U, "pid in its own namespace");
    cr_expect_eq(rec.task.ns_tgid, 1U);
    struct stat own_ns {};
    cr_assert_eq(::stat("/proc/self/ns/pid", &own_ns), 0);
    cr_expect_neq(rec.task.pidns_inum, static_cast<std::uint32_t>(own_ns.st_ino), "a namespace of its own");
    cr_expect_neq(rec.task.pidns_inum, 0U);
}

Test(monitor_exec, knows_the_processes_that_ran_before_it)
{
    // A process started before the monitor: the walk at start (iter/task) records its exe.
    Latch go;
    const pid_t sleeper = spawn([&] {
        ::execl("/usr/bin/sleep", "sleep", "30", static_cast<char*>(nullptr));
        return 3;
    });
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    auto monitor = load_or_skip();
    const auto ticks = stat_start_ticks(sleeper);
    const auto rec = monitor->exe_of(sleeper, ticks);
    ::kill(sleeper, SIGKILL);
    reap(sleeper);
    cr_expect(monitor->status().existing_processes > 0);
    cr_assert(rec.has_value(), "no record of the running sleep %d", sleeper);
    cr_expect_str_eq(rec->path.c_str(), "/usr/bin/sleep");
    cr_expect_eq(rec->exec_time_ns, 0U, "exec time of a process seen by the walk is unknown");
}
